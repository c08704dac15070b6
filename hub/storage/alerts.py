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
AlertStatus = Literal["open", "resolved", "retracted"]
ChangeKind = Literal["update", "resolved", "retracted"]

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

# An alert becomes an incident with a life: updates, resolution or retraction, drill or live, an
# audience. Every change takes the next seq of the one sequence alerts are published in, and the
# alert's `current_seq` moves to it: catch-up and the stream serve an alert again, whole, after
# each change, so a client that was offline gets the latest state with nothing else to replay.
# `alert_targets` is fixed at publish: who the alert was for, the denominator of every figure.
INCIDENTS_SCHEMA: list[str] = [
    "ALTER TABLE alerts ADD COLUMN current_seq INTEGER",
    "UPDATE alerts SET current_seq = seq",
    "CREATE UNIQUE INDEX alerts_current_seq ON alerts (current_seq)",
    "ALTER TABLE alerts ADD COLUMN status TEXT NOT NULL DEFAULT 'open' "
    "CHECK (status IN ('open', 'resolved', 'retracted'))",
    "ALTER TABLE alerts ADD COLUMN drill INTEGER NOT NULL DEFAULT 0",
    # A JSON list of group names; NULL: every agent.
    "ALTER TABLE alerts ADD COLUMN audience TEXT",
    "ALTER TABLE alerts ADD COLUMN next_update_by REAL",
    "ALTER TABLE alerts ADD COLUMN updated_at REAL",
    "UPDATE alerts SET updated_at = issued_at",
    "ALTER TABLE alerts ADD COLUMN closed_at REAL",
    "ALTER TABLE alerts ADD COLUMN approved_by TEXT",
    # Why a dispatcher published a live critical alert alone where approval is required.
    "ALTER TABLE alerts ADD COLUMN approval_override TEXT",
    """
    CREATE TABLE alert_changes (
        seq INTEGER PRIMARY KEY,
        alert_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('update', 'resolved', 'retracted')),
        at REAL NOT NULL,
        by TEXT,
        text TEXT NOT NULL,
        severity TEXT,
        title TEXT,
        links TEXT NOT NULL DEFAULT '[]',
        next_update_by REAL,
        UNIQUE (alert_id, number)
    )
    """,
    """
    CREATE TABLE alert_targets (
        alert_id TEXT NOT NULL,
        username TEXT NOT NULL COLLATE NOCASE,
        PRIMARY KEY (alert_id, username)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX alert_targets_username ON alert_targets (username, alert_id)",
    # A live critical alert waiting for a second dispatcher, where the hub requires one.
    """
    CREATE TABLE alert_approvals (
        id TEXT PRIMARY KEY,
        draft TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        requested_at REAL NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
        decided_by TEXT,
        decided_at REAL,
        alert_id TEXT
    )
    """,
    "CREATE INDEX alert_approvals_status ON alert_approvals (status, requested_at)",
    # The device an answer came from, and the playbook and template versions the agent opened
    # before answering (JSON list of {kind, id, version}).
    "ALTER TABLE alert_acks ADD COLUMN device_id TEXT",
    "ALTER TABLE alert_acks ADD COLUMN opened TEXT",
    "CREATE INDEX alert_acks_username ON alert_acks (username, received_at_ms)",
    # Retention counts from an alert's last change, so an incident still being updated stays.
    "CREATE INDEX alerts_updated_at ON alerts (updated_at)",
    # A row inserted without the incident columns (by hand, or a tool that predates them) is an
    # alert as first published: served at its seq, kept from its issue time.
    """
    CREATE TRIGGER alerts_incident_defaults AFTER INSERT ON alerts
    WHEN NEW.current_seq IS NULL OR NEW.updated_at IS NULL
    BEGIN
        UPDATE alerts SET
            current_seq = COALESCE(NEW.current_seq, NEW.seq),
            updated_at = COALESCE(NEW.updated_at, NEW.issued_at)
        WHERE seq = NEW.seq;
    END
    """,
]
# An incident with this many changes has stopped being one alert; publish a new one.
CHANGES_MAX = 500

# Why a dispatcher rejected an approval request, and the Idempotency-Key (with the fingerprint of
# its request) the request came with: a retried publish finds the request its first attempt made.
APPROVAL_SCHEMA: list[str] = [
    "ALTER TABLE alert_approvals ADD COLUMN reason TEXT",
    "ALTER TABLE alert_approvals ADD COLUMN publish_key TEXT",
    "ALTER TABLE alert_approvals ADD COLUMN request_hash TEXT",
    "CREATE UNIQUE INDEX alert_approvals_publish_key ON alert_approvals (requested_by, publish_key)"
    " WHERE publish_key IS NOT NULL",
]
ApprovalStatus = Literal["pending", "approved", "rejected"]
IncidentState = Literal["open", "closed", "all"]

_SEVERITIES = frozenset(get_args(Severity))
_ACK_ACTIONS = frozenset(get_args(AckAction))
_ALERT_COLUMNS = (
    "seq, id, severity, title, body, playbook_id, template_ids, requires_ack, issued_at, "
    "expires_at, issued_by, current_seq, drill, audience, next_update_by, updated_at, "
    "approved_by, approval_override"
)
# Text is read as bytes and decoded row by row: SQLite hands back whatever bytes were written,
# and the driver's own decoding would fail the whole query on one row that is not UTF-8.
# The first column is the seq of the alert's latest change: what it is served and ordered by.
_ALERT_SELECT = (
    "COALESCE(current_seq, seq), CAST(id AS BLOB), CAST(severity AS BLOB), CAST(title AS BLOB), "
    "CAST(body AS BLOB), CAST(playbook_id AS BLOB), CAST(template_ids AS BLOB), requires_ack, "
    "issued_at, expires_at, CAST(issued_by AS BLOB), seq, CAST(status AS BLOB), drill, "
    "CAST(audience AS BLOB), next_update_by, updated_at, closed_at, CAST(approved_by AS BLOB)"
)
_CHANGE_SELECT = (
    "seq, CAST(alert_id AS BLOB), number, CAST(kind AS BLOB), at, CAST(by AS BLOB), "
    "CAST(text AS BLOB), CAST(severity AS BLOB), CAST(title AS BLOB), CAST(links AS BLOB), "
    "next_update_by"
)
_CHANGE_KINDS = frozenset(get_args(ChangeKind))
_STATUSES = frozenset(get_args(AlertStatus))
# SQLite's default limit on bound parameters is far above this; pages are read in chunks of it.
_IN_CHUNK = 500
_ACK_SELECT = (
    "CAST(ack_id AS BLOB), CAST(alert_id AS BLOB), CAST(username AS BLOB), CAST(action AS BLOB), "
    "CAST(note AS BLOB), acted_at_ms, received_at_ms"
)


@dataclass(frozen=True)
class AlertChange:
    """One numbered change to an open alert: an update, its resolution or its retraction."""

    seq: int
    number: int
    kind: ChangeKind
    at: float
    by: str | None
    text: str
    severity: Severity | None
    title: str | None
    links: list[str]
    next_update_by: float | None

    def to_wire(self) -> dict[str, Any]:
        """The update object of the protocol (an item of the alert's `updates`)."""
        return {
            "number": self.number,
            "kind": self.kind,
            "at": rfc3339(self.at),
            "by": self.by,
            "text": self.text,
            "severity": self.severity,
            "title": self.title,
            "links": list(self.links),
            "next_update_by": _optional_time(self.next_update_by),
        }


@dataclass(frozen=True)
class Alert:
    """A published alert in its current state; `seq` is the seq of its latest change."""

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
    first_seq: int = 0
    status: AlertStatus = "open"
    drill: bool = False
    # Group names the alert targets; None: every agent.
    audience: list[str] | None = None
    next_update_by: float | None = None
    updated_at: float | None = None
    closed_at: float | None = None
    approved_by: str | None = None
    changes: tuple[AlertChange, ...] = ()

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
            "expires_at": _optional_time(self.expires_at),
            "issued_by": self.issued_by,
            "status": self.status,
            "drill": self.drill,
            "audience": None if self.audience is None else list(self.audience),
            "next_update_by": _optional_time(self.next_update_by),
            "updated_at": rfc3339(self.issued_at if self.updated_at is None else self.updated_at),
            "closed_at": _optional_time(self.closed_at),
            "approved_by": self.approved_by,
            "revision": len(self.changes),
            "updates": [change.to_wire() for change in self.changes],
        }


@dataclass(frozen=True)
class Viewer:
    """Who reads alerts: agents see the alerts that target them, dispatchers and admins all."""

    username: str
    sees_all: bool


class UnknownAlert(LookupError):
    """No alert with that id is kept."""


class AlertClosed(Exception):
    """The alert was resolved or retracted: it takes no more changes."""

    def __init__(self, status: AlertStatus) -> None:
        super().__init__(status)
        self.status = status


class TooManyChanges(Exception):
    """The alert already holds CHANGES_MAX changes."""


class UnknownApproval(LookupError):
    """No approval request with that id is kept."""


class ApprovalDecided(Exception):
    """The approval request was already approved or rejected (by someone else, or just now)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class Approval:
    """A live critical alert held until a second dispatcher approves or rejects it."""

    id: str
    draft: dict[str, Any]
    requested_by: str
    requested_at: float
    status: ApprovalStatus
    decided_by: str | None
    decided_at: float | None
    alert_id: str | None
    reason: str | None
    # The Idempotency-Key of the publish that asked, kept so the approved alert answers it.
    publish_key: PublishKey | None = None

    def to_wire(self) -> dict[str, Any]:
        """The approval object of the protocol."""
        return {
            "id": self.id,
            "requested_by": self.requested_by,
            "requested_at": rfc3339(self.requested_at),
            "status": self.status,
            "draft": dict(self.draft),
            "decided_by": self.decided_by,
            "decided_at": _optional_time(self.decided_at),
            "alert_id": self.alert_id,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class AnswerCounts:
    """How many targeted agents gave each answer to an alert (an agent counts once per answer)."""

    acknowledged: int = 0
    escalated: int = 0
    unable: int = 0

    def to_wire(self) -> dict[str, int]:
        """The `answered` object of an incident."""
        return {
            "acknowledged": self.acknowledged,
            "escalated": self.escalated,
            "unable": self.unable,
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
class OpenedContent:
    """A playbook or template version the agent opened before answering."""

    kind: Literal["playbook", "template"]
    id: str
    version: int


@dataclass(frozen=True)
class NewAck:
    """A well-formed acknowledgement as a client sent it (ids already normalised)."""

    ack_id: str
    alert_id: str
    action: AckAction
    note: str | None
    acted_at_ms: int
    opened: tuple[OpenedContent, ...] = ()


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


@dataclass(frozen=True)
class Answer:
    """A user's accepted answer to an alert, with the device it came from."""

    ack_id: str
    alert_id: str
    username: str
    action: AckAction
    note: str | None
    acted_at_ms: int
    received_at_ms: int
    device_id: str | None
    device_name: str | None
    # Where the answer lies in the order acks were received: the broker's cursor.
    position: int = 0

    def to_wire(self) -> dict[str, Any]:
        """The answer object of the stream and of GET /v1/alerts."""
        return {
            "ack_id": self.ack_id,
            "alert_id": self.alert_id,
            "action": self.action,
            "note": self.note,
            "acted_at": rfc3339(self.acted_at_ms / 1000),
            "received_at": rfc3339(self.received_at_ms / 1000),
            "device_id": self.device_id,
            "device_name": self.device_name,
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
        drill: bool = False,
        audience: Sequence[str] | None = None,
        next_update_by: float | None = None,
        approved_by: str | None = None,
        approval_override: str | None = None,
        approval_id: str | None = None,
    ) -> tuple[Alert, bool]:
        """Store a new alert with the next seq and fix its targets: (alert, True).

        The targets are the enabled agents then in any group of `audience` (every enabled agent
        when None). With a `publish_key` this dispatcher used before: (the alert it published,
        False), or PublishKeyConflict when the key came with another request or its alert is gone.
        With an `approval_id`, the pending request is marked approved by `approved_by` in the same
        transaction: ApprovalDecided (nothing stored) when it is no longer pending.
        """
        alert_id = str(uuid.uuid4())
        issued_at = self._clock.now()
        groups = None if audience is None else list(dict.fromkeys(audience))
        with self._db.write() as conn:
            if approval_id is not None:
                # Before the key's first alert is looked up: a racing second approval carries the
                # request's key too, and must be refused, not answered the first approval's alert.
                _check_pending(conn, approval_id)
            if publish_key is not None:
                first = _first_publish(conn, issued_by or "", publish_key, issued_at)
                if first is not None:
                    return first, False
            seq = next_seq(conn)
            conn.execute(
                f"""
                INSERT INTO alerts ({_ALERT_COLUMNS})
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (
                    seq,
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
                    seq,
                    int(drill),
                    None if groups is None else json.dumps(groups),
                    next_update_by,
                    issued_at,
                    approved_by,
                    approval_override,
                ),
            )
            if approval_id is not None:
                _claim_approval(conn, approval_id, approved_by or "", issued_at, alert_id)
            _record_targets(conn, alert_id, groups)
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
            first_seq=seq,
            drill=drill,
            audience=groups,
            next_update_by=next_update_by,
            updated_at=issued_at,
            approved_by=approved_by,
        )
        return alert, True

    def change(
        self,
        alert_id: str,
        *,
        kind: ChangeKind,
        text: str,
        by: str | None,
        severity: Severity | None = None,
        title: str | None = None,
        links: Sequence[str] = (),
        next_update_by: float | None = None,
    ) -> Alert:
        """Add an update, the resolution or the retraction to an open alert, under the next seq.

        An update may change the severity and title and sets the next update time; resolving or
        retracting closes the alert. UnknownAlert, AlertClosed or TooManyChanges otherwise.
        """
        now = self._clock.now()
        with self._db.write() as conn:
            row = conn.execute("SELECT status FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                raise UnknownAlert(alert_id)
            if row[0] != "open":
                raise AlertClosed(cast(AlertStatus, row[0]))
            number = int(
                conn.execute(
                    "SELECT COALESCE(MAX(number), 0) FROM alert_changes WHERE alert_id = ?",
                    (alert_id,),
                ).fetchone()[0]
            )
            if number >= CHANGES_MAX:
                raise TooManyChanges(alert_id)
            seq = next_seq(conn)
            conn.execute(
                """
                INSERT INTO alert_changes
                    (seq, alert_id, number, kind, at, by, text, severity, title, links,
                     next_update_by)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (
                    seq,
                    alert_id,
                    number + 1,
                    kind,
                    now,
                    by,
                    text,
                    severity,
                    title,
                    json.dumps(list(links)),
                    next_update_by if kind == "update" else None,
                ),
            )
            closing = kind != "update"
            conn.execute(
                """
                UPDATE alerts SET
                    current_seq = ?,
                    updated_at = ?,
                    severity = COALESCE(?, severity),
                    title = COALESCE(?, title),
                    next_update_by = ?,
                    status = ?,
                    closed_at = ?
                WHERE id = ?
                """,
                (
                    seq,
                    now,
                    severity,
                    title,
                    None if closing else next_update_by,
                    "open" if kind == "update" else kind,
                    now if closing else None,
                    alert_id,
                ),
            )
            alert = _read_alert(conn, alert_id)
        if alert is None:
            raise UnknownAlert(alert_id)
        return alert

    def targets(self, alert_id: str) -> list[str]:
        """The agents an alert was published for, by username."""
        with self._db.read() as conn:
            return [
                str(row[0])
                for row in conn.execute(
                    "SELECT username FROM alert_targets WHERE alert_id = ? ORDER BY username",
                    (alert_id,),
                )
            ]

    def count_targets(self, alert_id: str) -> int:
        """How many agents an alert was published for."""
        with self._db.read() as conn:
            return int(
                conn.execute(
                    "SELECT COUNT(*) FROM alert_targets WHERE alert_id = ?", (alert_id,)
                ).fetchone()[0]
            )

    def count_audience(self, groups: Sequence[str] | None) -> int:
        """How many agents an alert to `groups` (None: everyone) would target if published now."""
        with self._db.read() as conn:
            if groups is None:
                row = conn.execute(f"SELECT COUNT(*) FROM users u WHERE {_TARGETABLE}").fetchone()
                return int(row[0])
            names = list(dict.fromkeys(groups))
            found: set[str] = set()
            for start in range(0, len(names), _IN_CHUNK):
                chunk = names[start : start + _IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                found.update(
                    str(row[0])
                    for row in conn.execute(
                        f"SELECT u.username FROM users u WHERE {_TARGETABLE} AND "
                        f"{_IN_GROUPS.format(marks=marks)}",
                        chunk,
                    )
                )
            return len(found)

    def first_published(self, issued_by: str | None, publish_key: PublishKey) -> Alert | None:
        """The alert a dispatcher published with this key within the last day, if any.

        PublishKeyConflict when the key came with another request or its alert is gone.
        """
        with self._db.read() as conn:
            return _first_publish(conn, issued_by or "", publish_key, self._clock.now())

    def get(self, alert_id: str) -> Alert | None:
        """One kept alert by id."""
        with self._db.read() as conn:
            return _read_alert(conn, alert_id)

    def since(self, seq: int | None, limit: int, viewer: Viewer | None = None) -> AlertPage:
        """Kept alerts changed after `seq` (exclusive), in the order of their latest change.

        None means every kept alert. With a `viewer`, only the alerts it may see.
        """
        after = seq or 0
        visible = ""
        params: tuple[Any, ...] = (after, limit + 1)
        if viewer is not None and not viewer.sees_all:
            visible = (
                " AND (audience IS NULL OR EXISTS (SELECT 1 FROM alert_targets t"
                " WHERE t.alert_id = alerts.id AND t.username = ?))"
            )
            params = (after, viewer.username, limit + 1)
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_ALERT_SELECT} FROM alerts WHERE current_seq > ?{visible} "
                "ORDER BY current_seq LIMIT ?",
                params,
            ).fetchall()
            purged_through = _purged_through(conn)
            last_seq = max(_max_seq(conn), purged_through)
            oldest = conn.execute("SELECT MIN(current_seq) FROM alerts").fetchone()[0]
            page_rows = rows[:limit]
            changes = _changes_of(conn, [row[1] for row in page_rows])
        served = (_servable_alert(row, changes) for row in page_rows)
        return AlertPage(
            alerts=[alert for alert in served if alert is not None],
            last_seq=last_seq,
            more=len(rows) > limit,
            # A client that names no seq asks for what is kept, so it cannot have missed any.
            gap=seq is not None and seq < purged_through,
            oldest_kept_seq=int(oldest) if oldest is not None else last_seq + 1,
            through_seq=int(page_rows[-1][0]) if page_rows else after,
        )

    def incidents(self, state: IncidentState, drill: bool | None, limit: int) -> list[Alert]:
        """Kept alerts by state (open, closed or all) and drill (None: both), newest first."""
        where = ["1 = 1"]
        params: list[Any] = []
        if state == "open":
            where.append("status = 'open'")
        elif state == "closed":
            where.append("status != 'open'")
        if drill is not None:
            where.append("drill = ?")
            params.append(int(drill))
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_ALERT_SELECT} FROM alerts WHERE {' AND '.join(where)} "
                "ORDER BY seq DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
            changes = _changes_of(conn, [row[1] for row in rows])
        served = (_servable_alert(row, changes) for row in rows)
        return [alert for alert in served if alert is not None]

    def answer_counts(self, alert_ids: Sequence[str]) -> dict[str, AnswerCounts]:
        """Per alert, how many distinct targeted agents answered with each action."""
        counts: dict[str, dict[str, int]] = {}
        ids = list(dict.fromkeys(alert_ids))
        with self._db.read() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(
                    f"""
                    SELECT a.alert_id, a.action, COUNT(DISTINCT a.username) FROM alert_acks a
                    JOIN alert_targets t ON t.alert_id = a.alert_id AND t.username = a.username
                    WHERE a.alert_id IN ({marks}) GROUP BY a.alert_id, a.action
                    """,
                    chunk,
                )
                for alert_id, action, count in rows:
                    counts.setdefault(str(alert_id), {})[str(action)] = int(count)
        return {
            alert_id: AnswerCounts(
                acknowledged=found.get("acknowledged", 0),
                escalated=found.get("escalated", 0),
                unable=found.get("unable", 0),
            )
            for alert_id, found in counts.items()
        }

    def target_counts(self, alert_ids: Sequence[str]) -> dict[str, int]:
        """Per alert, how many agents it was published for."""
        counts: dict[str, int] = {}
        ids = list(dict.fromkeys(alert_ids))
        with self._db.read() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                for alert_id, count in conn.execute(
                    f"SELECT alert_id, COUNT(*) FROM alert_targets WHERE alert_id IN ({marks}) "
                    "GROUP BY alert_id",
                    chunk,
                ):
                    counts[str(alert_id)] = int(count)
        return counts

    def approval_override(self, alert_id: str) -> str | None:
        """Why the alert was published without a second dispatcher, if it was."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT approval_override FROM alerts WHERE id = ?", (alert_id,)
            ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def request_approval(
        self, draft: dict[str, Any], requested_by: str, publish_key: PublishKey | None = None
    ) -> tuple[Approval, bool]:
        """Hold an alert draft until another dispatcher approves or rejects it: (request, True).

        With a `publish_key` this dispatcher used within the last day: (that request, False), or
        PublishKeyConflict when the key came with another draft.
        """
        now = self._clock.now()
        approval = Approval(
            id=str(uuid.uuid4()),
            draft=draft,
            requested_by=requested_by,
            requested_at=now,
            status="pending",
            decided_by=None,
            decided_at=None,
            alert_id=None,
            reason=None,
            publish_key=publish_key,
        )
        with self._db.write() as conn:
            if publish_key is not None:
                first = _first_request(conn, requested_by, publish_key, now)
                if first is not None:
                    return first, False
            conn.execute(
                """
                INSERT INTO alert_approvals
                    (id, draft, requested_by, requested_at, status, publish_key, request_hash)
                VALUES (?, ?, ?, ?, 'pending', ?, ?)
                """,
                (
                    approval.id,
                    json.dumps(draft),
                    requested_by,
                    now,
                    None if publish_key is None else publish_key.key,
                    None if publish_key is None else publish_key.request_hash,
                ),
            )
        return approval, True

    def approval(self, approval_id: str) -> Approval | None:
        """One approval request by id."""
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_APPROVAL_COLUMNS} FROM alert_approvals WHERE id = ?", (approval_id,)
            ).fetchone()
        return None if row is None else _approval(row)

    def approvals(self, status: ApprovalStatus | None, limit: int) -> list[Approval]:
        """Approval requests in one status (None: all), newest first."""
        where, params = ("", ()) if status is None else ("WHERE status = ?", (status,))
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_APPROVAL_COLUMNS} FROM alert_approvals {where} "
                "ORDER BY requested_at DESC, id LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_approval(row) for row in rows]

    def reject_approval(self, approval_id: str, decided_by: str, reason: str) -> Approval:
        """Reject a pending request; UnknownApproval or ApprovalDecided otherwise."""
        now = self._clock.now()
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT status FROM alert_approvals WHERE id = ?", (approval_id,)
            ).fetchone()
            if row is None:
                raise UnknownApproval(approval_id)
            if row[0] != "pending":
                raise ApprovalDecided(str(row[0]))
            conn.execute(
                """
                UPDATE alert_approvals SET status = 'rejected', decided_by = ?, decided_at = ?,
                    reason = ?
                WHERE id = ?
                """,
                (decided_by, now, reason, approval_id),
            )
            found = conn.execute(
                f"SELECT {_APPROVAL_COLUMNS} FROM alert_approvals WHERE id = ?", (approval_id,)
            ).fetchone()
        return _approval(found)

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
                    SELECT 1 FROM alerts WHERE updated_at < ?
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
                "SELECT MAX(current_seq) FROM alerts WHERE updated_at < ?", (cutoff,)
            ).fetchone()[0]
            if highest is None:
                return 0
            # Everything kept about an alert goes with it.
            for table in _PER_ALERT_TABLES:
                conn.execute(
                    f"DELETE FROM {table} WHERE alert_id IN "
                    "(SELECT id FROM alerts WHERE updated_at < ?)",
                    (cutoff,),
                )
            purged = conn.execute("DELETE FROM alerts WHERE updated_at < ?", (cutoff,)).rowcount
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
        self,
        username: str,
        acks: Sequence[NewAck],
        *,
        clock_skew_ms: int = 0,
        device: tuple[str, str] | None = None,
    ) -> list[AckResult]:
        """Store a batch in one transaction; each ack is accepted, duplicate or rejected alone.

        An ack whose acted_at is before its alert was issued, or after now, by more than
        `clock_skew_ms` is rejected. `device` is the (id, name) of the sign-in it came from.
        """
        received_at_ms = round(self._clock.now() * 1000)
        results: list[AckResult] = []
        # BEGIN IMMEDIATE serialises concurrent batches, and ack_id is the primary key, so the
        # same ack arriving twice at once is inserted by exactly one of them.
        with self._db.write() as conn:
            for ack in acks:
                results.append(
                    self._record_one(conn, username, ack, received_at_ms, clock_skew_ms, device)
                )
        return results

    def _record_one(
        self,
        conn: sqlite3.Connection,
        username: str,
        ack: NewAck,
        received_at_ms: int,
        clock_skew_ms: int,
        device: tuple[str, str] | None,
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
                (ack_id, alert_id, username, action, note, acted_at_ms, received_at_ms,
                 device_id, device_name, opened)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                ack.ack_id,
                ack.alert_id,
                username,
                ack.action,
                ack.note,
                ack.acted_at_ms,
                received_at_ms,
                None if device is None else device[0],
                None if device is None else device[1],
                json.dumps(
                    [{"kind": o.kind, "id": o.id, "version": o.version} for o in ack.opened],
                    ensure_ascii=False,
                ),
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

    def answers_of(
        self, username: str, alert_ids: Sequence[str] | None = None, limit: int = 5_000
    ) -> list[Answer]:
        """A user's answers to kept alerts (only `alert_ids` when given), newest `limit`, in the
        order they were received. `username` as stored, the account's own spelling."""
        where = ""
        params: list[Any] = [username]
        if alert_ids is not None:
            if not alert_ids:
                return []
            where = f" AND k.alert_id IN ({', '.join('?' * len(alert_ids))})"
            params.extend(alert_ids)
        params.append(limit)
        with self._db.read() as conn:
            rows = conn.execute(
                f"""
                SELECT {_ANSWER_SELECT} FROM alert_acks k
                JOIN alerts a ON a.id = k.alert_id
                WHERE k.username = ?{where}
                ORDER BY k.rowid DESC LIMIT ?
                """,
                params,
            ).fetchall()
        served = (_servable_answer(row) for row in reversed(rows))
        return [answer for answer in served if answer is not None]

    def last_answer_position(self) -> int:
        """The position of the newest answer received so far (0 when none)."""
        with self._db.read() as conn:
            return int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM alert_acks").fetchone()[0])

    def answers_after(self, position: int, limit: int) -> tuple[list[Answer], int]:
        """Answers received after `position`, in order, and the highest position held now.

        The highest position lets a caller notice that the newest rows were purged, so that it
        never waits for positions SQLite will hand out again.
        """
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_ANSWER_SELECT} FROM alert_acks k WHERE k.rowid > ? "
                "ORDER BY k.rowid LIMIT ?",
                (position, limit),
            ).fetchall()
            highest = int(
                conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM alert_acks").fetchone()[0]
            )
        served = (_servable_answer(row) for row in rows)
        return [answer for answer in served if answer is not None], highest

    def answers_to(self, alert_id: str) -> list[Answer]:
        """Every answer to one alert with the device it came from, in the order received."""
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_ANSWER_SELECT} FROM alert_acks k WHERE k.alert_id = ? ORDER BY k.rowid",
                (alert_id,),
            ).fetchall()
        served = (_servable_answer(row) for row in rows)
        return [answer for answer in served if answer is not None]

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


