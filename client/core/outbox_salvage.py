"""Salvaging a damaged acknowledgement store: setting the file aside and reading every ack that
can still be read from it, without trusting its indexes.

The outbox (client/core/outbox.py) decides when a file is damaged and copies what is read here into
a fresh file; this module only reads, and never writes to the damaged file.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# SQLite's primary result codes for a damaged file: SQLITE_CORRUPT, SQLITE_NOTADB.
_CORRUPTION_CODES = frozenset({11, 26})
# A bound on how many rows a salvage looks up one by one (far beyond any real outbox).
MAX_SALVAGE_ROWS = 1_000_000


@dataclass(frozen=True)
class OutboxDamage:
    """A damaged outbox file set aside: where it went, how many acks were copied out, and how
    many could not be read."""

    set_aside: Path
    salvaged: int
    unreadable: int

    def message(self) -> str:
        """The agent-facing account of it."""
        lost = (
            f" {self.unreadable} could not be read: if you acknowledged alerts recently, check "
            "them on the alerts list and acknowledge again where needed."
            if self.unreadable
            else " None was lost."
        )
        return (
            f"Vigil's acknowledgement store was damaged; it was set aside (kept at "
            f"{self.set_aside} for IT) and {self.salvaged} acknowledgement(s) were recovered "
            f"into a new one.{lost}"
        )


def is_corruption(exc: sqlite3.Error) -> bool:
    """Whether SQLite reported the file as damaged (not a disk or permission problem)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _CORRUPTION_CODES


def set_aside(path: Path) -> Path:
    """Move the file and its WAL/SHM aside as `<name>.damaged-<UTC time>`; return the path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    counter = 1
    while Path(f"{target}").exists():
        counter += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{counter}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(f"{target}{suffix}")
    return target


def readable_rows(
    damaged: Path, columns: str, owner_key: str
) -> tuple[list[tuple[Any, ...]], str | None, int]:
    """Every ack row (`columns`, in order) that can be read from a damaged file, the outbox_meta
    value under `owner_key`, and how many rows could not be read. Reads the table alone (no
    index), row by row when a scan fails."""
    rows: list[tuple[Any, ...]] = []
    owner: str | None = None
    unreadable = 0
    try:
        conn = sqlite3.connect(f"file:{damaged}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error:
        return rows, owner, 0
    try:
        present = {row[1] for row in conn.execute("PRAGMA table_info(acks)")}
        wanted = ", ".join(c if c in present else "NULL" for c in ("seq", *columns.split(", ")))
        try:
            found = conn.execute("SELECT value FROM outbox_meta WHERE key = ?", (owner_key,))
            first = found.fetchone()
            owner = first[0] if first else None
        except sqlite3.Error:
            owner = None
        try:
            # ORDER BY the rowid walks the table's own b-tree: a damaged index is not read.
            rows = conn.execute(f"SELECT {wanted} FROM acks NOT INDEXED ORDER BY seq").fetchall()
        except sqlite3.Error:
            rows, unreadable = _rows_one_by_one(conn, wanted)
    except sqlite3.Error as exc:
        log.warning("nothing could be read from the damaged outbox: %s", exc)
    finally:
        conn.close()
    return [row[1:] for row in rows], owner, unreadable


def _rows_one_by_one(conn: sqlite3.Connection, wanted: str) -> tuple[list[tuple[Any, ...]], int]:
    try:
        top = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'acks'").fetchone()
        last = int(top[0]) if top else 0
    except sqlite3.Error:
        last = 0
    rows: list[tuple[Any, ...]] = []
    unreadable = 0
    for seq in range(1, min(last, MAX_SALVAGE_ROWS) + 1):
        try:
            row = conn.execute(
                f"SELECT {wanted} FROM acks NOT INDEXED WHERE seq = ?", (seq,)
            ).fetchone()
        except sqlite3.Error:
            unreadable += 1
            continue
        if row is None:
            unreadable += 1
        else:
            rows.append(row)
    return rows, unreadable
