"""Alerts in their incident states (drill, updated, resolved, retracted) for the UI tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from client.core.models import Alert, AlertUpdate

NOW = datetime(2026, 12, 3, 8, 12, tzinfo=UTC)
RLO = "\u202e"
HOSTILE = f"<b>bold</b> <img src='https://x.test/p.png'> {RLO}fdp.exe & <script>x()</script>"


def stamp(when: datetime) -> str:
    """An RFC 3339 time as the hub writes it."""
    return when.isoformat().replace("+00:00", "Z")


def incident(
    seq: int = 1,
    severity: str = "critical",
    *,
    drill: bool = False,
    title: str = "Video visits down in the West region",
    body: str = "Move today's visits to phone.",
    next_update_by: datetime | None = None,
) -> Alert:
    """An open alert as first published."""
    return Alert(
        id=f"alert-{seq}",
        seq=seq,
        severity=severity,
        title=title,
        body=body,
        playbook_id=None,
        template_ids=(),
        requires_ack=True,
        issued_at=stamp(NOW - timedelta(minutes=5)),
        expires_at=None,
        issued_by="dora",
        drill=drill,
        next_update_by=stamp(next_update_by) if next_update_by else None,
    )


def changed(
    alert: Alert,
    kind: str = "update",
    text: str = "Phone lines are back for the East region.",
    *,
    severity: str | None = None,
    links: tuple[str, ...] = (),
    by: str = "dora",
    at: datetime = NOW,
    next_update_by: datetime | None = None,
) -> Alert:
    """`alert` after one more change (an update, its resolution or its retraction)."""
    update = AlertUpdate(
        number=len(alert.updates) + 1,
        kind=kind,
        at=stamp(at),
        by=by,
        text=text,
        severity=severity,
        title=None,
        links=links,
        next_update_by=stamp(next_update_by) if next_update_by else None,
    )
    return replace(
        alert,
        seq=alert.seq + 100,
        severity=severity or alert.severity,
        status={"update": "open"}.get(kind, kind),
        next_update_by=stamp(next_update_by) if next_update_by else None,
        updated_at=stamp(at),
        updates=(*alert.updates, update),
    )