_ANSWER_SELECT = (
    "CAST(k.ack_id AS BLOB), CAST(k.alert_id AS BLOB), CAST(k.username AS BLOB), "
    "CAST(k.action AS BLOB), CAST(k.note AS BLOB), k.acted_at_ms, k.received_at_ms, "
    "CAST(k.device_id AS BLOB), CAST(k.device_name AS BLOB), k.rowid"
)


def _servable_answer(row: Any) -> Answer | None:
    """The answer of a row, or None (logged) for a row no hub should have stored."""
    ack = _servable_ack("?", row)
    if ack is None:
        return None
    try:
        return Answer(
            ack_id=ack.ack_id,
            alert_id=ack.alert_id,
            username=ack.username,
            action=ack.action,
            note=ack.note,
            acted_at_ms=ack.acted_at_ms,
            received_at_ms=ack.received_at_ms,
            device_id=_optional_text(row[7], "device_id"),
            device_name=_optional_text(row[8], "device_name"),
            position=int(row[9]),
        )
    except (TypeError, ValueError) as exc:
        log.error("An answer cannot be served and is skipped: %s", exc)
        return None


_PER_ALERT_TABLES = (
    "alert_acks",
    "alert_changes",
    "alert_targets",
    "alert_receipts",
    "fallback_notices",
    "survey_answers",
)


