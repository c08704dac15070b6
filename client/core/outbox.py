"""The acknowledgement outbox: every ack is on disk before the UI may say "recorded", and is sent
to the hub until the hub answers for it.

The outbox has its own SQLite file, apart from the cache, so rebuilding a damaged cache can never
lose an acknowledgement. An ack's `ack_id` (a UUID made once, at record time) is the hub's
idempotency key: sending the same ack again after a crash or a lost answer is harmless.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from client.core.errors import AuthRequired, BadResponse, HubError, OutboxError
from client.core.events import Event
from client.core.sqlite_transaction import write_transaction

if TYPE_CHECKING:
    from client.core.hub_client import HubClient

log = logging.getLogger(__name__)

ACTIONS = ("acknowledged", "escalated", "unable")
MAX_NOTE_CHARS = 2000
MAX_BATCH = 500

_SCHEMA = [
    """
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
    """,
]
_COLUMNS = "ack_id, alert_id, action, note, acted_at, state, error, detail"


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

    def to_json(self) -> dict[str, Any]:
        """The item as POST /v1/acks takes it."""
        body: dict[str, Any] = {
            "ack_id": self.ack_id,
            "alert_id": self.alert_id,
            "action": self.action,
            "acted_at": self.acted_at,
        }
        if self.note is not None:
            body["note"] = self.note
        return body


@dataclass(frozen=True)
class OutboxCounts:
    """How many acknowledgements are in each state."""

    pending: int
    synced: int
    rejected: int


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
    ack_id, alert_id, action, note, acted_at, state, error, detail = row
    return AckRecord(ack_id, alert_id, action, note, acted_at, AckState(state), error, detail)


class Outbox:
    """Durable queue of acknowledgements; safe to call from any thread.

    Events: `changed` (new counts after a record or applied results), `recorded` (each new ack).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path
        self._lock = threading.Lock()
        self.changed: Event[OutboxCounts] = Event("outbox.changed")
        self.recorded: Event[AckRecord] = Event("outbox.recorded")

    @classmethod
    def open(cls, path: Path) -> Outbox:
        """Open or create the outbox file; OutboxError when it cannot be opened for writing."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: every transaction below is explicit (write_transaction).
            conn = sqlite3.connect(
                path, check_same_thread=False, timeout=10.0, isolation_level=None
            )
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(
                f"The acknowledgement store {path} cannot be opened ({exc}). Acknowledgements "
                "cannot be recorded until the data folder is writable."
            ) from exc
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            # 256 KiB of page cache, not SQLite's 2 MiB: acks are appended and read back through
            # small index lookups, so a larger cache would only hold old acks in memory.
            conn.execute("PRAGMA cache_size = -256")
            # FULL, not NORMAL: in WAL mode NORMAL skips the fsync at commit, so a power cut can
            # roll back an ack the UI already showed as recorded. An ack is worth one fsync.
            conn.execute("PRAGMA synchronous = FULL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(_SCHEMA):
                raise OutboxError(
                    f"The acknowledgement store {path} was written by a newer Vigil; update "
                    "Vigil rather than lose the acknowledgements in it."
                )
            for number, script in enumerate(_SCHEMA[version:], start=version + 1):
                conn.executescript(
                    f"BEGIN IMMEDIATE; {script} PRAGMA user_version = {number}; COMMIT;"
                )
        except sqlite3.Error as exc:
            conn.close()
            raise OutboxError(
                f"The acknowledgement store {path} cannot be used ({exc}). Check the disk and "
                "the data folder's permissions; do not delete the file, it may hold "
                "acknowledgements not yet sent."
            ) from exc
        except OutboxError:
            conn.close()
            raise
        return cls(conn, path)

    def close(self) -> None:
        """Close the file; the object must not be used afterwards."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, write_transaction(self._conn) as conn:
            yield conn

    def record(self, alert_id: str, action: str, note: str | None = None) -> AckRecord:
        """Write a new acknowledgement to disk and commit it before returning.

        Only after this returns may the UI say the acknowledgement is recorded. Raises
        OutboxError (nothing recorded) for a bad action or note, or when the disk refuses.
        """
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
        ack = AckRecord(str(uuid.uuid4()), alert_id, action, note, _utc_now(), AckState.PENDING)
        try:
            with self._transaction() as conn:
                conn.execute(
                    f"INSERT INTO acks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
                    (ack.ack_id, ack.alert_id, ack.action, ack.note, ack.acted_at, ack.state),
                )
        except sqlite3.Error as exc:
            raise OutboxError(
                f"The acknowledgement could NOT be saved on this computer ({exc}): the disk may "
                f"be full or read-only ({self._path.parent}). Free space or fix the folder, then "
                "acknowledge again."
            ) from exc
        self.recorded.emit(ack)
        self._emit_changed()
        return ack

    def _select(self, where: str, params: tuple[Any, ...]) -> list[AckRecord]:
        try:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT {_COLUMNS} FROM acks WHERE {where}", params
                ).fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"The acknowledgement store could not be read ({exc}).") from exc
        return [_record(row) for row in rows]

    def pending(self, limit: int = MAX_BATCH) -> list[AckRecord]:
        """The oldest acknowledgements not yet answered by the hub, in recording order."""
        return self._select("state = 'pending' ORDER BY seq LIMIT ?", (limit,))

    def rejected(self) -> list[AckRecord]:
        """Acknowledgements the hub refused, with its reason; kept to be shown, never dropped."""
        return self._select("state = 'rejected' ORDER BY seq", ())

    def dismiss_rejected(self) -> int:
        """Clear every rejected acknowledgement from the rejected list (each stays in its alert's
        history as dismissed); returns how many."""
        try:
            with self._transaction() as conn:
                count = conn.execute(
                    "UPDATE acks SET state = 'dismissed' WHERE state = 'rejected'"
                ).rowcount
        except sqlite3.Error as exc:
            raise OutboxError(
                f"The rejected acknowledgements could not be cleared ({exc})."
            ) from exc
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
        """How many acknowledgements are pending, synced and rejected."""
        try:
            with self._lock:
                rows = dict(
                    self._conn.execute("SELECT state, count(*) FROM acks GROUP BY state").fetchall()
                )
        except sqlite3.Error as exc:
            raise OutboxError(f"The acknowledgement store could not be read ({exc}).") from exc
        return OutboxCounts(
            pending=rows.get(AckState.PENDING, 0),
            synced=rows.get(AckState.SYNCED, 0),
            rejected=rows.get(AckState.REJECTED, 0),
        )

    def apply_results(self, results: Iterable[AckResult]) -> None:
        """Mark pending acks per the hub's answer: accepted or duplicate → synced, rejected →
        rejected with the reason. Acks that are no longer pending are left as they are."""
        now = _utc_now()
        try:
            with self._transaction() as conn:
                for result in results:
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
        except sqlite3.Error as exc:
            raise OutboxError(
                f"The hub's answers could not be saved ({exc}); the acknowledgements stay "
                "queued and are sent again (the hub ignores repeats)."
            ) from exc
        self._emit_changed()

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

    def __init__(self, outbox: Outbox, hub: HubClient, *, batch_size: int = MAX_BATCH) -> None:
        self._outbox = outbox
        self._hub = hub
        self._batch_size = max(1, min(batch_size, MAX_BATCH))

    def flush(self) -> FlushReport:
        """Send every pending ack (oldest first) until none is left or the hub fails.

        Hub failures end up in the report, not raised; an ack is marked synced only with a
        per-item answer from the hub for it.
        """
        sent = synced = rejected = 0
        error: HubError | None = None
        # Bounded: enough batches for what is pending now, plus one for acks recorded meanwhile.
        for _ in range(self._outbox.counts().pending // self._batch_size + 2):
            batch = self._outbox.pending(self._batch_size)
            if not batch:
                break
            try:
                body = self._hub.post_json("/v1/acks", {"acks": [ack.to_json() for ack in batch]})
                results = _parse_results(body, batch)
            except HubError as exc:
                error = exc
                break
            sent += len(batch)
            self._outbox.apply_results(results)
            synced += sum(1 for r in results if r.status != "rejected")
            rejected += sum(1 for r in results if r.status == "rejected")
            for result in results:
                if result.status == "rejected":
                    log.warning("hub rejected ack %s: %s", result.ack_id, result.error)
            if len(results) < len(batch):
                error = BadResponse(
                    f"The hub answered for {len(results)} of {len(batch)} acknowledgements; "
                    "the others stay queued and are sent again."
                )
                break
        return FlushReport(sent, synced, rejected, self._outbox.counts().pending, error)
