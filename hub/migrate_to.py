"""`vigil-hub migrate-to postgresql://...`: copy a site's SQLite data into an empty PostgreSQL
database, from an online-backup snapshot (the hub may keep running), verified table by table."""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from hub.storage import MIGRATIONS
from hub.storage.db import PostgresConnection, PostgresDatabase, SqliteDatabase

# Tables SQLite keeps for itself; alerts' row of sqlite_sequence is copied into alert_seq.
_SQLITE_INTERNAL = ("sqlite_sequence", "sqlite_stat1", "sqlite_stat4")
# Tables that have a rowid column on PostgreSQL: SQLite's implicit rowid is copied into it.
_ROWID_TABLES = frozenset({"alert_acks", "access_tokens", "refresh_tokens"})
_BATCH = 1000
_CHECKSUM_MODULUS = 2**256


class MigrateRefused(Exception):
    """The copy was not started or not kept; the message says why and what to do."""


@dataclass(frozen=True)
class TableCopy:
    """One table's rows on both sides: how many, and an order-free checksum of their values."""

    name: str
    rows: int
    checksum: str


def migrate_to(sqlite_path: Path, url: str) -> list[TableCopy]:
    """Copy the hub in `sqlite_path` into the empty database at `url`; the verified tables.

    Reads a snapshot taken with SQLite's online backup, so a running hub is neither stopped nor
    seen half-way through a write. The rows are written in one transaction: a failed or
    unverified copy leaves the target with the hub's tables and no data, ready to try again.
    """
    with tempfile.TemporaryDirectory(prefix="vigil-migrate-", dir=sqlite_path.parent) as folder:
        snapshot_path = Path(folder) / "snapshot.sqlite3"
        _snapshot(sqlite_path, snapshot_path)
        snapshot = SqliteDatabase(snapshot_path)
        try:
            # A hub that has not started since its last upgrade has an older schema: bring the
            # copy (never the live file) up to this hub's.
            snapshot.migrate(MIGRATIONS)
            return _copy(snapshot_path, url)
        finally:
            snapshot.close()


def _snapshot(source: Path, target: Path) -> None:
    live = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(target)
        try:
            live.backup(copy)
        finally:
            copy.close()
    finally:
        live.close()
    target.chmod(0o600)


def _copy(snapshot_path: Path, url: str) -> list[TableCopy]:
    target = PostgresDatabase(url)
    try:
        _refuse_non_empty(target)
        target.migrate(MIGRATIONS)
        source = sqlite3.connect(f"{snapshot_path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = _tables_in_order(source)
            with target.write() as conn:
                for table in tables:
                    _copy_table(source, conn, table)
                _copy_seq(source, conn)
                _advance_identities(conn, tables)
                return [_verify(source, conn, table) for table in tables]
        finally:
            source.close()
    finally:
        target.close()


def _refuse_non_empty(target: PostgresDatabase) -> None:
    with target.read() as conn:
        if target.schema_version(conn) == 0:
            tables = conn.execute(
                "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()"
            ).fetchone()[0]
            if tables:
                raise MigrateRefused(
                    f"{target.location} holds {tables} tables of something else; migrate into "
                    "a new, empty database (createdb)."
                )
            return
        for (table,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename <> 'schema_version' ORDER BY tablename"
        ).fetchall():
            if conn.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone() is not None:
                raise MigrateRefused(
                    f"{target.location} already holds hub data (table {table} has rows); "
                    "nothing was copied. Migrate into a new, empty database."
                )


def _tables_in_order(source: sqlite3.Connection) -> list[str]:
    """The hub's tables, each after the tables its foreign keys point at."""
    names = [
        str(row[0])
        for row in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        )
        if str(row[0]) not in _SQLITE_INTERNAL
    ]
    ordered: list[str] = []
    pending = list(names)
    for _ in range(len(names) + 1):
        for name in list(pending):
            parents = {
                str(row[2]) for row in source.execute(f'PRAGMA foreign_key_list("{name}")')
            } - {name}
            if parents <= set(ordered):
                ordered.append(name)
                pending.remove(name)
    if pending:
        raise MigrateRefused(f"The tables {pending} refer to each other in a cycle.")
    return ordered