_APPROVAL_COLUMNS = (
    "id, draft, requested_by, requested_at, status, decided_by, decided_at, alert_id, reason, "
    "publish_key, request_hash"
)


def _approval(row: Any) -> Approval:
    return Approval(
        id=str(row[0]),
        draft=json.loads(row[1]),
        requested_by=str(row[2]),
        requested_at=float(row[3]),
        status=cast(ApprovalStatus, row[4]),
        decided_by=None if row[5] is None else str(row[5]),
        decided_at=None if row[6] is None else float(row[6]),
        alert_id=None if row[7] is None else str(row[7]),
        reason=None if row[8] is None else str(row[8]),
        publish_key=None if row[9] is None else PublishKey(str(row[9]), str(row[10])),
    )


def _first_request(
    conn: sqlite3.Connection, requested_by: str, publish_key: PublishKey, now: float
) -> Approval | None:
    row = conn.execute(
        f"SELECT {_APPROVAL_COLUMNS} FROM alert_approvals "
        "WHERE requested_by = ? AND publish_key = ?",
        (requested_by, publish_key.key),
    ).fetchone()
    if row is None:
        return None
    first = _approval(row)
    if first.requested_at < now - PUBLISH_KEY_SECONDS:
        # Keys are kept a day, as for published alerts: an older use frees the key.
        conn.execute("UPDATE alert_approvals SET publish_key = NULL WHERE id = ?", (first.id,))
        return None
    if first.publish_key != publish_key:
        raise PublishKeyConflict(
            "this Idempotency-Key was already used for a different alert; "
            "make a new key for a new alert"
        )
    return first


