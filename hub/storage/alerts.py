"""Alerts, their acknowledgements, and the retention purge that removes both together."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from hub.clock import rfc3339

if TYPE_CHECKING:
    from hub.clock import Clock
    from hub.storage.db import Database

log = logging.getLogger(__name__)

Severity = Literal["info", "minor", "major", "critical"]
AckAction = Literal["acknowledged", "escalated", "unable"]
AckStatus = Literal["accepted", "duplicate", "rejected"]

# seq is AUTOINCREMENT so a purged seq is never issued again: a client's Last-Event-ID keeps
# meaning the same alert. alert_retention remembers the highest purged seq for gap detection.
SCHEMA: list[str] = [
    """
    CREATE TABLE alerts (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        severity TEXT NOT NULL CHECK (severity IN ('info', 'minor', 'major', 'critical')),
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        playbook_id TEXT,
        template_ids TEXT NOT NULL,
        requires_ack INTEGER NOT NULL,
        issued_at REAL NOT NULL,
        expires_at REAL,
        issued_by TEXT
    )
    """,
    "CREATE INDEX alerts_issued_at ON alerts (issued_at)",
    """
    CREATE TABLE alert_retention (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        purged_through_seq INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE alert_acks (
        ack_id TEXT PRIMARY KEY,
        alert_id TEXT NOT NULL,
        username TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('acknowledged', 'escalated', 'unable')),
        note TEXT,
        acted_at_ms INTEGER NOT NULL,
        received_at_ms INTEGER NOT NULL
    )
    """,
    "CREATE INDEX alert_acks_alert_id ON alert_acks (alert_id, received_at_ms)",
]

# Idempotency keys of POST /v1/alerts, per dispatcher: a retried publish finds the alert its first
# attempt stored. Kept for PUBLISH_KEY_SECONDS whatever the alert retention.
PUBLISH_KEYS_SCHEMA: list[str] = [
    """
    CREATE TABLE alert_publish_keys (
        issued_by TEXT NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        alert_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (issued_by, key)
    )
    """,
    "CREATE INDEX alert_publish_keys_created_at ON alert_publish_keys (created_at)",
]
PUBLISH_KEY_SECONDS = 86_400

_SEVERITIES = frozenset(get_args(Severity))
_ACK_ACTIONS = frozenset(get_args(AckAction))
_ALERT_COLUMNS = (
    "seq, id, severity, title, body, playbook_id, template_ids, requires_ack, issued_at, "
    "expires_at, issued_by"
)
# Text is read as bytes and decoded row by row: SQLite hands back whatever bytes were written,
# and the driver's own decoding would fail the whole query on one row that is not UTF-8.
_ALERT_SELECT = (
    "seq, CAST(id AS BLOB), CAST(severity AS BLOB), CAST(title AS BLOB), CAST(body AS BLOB), "
    "CAST(playbook_id AS BLOB), CAST(template_ids AS BLOB), requires_ack, issued_at, expires_at, "
    "CAST(issued_by AS BLOB)"
)
_ACK_SELECT = (
    "CAST(ack_id AS BLOB), CAST(alert_id AS BLOB), CAST(username AS BLOB), CAST(action AS BLOB), "
    "CAST(note AS BLOB), acted_at_ms, received_at_ms"
)


@dataclass(frozen=True)
class Alert:
    """A published alert."""

    seq: int
    id: str
    severity: Severity
    title: str
    body: str
    playbook_id: str | None
    template_ids: list[str]
    requires_ack: bool
    issued_at: float
    expires_at: float | None
    issued_by: str | None

    def to_wire(self) -> dict[str, Any]:
        """The alert object of the protocol."""
        return {
            "id": self.id,
            "seq": self.seq,
            "severity": self.severity,
            "title": self.title,
            "body": self.body,
            "playbook_id": self.playbook_id,
            "template_ids": list(self.template_ids),
            "requires_ack": self.requires_ack,
            "issued_at": rfc3339(self.issued_at),
            "expires_at": None if self.expires_at is None else rfc3339(self.expires_at),
            "issued_by": self.issued_by,
        }


@dataclass(frozen=True)
class AlertPage:
    """A catch-up answer: alerts after a seq, the highest seq issued, and whether any were lost."""

    alerts: list[Alert]
    last_seq: int
    more: bool
    gap: bool
    oldest_kept_seq: int
    # The highest seq this page read, served or not: where the next page starts.
    through_seq: int


@dataclass(frozen=True)
class PublishKey:
    """An Idempotency-Key of one dispatcher, with the fingerprint of the request it came with."""

    key: str
    request_hash: str


class PublishKeyConflict(Exception):
    """An Idempotency-Key that cannot be answered with the alert it first published."""


@dataclass(frozen=True)
class NewAck:
    """A well-formed acknowledgement as a client sent it (ids already normalised)."""

    ack_id: str
    alert_id: str
    action: AckAction
    note: str | None
    acted_at_ms: int


@dataclass(frozen=True)
class AckResult:
    """The outcome for one acknowledgement of a batch; ack_id is None for an item without one."""

    ack_id: str | None
    status: AckStatus
    error: str | None = None
    detail: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The result object of POST /v1/acks; error and detail only when set."""
        wire: dict[str, Any] = {"ack_id": self.ack_id, "status": self.status}
        if self.error is not None:
            wire["error"] = self.error
        if self.detail is not None:
            wire["detail"] = self.detail
        return wire


