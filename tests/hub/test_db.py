"""The hub's SQLite layer: schema versions, all-or-nothing writes, use from many threads."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hub.clock import SystemClock
from hub.storage import MIGRATIONS, Store
from hub.storage.db import SchemaTooNew, SqliteDatabase


def test_a_new_database_gets_the_current_schema_in_wal_mode(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "hub.sqlite3", SystemClock())
    store.close()
    with sqlite3.connect(tmp_path / "hub.sqlite3") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopening_applies_only_the_missing_migrations(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "x.sqlite3")
    db.migrate([["CREATE TABLE a (x INTEGER)"]])
    db.migrate([["CREATE TABLE a (x INTEGER)"], ["CREATE TABLE b (y INTEGER)"]])
    with db.read() as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    db.close()
    assert tables == {"a", "b"}


def test_a_database_from_a_newer_hub_is_refused(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "x.sqlite3")
    db.migrate([["CREATE TABLE a (x INTEGER)"], ["CREATE TABLE b (y INTEGER)"]])
    with pytest.raises(SchemaTooNew, match="newer hub"):
        db.migrate([["CREATE TABLE a (x INTEGER)"]])
    db.close()


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "x.sqlite3")
    db.migrate([["CREATE TABLE a (x INTEGER NOT NULL)"]])
    with pytest.raises(sqlite3.IntegrityError), db.write() as conn:
        conn.execute("INSERT INTO a VALUES (1)")
        conn.execute("INSERT INTO a VALUES (NULL)")
    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM a").fetchone()[0] == 0
    db.close()


def test_writes_from_many_threads_are_all_kept(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "x.sqlite3")
    db.migrate([["CREATE TABLE counter (n INTEGER NOT NULL)", "INSERT INTO counter VALUES (0)"]])

    def increment(_: int) -> None:
        with db.write() as conn:
            (n,) = conn.execute("SELECT n FROM counter").fetchone()
            conn.execute("UPDATE counter SET n = ?", (n + 1,))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(increment, range(200)))
    with db.read() as conn:
        assert conn.execute("SELECT n FROM counter").fetchone()[0] == 200
    db.close()
