"""The SQLite backup and restore of docs/deployment.md, done to a hub that is serving."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from hub.server import EmbeddedHub
from tests.hubtools import HTTP_TIMEOUT, access_token, auth_headers, publish_alert

# The two ways deployment.md gives, word for word but for the paths.
PYTHON_BACKUP = (
    "import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))"
)


def back_up(way: str, database: Path, copy: Path) -> None:
    """Take an online copy of `database` the way deployment.md says."""
    if way == "sqlite3":
        command = ["sqlite3", str(database), f".backup {copy}"]
    else:
        command = [sys.executable, "-c", PYTHON_BACKUP, str(database), str(copy)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def alert_titles(hub: EmbeddedHub, token: str) -> list[str]:
    """The titles of every kept alert, oldest first."""
    response = requests.get(
        f"{hub.url}/v1/alerts", headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 200, response.text
    return [alert["title"] for alert in response.json()["alerts"]]


@pytest.mark.parametrize(
    "way",
    [
        pytest.param(
            "sqlite3",
            marks=pytest.mark.skipif(shutil.which("sqlite3") is None, reason="no sqlite3 program"),
        ),
        "python",
    ],
)
def test_an_online_backup_restores_the_hub_as_it_was(
    start_hub: Callable[..., EmbeddedHub], tmp_path: Path, way: str
) -> None:
    hub = start_hub()
    dispatcher = access_token(hub.store, hub.url, "dora", role="dispatcher")
    for title in ("Phones down (East)", "Video visits down (West) <b>", "\u202eDrill"):
        publish_alert(hub.url, dispatcher, title=title)
    keys = requests.get(f"{hub.url}/v1/keys", timeout=HTTP_TIMEOUT).json()
    database = hub.settings.database_path

    copy = tmp_path / "backups" / "hub-20261203T0200Z.sqlite3"
    copy.parent.mkdir(mode=0o700)
    back_up(way, database, copy)
    # Published after the backup: the restored hub must not have it.
    publish_alert(hub.url, dispatcher, title="After the backup")
    with sqlite3.connect(copy) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    hub.stop()

    # Restore: the old database moves away with its -wal and -shm, the copy takes its place.
    replaced = hub.settings.data_dir / "replaced-20261203T0300Z"
    replaced.mkdir(mode=0o700)
    for old in hub.settings.data_dir.glob("hub.sqlite3*"):
        old.rename(replaced / old.name)
    shutil.copyfile(copy, database)
    database.chmod(0o600)

    restored = start_hub(settings=hub.settings)
    # The dispatcher's sign-in was in the backup, so it still holds.
    assert alert_titles(restored, dispatcher) == [
        "Phones down (East)",
        "Video visits down (West) <b>",
        "\u202eDrill",
    ]
    assert requests.get(f"{restored.url}/v1/keys", timeout=HTTP_TIMEOUT).json() == keys
    publish_alert(restored.url, dispatcher, title="After the restore")
    assert alert_titles(restored, dispatcher)[3:] == ["After the restore"]
