"""The acknowledgement outbox: every ack is on disk before the UI may say "recorded", and is sent
to the hub until the hub answers for it.

The outbox has its own SQLite file, apart from the cache, so rebuilding a damaged cache can never
lose an acknowledgement. An ack's `ack_id` (a UUID made once, at record time) is the hub's
idempotency key: sending the same ack again after a crash or a lost answer is harmless.

Each ack records its author, the user signed in when it was made, and is only ever sent with
that user's session: another user signing in on the same computer leaves it waiting for its
author. Acks from before authors were recorded (author NULL) belong to the profile's last
signed-in user at the upgrade (`legacy_owner`) and are sent only once that user signs in.

A damaged file (SQLite reports corruption, at open or on any later call) is set aside as
`outbox.sqlite3.damaged-<UTC time>`, every ack that can still be read is copied into a fresh file
(pending ones are sent again; the hub ignores an ack_id it already has), and `damage` says how
many could not be read.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from client.core.durable_sqlite import make_durable
from client.core.errors import AuthRequired, BadResponse, HubError, OutboxError
from client.core.events import Event
from client.core.opened import MAX_OPENED_PER_ACK, OpenedItem
from client.core.outbox_salvage import OutboxDamage, is_corruption, readable_rows, set_aside
from client.core.sqlite_transaction import write_transaction

if TYPE_CHECKING:
    from client.core.hub_client import HubClient

log = logging.getLogger(__name__)

T = TypeVar("T")

ACTIONS = ("acknowledged", "escalated", "unable")
MAX_NOTE_CHARS = 2000
MAX_BATCH = 500

_V1 = """
    CREATE TABLE acks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ack_id TEXT NOT NULL UNIQUE,
        alert_id TEXT NOT NULL,
        action TEXT NOT NULL,
        note TEXT,
        acted_at TEXT NOT NULL,
        state TEXT NOT NULL,
        error TEXT,
        detail TEXT,
        synced_at TEXT
    );
    CREATE INDEX acks_state ON acks (state, seq);
    CREATE INDEX acks_alert ON acks (alert_id, seq);
"""
# Version 2: each ack's author (NULL for acks recorded before), and the profile's last signed-in
# user at the upgrade, who alone may send those older acks.
_V2 = """
    ALTER TABLE acks ADD COLUMN author TEXT;
    CREATE TABLE outbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Version 3: the content versions the author had opened for the alert (JSON list), fixed when the
# ack is recorded so every resend carries the same payload.
_V3 = """
    ALTER TABLE acks ADD COLUMN opened TEXT;
"""
_SCHEMA = [_V1, _V2, _V3]
# What salvage copies from a damaged file of any version (it leaves `opened` out: a salvaged ack
# is sent without it).
_COLUMNS = "ack_id, alert_id, action, note, acted_at, state, error, detail, author"
_READ_COLUMNS = f"{_COLUMNS}, opened"
_LEGACY_OWNER = "legacy_owner"
# SQLite's primary result codes for a disk that refuses writes: SQLITE_READONLY, SQLITE_IOERR,
# SQLITE_CANTOPEN, SQLITE_FULL. Only these may be blamed on the disk.
_DISK_CODES = frozenset({8, 10, 13, 14})


OpenedLookup = Callable[[str, str], Sequence[OpenedItem]]
"""What an author opened for an alert: (alert_id, author) -> the items, first opened first."""


class AckState(StrEnum):
    """Where an acknowledgement is: waiting to be sent, accepted by the hub, or refused by it."""

    PENDING = "pending"
    SYNCED = "synced"
    REJECTED = "rejected"
    # Rejected, then cleared from the list by the agent; kept in the alert's history.
    DISMISSED = "dismissed"


