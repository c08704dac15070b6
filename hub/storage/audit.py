"""The audit trail: who did what, when, from where, and how it went.

Callers pass names, ids and outcomes only: never a password, code, token or secret. `detail` is a
flat map of short values, stored as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.clock import rfc3339

if TYPE_CHECKING:
    from hub.clock import Clock
    from hub.storage.db import Database

SCHEMA: list[str] = [
    """
    CREATE TABLE audit_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        event TEXT NOT NULL,
        actor TEXT,
        subject TEXT,
        source TEXT,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL
    )
    """,
    "CREATE INDEX audit_events_at ON audit_events (at)",
]

# Long enough for any name or address; keeps one hostile caller from filling the disk per event.
_FIELD_MAX = 200

DetailValue = str | int | None


@dataclass(frozen=True)
class AuditEvent:
    """One recorded event."""

    id: int
    at: float
    event: str
    actor: str | None
    subject: str | None
    source: str | None
    outcome: str
    detail: dict[str, DetailValue]

    def to_wire(self) -> dict[str, Any]:
        """The protocol's audit event object."""
        return {
            "id": self.id,
            "at": rfc3339(self.at),
            "event": self.event,
            "actor": self.actor,
            "subject": self.subject,
            "source": self.source,
            "outcome": self.outcome,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AuditQuery:
    """Which events to read: all filters are optional; `after` is the id paging cursor."""

    since: float | None = None
    until: float | None = None
    user: str | None = None
    event: str | None = None
    after: int = 0
    limit: int = 100


class AuditStore:
    """Owns the audit_events table."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def record(
        self,
        event: str,
        *,
        actor: str | None,
        subject: str | None = None,
        source: str | None = None,
        outcome: str = "ok",
        detail: Mapping[str, DetailValue] | None = None,
    ) -> None:
        """Append one event, stamped with the hub's clock."""
        self.record_each(
            event, actor=actor, source=source, outcome=outcome, items=[(subject, detail)]
        )

    def record_each(
        self,
        event: str,
        *,
        actor: str | None,
        source: str | None = None,
        outcome: str = "ok",
        items: Sequence[tuple[str | None, Mapping[str, DetailValue] | None]],
    ) -> None:
        """Append one event per (subject, detail) item in one transaction, e.g. a batch of acks."""
        now = self._clock.now()
        rows = [
            (
                now,
                event[:_FIELD_MAX],
                _cut(actor),
                _cut(subject),
                _cut(source),
                outcome[:_FIELD_MAX],
                json.dumps(
                    {str(key)[:_FIELD_MAX]: _cut(value) for key, value in (detail or {}).items()},
                    ensure_ascii=False,
                    sort_keys=True,
                ),
            )
            for subject, detail in items
        ]
        if not rows:
            return
        with self._db.write() as conn:
            conn.executemany(
                """
                INSERT INTO audit_events (at, event, actor, subject, source, outcome, detail)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
                rows,
            )

    def query(self, query: AuditQuery) -> list[AuditEvent]:
        """Events matching every given filter, oldest first, at most `limit` after id `after`.

        `user` matches the actor or the subject in any letter case; `event` is a name, or a
        prefix ending in `*` (e.g. `user.*`).
        """
        clauses = ["id > ?"]
        params: list[Any] = [query.after]
        if query.since is not None:
            clauses.append("at >= ?")
            params.append(query.since)
        if query.until is not None:
            clauses.append("at < ?")
            params.append(query.until)
        if query.user is not None:
            clauses.append("(actor = ? COLLATE NOCASE OR subject = ? COLLATE NOCASE)")
            params += [query.user, query.user]
        if query.event is not None:
            if query.event.endswith("*"):
                clauses.append("substr(event, 1, ?) = ?")
                prefix = query.event[:-1]
                params += [len(prefix), prefix]
            else:
                clauses.append("event = ?")
                params.append(query.event)
        params.append(query.limit)
        with self._db.read() as conn:
            rows = conn.execute(
                f"""
                SELECT id, at, event, actor, subject, source, outcome, detail FROM audit_events
                WHERE {" AND ".join(clauses)} ORDER BY id LIMIT ?
                """,
                params,
            ).fetchall()
        return [
            AuditEvent(
                id=row["id"],
                at=row["at"],
                event=row["event"],
                actor=row["actor"],
                subject=row["subject"],
                source=row["source"],
                outcome=row["outcome"],
                detail=json.loads(row["detail"]),
            )
            for row in rows
        ]

    def purge(self, *, retention_seconds: float) -> int:
        """Delete the events older than the retention period; returns how many went."""
        with self._db.write() as conn:
            return conn.execute(
                "DELETE FROM audit_events WHERE at < ?", (self._clock.now() - retention_seconds,)
            ).rowcount


def _cut(value: DetailValue) -> DetailValue:
    return value[:_FIELD_MAX] if isinstance(value, str) else value
