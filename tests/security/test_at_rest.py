"""What is on disk and how durably: the outbox commits every acknowledgement with an fsync, and
the hub's data dir is readable by its owner only."""

from __future__ import annotations

import stat
from pathlib import Path

from client.core.outbox import Outbox
from hub.server import EmbeddedHub

SQLITE_SYNCHRONOUS_FULL = 2


def test_the_outbox_commits_with_synchronous_full_in_wal_mode(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "outbox.sqlite3")
    try:
        # The setting lives on the connection, so only the outbox's own connection can show it.
        conn = outbox._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == SQLITE_SYNCHRONOUS_FULL
    finally:
        outbox.close()


def test_the_hub_data_dir_is_private_to_its_owner(hub: EmbeddedHub) -> None:
    mode = stat.S_IMODE(hub.settings.data_dir.stat().st_mode)

    assert mode == 0o700