@dataclass(frozen=True)
class StoredAck:
    """An acknowledgement as the hub keeps it."""

    ack_id: str
    alert_id: str
    username: str
    action: AckAction
    note: str | None
    acted_at_ms: int
    received_at_ms: int

    def to_wire(self) -> dict[str, Any]:
        """The ack object of GET /v1/alerts/{id}/acks."""
        return {
            "ack_id": self.ack_id,
            "username": self.username,
            "action": self.action,
            "note": self.note,
            "acted_at": rfc3339(self.acted_at_ms / 1000),
            "received_at": rfc3339(self.received_at_ms / 1000),
        }


class AlertStore:
    """Owns the alerts, alert_acks and alert_retention tables."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def publish(
        self,
        *,
        severity: Severity,
        title: str,
        body: str,
        playbook_id: str | None,
        template_ids: Sequence[str],
        requires_ack: bool,
        expires_at: float | None,
        issued_by: str | None,
        publish_key: PublishKey | None = None,
    ) -> tuple[Alert, bool]:
        """Store a new alert with the next seq: (alert, True).

        With a `publish_key` this dispatcher used before: (the alert it published, False), or
        PublishKeyConflict when the key came with another request or its alert is gone.
        """
        alert_id = str(uuid.uuid4())
        issued_at = self._clock.now()
        with self._db.write() as conn:
            if publish_key is not None:
                first = _first_publish(conn, issued_by or "", publish_key, issued_at)
                if first is not None:
                    return first, False
            cursor = conn.execute(
                f"""
                INSERT INTO alerts ({_ALERT_COLUMNS})
                VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (
                    alert_id,
                    severity,
                    title,
                    body,
                    playbook_id,
                    json.dumps(list(template_ids)),
                    int(requires_ack),
                    issued_at,
                    expires_at,
                    issued_by,
                ),
            )
            seq = cursor.lastrowid
            if publish_key is not None:
                conn.execute(
                    """
                    INSERT OR REPLACE INTO alert_publish_keys
                        (issued_by, key, request_hash, alert_id, created_at)
                    VALUES (?, ?, ?, ?, ?)
                    """,
                    (
                        issued_by or "",
                        publish_key.key,
                        publish_key.request_hash,
                        alert_id,
                        issued_at,
                    ),
                )
        assert seq is not None
        alert = Alert(
            seq=seq,
            id=alert_id,
            severity=severity,
            title=title,
            body=body,
            playbook_id=playbook_id,
            template_ids=list(template_ids),
            requires_ack=requires_ack,
            issued_at=issued_at,
            expires_at=expires_at,
            issued_by=issued_by,
        )
        return alert, True

    def first_published(self, issued_by: str | None, publish_key: PublishKey) -> Alert | None:
        """The alert a dispatcher published with this key within the last day, if any.

        PublishKeyConflict when the key came with another request or its alert is gone.
        """
        with self._db.read() as conn:
            return _first_publish(conn, issued_by or "", publish_key, self._clock.now())

    def get(self, alert_id: str) -> Alert | None:
        """One kept alert by id."""
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_ALERT_SELECT} FROM alerts WHERE id = ?", (alert_id,)
            ).fetchone()
        return None if row is None else _servable_alert(row)

    def since(self, seq: int | None, limit: int) -> AlertPage:
        """Kept alerts after `seq` (exclusive) in seq order; None means every kept alert."""
        after = seq or 0
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_ALERT_SELECT} FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit + 1),
            ).fetchall()
            purged_through = _purged_through(conn)
            last_seq = max(_max_seq(conn), purged_through)
            oldest = conn.execute("SELECT MIN(seq) FROM alerts").fetchone()[0]
        page_rows = rows[:limit]
        served = (_servable_alert(row) for row in page_rows)
        return AlertPage(
            alerts=[alert for alert in served if alert is not None],
            last_seq=last_seq,
            more=len(rows) > limit,
            # A client that names no seq asks for what is kept, so it cannot have missed any.
            gap=seq is not None and seq < purged_through,
            oldest_kept_seq=int(oldest) if oldest is not None else last_seq + 1,
            through_seq=int(page_rows[-1][0]) if page_rows else after,
        )

    def last_seq(self) -> int:
        """The highest seq issued so far, purged or kept (0 when none)."""
        with self._db.read() as conn:
            return max(_max_seq(conn), _purged_through(conn))

    def purge_expired(self, retention_seconds: float) -> int:
        """Remove alerts issued longer ago than the retention period, and their acks; the count."""
        now = self._clock.now()
        cutoff = now - retention_seconds
        key_cutoff = now - PUBLISH_KEY_SECONDS
        # Most calls find nothing to purge: check with a read so they never take the write lock.
        with self._db.read() as conn:
            if (
                conn.execute(
                    """
                    SELECT 1 FROM alerts WHERE issued_at < ?
                    UNION ALL SELECT 1 FROM alert_publish_keys WHERE created_at < ? LIMIT 1
                    """,
                    (cutoff, key_cutoff),
                ).fetchone()
                is None
            ):
                return 0
        with self._db.write() as conn:
            conn.execute("DELETE FROM alert_publish_keys WHERE created_at < ?", (key_cutoff,))
            highest = conn.execute(
                "SELECT MAX(seq) FROM alerts WHERE issued_at < ?", (cutoff,)
            ).fetchone()[0]
            if highest is None:
                return 0
            conn.execute(
                "DELETE FROM alert_acks WHERE alert_id IN "
                "(SELECT id FROM alerts WHERE issued_at < ?)",
                (cutoff,),
            )
            purged = conn.execute("DELETE FROM alerts WHERE issued_at < ?", (cutoff,)).rowcount
            conn.execute(
                """
                INSERT INTO alert_retention (singleton, purged_through_seq) VALUES (1, ?)
                ON CONFLICT (singleton) DO UPDATE SET
                    purged_through_seq = MAX(purged_through_seq, excluded.purged_through_seq)
                """,
                (int(highest),),
            )
        return int(purged)

    def record_acks(
        self, username: str, acks: Sequence[NewAck], *, clock_skew_ms: int = 0
    ) -> list[AckResult]:
        """Store a batch in one transaction; each ack is accepted, duplicate or rejected alone.

        An ack whose acted_at is before its alert was issued, or after now, by more than
        `clock_skew_ms` is rejected.
        """
        received_at_ms = round(self._clock.now() * 1000)
        results: list[AckResult] = []
        # BEGIN IMMEDIATE serialises concurrent batches, and ack_id is the primary key, so the
        # same ack arriving twice at once is inserted by exactly one of them.
        with self._db.write() as conn:
            for ack in acks:
                results.append(self._record_one(conn, username, ack, received_at_ms, clock_skew_ms))
        return results

    def _record_one(
        self,
        conn: sqlite3.Connection,
        username: str,
        ack: NewAck,
        received_at_ms: int,
        clock_skew_ms: int,
    ) -> AckResult:
        alert = conn.execute(
            "SELECT issued_at FROM alerts WHERE id = ?", (ack.alert_id,)
        ).fetchone()
        if alert is None:
            return AckResult(
                ack.ack_id,
                "rejected",
                "unknown_alert",
                f"No alert {ack.alert_id} is kept on the hub; it may be past retention.",
            )
        issued_at_ms = _millis_or_none(alert[0])
        too_early = issued_at_ms is not None and ack.acted_at_ms < issued_at_ms - clock_skew_ms
        if too_early or ack.acted_at_ms > received_at_ms + clock_skew_ms:
            return AckResult(
                ack.ack_id,
                "rejected",
                "invalid_ack",
                "acted_at: must be after the alert was issued and not after the hub received "
                f"the ack, give or take {clock_skew_ms // 3_600_000} hours of clock difference; "
                "check the device's clock.",
            )
        inserted = conn.execute(
            """
            INSERT OR IGNORE INTO alert_acks
                (ack_id, alert_id, username, action, note, acted_at_ms, received_at_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """,
            (
                ack.ack_id,
                ack.alert_id,
                username,
                ack.action,
                ack.note,
                ack.acted_at_ms,
                received_at_ms,
            ),
        ).rowcount
        if inserted == 1:
            return AckResult(ack.ack_id, "accepted")
        row = conn.execute(
            "SELECT alert_id, username, action, note, acted_at_ms FROM alert_acks WHERE ack_id = ?",
            (ack.ack_id,),
        ).fetchone()
        if tuple(row) == (ack.alert_id, username, ack.action, ack.note, ack.acted_at_ms):
            return AckResult(ack.ack_id, "duplicate")
        return AckResult(
            ack.ack_id,
            "rejected",
            "ack_id_conflict",
            "This ack_id was already stored with a different payload; "
            "make a new ack_id for a new acknowledgement.",
        )

    def acks_for(self, alert_id: str) -> list[StoredAck]:
        """Every acknowledgement of one alert, oldest received first."""
        with self._db.read() as conn:
            rows = conn.execute(
                f"""
                SELECT {_ACK_SELECT}
                FROM alert_acks WHERE alert_id = ? ORDER BY received_at_ms, ack_id
                """,
                (alert_id,),
            ).fetchall()
        served = (_servable_ack(alert_id, row) for row in rows)
        return [ack for ack in served if ack is not None]


