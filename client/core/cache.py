"""The local cache: verified playbooks and templates with full-text search, alerts, sync state.

One SQLite file (WAL) under the data dir, the only module with SQL for these tables. Everything in
it can be fetched again from the hub, so a corrupt file is moved aside and rebuilt rather than
repaired. One connection serves every thread, behind a lock.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from client.core.answers import HubAnswer
from client.core.content import Playbook, SearchHit, Template, strip_markers
from client.core.content_trust import ContentTrust
from client.core.content_verifier import ContentVerifier
from client.core.durable_sqlite import create_owner_only
from client.core.errors import BadResponse, CacheError, SignatureError
from client.core.events import Event
from client.core.models import Alert
from client.core.opened import OpenedItem
from client.core.receipts import Receipt, ReceiptState
from client.core.sqlite_transaction import write_transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

CONTENT_CURSOR = "content_cursor"
# Items whose stored copy failed verification on read: removed, and fetched again from the hub.
DAMAGED_STATE = "damaged_content"
# Set when damage is found: the next content cursor a sync stores is dropped, so the sync after it
# pages from the start and brings the removed items back, even at the same version.
REFETCH_STATE = "content_refetch"
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


def _add_incident_tables(db: sqlite3.Connection) -> None:
    # hub_answers: the hub's record of each user's answers, whichever computer sent them; `owner`
    # is the user whose session received them, so another user of this profile never sees them.
    db.execute(
        "CREATE TABLE hub_answers (ack_id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
        "alert_id TEXT NOT NULL, action TEXT NOT NULL, note TEXT, acted_at TEXT NOT NULL, "
        "received_at TEXT, device_id TEXT, device_name TEXT, stored_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX idx_hub_answers_owner ON hub_answers (owner, alert_id)")
    # receipts: when this computer got an alert and showed it, per signed-in user, until the hub
    # accepted each time (the *_sent flags), so a restart or SIGKILL never loses one.
    db.execute(
        "CREATE TABLE receipts (alert_id TEXT NOT NULL, author TEXT NOT NULL, "
        "received_at TEXT NOT NULL, shown_at TEXT, received_sent INTEGER NOT NULL DEFAULT 0, "
        "shown_sent INTEGER NOT NULL DEFAULT 0, refused TEXT, PRIMARY KEY (alert_id, author))"
    )
    # opened_content: the playbook and template versions a user had on screen for an alert,
    # sent with that user's answer to it.
    db.execute(
        "CREATE TABLE opened_content (alert_id TEXT NOT NULL, author TEXT NOT NULL, "
        "kind TEXT NOT NULL, item_id TEXT NOT NULL, version INTEGER NOT NULL, "
        "opened_at TEXT NOT NULL, PRIMARY KEY (alert_id, author, kind, item_id, version))"
    )


# Applied in order; the file's PRAGMA user_version is the number already applied.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _create_tables,
    _add_search_and_checklist,
    _add_incident_tables,
]
EXPECTED_TABLES = {
    "playbooks",
    "templates",
    "alerts",
    "sync_state",
    "checklist_progress",
    "search_index",
    "hub_answers",
    "receipts",
    "opened_content",
}
# POST /v1/receipts takes at most this many receipts at once.
MAX_RECEIPT_BATCH = 500


def _index_columns(kind: str, item_id: str, version: int, data: Any) -> tuple[str, ...]:
    """An item's searchable text, per search_index column (markers stripped: text is untrusted)."""
    if kind == "playbook":
        playbook = Playbook.from_data(item_id, version, data)
        columns: tuple[str, ...] = (
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
    return tuple(strip_markers(text) for text in columns)


def _index_item(
    db: sqlite3.Connection, kind: str, item_id: str, version: int, data: Any
) -> tuple[str, ...]:
    """Put one item's searchable text into search_index; return the text, per column.

    The caller removes the item's earlier entry first, if it has one (see _unindex_item).
    """
    columns = _index_columns(kind, item_id, version, data)
    db.execute(
        "INSERT INTO search_index (kind, item_id, title, summary, steps, body, tags) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (kind, item_id, *columns),
    )
    return columns


def _row_digest(row: tuple[Any, ...], index_text: tuple[str, ...] | None) -> int:
    """A fingerprint of a stored row (id, version, data, signature, key_id) and its index text.

    Python's string hash is SipHash with a random key per process: whoever edits the file cannot
    know the key, so cannot make an edited row keep the fingerprint of the one that verified. It
    costs about a microsecond per kilobyte, where Ed25519 and RFC 8785 cost 0.2 ms per item.
    """
    _item_id, version, data_text, signature, key_id = row
    return hash((version, data_text, signature, key_id, index_text))


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


def _stored_alert(data: str, fallback: Alert) -> Alert:
    """A stored alert's JSON parsed; `fallback` if an older Vigil stored something unreadable."""
    try:
        return Alert.from_json(json.loads(data))
    except (ValueError, BadResponse):
        return fallback


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
class AlertChanges:
    """What one store_alerts call did: alerts never seen before, and stored alerts replaced by a
    later state (old, new), each in seq order."""

    new: list[Alert] = field(default_factory=list)
    changed: list[tuple[Alert, Alert]] = field(default_factory=list)
    receipts: int = 0


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


def _make_owner_only(path: Path) -> None:
    """Create the file 0600 if it is new (SQLite gives its WAL and SHM the same mode) and make
    an existing one and its WAL/SHM 0600."""
    if os.name != "posix":
        return
    if not path.exists():
        try:
            create_owner_only(path)
        except OSError as exc:
            raise CacheError(
                f"The local cache {path} could not be opened ({exc.strerror}). Check the disk "
                "and the folder's permissions."
            ) from None
    for suffix in ("", "-wal", "-shm"):
        try:
            os.chmod(f"{path}{suffix}", 0o600)
        except FileNotFoundError:
            continue
        except OSError as exc:
            # Not fatal: the folder is 0700 as well. The next start tries again.
            log.warning("could not make %s%s private: %s", path, suffix, exc.strerror)


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

    def __init__(
        self, conn: sqlite3.Connection, path: Path, quarantined: Path | None, trust: ContentTrust
    ) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()
        self.quarantined = quarantined
        self._trust = trust
        # (kind, id, with index text) -> fingerprint of the stored row (and its search_index text)
        # that last verified against the trusted keys: a read of the same bytes needs no second
        # Ed25519 check, and an edit of the bytes changes the fingerprint (see _row_digest).
        self._verified: dict[tuple[str, str, bool], int] = {}
        self._verified_keys: tuple[str, ...] = ()
        self.damaged: Event[tuple[str, str]] = Event("cache.damaged")

    @classmethod
    def open(cls, path: Path, trust: ContentTrust | None = None) -> Cache:
        """Open (creating or migrating) the cache; a corrupt file is moved aside and rebuilt.

        Content is shown only while it verifies against a key in `trust`; without one, the keys
        content is applied with are trusted for this process only (tests and tools). After a
        rebuild, `quarantined` is where the old file went: tell the user, and the next sync
        fetches everything again because the content cursor is gone.
        """
        trust = trust if trust is not None else ContentTrust.in_memory()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _make_owner_only(path)
        try:
            return cls(_connect(path), path, quarantined=None, trust=trust)
        except (_Corrupt, BadResponse, ValueError) as exc:
            target = _quarantine(path)
            log.warning("cache %s is unusable (%s); moved to %s and rebuilt", path, exc, target)
        try:
            return cls(_connect(path), path, quarantined=target, trust=trust)
        except _Corrupt as exc:
            raise CacheError(f"A fresh cache at {path} could not be created ({exc}).") from exc

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise CacheError(
                    f"The local cache {self.path} could not be read or written ({exc}). "
                    "Restarting Vigil rebuilds it if the file is damaged."
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
        self._trust.learn(verifier)
        stored = deleted = 0
        fresh: dict[tuple[str, str, bool], int] = {}
        with self._writing() as db:
            damaged = self._damaged_set(db)
            for item in checked:
                kind, item_id, version = item["kind"], item["id"], item["version"]
                table = CONTENT_TABLES[kind]
                row = db.execute(f"SELECT version FROM {table} WHERE id = ?", (item_id,)).fetchone()
                self._forget_verified(kind, item_id)
                if damaged.pop((kind, item_id), None) is not None:
                    # The stored copy failed verification: take the hub's even at the same version.
                    row = None
                    _unindex_item(db, kind, item_id)
                if row is not None and row[0] >= version:
                    ignored += 1
                elif item["deleted"]:
                    db.execute(f"DELETE FROM {table} WHERE id = ?", (item_id,))
                    if row is not None:
                        _unindex_item(db, kind, item_id)
                    deleted += 1
                else:
                    stored_row = (
                        item_id,
                        version,
                        json.dumps(item["data"], ensure_ascii=False),
                        item["signature"],
                        item["key_id"],
                    )
                    db.execute(
                        f"INSERT OR REPLACE INTO {table} "
                        "(id, version, data, signature, key_id, title, stored_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (*stored_row, item["data"]["title"], _now()),
                    )
                    if row is not None:
                        _unindex_item(db, kind, item_id)
                    index_text = _index_item(db, kind, item_id, version, item["data"])
                    # These bytes verified a moment ago: reads until they change need no check.
                    fresh[(kind, item_id, False)] = _row_digest(stored_row, None)
                    fresh[(kind, item_id, True)] = _row_digest(stored_row, index_text)
                    stored += 1
            self._save_damaged(db, damaged)
        reads = self._read_verifier()
        if reads is not None and set(verifier.key_ids) <= set(reads.key_ids):
            # Remembered only when the apply verifier trusts no key that reads do not.
            self._verified.update(fresh)
        return ApplyReport(stored, deleted, ignored, tuple(refused))

    def clear_content(self) -> None:
        """Forget every playbook and template and the content cursor (for a full re-download)."""
        with self._writing() as db:
            for table in (*CONTENT_TABLES.values(), "search_index"):
                db.execute(f"DELETE FROM {table}")
            db.execute(
                "DELETE FROM sync_state WHERE key IN (?, ?, ?)",
                (CONTENT_CURSOR, DAMAGED_STATE, REFETCH_STATE),
            )
        self._verified.clear()

    def forget_content_keys(self) -> None:
        """Trust no content key until the next sync pins the hub's current one (IT's pin holds)."""
        self._trust.forget()

    def content_cursor(self) -> int | None:
        """The hub's content cursor after the last applied page; None before the first sync."""
        value = self.get_state(CONTENT_CURSOR)
        return int(value) if value is not None else None

    def set_content_cursor(self, cursor: int) -> None:
        """Remember the hub's content cursor once its page is applied (dropped once after damage
        was found, so the next sync starts from the beginning)."""
        with self._writing() as db:
            if db.execute("DELETE FROM sync_state WHERE key = ?", (REFETCH_STATE,)).rowcount:
                return
            db.execute(
                "INSERT OR REPLACE INTO sync_state (key, value) VALUES (?, ?)",
                (CONTENT_CURSOR, str(cursor)),
            )

    def is_damaged(self, kind: str, item_id: str) -> bool:
        """Whether this item's stored copy failed verification and waits to be fetched again."""
        with self._locked() as db:
            return (kind, item_id) in self._damaged_set(db)

    def _damaged_set(self, db: sqlite3.Connection) -> dict[tuple[str, str], bool]:
        row = db.execute("SELECT value FROM sync_state WHERE key = ?", (DAMAGED_STATE,)).fetchone()
        try:
            pairs = json.loads(row[0]) if row else []
            return {(str(kind), str(item_id)): True for kind, item_id in pairs}
        except (ValueError, TypeError):
            return {}

    def _save_damaged(self, db: sqlite3.Connection, damaged: dict[tuple[str, str], bool]) -> None:
        if damaged:
            db.execute(
                "INSERT OR REPLACE INTO sync_state (key, value) VALUES (?, ?)",
                (DAMAGED_STATE, json.dumps(sorted(damaged), ensure_ascii=False)),
            )
        else:
            db.execute("DELETE FROM sync_state WHERE key = ?", (DAMAGED_STATE,))

    def _mark_damaged(self, kind: str, item_id: str) -> None:
        """Remove an item that failed verification and have the next sync fetch it again.

        Parallel reads of one damaged item remove it once and report it once."""
        with self._writing() as db:
            before = db.total_changes
            db.execute(f"DELETE FROM {CONTENT_TABLES[kind]} WHERE id = ?", (item_id,))
            _unindex_item(db, kind, item_id)
            if db.total_changes == before:
                return
            damaged = self._damaged_set(db)
            damaged[(kind, item_id)] = True
            self._save_damaged(db, damaged)
            db.execute("DELETE FROM sync_state WHERE key = ?", (CONTENT_CURSOR,))
            db.execute(
                "INSERT OR REPLACE INTO sync_state (key, value) VALUES (?, '1')", (REFETCH_STATE,)
            )
        log.warning(
            "cached %s %r failed its signature check; removed and fetched again", kind, item_id
        )
        self._forget_verified(kind, item_id)
        self.damaged.emit((kind, item_id))

    def _forget_verified(self, kind: str, item_id: str) -> None:
        for indexed in (False, True):
            self._verified.pop((kind, item_id, indexed), None)

    def _read_verifier(self) -> ContentVerifier | None:
        verifier = self._trust.read_verifier()
        key_ids = verifier.key_ids if verifier is not None else ()
        if key_ids != self._verified_keys:
            self._verified.clear()
            self._verified_keys = key_ids
        return verifier

    def _verifies(
        self,
        verifier: ContentVerifier,
        kind: str,
        row: tuple[Any, ...],
        index_text: tuple[str, ...] | None = None,
    ) -> bool:
        """Whether a stored row (id, version, data, signature, key_id) still verifies, and, given
        its search_index text, whether that text is still what the verified data yields."""
        item_id, version, data_text, signature, key_id = row
        digest = _row_digest(row, index_text)
        memo = (kind, item_id, index_text is not None)
        if self._verified.get(memo) == digest:
            return True
        try:
            data = json.loads(data_text)
            verifier.verify(
                {
                    "kind": kind,
                    "id": item_id,
                    "version": version,
                    "deleted": False,
                    "data": data,
                    "signature": signature,
                    "key_id": key_id,
                }
            )
            if index_text is not None and index_text != _index_columns(
                kind, item_id, version, data
            ):
                return False
        except (SignatureError, BadResponse, ValueError):
            return False
        self._verified[memo] = digest
        return True

    def playbook(self, id: str) -> Playbook | None:
        """One playbook, or None when it is not in the cache or no longer verifies."""
        return self._one("playbook", id, Playbook.from_data)

    def playbooks(self) -> list[Playbook]:
        """Every cached playbook that still verifies, by title."""
        return self._all("playbook", Playbook.from_data)

    def template(self, id: str) -> Template | None:
        """One template, or None when it is not in the cache or no longer verifies."""
        return self._one("template", id, Template.from_data)

    def templates(self) -> list[Template]:
        """Every cached template that still verifies, by title."""
        return self._all("template", Template.from_data)

    def _one(self, kind: str, item_id: str, parse: Callable[[str, int, Any], T]) -> T | None:
        with self._locked() as db:
            row = db.execute(
                f"SELECT id, version, data, signature, key_id FROM {CONTENT_TABLES[kind]} "
                "WHERE id = ?",
                (item_id,),
            ).fetchone()
        shown = self._shown(kind, [row] if row else [], parse)
        return shown[0] if shown else None

    def _all(self, kind: str, parse: Callable[[str, int, Any], T]) -> list[T]:
        with self._locked() as db:
            rows = db.execute(
                f"SELECT id, version, data, signature, key_id FROM {CONTENT_TABLES[kind]} "
                "ORDER BY title COLLATE NOCASE, id"
            ).fetchall()
        return self._shown(kind, rows, parse)

    def _shown(self, kind: str, rows: list[Any], parse: Callable[[str, int, Any], T]) -> list[T]:
        """The rows that verify, parsed; the others are removed and fetched again."""
        verifier = self._read_verifier()
        if verifier is None:
            # No trusted key yet (the first sync sets one): nothing can be shown as verified.
            return []
        shown: list[T] = []
        for row in rows:
            if self._verifies(verifier, kind, tuple(row)):
                shown.append(parse(row[0], row[1], json.loads(row[2])))
            else:
                self._mark_damaged(kind, row[0])
        return shown

    def search(self, text: str, limit: int = 50) -> list[SearchHit]:
        """Playbooks and templates matching every word of `text`, best first (bm25), each with
        a snippet whose matches are marked (see client.core.content). Any text is safe."""
        query = fts_query(text)
        if query is None:
            return []
        weights = ", ".join(str(w) for w in BM25_WEIGHTS)
        with self._locked() as db:
            ranked = db.execute(
                f"SELECT rowid, kind, item_id, title, "
                f"snippet(search_index, -1, char(2), char(3), '…', {SNIPPET_TOKENS}), "
                f"bm25(search_index, {weights}) AS rank "
                "FROM search_index WHERE search_index MATCH ? ORDER BY rank LIMIT ?",
                (query, max(1, min(limit, 500))),
            ).fetchall()
            # The rest of each hit's index text, for its check below, read for the hits alone:
            # in the ranked query it would be carried through the sort for every match.
            index_rest = {
                row[0]: tuple(row[1:])
                for row in db.execute(
                    "SELECT rowid, summary, steps, body, tags FROM search_index "
                    "WHERE rowid IN (SELECT value FROM json_each(?))",
                    (json.dumps([r[0] for r in ranked]),),
                )
            }
            rows = [(*r[1:], *index_rest.get(r[0], ())) for r in ranked]
            stored = {
                (kind, row[0]): tuple(row)
                for kind, table in CONTENT_TABLES.items()
                for row in db.execute(
                    f"SELECT id, version, data, signature, key_id FROM {table} WHERE id IN "
                    f"(SELECT value FROM json_each(?))",
                    (json.dumps([r[1] for r in rows if r[0] == kind]),),
                )
            }
        verifier = self._read_verifier()
        if verifier is None:
            # No trusted key yet (the first sync sets one): nothing can be shown as verified.
            return []
        hits: list[SearchHit] = []
        for kind, item_id, title, snippet, rank, *rest in rows:
            row = stored.get((kind, item_id))
            # The index is checked too: a hit's title and snippet come from it, not from the
            # signed data, so an edited index must not put forged words on screen.
            if row is not None and self._verifies(verifier, kind, row, (title, *rest)):
                hits.append(SearchHit(kind, item_id, title, snippet, rank))
            elif kind in CONTENT_TABLES:
                self._mark_damaged(kind, item_id)
        return hits

    # Alerts

    def store_alerts(
        self, alerts: Iterable[Alert], *, receipt_author: str | None = None
    ) -> AlertChanges:
        """Store alerts by id: a new id is added, a known one is replaced only by a higher seq (an
        old replay never undoes an update). With `receipt_author`, each alert's receipt for that
        user is queued in the same transaction (the earliest time is kept)."""
        new: list[Alert] = []
        changed: list[tuple[Alert, Alert]] = []
        receipts = 0
        now = _now()
        with self._writing() as db:
            for alert in sorted(alerts, key=lambda a: a.seq):
                data = json.dumps(alert.to_json(), ensure_ascii=False)
                row = db.execute(
                    "SELECT seq, data FROM alerts WHERE id = ?", (alert.id,)
                ).fetchone()
                if row is None:
                    cursor = db.execute(
                        "INSERT OR IGNORE INTO alerts (id, seq, data, received_at) "
                        "VALUES (?, ?, ?, ?)",
                        (alert.id, alert.seq, data, now),
                    )
                    if cursor.rowcount != 1:
                        log.warning("alert %s: seq %d is taken; not stored", alert.id, alert.seq)
                        continue
                    new.append(alert)
                elif alert.seq > row[0]:
                    # OR IGNORE: a seq another alert already holds is a hub error; keep ours.
                    cursor = db.execute(
                        "UPDATE OR IGNORE alerts SET seq = ?, data = ? WHERE id = ? AND seq < ?",
                        (alert.seq, data, alert.id, alert.seq),
                    )
                    if cursor.rowcount == 1:
                        changed.append((_stored_alert(row[1], alert), alert))
                    else:
                        log.warning("alert %s: seq %d is taken; not stored", alert.id, alert.seq)
                if receipt_author:
                    receipts += db.execute(
                        "INSERT OR IGNORE INTO receipts (alert_id, author, received_at) "
                        "VALUES (?, ?, ?)",
                        (alert.id, receipt_author, now),
                    ).rowcount
        return AlertChanges(new, changed, receipts)

    def add_alerts(self, alerts: Iterable[Alert]) -> list[Alert]:
        """Store alerts (see store_alerts); return only those never seen before, in seq order."""
        return self.store_alerts(alerts).new

    def last_alert_seq(self) -> int:
        """The highest alert seq stored; 0 when none."""
        with self._locked() as db:
            return int(db.execute("SELECT coalesce(max(seq), 0) FROM alerts").fetchone()[0])

    def alert_count(self) -> int:
        """How many alerts are stored."""
        with self._locked() as db:
            return int(db.execute("SELECT count(*) FROM alerts").fetchone()[0])

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

    # The hub's record of each user's answers (stream `answers`/`answer`, catch-up `answers`)

    def store_hub_answers(self, answers: Iterable[HubAnswer], *, owner: str) -> list[HubAnswer]:
        """Store answers the hub sent to `owner`'s session; return those not stored before."""
        added: list[HubAnswer] = []
        now = _now()
        with self._writing() as db:
            for answer in answers:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO hub_answers (ack_id, owner, alert_id, action, note, "
                    "acted_at, received_at, device_id, device_name, stored_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        answer.ack_id,
                        owner,
                        answer.alert_id,
                        answer.action,
                        answer.note,
                        answer.acted_at,
                        answer.received_at,
                        answer.device_id,
                        answer.device_name,
                        now,
                    ),
                )
                if cursor.rowcount == 1:
                    added.append(answer)
        return added

    def hub_answers(self, alert_id: str, *, owner: str) -> list[HubAnswer]:
        """`owner`'s answers to one alert as the hub holds them, oldest first."""
        with self._locked() as db:
            rows = db.execute(
                "SELECT ack_id, alert_id, action, note, acted_at, received_at, device_id, "
                "device_name FROM hub_answers WHERE owner = ? AND alert_id = ? "
                "ORDER BY coalesce(received_at, acted_at), acted_at, ack_id",
                (owner, alert_id),
            ).fetchall()
        return [HubAnswer(*row) for row in rows]

    def hub_answered_alert_ids(self, *, owner: str) -> set[str]:
        """The alerts `owner` answered as far as the hub told this computer."""
        with self._locked() as db:
            rows = db.execute(
                "SELECT DISTINCT alert_id FROM hub_answers WHERE owner = ?", (owner,)
            ).fetchall()
        return {row[0] for row in rows}

    # Receipts: when this computer received and showed each alert, per user, until accepted

    def mark_shown(self, alert_id: str, *, author: str) -> bool:
        """Record when `author` first saw the alert on screen; False when it was already shown."""
        now = _now()
        with self._writing() as db:
            # Shown on a computer that has no receipt for it yet (e.g. another user received it
            # here): it was received by this user no later than now.
            db.execute(
                "INSERT OR IGNORE INTO receipts (alert_id, author, received_at) VALUES (?, ?, ?)",
                (alert_id, author, now),
            )
            cursor = db.execute(
                "UPDATE receipts SET shown_at = ? WHERE alert_id = ? AND author = ? "
                "AND shown_at IS NULL",
                (now, alert_id, author),
            )
            return cursor.rowcount == 1

    def unsent_receipts(self, *, author: str, limit: int = MAX_RECEIPT_BATCH) -> list[Receipt]:
        """`author`'s receipts with a time the hub has not accepted yet, oldest first."""
        with self._locked() as db:
            rows = db.execute(
                "SELECT alert_id, received_at, shown_at FROM receipts WHERE author = ? "
                "AND refused IS NULL AND (received_sent = 0 OR "
                "(shown_at IS NOT NULL AND shown_sent = 0)) ORDER BY received_at, alert_id "
                "LIMIT ?",
                (author, max(1, min(limit, MAX_RECEIPT_BATCH))),
            ).fetchall()
        return [Receipt(*row) for row in rows]

    def receipts_accepted(self, receipts: Iterable[Receipt], *, author: str) -> None:
        """Mark what the hub accepted as sent: the received time, and the shown time when the
        accepted receipt carried the one stored now (a later mark_shown is still sent)."""
        with self._writing() as db:
            for receipt in receipts:
                db.execute(
                    "UPDATE receipts SET received_sent = 1, shown_sent = CASE WHEN "
                    "shown_at IS NOT NULL AND shown_at IS ? THEN 1 ELSE shown_sent END "
                    "WHERE alert_id = ? AND author = ?",
                    (receipt.shown_at, receipt.alert_id, author),
                )

    def receipt_refused(self, alert_id: str, reason: str, *, author: str) -> None:
        """The hub refused this receipt for good: keep it with the reason, never send it again."""
        with self._writing() as db:
            db.execute(
                "UPDATE receipts SET refused = ? WHERE alert_id = ? AND author = ?",
                (reason, alert_id, author),
            )

    def receipt(self, alert_id: str, *, author: str) -> ReceiptState | None:
        """One receipt as stored, or None."""
        with self._locked() as db:
            row = db.execute(
                "SELECT alert_id, received_at, shown_at, received_sent, shown_sent, refused "
                "FROM receipts WHERE alert_id = ? AND author = ?",
                (alert_id, author),
            ).fetchone()
        if row is None:
            return None
        return ReceiptState(Receipt(row[0], row[1], row[2]), bool(row[3]), bool(row[4]), row[5])

    # Content versions a user had on screen for an alert (sent with their answer)

    def record_opened(self, alert_id: str, item: OpenedItem, *, author: str) -> None:
        """Remember that `author` opened this playbook or template version for the alert."""
        with self._writing() as db:
            db.execute(
                "INSERT OR IGNORE INTO opened_content "
                "(alert_id, author, kind, item_id, version, opened_at) VALUES (?, ?, ?, ?, ?, ?)",
                (alert_id, author, item.kind, item.id, item.version, _now()),
            )

    def opened_for(self, alert_id: str, *, author: str) -> tuple[OpenedItem, ...]:
        """What `author` opened for the alert, first opened first."""
        # rowid breaks ties: several items opened within one clock tick keep their order.
        with self._locked() as db:
            rows = db.execute(
                "SELECT kind, item_id, version FROM opened_content WHERE alert_id = ? "
                "AND author = ? ORDER BY opened_at, rowid",
                (alert_id, author),
            ).fetchall()
        return tuple(OpenedItem(row[0], row[1], int(row[2])) for row in rows)

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
