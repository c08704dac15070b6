"""The hub's data dir and its secret files are its owner's alone, whatever was there before."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hub.clock import SystemClock
from hub.config import HubSettings
from hub.server import EmbeddedHub
from hub.signing import KEY_FILENAME, ContentSigner
from hub.storage import Store

SECRET_FILES = ("hub.sqlite3", "hub.sqlite3-wal", "hub.sqlite3-shm", KEY_FILENAME)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def open_data_dir(tmp_path: Path) -> Path:
    """A data dir as a careless install leaves it: 0755, its database and key file 0644."""
    data = tmp_path / "hub-data"
    data.mkdir()
    store = Store.open(data / "hub.sqlite3", SystemClock())
    store.close()
    ContentSigner.load_or_create(data)
    for name in os.listdir(data):
        (data / name).chmod(0o644)
    data.chmod(0o755)
    assert mode(data / "hub.sqlite3") == 0o644
    assert mode(data / KEY_FILENAME) == 0o644
    return data


def current_umask() -> int:
    umask = os.umask(0o077)
    os.umask(umask)
    return umask


def test_the_hub_makes_an_open_data_dir_private_and_says_what_it_changed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = open_data_dir(tmp_path)

    with caplog.at_level(logging.WARNING), EmbeddedHub(HubSettings(data_dir=data)):
        assert mode(data) == 0o700
        for name in SECRET_FILES:
            assert mode(data / name) == 0o600, name
        assert current_umask() == 0o077
        new_file = data / "made-by-the-hub"
        new_file.touch()
        assert mode(new_file) == 0o600

    messages = [record.getMessage() for record in caplog.records]
    for path, old in (
        (data, "0755"),
        (data / "hub.sqlite3", "0644"),
        (data / KEY_FILENAME, "0644"),
    ):
        assert any(str(path) in text and f"mode {old}" in text for text in messages), (
            path,
            messages,
        )
    # The key file is reported once, by the data dir check, not again by the key loader.
    assert sum(KEY_FILENAME in text for text in messages) == 1


def test_a_private_data_dir_is_left_alone_and_nothing_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "hub-data"
    with EmbeddedHub(HubSettings(data_dir=data)):
        pass

    with caplog.at_level(logging.WARNING), EmbeddedHub(HubSettings(data_dir=data)):
        pass

    assert mode(data) == 0o700
    assert mode(data / "hub.sqlite3") == 0o600
    assert [record for record in caplog.records if "mode" in record.getMessage()] == []


@pytest.mark.sqlite_only
def test_cli_data_commands_make_the_data_dir_private_and_say_so_on_stderr(tmp_path: Path) -> None:
    data = open_data_dir(tmp_path)

    result = subprocess.run(
        [sys.executable, "-m", "hub", "content", "import", str(tmp_path / "none"), "--data", data],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert mode(data) == 0o700
    assert mode(data / "hub.sqlite3") == 0o600
    assert mode(data / KEY_FILENAME) == 0o600
    assert f"{data} was mode 0755" in result.stderr
    assert f"{data / 'hub.sqlite3'} was mode 0644" in result.stderr
    assert f"{data / KEY_FILENAME} was mode 0644" in result.stderr


def test_a_file_the_hub_cannot_make_private_stops_it_with_the_files_name(tmp_path: Path) -> None:
    data = tmp_path / "hub-data"
    data.mkdir(mode=0o700)
    # Not even root may change the mode of a /proc file: a real refusal, whoever runs the test.
    (data / "hub.sqlite3").symlink_to("/proc/self/status")

    command = ["user", "add", "first", "--role", "admin", "--password-stdin", "--init"]
    result = subprocess.run(
        [sys.executable, "-m", "hub", *command, "--data", data],
        input="the first admin's own long passphrase\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.startswith(f"vigil-hub: cannot make {data / 'hub.sqlite3'} private")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