def _max_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM alerts").fetchone()[0])


def _purged_through(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT purged_through_seq FROM alert_retention").fetchone()
    return 0 if row is None else int(row[0])


def _first_publish(
    conn: sqlite3.Connection, issued_by: str, publish_key: PublishKey, now: float
) -> Alert | None:
    row = conn.execute(
        """
        SELECT request_hash, alert_id FROM alert_publish_keys
        WHERE issued_by = ? AND key = ? AND created_at >= ?
        """,
        (issued_by, publish_key.key, now - PUBLISH_KEY_SECONDS),
    ).fetchone()
    if row is None:
        return None
    if row[0] != publish_key.request_hash:
        raise PublishKeyConflict(
            "this Idempotency-Key was already used for a different alert; "
            "make a new key for a new alert"
        )
    first = conn.execute(f"SELECT {_ALERT_SELECT} FROM alerts WHERE id = ?", (row[1],)).fetchone()
    alert = None if first is None else _servable_alert(first)
    if alert is None:
        raise PublishKeyConflict(
            "the alert first published with this Idempotency-Key is no longer kept; "
            "make a new key to publish it again"
        )
    return alert


def _servable_alert(row: Any) -> Alert | None:
    """The alert of a row, or None (logged) for a row no hub should have stored."""
    try:
        return _alert(row)
    except (TypeError, ValueError, OverflowError) as exc:
        log.error("Alert seq %s cannot be served and is skipped: %s", row[0], exc)
        return None


def _alert(row: Any) -> Alert:
    template_ids = json.loads(_text(row[6], "template_ids"))
    if not isinstance(template_ids, list) or not all(isinstance(t, str) for t in template_ids):
        raise ValueError("template_ids is not a list of strings")
    severity = _text(row[2], "severity")
    if severity not in _SEVERITIES:
        raise ValueError("severity is not one of the protocol's")
    return Alert(
        seq=int(row[0]),
        id=_text(row[1], "id"),
        severity=cast(Severity, severity),
        title=_text(row[3], "title"),
        body=_text(row[4], "body"),
        playbook_id=_optional_text(row[5], "playbook_id"),
        template_ids=template_ids,
        requires_ack=bool(_number(row[7], "requires_ack")),
        issued_at=_number(row[8], "issued_at"),
        expires_at=None if row[9] is None else _number(row[9], "expires_at"),
        issued_by=_optional_text(row[10], "issued_by"),
    )


def _servable_ack(alert_id: str, row: Any) -> StoredAck | None:
    """The ack of a row, or None (logged) for a row no hub should have stored."""
    try:
        action = _text(row[3], "action")
        if action not in _ACK_ACTIONS:
            raise ValueError("action is not one of the protocol's")
        return StoredAck(
            ack_id=_text(row[0], "ack_id"),
            alert_id=_text(row[1], "alert_id"),
            username=_text(row[2], "username"),
            action=cast(AckAction, action),
            note=_optional_text(row[4], "note"),
            acted_at_ms=int(_number(row[5], "acted_at_ms")),
            received_at_ms=int(_number(row[6], "received_at_ms")),
        )
    except (TypeError, ValueError, OverflowError) as exc:
        log.error(
            "An acknowledgement of alert %s cannot be served and is skipped: %s", alert_id, exc
        )
        return None


def _text(value: object, column: str) -> str:
    if not isinstance(value, bytes):
        raise TypeError(f"{column} is not text")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{column} is not UTF-8") from None


def _optional_text(value: object, column: str) -> str | None:
    return None if value is None else _text(value, column)


def _number(value: object, column: str) -> float:
    # SQLite keeps whatever type was written; bool is excluded as it is never stored as a time.
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{column} is not a number")
    return float(value)


def _millis_or_none(seconds: object) -> int | None:
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return None
    return round(seconds * 1000)
