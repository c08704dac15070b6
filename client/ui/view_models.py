"""What the windows show, as plain data: built on worker threads from the cache and the outbox.

No Qt here, so preparing an alert or a history row never loads a window's module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from client.core.models import Alert
from client.core.reminders import parse_time

_EARLIEST = datetime.min.replace(tzinfo=UTC)

HistoryAckState = Literal["unanswered", "pending", "synced", "rejected"]
SEVERITY_RANK = {"critical": 0, "major": 1, "minor": 2, "info": 3}


def waiting_order(alert: Alert) -> tuple[int, bool, datetime, int]:
    """Sort key for alerts waiting for the agent: most severe first, then oldest first.

    An unreadable issue time sorts after the readable ones; the sequence number breaks ties.
    """
    issued = parse_time(alert.issued_at)
    return (
        SEVERITY_RANK.get(alert.severity, len(SEVERITY_RANK)),
        issued is None,
        issued or _EARLIEST,
        alert.seq,
    )


@dataclass(frozen=True)
class AlertCard:
    """An alert with the titles of what it links to, as the pop-up shows it."""

    alert: Alert
    playbook_title: str | None = None
    templates: tuple[tuple[str, str], ...] = ()  # (template_id, title)


@dataclass(frozen=True)
class AlertHistoryEntry:
    """One alert in the history, with what became of the agent's answer to it."""

    alert: Alert
    ack_state: HistoryAckState = "unanswered"
    action: str | None = None
    reason: str = ""
    # The other computer's name when the agent answered there (the hub told this one).
    answered_on: str | None = None
    # An update came after the agent's answer: they have not seen it on screen.
    updated_since_answer: bool = False
