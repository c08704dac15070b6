"""A Python child process for crash tests: started from a script file, given one secret line on
stdin (never on its command line, where the process list would show it), its stdout read line by
line with a deadline, and ended with SIGKILL at a moment the test picks."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

LINE_TIMEOUT = 30.0
WAIT_TIMEOUT = 30.0


def _read_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.strip())
    lines.put(None)


class ChildProcess:
    """`python script args...`, reading its output on a thread so that waits have deadlines."""

    def __init__(self, script: Path, args: list[str], stdin_line: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(stdin_line + "\n")
        self._process.stdin.close()
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(
            target=_read_lines, args=(self._process.stdout, self._lines), daemon=True
        ).start()

    def next_line(self, timeout: float = LINE_TIMEOUT) -> str | None:
        """The next line the child printed; None once its output has ended."""
        return self._lines.get(timeout=timeout)

    def kill(self) -> int:
        """SIGKILL (harmless if it already ended) and reap it; returns its exit code."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
        return self._process.wait(timeout=WAIT_TIMEOUT)

    def remaining_lines(self) -> list[str]:
        """After kill(): every line printed and not yet taken, up to the end of the output."""
        rest: list[str] = []
        for _ in range(1_000_000):
            line = self._lines.get(timeout=WAIT_TIMEOUT)
            if line is None:
                break
            rest.append(line)
        assert self._process.stdout is not None
        self._process.stdout.close()
        return rest