def _check_pending(conn: sqlite3.Connection, approval_id: str) -> None:
    row = conn.execute("SELECT status FROM alert_approvals WHERE id = ?", (approval_id,)).fetchone()
    if row is None:
        raise UnknownApproval(approval_id)
    if row[0] != "pending":
        raise ApprovalDecided(str(row[0]))


def _claim_approval(
    conn: sqlite3.Connection, approval_id: str, decided_by: str, now: float, alert_id: str
) -> None:
    # The status check and the update are one statement inside the publish's write transaction:
    # of many approvals at once, exactly one finds the request pending and publishes.
    claimed = conn.execute(
        """
        UPDATE alert_approvals SET status = 'approved', decided_by = ?, decided_at = ?,
            alert_id = ?
        WHERE id = ? AND status = 'pending'
        """,
        (decided_by, now, alert_id, approval_id),
    ).rowcount
    if claimed == 1:
        return
    row = conn.execute("SELECT status FROM alert_approvals WHERE id = ?", (approval_id,)).fetchone()
    if row is None:
        raise UnknownApproval(approval_id)
    raise ApprovalDecided(str(row[0]))


def next_seq(conn: sqlite3.Connection) -> int:
    """Take the next seq of the one sequence that publishes and changes share (in a write)."""
    # alerts.seq is AUTOINCREMENT, so sqlite_sequence already holds the highest seq ever issued;
    # changes advance it too, and a purged seq is never issued again.
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'alerts'").fetchone()
    issued = max(0 if row is None else int(row[0]), _max_seq(conn), _purged_through(conn))
    seq = issued + 1
    if row is None:
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('alerts', ?)", (seq,))
    else:
        conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'alerts'", (seq,))
    return seq


