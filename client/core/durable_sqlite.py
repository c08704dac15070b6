"""The settings that make a small SQLite queue durable: what it says is saved survives a power cut.

The acknowledgement outbox and the survey queue both tell the agent "saved" only after a commit;
these settings make that commit reach the disk.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def make_durable(conn: sqlite3.Connection) -> None:
    """WAL with synchronous=FULL and a small page cache, on a freshly opened connection."""
    conn.execute("PRAGMA journal_mode = WAL")
    # 256 KiB of page cache, not SQLite's 2 MiB: rows are appended and read back through small
    # index lookups, so a larger cache would only hold old rows in memory.
    conn.execute("PRAGMA cache_size = -256")
    # FULL, not NORMAL: in WAL mode NORMAL skips the fsync at commit, so a power cut can roll
    # back a row the UI already showed as saved. One fsync per answer is cheap.
    conn.execute("PRAGMA synchronous = FULL")


def create_owner_only(path: Path) -> None:
    """Create the file 0600 before SQLite opens it, whatever the umask: SQLite gives its WAL and
    SHM files the database file's mode. OSError when it cannot be created."""
    if os.name == "posix" and not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
