"""Alerts, their acknowledgements, and the retention purge that removes both together."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from hub.clock import rfc3339

if TYPE_CHECKING:
    from hub.clock import Clock
    from hub.storage.db import Database

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

_ALERT_COLUMNS = (
    "seq, id, severity, title, body, playbook_id, template_ids, requires_ack, issued_at, "
    "expires_at, issued_by"
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
    ) -> Alert:
        """Store a new alert; it gets the next seq."""
        alert_id = str(uuid.uuid4())
        issued_at = self._clock.now()
        with self._db.write() as conn:
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
        assert seq is not None
        return Alert(
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

    def get(self, alert_id: str) -> Alert | None:
        """One kept alert by id."""
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)
            ).fetchone()
        return None if row is None else _alert(row)

    def since(self, seq: int | None, limit: int) -> AlertPage:
        """Kept alerts after `seq` (exclusive) in seq order; None means every kept alert."""
        after = seq or 0
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit + 1),
            ).fetchall()
            purged_through = _purged_through(conn)
            last_seq = max(_max_seq(conn), purged_through)
            oldest = conn.execute("SELECT MIN(seq) FROM alerts").fetchone()[0]
        return AlertPage(
            alerts=[_alert(row) for row in rows[:limit]],
            last_seq=last_seq,
            more=len(rows) > limit,
            # A client that names no seq asks for what is kept, so it cannot have missed any.
            gap=seq is not None and seq < purged_through,
            oldest_kept_seq=int(oldest) if oldest is not None else last_seq + 1,
        )

    def last_seq(self) -> int:
        """The highest seq issued so far, purged or kept (0 when none)."""
        with self._db.read() as conn:
            return max(_max_seq(conn), _purged_through(conn))

    def purge_expired(self, retention_seconds: float) -> int:
        """Remove alerts issued longer ago than the retention period, and their acks; the count."""
        cutoff = self._clock.now() - retention_seconds
        # Most calls find nothing to purge: check with a read so they never take the write lock.
        with self._db.read() as conn:
            if (
                conn.execute(
                    "SELECT 1 FROM alerts WHERE issued_at < ? LIMIT 1", (cutoff,)
                ).fetchone()
                is None
            ):
                return 0
        with self._db.write() as conn:
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

    def record_acks(self, username: str, acks: Sequence[NewAck]) -> list[AckResult]:
        """Store a batch in one transaction; each ack is accepted, duplicate or rejected alone."""
        received_at_ms = round(self._clock.now() * 1000)
        results: list[AckResult] = []
        # BEGIN IMMEDIATE serialises concurrent batches, and ack_id is the primary key, so the
        # same ack arriving twice at once is inserted by exactly one of them.
        with self._db.write() as conn:
            for ack in acks:
                results.append(self._record_one(conn, username, ack, received_at_ms))
        return results

    def _record_one(
        self, conn: sqlite3.Connection, username: str, ack: NewAck, received_at_ms: int
    ) -> AckResult:
        if conn.execute("SELECT 1 FROM alerts WHERE id = ?", (ack.alert_id,)).fetchone() is None:
            return AckResult(
                ack.ack_id,
                "rejected",
                "unknown_alert",
                f"No alert {ack.alert_id} is kept on the hub; it may be past retention.",
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
                """
                SELECT ack_id, alert_id, username, action, note, acted_at_ms, received_at_ms
                FROM alert_acks WHERE alert_id = ? ORDER BY received_at_ms, ack_id
                """,
                (alert_id,),
            ).fetchall()
        return [
            StoredAck(
                ack_id=row[0],
                alert_id=row[1],
                username=row[2],
                action=row[3],
                note=row[4],
                acted_at_ms=int(row[5]),
                received_at_ms=int(row[6]),
            )
            for row in rows
        ]


def _max_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM alerts").fetchone()[0])


def _purged_through(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT purged_through_seq FROM alert_retention").fetchone()
    return 0 if row is None else int(row[0])


def _alert(row: Any) -> Alert:
    return Alert(
        seq=int(row[0]),
        id=row[1],
        severity=row[2],
        title=row[3],
        body=row[4],
        playbook_id=row[5],
        template_ids=json.loads(row[6]),
        requires_ack=bool(row[7]),
        issued_at=float(row[8]),
        expires_at=None if row[9] is None else float(row[9]),
        issued_by=row[10],
    )