def _max_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(current_seq), 0) FROM alerts").fetchone()[0])


# Who an alert reaches: enabled agents (dispatchers and admins oversee, they are not targeted).
# One condition for the targets fixed at publish and for the count a dispatcher sees beforehand.
_TARGETABLE = "u.role = 'agent' AND u.disabled_at IS NULL"
_IN_GROUPS = (
    "EXISTS (SELECT 1 FROM group_members m WHERE m.username = u.username "
    "AND m.group_name IN ({marks}))"
)


def _record_targets(conn: sqlite3.Connection, alert_id: str, groups: list[str] | None) -> None:
    if groups is None:
        conn.execute(
            f"""
            INSERT INTO alert_targets (alert_id, username)
            SELECT ?, u.username FROM users u WHERE {_TARGETABLE}
            """,
            (alert_id,),
        )
        return
    for start in range(0, len(groups), _IN_CHUNK):
        chunk = groups[start : start + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        conn.execute(
            f"""
            INSERT OR IGNORE INTO alert_targets (alert_id, username)
            SELECT ?, u.username FROM users u
            WHERE {_TARGETABLE} AND {_IN_GROUPS.format(marks=marks)}
            """,
            (alert_id, *chunk),
        )


def _read_alert(conn: sqlite3.Connection, alert_id: str) -> Alert | None:
    row = conn.execute(f"SELECT {_ALERT_SELECT} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        return None
    return _servable_alert(row, _changes_of(conn, [row[1]]))


def _changes_of(conn: sqlite3.Connection, raw_ids: Sequence[Any]) -> dict[Any, list[Any]]:
    """The change rows of some alerts (ids as read, bytes), by id, in seq order."""
    by_alert: dict[Any, list[Any]] = {}
    ids = list(raw_ids)
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT {_CHANGE_SELECT} FROM alert_changes WHERE CAST(alert_id AS BLOB) IN ({marks})"
            " ORDER BY seq",
            chunk,
        )
        for row in rows:
            by_alert.setdefault(row[1], []).append(row)
    return by_alert


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
    alert = _read_alert(conn, row[1])
    if alert is None:
        raise PublishKeyConflict(
            "the alert first published with this Idempotency-Key is no longer kept; "
            "make a new key to publish it again"
        )
    return alert


def _servable_alert(row: Any, changes: dict[Any, list[Any]]) -> Alert | None:
    """The alert of a row, or None (logged) for a row no hub should have stored."""
    try:
        return _alert(row, [_change(change) for change in changes.get(row[1], [])])
    except (TypeError, ValueError, OverflowError) as exc:
        log.error("Alert seq %s cannot be served and is skipped: %s", row[0], exc)
        return None


def _alert(row: Any, changes: list[AlertChange]) -> Alert:
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
        first_seq=int(row[11]),
        status=_status(row[12]),
        drill=bool(_number(row[13], "drill")),
        audience=_audience(row[14]),
        next_update_by=None if row[15] is None else _number(row[15], "next_update_by"),
        updated_at=None if row[16] is None else _number(row[16], "updated_at"),
        closed_at=None if row[17] is None else _number(row[17], "closed_at"),
        approved_by=_optional_text(row[18], "approved_by"),
        changes=tuple(changes),
    )