@dataclass(frozen=True)
class AckRecord:
    """One acknowledgement as recorded on this computer."""

    ack_id: str
    alert_id: str
    action: str
    note: str | None
    acted_at: str
    state: AckState
    error: str | None = None
    detail: str | None = None
    author: str | None = None
    opened: tuple[OpenedItem, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The item as POST /v1/acks takes it (`opened` only when something was opened, so a
        hub from before it takes the ack as it always did)."""
        body: dict[str, Any] = {
            "ack_id": self.ack_id,
            "alert_id": self.alert_id,
            "action": self.action,
            "acted_at": self.acted_at,
        }
        if self.note is not None:
            body["note"] = self.note
        if self.opened:
            body["opened"] = [item.to_json() for item in self.opened]
        return body


@dataclass(frozen=True)
class OutboxCounts:
    """How many acknowledgements are in each state; `pending_by_author` splits the pending ones
    by author (None: recorded before authors were, waiting for `legacy_owner`)."""

    pending: int
    synced: int
    rejected: int
    pending_by_author: tuple[tuple[str | None, int], ...] = ()
    legacy_owner: str | None = None

    def pending_for(self, username: str | None) -> int:
        """Pending acks that `username` (the signed-in user, or None) will send."""
        return sum(
            n
            for author, n in self.pending_by_author
            if username is not None
            and (author == username or (author is None and username == self.legacy_owner))
        )

    def held_for_others(self, username: str | None) -> tuple[tuple[str, int], ...]:
        """Pending acks by other users, each waiting for its author to sign in."""
        return tuple(
            (author, n)
            for author, n in self.pending_by_author
            if author is not None and author != username
        )

    def unattributed(self, username: str | None) -> int:
        """Pending acks from before authors were recorded that `username` may not send."""
        if username is not None and username == self.legacy_owner:
            return 0
        return sum(n for author, n in self.pending_by_author if author is None)


@dataclass(frozen=True)
class AckResult:
    """The hub's answer for one acknowledgement."""

    ack_id: str
    status: str  # accepted, duplicate or rejected
    error: str | None = None
    detail: str | None = None


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _record(row: tuple[Any, ...]) -> AckRecord:
    ack_id, alert_id, action, note, acted_at, state, error, detail, author, opened = row
    return AckRecord(
        ack_id,
        alert_id,
        action,
        note,
        acted_at,
        AckState(state),
        error,
        detail,
        author,
        _opened_items(opened),
    )


def _opened_items(text: str | None) -> tuple[OpenedItem, ...]:
    """The stored `opened` list; an unreadable one is dropped (the ack itself must still go)."""
    if not text:
        return ()
    try:
        items = json.loads(text)
        return tuple(OpenedItem(str(i["kind"]), str(i["id"]), i["version"]) for i in items)
    except (ValueError, TypeError, KeyError):
        log.warning("an acknowledgement's opened content is unreadable; sent without it")
        return ()


def _is_disk_refusal(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _DISK_CODES


class _Damaged(Exception):
    """The file is damaged (failed its check or SQLite reported corruption)."""


def _connect(path: Path, legacy_owner: str | None) -> sqlite3.Connection:
    """Open, check and migrate the file; _Damaged when it is corrupt, OutboxError otherwise."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: every transaction below is explicit (write_transaction).
        conn = sqlite3.connect(path, check_same_thread=False, timeout=10.0, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise OutboxError(
            f"The acknowledgement store {path} cannot be opened ({exc}). Acknowledgements "
            "cannot be recorded until the data folder is writable."
        ) from exc
    try:
        # quick_check reads every page of every table and index (not the index-to-row match,
        # which integrity_check adds at many times the cost): enough to find a damaged page.
        check = conn.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            raise _Damaged(f"quick_check: {str(check[:3])[:300]}")
        make_durable(conn)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(_SCHEMA):
            raise OutboxError(
                f"The acknowledgement store {path} was written by a newer Vigil; update "
                "Vigil rather than lose the acknowledgements in it."
            )
        for number, script in enumerate(_SCHEMA[version:], start=version + 1):
            _migrate(conn, number, script, legacy_owner)
    except sqlite3.Error as exc:
        conn.close()
        if is_corruption(exc):
            raise _Damaged(str(exc)) from exc
        raise OutboxError(
            f"The acknowledgement store {path} cannot be used ({exc}). Check the disk and "
            "the data folder's permissions; do not delete the file, it may hold "
            "acknowledgements not yet sent."
        ) from exc
    except (OutboxError, _Damaged):
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, number: int, script: str, legacy_owner: str | None) -> None:
    with write_transaction(conn):
        had_acks = number == 2 and conn.execute("SELECT 1 FROM acks LIMIT 1").fetchone()
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
        if had_acks and legacy_owner:
            conn.execute(
                "INSERT INTO outbox_meta (key, value) VALUES (?, ?)",
                (_LEGACY_OWNER, legacy_owner),
            )
        # PRAGMA cannot take a bound parameter; `number` is an int from enumerate.
        conn.execute(f"PRAGMA user_version = {number}")


def _open_salvaging(
    path: Path, legacy_owner: str | None, reason: str
) -> tuple[sqlite3.Connection, OutboxDamage]:
    """Set the damaged file aside, start a fresh one and copy every readable ack into it."""
    target = set_aside(path)
    log.warning("outbox %s is damaged (%s); set aside as %s", path, reason, target)
    rows, owner, unreadable = readable_rows(target, _COLUMNS, _LEGACY_OWNER)
    try:
        conn = _connect(path, None)
    except _Damaged as exc:
        raise OutboxError(
            f"A fresh acknowledgement store at {path} could not be created ({exc}); the damaged "
            f"one is kept at {target}."
        ) from exc
    salvaged = 0
    with write_transaction(conn):
        if owner or legacy_owner:
            conn.execute(
                "INSERT OR REPLACE INTO outbox_meta (key, value) VALUES (?, ?)",
                (_LEGACY_OWNER, owner or legacy_owner),
            )
        for row in rows:
            try:
                AckState(row[5])
            except ValueError:
                unreadable += 1
                continue
            inserted = conn.execute(
                f"INSERT OR IGNORE INTO acks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            salvaged += inserted.rowcount
    log.warning("outbox salvage: %d acks recovered, %d unreadable", salvaged, unreadable)
    return conn, OutboxDamage(target, salvaged, unreadable)


class Outbox:
    """Durable queue of acknowledgements; safe to call from any thread.

    Events: `changed` (new counts after a record or applied results), `recorded` (each new ack),
    `acks_changed` (the acks, as they are now, that were recorded or answered by the hub), and
    `damaged` (an OutboxDamage when the file was found damaged while running). Listeners learn
    what changed from the events alone: none has to read the outbox again to find out.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        legacy_owner: str | None = None,
        damage: OutboxDamage | None = None,
        opened_lookup: OpenedLookup | None = None,
    ) -> None:
        self._conn = conn
        self._path = path
        self._legacy_owner = legacy_owner
        self._opened_lookup = opened_lookup
        self._lock = threading.RLock()
        self.damage = damage
        self.changed: Event[OutboxCounts] = Event("outbox.changed")
        self.recorded: Event[AckRecord] = Event("outbox.recorded")
        self.acks_changed: Event[tuple[AckRecord, ...]] = Event("outbox.acks_changed")
        self.damaged: Event[OutboxDamage] = Event("outbox.damaged")

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        legacy_owner: str | None = None,
        opened_lookup: OpenedLookup | None = None,
    ) -> Outbox:
        """Open or create the outbox file; a damaged one is set aside and its acks salvaged.

        `legacy_owner` is the profile's last signed-in user, who inherits acks recorded before
        authors were (only when this open upgrades the file). `opened_lookup(alert_id, author)`
        says what the author opened for the alert, recorded with each new ack. OutboxError when
        the file cannot be opened for writing.
        """
        try:
            conn = _connect(path, legacy_owner)
            damage = None
        except _Damaged as exc:
            conn, damage = _open_salvaging(path, legacy_owner, str(exc))
        owner = conn.execute(
            "SELECT value FROM outbox_meta WHERE key = ?", (_LEGACY_OWNER,)
        ).fetchone()
        return cls(
            conn,
            path,
            legacy_owner=owner[0] if owner else None,
            damage=damage,
            opened_lookup=opened_lookup,
        )

    @property
    def path(self) -> Path:
        """The outbox file."""
        return self._path

    @property
    def legacy_owner(self) -> str | None:
        """Who may send the acks recorded before authors were (None: nobody, they are held)."""
        return self._legacy_owner

    def close(self) -> None:
        """Close the file; the object must not be used afterwards."""
        with self._lock:
            self._conn.close()

    def _use(self, work: Callable[[sqlite3.Connection], T], failure: str) -> T:
        """Run `work` on the connection; a damaged file is salvaged and `work` runs once more.

        `failure` starts the OutboxError raised for any other SQLite error.
        """
        for attempt in range(2):
            try:
                with self._lock:
                    return work(self._conn)
            except sqlite3.Error as exc:
                if is_corruption(exc) and attempt == 0:
                    self._salvage(str(exc))
                    continue
                raise self._error(failure, exc) from exc
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _error(self, failure: str, exc: sqlite3.Error) -> OutboxError:
        if is_corruption(exc):
            return OutboxError(
                f"{failure}: the acknowledgement store {self._path} is damaged ({exc}). Restart "
                "Vigil to recover what can be read; see the operations guide."
            )
        if _is_disk_refusal(exc):
            return OutboxError(
                f"{failure} ({exc}): the disk may be full or read-only ({self._path.parent}). "
                "Free space or fix the folder, then try again."
            )
        return OutboxError(f"{failure} ({exc}); the acknowledgement store is {self._path}.")

    def _salvage(self, reason: str) -> None:
        with self._lock:
            self._conn.close()
            self._conn, damage = _open_salvaging(self._path, self._legacy_owner, reason)
            self.damage = damage
        self.damaged.emit(damage)

    def record(
        self,
        alert_id: str,
        action: str,
        note: str | None = None,
        *,
        author: str,
        opened: Sequence[OpenedItem] | None = None,
    ) -> AckRecord:
        """Write a new acknowledgement by `author` (the signed-in user) to disk and commit it
        before returning. `opened` (default: what the opened lookup says) is the content the
        author had on screen for the alert, sent with the ack.

        Only after this returns may the UI say the acknowledgement is recorded. Raises
        OutboxError (nothing recorded) for a bad action or note, without an author, or when the
        disk refuses.
        """
        if not isinstance(author, str) or not author.strip():
            raise OutboxError(
                "An acknowledgement is recorded under the signed-in user: sign in first. "
                "Nothing was recorded."
            )
        if not isinstance(alert_id, str) or not alert_id:
            raise OutboxError("An acknowledgement needs the alert's id; nothing was recorded.")
        if action not in ACTIONS:
            raise OutboxError(
                f"Unknown action {action!r} (use one of {', '.join(ACTIONS)}); "
                "nothing was recorded."
            )
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise OutboxError(
                f"The note is {len(note)} characters; the hub takes at most {MAX_NOTE_CHARS}. "
                "Shorten it; nothing was recorded."
            )
        if opened is None:
            opened = self._opened_lookup(alert_id, author) if self._opened_lookup else ()
        ack = AckRecord(
            str(uuid.uuid4()),
            alert_id,
            action,
            note,
            _utc_now(),
            AckState.PENDING,
            author=author,
            opened=tuple(opened)[:MAX_OPENED_PER_ACK],
        )
        opened_text = (
            json.dumps([item.to_json() for item in ack.opened], ensure_ascii=False)
            if ack.opened
            else None
        )

        def insert(conn: sqlite3.Connection) -> None:
            with write_transaction(conn):
                conn.execute(
                    f"INSERT INTO acks ({_READ_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
                    (
                        ack.ack_id,
                        ack.alert_id,
                        ack.action,
                        ack.note,
                        ack.acted_at,
                        ack.state,
                        ack.author,
                        opened_text,
                    ),
                )

        self._use(insert, "The acknowledgement could NOT be saved on this computer")
        self.recorded.emit(ack)
        self.acks_changed.emit((ack,))
        self._emit_changed()
        return ack

    def _select(self, where: str, params: tuple[Any, ...]) -> list[AckRecord]:
        rows = self._use(
            lambda conn: conn.execute(
                f"SELECT {_READ_COLUMNS} FROM acks WHERE {where}", params
            ).fetchall(),
            "The acknowledgement store could not be read",
        )
        return [_record(row) for row in rows]

    def pending(self, limit: int = MAX_BATCH, *, author: str | None = None) -> list[AckRecord]:
        """The oldest acknowledgements not yet answered by the hub, in recording order; with
        `author`, only those that user may send (theirs, and legacy ones when they own them)."""
        if author is None:
            return self._select("state = 'pending' ORDER BY seq LIMIT ?", (limit,))
        if author == self._legacy_owner:
            return self._select(
                "state = 'pending' AND (author = ? OR author IS NULL) ORDER BY seq LIMIT ?",
                (author, limit),
            )
        return self._select(
            "state = 'pending' AND author = ? ORDER BY seq LIMIT ?", (author, limit)
        )

    def rejected(self) -> list[AckRecord]:
        """Acknowledgements the hub refused, with its reason; kept to be shown, never dropped."""
        return self._select("state = 'rejected' ORDER BY seq", ())

    def dismiss_rejected(self) -> int:
        """Clear every rejected acknowledgement from the rejected list (each stays in its alert's
        history as dismissed); returns how many."""

        def dismiss(conn: sqlite3.Connection) -> tuple[int, list[str]]:
            with write_transaction(conn):
                ids = [
                    row[0]
                    for row in conn.execute("SELECT ack_id FROM acks WHERE state = 'rejected'")
                ]
                conn.execute("UPDATE acks SET state = 'dismissed' WHERE state = 'rejected'")
            return len(ids), ids

        count, ids = self._use(dismiss, "The rejected acknowledgements could not be cleared")
        if ids:
            self._emit_acks_changed(ids)
        self._emit_changed()
        return count

    def get(self, ack_id: str) -> AckRecord | None:
        """One acknowledgement by its id."""
        found = self._select("ack_id = ?", (ack_id,))
        return found[0] if found else None

    def for_alert(self, alert_id: str) -> list[AckRecord]:
        """Every acknowledgement recorded for one alert, oldest first."""
        return self._select("alert_id = ? ORDER BY seq", (alert_id,))

    def counts(self) -> OutboxCounts:
        """How many acknowledgements are pending (by author), synced and rejected."""

        def count(conn: sqlite3.Connection) -> tuple[dict[str, int], list[Any]]:
            states = dict(conn.execute("SELECT state, count(*) FROM acks GROUP BY state"))
            by_author = conn.execute(
                "SELECT author, count(*) FROM acks WHERE state = 'pending' GROUP BY author "
                "ORDER BY author"
            ).fetchall()
            return states, by_author

        states, by_author = self._use(count, "The acknowledgement store could not be read")
        return OutboxCounts(
            pending=states.get(AckState.PENDING, 0),
            synced=states.get(AckState.SYNCED, 0),
            rejected=states.get(AckState.REJECTED, 0),
            pending_by_author=tuple((author, n) for author, n in by_author),
            legacy_owner=self._legacy_owner,
        )

    def apply_results(self, results: Iterable[AckResult]) -> None:
        """Mark pending acks per the hub's answer: accepted or duplicate → synced, rejected →
        rejected with the reason. Acks that are no longer pending are left as they are."""
        now = _utc_now()
        answered = list(results)

        def apply(conn: sqlite3.Connection) -> None:
            with write_transaction(conn):
                for result in answered:
                    if result.status in ("accepted", "duplicate"):
                        conn.execute(
                            "UPDATE acks SET state = 'synced', synced_at = ? "
                            "WHERE ack_id = ? AND state = 'pending'",
                            (now, result.ack_id),
                        )
                    elif result.status == "rejected":
                        conn.execute(
                            "UPDATE acks SET state = 'rejected', error = ?, detail = ?, "
                            "synced_at = ? WHERE ack_id = ? AND state = 'pending'",
                            (result.error or "rejected", result.detail, now, result.ack_id),
                        )

        self._use(
            apply,
            "The hub's answers could not be saved; the acknowledgements stay queued and are "
            "sent again (the hub ignores repeats)",
        )
        if answered:
            self._emit_acks_changed([result.ack_id for result in answered])
        self._emit_changed()

    def drop_opened(self, ack_ids: list[str]) -> None:
        """Forget what these pending acks opened (the hub refused the list, not the answer)."""
        marks = ", ".join("?" for _ in ack_ids)

        def drop(conn: sqlite3.Connection) -> None:
            with write_transaction(conn):
                conn.execute(
                    "UPDATE acks SET opened = NULL "
                    f"WHERE state = 'pending' AND ack_id IN ({marks})",
                    tuple(ack_ids),
                )

        self._use(drop, "The acknowledgements' opened content could not be updated")

    def _emit_acks_changed(self, ack_ids: list[str]) -> None:
        marks = ", ".join("?" for _ in ack_ids)
        try:
            records = self._select(f"ack_id IN ({marks})", tuple(ack_ids))
        except OutboxError as exc:
            # The answers are committed; listeners catch up with the next change.
            log.warning("changed acknowledgements unavailable: %s", exc.message)
            return
        self.acks_changed.emit(tuple(records))

    def _emit_changed(self) -> None:
        try:
            counts = self.counts()
        except OutboxError as exc:
            # The write itself is committed; a failed re-count must not make it look unrecorded.
            log.warning("outbox counts unavailable: %s", exc.message)
            return
        self.changed.emit(counts)


