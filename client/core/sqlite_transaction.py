"""One explicit write transaction on an SQLite connection in autocommit mode.

The cache and the outbox open their files with `isolation_level=None`, so that no write is ever
committed (or left open) by the sqlite3 module's implicit transactions: each write says where it
begins and ends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # An error such as SQLITE_FULL may already have ended the transaction.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
