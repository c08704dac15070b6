"""The vigil-hub command, run as a real process."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from hub.cli import main
from hub.server import EmbeddedHub
from tests.hubtools import HTTP_TIMEOUT, settings_for, sign_in

COMMAND = [sys.executable, "-m", "hub"]
PROCESS_TIMEOUT = 60


def _vigil_hub(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )


def test_user_add_prints_an_otpauth_uri_the_user_can_sign_in_with(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = _vigil_hub(
        "user",
        "add",
        "ruth",
        "--role",
        "dispatcher",
        "--password-stdin",
        "--init",
        "--data",
        str(data),
        stdin="a long enough password\n",
    )

    assert result.returncode == 0, result.stderr
    uri = re.search(r"otpauth://totp/\S+", result.stdout)
    assert uri is not None, result.stdout
    secret = re.search(r"secret=([A-Z2-7]+)", uri.group(0))
    assert secret is not None
    with EmbeddedHub(settings_for(data)) as hub:
        # The trailing newline was dropped: the password is exactly the line.
        tokens = sign_in(hub.url, "ruth", "a long enough password", secret.group(1))
    assert tokens["user"]["roles"] == ["agent", "dispatcher"]


def test_user_add_refuses_a_duplicate_and_a_short_password_with_one_line(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    add = ["user", "add", "sid", "--role", "agent", "--password-stdin", "--init", "--data", data]
    assert _vigil_hub(*add, stdin="first password\n").returncode == 0

    duplicate = _vigil_hub(*add, stdin="second password\n")
    short = _vigil_hub(
        "user", "add", "tom", "--role", "agent", "--password-stdin", "--data", data, stdin="abc\n"
    )
    empty = _vigil_hub(
        "user", "add", "una", "--role", "agent", "--password-stdin", "--data", data, stdin=""
    )

    for result, expected in (
        (duplicate, "already exists"),
        (short, "too short"),
        (empty, "no password"),
    ):
        assert result.returncode == 1
        assert expected in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


def test_serve_answers_healthz_and_stops_on_sigterm(tmp_path: Path) -> None:
    command = [*COMMAND, "serve", "--port", "0", "--data", str(tmp_path / "data")]
    with subprocess.Popen(
        [*command, "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_read_lines, args=(process, lines), daemon=True).start()
        try:
            # The socket listens before the address is printed, so the first request is served.
            url = None
            while url is None:
                match = re.search(r"http://127\.0\.0\.1:\d+", lines.get(timeout=PROCESS_TIMEOUT))
                url = match.group(0) if match else None
            response = requests.get(f"{url}/healthz", timeout=HTTP_TIMEOUT)
            assert response.json() == {"status": "ok"}
        finally:
            process.terminate()
            try:
                process.wait(timeout=PROCESS_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=PROCESS_TIMEOUT)
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells it.
        assert process.returncode in (0, -signal.SIGTERM)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "0 is out of range"),
        ("-5", "-5 is out of range"),
        ("1" + "0" * 30, "1" + "0" * 30 + " is out of range"),
        ("ten", "'ten' is not a whole number"),
        ("", "'' is not a whole number"),
    ],
)
def test_serve_refuses_a_connection_cap_it_cannot_use_naming_the_option(
    value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--data", str(tmp_path / "data"), "--max-connections", value])

    err = capsys.readouterr().err
    assert f"argument --max-connections: {message}" in err
    assert "Traceback" not in err
    assert not (tmp_path / "data").exists()


def _read_lines(process: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)