def _columns(source: sqlite3.Connection, table: str) -> list[str]:
    columns = [str(row[1]) for row in source.execute(f'PRAGMA table_info("{table}")')]
    return ["rowid", *columns] if table in _ROWID_TABLES else columns


def _copy_table(source: sqlite3.Connection, conn: PostgresConnection, table: str) -> None:
    columns = _columns(source, table)
    listed = ", ".join(f'"{column}"' for column in columns)
    marks = ", ".join("?" * len(columns))
    try:
        cursor = source.execute(f'SELECT {listed} FROM "{table}"')
        while rows := cursor.fetchmany(_BATCH):
            conn.executemany(f'INSERT INTO "{table}" ({listed}) VALUES ({marks})', rows)
    except (sqlite3.Error, psycopg.DataError, psycopg.IntegrityError) as exc:
        # Both engines quote the offending value in their messages, and a value may be a
        # secret's hash or a patient's words: name the table and the kind of fault only.
        raise MigrateRefused(
            f"Table {table}: a row could not be copied ({_fault(exc)}); nothing was kept. "
            "The SQLite file holds a value PostgreSQL cannot take, or a damaged one: tell the "
            "hub's maintainers which table it names."
        ) from None


def _fault(exc: Exception) -> str:
    if isinstance(exc, sqlite3.Error):
        return "SQLite could not read it as UTF-8 text" if "decode" in str(exc) else "SQLite"
    return f"PostgreSQL error {exc.sqlstate}" if isinstance(exc, psycopg.Error) else "unknown"


def _copy_seq(source: sqlite3.Connection, conn: PostgresConnection) -> None:
    row = source.execute("SELECT seq FROM sqlite_sequence WHERE name = 'alerts'").fetchone()
    if row is not None:
        conn.execute("INSERT INTO alert_seq (name, seq) VALUES ('alerts', ?)", (int(row[0]),))


def _advance_identities(conn: PostgresConnection, tables: list[str]) -> None:
    """Start each identity column after the highest copied value, as SQLite would go on."""
    for table, column in conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ).fetchall():
        if table not in tables:
            continue
        highest = conn.execute(f'SELECT MAX("{column}") FROM "{table}"').fetchone()[0]
        if highest is not None:
            conn.execute(
                "SELECT setval(pg_get_serial_sequence(?, ?), ?)",
                (f'"{table}"', column, int(highest)),
            )


def _verify(source: sqlite3.Connection, conn: PostgresConnection, table: str) -> TableCopy:
    columns = _columns(source, table)
    listed = ", ".join(f'"{column}"' for column in columns)
    copied = _rows_digest(source.execute(f'SELECT {listed} FROM "{table}"'))
    stored = _rows_digest(conn.execute(f'SELECT {listed} FROM "{table}"'))
    if copied != stored:
        raise MigrateRefused(
            f"Table {table}: {copied[0]} rows in SQLite, {stored[0]} in PostgreSQL, or their "
            "values differ; nothing was kept. Run migrate-to again; if it fails the same way, "
            "tell the hub's maintainers which table it names."
        )
    return TableCopy(name=table, rows=copied[0], checksum=f"{copied[1]:064x}"[:16])


def _rows_digest(rows: Any) -> tuple[int, int]:
    """How many rows, and the sum of their hashes: the same whatever order they come in."""
    count, total = 0, 0
    for row in rows:
        digest = hashlib.sha256(repr(tuple(_comparable(value) for value in row)).encode())
        total = (total + int.from_bytes(digest.digest(), "big")) % _CHECKSUM_MODULUS
        count += 1
    return count, total


def _comparable(value: Any) -> Any:
    # Both engines hand back int, float, str, bytes or None; a whole float and its int are one
    # value (SQLite keeps 1.0 in an INTEGER column as 1).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value
