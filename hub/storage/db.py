"""SQLite access for the hub: WAL mode, one connection per thread, all-or-nothing transactions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 10_000


class SchemaTooNew(RuntimeError):
    """The database was written by a newer hub than this one."""


class Database:
    """A SQLite file shared by the hub's threads; use `read()` and `write()` for every query."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        # WAL lets readers go on while one writer commits; the setting is stored in the file.
        self._connection().execute("PRAGMA journal_mode=WAL")

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are begun explicitly below, never implicitly.
        # check_same_thread=False only so close() can close every thread's connection.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        self._connections.append(conn)
        return conn

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError("The hub's database is closed.")
                conn = self._connect()
            self._local.conn = conn
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees one consistent snapshot."""
        with self._transaction("BEGIN") as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once: commits on success, rolls back on any error."""
        with self._transaction("BEGIN IMMEDIATE") as conn:
            yield conn

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        if conn.in_transaction:
            raise RuntimeError("Transactions do not nest: finish the open one first.")
        conn.execute(begin)
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            _roll_back(conn)
            raise

    def migrate(self, migrations: Sequence[Sequence[str]]) -> None:
        """Bring the schema to `len(migrations)`: migration N moves user_version from N-1 to N."""
        with self.write() as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > len(migrations):
                raise SchemaTooNew(
                    f"{self.path} was written by a newer hub (schema {version}, this hub knows "
                    f"{len(migrations)}). Upgrade the hub, or point --data at another folder."
                )
            for number, statements in enumerate(migrations[version:], start=version + 1):
                for statement in statements:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")

    def close(self) -> None:
        """Close every connection; call once no thread uses the database any more."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()


def _roll_back(conn: sqlite3.Connection) -> None:
    # SQLite may already have rolled back by itself (e.g. disk full).
    if conn.in_transaction:
        conn.execute("ROLLBACK")
