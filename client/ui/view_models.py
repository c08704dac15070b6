"""What the windows show, as plain data: built on worker threads from the cache and the outbox.

No Qt here, so preparing an alert or a history row never loads a window's module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from client.core.models import Alert

HistoryAckState = Literal["unanswered", "pending", "synced", "rejected"]


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