def _status(value: object) -> AlertStatus:
    status = _text(value, "status")
    if status not in _STATUSES:
        raise ValueError("status is not one of the protocol's")
    return cast(AlertStatus, status)


def _audience(value: object) -> list[str] | None:
    if value is None:
        return None
    groups = json.loads(_text(value, "audience"))
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise ValueError("audience is not a list of group names")
    return groups


def _change(row: Any) -> AlertChange:
    kind = _text(row[3], "kind")
    if kind not in _CHANGE_KINDS:
        raise ValueError("an update's kind is not one of the protocol's")
    severity = _optional_text(row[7], "severity")
    if severity is not None and severity not in _SEVERITIES:
        raise ValueError("an update's severity is not one of the protocol's")
    links = json.loads(_text(row[9], "links"))
    if not isinstance(links, list) or not all(isinstance(link, str) for link in links):
        raise ValueError("an update's links are not a list of strings")
    return AlertChange(
        seq=int(row[0]),
        number=int(row[2]),
        kind=cast(ChangeKind, kind),
        at=_number(row[4], "at"),
        by=_optional_text(row[5], "by"),
        text=_text(row[6], "text"),
        severity=cast(Severity | None, severity),
        title=_optional_text(row[8], "title"),
        links=links,
        next_update_by=None if row[10] is None else _number(row[10], "next_update_by"),
    )


def _optional_time(value: float | None) -> str | None:
    return None if value is None else rfc3339(value)


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
