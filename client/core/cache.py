"""The local cache: verified playbooks and templates with full-text search, alerts, sync state.

One SQLite file (WAL) under the data dir, the only module with SQL for these tables. Everything in
it can be fetched again from the hub, so a corrupt file is moved aside and rebuilt rather than
repaired. One connection serves every thread, behind a lock.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from client.core.content import Playbook, SearchHit, Template, strip_markers
from client.core.content_verifier import ContentVerifier
from client.core.errors import BadResponse, CacheError, SignatureError
from client.core.models import Alert
from client.core.sqlite_transaction import write_transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

CONTENT_CURSOR = "content_cursor"
SNIPPET_TOKENS = 12
MAX_SEARCH_TOKENS = 16
# bm25 weights per search_index column: kind, item_id, title, summary, steps, body, tags.
BM25_WEIGHTS = (0.0, 0.0, 10.0, 4.0, 2.0, 2.0, 5.0)
CONTENT_TABLES = {"playbook": "playbooks", "template": "templates"}
_SQLITE_CORRUPTION = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


def _create_tables(db: sqlite3.Connection) -> None:
    for table in CONTENT_TABLES.values():
        db.execute(
            f"CREATE TABLE {table} (id TEXT PRIMARY KEY, version INTEGER NOT NULL, "
            "title TEXT NOT NULL, data TEXT NOT NULL, signature TEXT NOT NULL, "
            "key_id TEXT NOT NULL, stored_at TEXT NOT NULL)"
        )
    db.execute(
        "CREATE TABLE alerts (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, data TEXT NOT NULL, "
        "received_at TEXT NOT NULL)"
    )
    db.execute("CREATE UNIQUE INDEX idx_alerts_seq ON alerts (seq)")
    db.execute("CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _add_search_and_checklist(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE checklist_progress (alert_id TEXT, playbook_id TEXT, step INTEGER, "
        "done INTEGER NOT NULL, updated_at TEXT NOT NULL, "
        "PRIMARY KEY (alert_id, playbook_id, step))"
    )
    db.execute(
        "CREATE VIRTUAL TABLE search_index USING fts5("
        "kind UNINDEXED, item_id UNINDEXED, title, summary, steps, body, tags, "
        "tokenize = 'porter unicode61 remove_diacritics 2')"
    )
    for kind, table in CONTENT_TABLES.items():
        for row in db.execute(f"SELECT id, version, data FROM {table}").fetchall():
            _index_item(db, kind, row[0], row[1], json.loads(row[2]))


# Applied in order; the file's PRAGMA user_version is the number already applied.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_create_tables, _add_search_and_checklist]
EXPECTED_TABLES = {
    "playbooks",
    "templates",
    "alerts",
    "sync_state",
    "checklist_progress",
    "search_index",
}


def _index_item(db: sqlite3.Connection, kind: str, item_id: str, version: int, data: Any) -> None:
    """Put one item's searchable text into search_index (markers stripped: text is untrusted).

    The caller removes the item's earlier entry first, if it has one (see _unindex_item).
    """
    if kind == "playbook":
        playbook = Playbook.from_data(item_id, version, data)
        columns = (
            playbook.title,
            playbook.summary,
            "\n".join(playbook.steps),
            "\n".join(
                [playbook.category]
                + [f"{e.role} {e.contact}" for e in playbook.escalation_path]
                + [f"{p.name} {p.role} {p.notes}" for p in playbook.phone_tree]
            ),
            " ".join(playbook.tags),
        )
    else:
        template = Template.from_data(item_id, version, data)
        columns = (
            template.title,
            template.subject or "",
            "",
            template.body,
            " ".join(template.tags),
        )
    db.execute(
        "INSERT INTO search_index (kind, item_id, title, summary, steps, body, tags) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (kind, item_id, *(strip_markers(text) for text in columns)),
    )


def _unindex_item(db: sqlite3.Connection, kind: str, item_id: str) -> None:
    """Remove an item's entry from search_index. kind and item_id are UNINDEXED columns, so this
    scans the whole index: call it only for items that are stored (a first sync of 10,000 items
    that called it for every new one took quadratic time)."""
    db.execute("DELETE FROM search_index WHERE kind = ? AND item_id = ?", (kind, item_id))


def fts_query(text: str) -> str | None:
    """Turn what the user typed into a safe FTS5 query: every word quoted (so `"`, `*`, `AND`,
    `-` are plain text), all words required, the last one a prefix while it is being typed."""
    tokens = re.findall(r"\w+", text)[:MAX_SEARCH_TOKENS]
    if not tokens:
        return None
    quoted = [f'"{token}"' for token in tokens]
    if not text[-1].isspace():
        quoted[-1] += "*"
    return " ".join(quoted)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Corrupt(Exception):
    """The cache file cannot be used as it is; the reason goes in the log."""


@dataclass(frozen=True)
class RefusedItem:
    """A content item that was not stored, and why."""

    kind: str
    id: str
    reason: str


@dataclass(frozen=True)
class ApplyReport:
    """What one apply_content call did."""

    stored: int = 0
    deleted: int = 0
    ignored: int = 0
    refused: tuple[RefusedItem, ...] = field(default_factory=tuple)


def _connect(path: Path) -> sqlite3.Connection:
    """Open, check and migrate the file; raise _Corrupt when it cannot be used as it is."""
    # Autocommit mode: every write below runs in an explicit write_transaction.
    conn = sqlite3.connect(path, check_same_thread=False, timeout=10.0, isolation_level=None)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchall()
        if check != [("ok",)]:
            raise _Corrupt(f"integrity check failed: {check[:3]}")
        conn.execute("PRAGMA journal_mode = WAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise _Corrupt(f"schema version {version} is newer than this Vigil knows")
        for number, migrate in enumerate(MIGRATIONS[version:], start=version + 1):
            with write_transaction(conn):
                migrate(conn)
                # PRAGMA cannot take a bound parameter; `number` is an int from enumerate.
                conn.execute(f"PRAGMA user_version = {number}")
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        missing = EXPECTED_TABLES - tables
        if missing:
            raise _Corrupt(f"tables missing: {', '.join(sorted(missing))}")
        return conn
    except sqlite3.DatabaseError as exc:
        conn.close()
        if exc.sqlite_errorcode & 0xFF in _SQLITE_CORRUPTION:
            raise _Corrupt(str(exc)) from exc
        raise CacheError(
            f"The local cache {path} could not be opened ({exc}). Check the disk and the "
            "folder's permissions."
        ) from exc
    except (_Corrupt, BadResponse, ValueError):
        # BadResponse/ValueError: stored content that no longer parses while rebuilding the index.
        conn.close()
        raise


def _quarantine(path: Path) -> Path:
    """Move the file and its WAL/SHM aside as `<name>.corrupt-<UTC timestamp>`; return the path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():
        counter += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(f"{target}{suffix}")
    return target