@dataclass(frozen=True)
class FlushReport:
    """What one flush did. `error` is why it stopped early (the rest stays pending)."""

    sent: int
    synced: int
    rejected: int
    pending: int
    error: HubError | None = None

    @property
    def retry(self) -> bool:
        """Whether to try again later on its own (not while the hub wants a sign-in)."""
        return self.error is not None and not isinstance(self.error, AuthRequired)


def _parse_results(body: Any, batch: list[AckRecord]) -> list[AckResult]:
    """The hub's per-item answers for acks of this batch; BadResponse when the body is unusable."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise BadResponse("The hub's answer to the acknowledgements has no list of results.")
    in_batch = {ack.ack_id for ack in batch}
    results: dict[str, AckResult] = {}
    for raw in body["results"]:
        if not isinstance(raw, dict):
            continue
        ack_id, status = raw.get("ack_id"), raw.get("status")
        error, detail = raw.get("error"), raw.get("detail")
        if (
            ack_id in in_batch
            and status in ("accepted", "duplicate", "rejected")
            and isinstance(error, str | None)
            and isinstance(detail, str | None)
        ):
            results[ack_id] = AckResult(ack_id, status, error, detail)
    return list(results.values())


class OutboxFlusher:
    """Sends pending acknowledgements to the hub in batches and records each answer.

    It does not wait or retry by itself: the caller (SyncEngine) schedules the next flush.
    """

    def __init__(
        self, outbox: Outbox, hub: HubClient, *, author: str, batch_size: int = MAX_BATCH
    ) -> None:
        self._outbox = outbox
        self._hub = hub
        self._author = author
        self._batch_size = max(1, min(batch_size, MAX_BATCH))

    def flush(self) -> FlushReport:
        """Send `author`'s pending acks (oldest first) until none is left or the hub fails.

        The hub must hold `author`'s session (the caller makes sure). Hub failures end up in
        the report, not raised; an ack is marked synced only with a per-item answer from the
        hub for it. `pending` in the report counts the author's acks still waiting.
        """
        sent = synced = rejected = 0
        error: HubError | None = None
        # Bounded: enough batches for what is pending now, plus one for acks recorded meanwhile.
        waiting = self._outbox.counts().pending_for(self._author)
        for _ in range(waiting // self._batch_size + 2):
            batch = self._outbox.pending(self._batch_size, author=self._author)
            if not batch:
                break
            try:
                body = self._hub.post_json("/v1/acks", {"acks": [ack.to_json() for ack in batch]})
                results = _parse_results(body, batch)
            except HubError as exc:
                error = exc
                break
            sent += len(batch)
            answered = len(results)
            results = self._resend_without_opened(results, batch)
            self._outbox.apply_results(results)
            synced += sum(1 for r in results if r.status != "rejected")
            rejected += sum(1 for r in results if r.status == "rejected")
            for result in results:
                if result.status == "rejected":
                    log.warning("hub rejected ack %s: %s", result.ack_id, result.error)
            if answered < len(batch):
                error = BadResponse(
                    f"The hub answered for {answered} of {len(batch)} acknowledgements; "
                    "the others stay queued and are sent again."
                )
                break
        left = self._outbox.counts().pending_for(self._author)
        return FlushReport(sent, synced, rejected, left, error)

    def _resend_without_opened(
        self, results: list[AckResult], batch: list[AckRecord]
    ) -> list[AckResult]:
        """The results minus acks refused only for their `opened` list (a hub from before it,
        or one with stricter limits): those lose the list and stay pending, so the answer itself
        is never lost for the sake of the record of what was opened."""
        with_opened = {ack.ack_id for ack in batch if ack.opened}
        retry = [
            r.ack_id
            for r in results
            if r.status == "rejected"
            and r.error == "invalid_ack"
            and (r.detail or "").startswith("opened")
            and r.ack_id in with_opened
        ]
        if not retry:
            return results
        log.warning("the hub refused what %d ack(s) opened; sending them without", len(retry))
        self._outbox.drop_opened(retry)
        return [r for r in results if r.ack_id not in retry]
