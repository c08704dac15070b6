"""Child processes of a benchmark run (hub, readers, the app), each killed when the run ends."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import requests

from tests.hubtools import (
    DEFAULT_PASSWORD,
    login,
    next_code,
    publish_alert,
    submit_code,
)

REPO = Path(__file__).resolve().parents[2]
LINE_TIMEOUT = 120.0
STOP_TIMEOUT = 10.0


class Child:
    """A child process that talks in JSON lines on stdin/stdout; `stop()` always ends it."""

    def __init__(
        self, args: Sequence[str], env: dict[str, str] | None = None, log: Path | None = None
    ) -> None:
        self.args = list(args)
        self.log_path = log
        self._log = open(log, "a", encoding="utf-8") if log is not None else None  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.args,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        _LIVE.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        stdout: IO[str] | None = self.proc.stdout
        assert stdout is not None
        for line in stdout:
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def send(self, command: Any) -> None:
        """Write one line (a string as is, anything else as JSON)."""
        assert self.proc.stdin is not None
        text = command if isinstance(command, str) else json.dumps(command)
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float = LINE_TIMEOUT) -> Any:
        """The next JSON line from the child; RuntimeError when it ends or stays silent."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._lines:
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(f"{self.args[2:4]} ended with {self.proc.returncode}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(f"{self.args[2:4]} said nothing for {timeout:.0f} s")
                self._cond.wait(min(remaining, 0.5))
            line = self._lines.pop(0)
        return json.loads(line)

    def ask(self, command: Any, timeout: float = LINE_TIMEOUT) -> Any:
        """Send a command and return its answer."""
        self.send(command)
        return self.receive(timeout)

    def stop(self, grace: float = STOP_TIMEOUT) -> None:
        """Close stdin (the polite stop), then after `grace` s terminate, and kill if it lingers."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(grace)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.terminate()
                try:
                    self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(STOP_TIMEOUT)
        if self in _LIVE:
            _LIVE.remove(self)
        if self._log is not None:
            self._log.close()


_LIVE: list[Child] = []


def stop_all() -> None:
    """Stop every child still running (newest first)."""
    for child in reversed(list(_LIVE)):
        child.stop()


def python_module(module: str, *args: str) -> list[str]:
    """The command line that runs `module` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def rss_kib(pid: int) -> int:
    """A process's resident set size in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `condition` every millisecond until it holds; RuntimeError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.001)


class HubProcess:
    """The benchmark hub (tests.perf.hub_process) and what it printed at start."""

    def __init__(self, data_dir: Path, *extra: str, log: Path | None = None) -> None:
        self.child = Child(
            python_module("tests.perf.hub_process", "--data", str(data_dir), *extra), log=log
        )
        self.info: dict[str, Any] = self.child.receive(timeout=600)
        self.url: str = self.info["url"]
        self.pid: int = self.info["pid"]
        self._dispatcher_token: str | None = None
        self._free_agents = sorted(self.info["agents"])

    def stop(self) -> None:
        self.child.stop()

    def dispatcher_token(self) -> str:
        """An access token for the dispatcher (signed in once)."""
        if self._dispatcher_token is None:
            self._dispatcher_token = sign_in_token(
                self.url, self.info["dispatcher"], self.info["dispatcher_secret"]
            )
        return self._dispatcher_token

    def take_agent(self) -> tuple[str, str]:
        """An agent no one has signed in as yet: (username, TOTP secret)."""
        name = self._free_agents.pop(0)
        return name, self.info["agents"][name]

    def agent_token(self) -> str:
        """An access token for an agent of its own."""
        return sign_in_token(self.url, *self.take_agent())

    def publish(self, session: requests.Session, **fields: Any) -> dict[str, Any]:
        """Publish an alert as the dispatcher; returns the hub's alert object."""
        return publish_alert(self.url, self.dispatcher_token(), session=session, **fields)


class AppDriver(Child):
    """The real tray app in a child process (tests.perf.app_driver), signed in to `hub`."""

    def __init__(
        self,
        hub: HubProcess,
        data_dir: Path,
        *,
        tray: bool = False,
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        self.username, self._secret = hub.take_agent()
        args = ["--hub", hub.url, "--user", self.username, "--data", str(data_dir)]
        super().__init__(
            python_module("tests.perf.app_driver", *args, *(["--tray"] if tray else [])),
            env=env,
            log=log,
        )

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """Answer the sign-in dialog's questions, then wait until signed in and synced."""
        deadline = time.monotonic() + timeout
        while True:
            message: dict[str, Any] = self.receive(max(deadline - time.monotonic(), 0.1))
            need = message.get("need")
            if need == "password":
                self.send({"value": DEFAULT_PASSWORD})
            elif need == "code":
                self.send({"value": next_code(self._secret)})
            else:
                return message


def console_session(url: str, username: str, secret: str) -> requests.Session:
    """A requests session signed in to the hub's console through its forms (password, code)."""
    http = requests.Session()
    page = http.get(f"{url}/console/sign-in", timeout=30)
    page.raise_for_status()
    answer = http.post(
        f"{url}/console/sign-in",
        data={"username": username, "password": DEFAULT_PASSWORD, "csrf_token": _csrf(page.text)},
        timeout=30,
    )
    answer.raise_for_status()
    answer = http.post(
        f"{url}/console/sign-in/code",
        data={"code": next_code(secret), "csrf_token": _csrf(answer.text)},
        allow_redirects=False,
        timeout=30,
    )
    if answer.status_code != 303:
        raise RuntimeError(f"the console refused {username}'s sign-in: {answer.status_code}")
    return http


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if found is None:
        raise RuntimeError("the console's sign-in page has no csrf_token")
    return found.group(1)


def sign_in_token(url: str, username: str, secret: str) -> str:
    """Both sign-in steps over HTTP; the access token."""
    mfa = login(url, username, DEFAULT_PASSWORD).json()["mfa_token"]
    response = submit_code(url, mfa, next_code(secret))
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token
