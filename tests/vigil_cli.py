"""The `vigil` command as the tests run it: a real process, and the real keyring it may need."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROCESS_TIMEOUT = 60

real_keyring = pytest.mark.skipif(
    os.environ.get("VIGIL_TEST_REAL_KEYRING") != "1",
    reason="needs a real Secret Service keyring: run the tests with scripts/test, which starts "
    "gnome-keyring on a private D-Bus session and sets VIGIL_TEST_REAL_KEYRING=1",
)


def vigil_command(*args: str) -> list[str]:
    """The command line that runs `vigil ARGS` from this checkout."""
    return [sys.executable, "-m", "client.launch", *args]


def run_vigil(
    env: dict[str, str], *args: str, stdin: str = "", timeout: float = PROCESS_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run `vigil ARGS` to its end with `env`, `stdin` as its input; never raises on its exit."""
    return subprocess.run(
        vigil_command(*args),
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