class Cache:
    """Verified content, alerts and sync state on disk; safe to call from any thread."""

    def __init__(self, conn: sqlite3.Connection, quarantined: Path | None) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self.quarantined = quarantined

    @classmethod
    def open(cls, path: Path) -> Cache:
        """Open (creating or migrating) the cache; a corrupt file is moved aside and rebuilt.

        After a rebuild, `quarantined` is where the old file went: tell the user, and the next
        sync fetches everything again because the content cursor is gone.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return cls(_connect(path), quarantined=None)
        except (_Corrupt, BadResponse, ValueError) as exc:
            target = _quarantine(path)
            log.warning("cache %s is unusable (%s); moved to %s and rebuilt", path, exc, target)
        try:
            return cls(_connect(path), quarantined=target)
        except _Corrupt as exc:
            raise CacheError(f"A fresh cache at {path} could not be created ({exc}).") from exc

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise CacheError(
                    f"The local cache could not be read or written ({exc}). Restarting Vigil "
                    "rebuilds it if the file is damaged."
                ) from exc

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one write transaction, under the lock."""
        with self._locked() as conn, write_transaction(conn):
            yield conn

    def close(self) -> None:
        """Close the file; the object must not be used afterwards."""
        with self._lock:
            self._conn.close()

    # Content

    def apply_content(self, items: list[Any], verifier: ContentVerifier) -> ApplyReport:
        """Verify every item, then store the newer ones and remove deleted ones in one
        transaction. Refused items (bad signature, malformed) leave the stored copy as it was."""
        checked: list[dict[str, Any]] = []
        refused: list[RefusedItem] = []
        ignored = 0
        for item in items:
            kind = str(item.get("kind")) if isinstance(item, dict) else "?"
            item_id = str(item.get("id")) if isinstance(item, dict) else "?"
            try:
                verifier.verify(item)
                if kind not in CONTENT_TABLES:
                    # A kind from a newer hub: signed, but this client has nowhere to show it.
                    ignored += 1
                    continue
                if not item["deleted"]:
                    parse = Playbook.from_data if kind == "playbook" else Template.from_data
                    parse(item_id, item["version"], item["data"])
            except (SignatureError, BadResponse) as exc:
                log.warning("refused content item %s %r: %s", kind, item_id, exc.message)
                refused.append(RefusedItem(kind, item_id, exc.message))
                continue
            checked.append(item)
        stored = deleted = 0
        with self._writing() as db:
            for item in checked:
                kind, item_id, version = item["kind"], item["id"], item["version"]
                table = CONTENT_TABLES[kind]
                row = db.execute(f"SELECT version FROM {table} WHERE id = ?", (item_id,)).fetchone()
                if row is not None and row[0] >= version:
                    ignored += 1
                elif item["deleted"]:
                    db.execute(f"DELETE FROM {table} WHERE id = ?", (item_id,))
                    if row is not None:
                        _unindex_item(db, kind, item_id)
                    deleted += 1
                else:
                    db.execute(
                        f"INSERT OR REPLACE INTO {table} "
                        "(id, version, title, data, signature, key_id, stored_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            item_id,
                            version,
                            item["data"]["title"],
                            json.dumps(item["data"], ensure_ascii=False),
                            item["signature"],
                            item["key_id"],
                            _now(),
                        ),
                    )
                    if row is not None:
                        _unindex_item(db, kind, item_id)
                    _index_item(db, kind, item_id, version, item["data"])
                    stored += 1
        return ApplyReport(stored, deleted, ignored, tuple(refused))

    def clear_content(self) -> None:
        """Forget every playbook and template and the content cursor (for a full re-download)."""
        with self._writing() as db:
            for table in (*CONTENT_TABLES.values(), "search_index"):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM sync_state WHERE key = ?", (CONTENT_CURSOR,))

    def content_cursor(self) -> int | None:
        """The hub's content cursor after the last applied page; None before the first sync."""
        value = self.get_state(CONTENT_CURSOR)
        return int(value) if value is not None else None

    def set_content_cursor(self, cursor: int) -> None:
        """Remember the hub's content cursor once its page is applied."""
        self.set_state(CONTENT_CURSOR, str(cursor))

    def playbook(self, id: str) -> Playbook | None:
        """One playbook, or None when it is not in the cache."""
        return self._one("playbooks", id, Playbook.from_data)

    def playbooks(self) -> list[Playbook]:
        """Every cached playbook, by title."""
        return self._all("playbooks", Playbook.from_data)

    def template(self, id: str) -> Template | None:
        """One template, or None when it is not in the cache."""
        return self._one("templates", id, Template.from_data)

    def templates(self) -> list[Template]:
        """Every cached template, by title."""
        return self._all("templates", Template.from_data)

    def _one(self, table: str, item_id: str, parse: Callable[[str, int, Any], T]) -> T | None:
        with self._locked() as db:
            row = db.execute(
                f"SELECT id, version, data FROM {table} WHERE id = ?", (item_id,)
            ).fetchone()
        return parse(row[0], row[1], json.loads(row[2])) if row else None

    def _all(self, table: str, parse: Callable[[str, int, Any], T]) -> list[T]:
        with self._locked() as db:
            rows = db.execute(
                f"SELECT id, version, data FROM {table} ORDER BY title COLLATE NOCASE, id"
            ).fetchall()
        return [parse(row[0], row[1], json.loads(row[2])) for row in rows]

    def search(self, text: str, limit: int = 50) -> list[SearchHit]:
        """Playbooks and templates matching every word of `text`, best first (bm25), each with
        a snippet whose matches are marked (see client.core.content). Any text is safe."""
        query = fts_query(text)
        if query is None:
            return []
        weights = ", ".join(str(w) for w in BM25_WEIGHTS)
        with self._locked() as db:
            rows = db.execute(
                f"SELECT kind, item_id, title, "
                f"snippet(search_index, -1, char(2), char(3), '…', {SNIPPET_TOKENS}), "
                f"bm25(search_index, {weights}) AS rank "
                "FROM search_index WHERE search_index MATCH ? ORDER BY rank LIMIT ?",
                (query, max(1, min(limit, 500))),
            ).fetchall()
        return [
            SearchHit(kind, item_id, title, snippet, rank)
            for kind, item_id, title, snippet, rank in rows
        ]

    # Alerts

    def add_alerts(self, alerts: Iterable[Alert]) -> list[Alert]:
        """Store alerts; return only those never seen before, in seq order."""
        added: list[Alert] = []
        with self._writing() as db:
            for alert in sorted(alerts, key=lambda a: a.seq):
                cursor = db.execute(
                    "INSERT OR IGNORE INTO alerts (id, seq, data, received_at) VALUES (?, ?, ?, ?)",
                    (alert.id, alert.seq, json.dumps(alert.to_json(), ensure_ascii=False), _now()),
                )
                if cursor.rowcount == 1:
                    added.append(alert)
        return added

    def last_alert_seq(self) -> int:
        """The highest alert seq stored; 0 when none."""
        with self._locked() as db:
            return int(db.execute("SELECT coalesce(max(seq), 0) FROM alerts").fetchone()[0])

    def alerts(self, limit: int = 200) -> list[Alert]:
        """The newest alerts first."""
        with self._locked() as db:
            rows = db.execute(
                "SELECT data FROM alerts ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        return [Alert.from_json(json.loads(row[0])) for row in rows]

    def alert(self, id: str) -> Alert | None:
        """One alert, or None when it is not in the cache."""
        with self._locked() as db:
            row = db.execute("SELECT data FROM alerts WHERE id = ?", (id,)).fetchone()
        return Alert.from_json(json.loads(row[0])) if row else None

    # Checklist progress (local only; alert_id "" is progress outside any alert)

    def checklist(self, alert_id: str, playbook_id: str) -> set[int]:
        """The indexes of the playbook's steps ticked for this alert."""
        with self._locked() as db:
            rows = db.execute(
                "SELECT step FROM checklist_progress "
                "WHERE alert_id = ? AND playbook_id = ? AND done = 1",
                (alert_id, playbook_id),
            ).fetchall()
        return {int(row[0]) for row in rows}

    def set_checklist_step(self, alert_id: str, playbook_id: str, index: int, done: bool) -> None:
        """Tick or untick one step for this alert (committed at once)."""
        with self._writing() as db:
            db.execute(
                "INSERT OR REPLACE INTO checklist_progress "
                "(alert_id, playbook_id, step, done, updated_at) VALUES (?, ?, ?, ?, ?)",
                (alert_id, playbook_id, index, int(done), _now()),
            )

    # Sync state

    def get_state(self, key: str) -> str | None:
        """A value the sync code remembered, or None."""
        with self._locked() as db:
            row = db.execute("SELECT value FROM sync_state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        """Remember a value for the sync code (committed at once)."""
        with self._writing() as db:
            db.execute("INSERT OR REPLACE INTO sync_state (key, value) VALUES (?, ?)", (key, value))

    def delete_state(self, key: str) -> None:
        """Forget a remembered value (no error when there is none)."""
        with self._writing() as db:
            db.execute("DELETE FROM sync_state WHERE key = ?", (key,))
