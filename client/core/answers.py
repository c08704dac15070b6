"""An alert's answer: what became of the agent's acknowledgements of one alert.

One model for every place that shows it (the pop-up, the library's history, `vigil alerts`): an
answer that stands (waiting to sync, or accepted by the hub) is the answer, the latest one if
there are several; a refused one counts only when nothing stands, because then the alert still
needs answering. Outbox states are compared by value, so this module loads without the outbox
(and its SQLite layer).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from client.core.outbox import AckRecord

AnswerState = Literal["unanswered", "pending", "synced", "rejected"]

_ACTION_WORDS = {
    "acknowledged": "Acknowledged",
    "escalated": "Escalated",
    "unable": "Unable to act",
}


@dataclass(frozen=True)
class AlertAnswer:
    """The agent's answer to one alert: its state, the action, and the hub's reason if refused."""

    state: AnswerState = "unanswered"
    action: str | None = None
    reason: str = ""
    author: str | None = None

    @property
    def stands(self) -> bool:
        """Whether the alert is answered (recorded and not refused): no reminder needed."""
        return self.state in ("pending", "synced")

    def describe(self, *, requires_ack: bool) -> str:
        """The answer in words, e.g. "Acknowledged · waiting to sync"."""
        if self.state == "unanswered":
            return "Not answered yet" if requires_ack else "No answer needed"
        action = _ACTION_WORDS.get(self.action or "", self.action or "Answered")
        if self.state == "pending":
            return f"{action} · waiting to sync"
        if self.state == "synced":
            return f"{action} · synced"
        return f"{action} · rejected by the hub: {self.reason or 'no reason given'}"


def answer_for(acks: Iterable[AckRecord], *, author: str | None = None) -> AlertAnswer:
    """The answer to an alert from its acks (oldest first); with `author`, only that user's."""
    standing: AckRecord | None = None
    refused: AckRecord | None = None
    for ack in acks:
        if author is not None and ack.author not in (author, None):
            continue
        if ack.state == "dismissed":
            # A refused answer the agent cleared: the alert waits for a new answer.
            continue
        if ack.state == "rejected":
            refused = ack
        else:
            standing = ack
    chosen = standing or refused
    if chosen is None:
        return AlertAnswer()
    state: AnswerState = "synced" if chosen.state == "synced" else "pending"
    if chosen is refused:
        return AlertAnswer(
            "rejected", chosen.action, chosen.detail or chosen.error or "", chosen.author
        )
    return AlertAnswer(state, chosen.action, "", chosen.author)
