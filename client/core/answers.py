"""An alert's answer: what became of the agent's acknowledgements of one alert.

One model for every place that shows it (the pop-up, the library's history, `vigil alerts`): an
answer that stands (waiting to sync, or accepted by the hub) is the answer, the latest one if
there are several; a refused one counts only when nothing stands, because then the alert still
needs answering. The hub's record of the user's answers (sent from any of their computers) counts
as accepted: an alert answered on another computer is answered here too. Outbox states are
compared by value, so this module loads without the outbox (and its SQLite layer).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from client.core.errors import BadResponse

if TYPE_CHECKING:
    from client.core.cache import Cache
    from client.core.outbox import AckRecord, Outbox

log = logging.getLogger(__name__)

AnswerState = Literal["unanswered", "pending", "synced", "rejected"]

_ACTION_WORDS = {
    "acknowledged": "Acknowledged",
    "escalated": "Escalated",
    "unable": "Unable to act",
}


@dataclass(frozen=True)
class HubAnswer:
    """One of the user's answers as the hub holds it (stream `answer(s)`, catch-up `answers`).

    `note` and `device_name` are the user's own text from the hub: plain text, never markup.
    """

    ack_id: str
    alert_id: str
    action: str
    note: str | None
    acted_at: str
    received_at: str | None
    device_id: str | None
    device_name: str | None

    @classmethod
    def from_json(cls, raw: Any) -> HubAnswer:
        """Parse one answer object; BadResponse when it does not match the protocol."""
        if not isinstance(raw, dict):
            raise BadResponse("The hub sent an answer that is not a JSON object.")
        required: dict[str, str] = {}
        for name in ("ack_id", "alert_id", "action", "acted_at"):
            value = raw.get(name)
            if not isinstance(value, str) or not value:
                raise BadResponse(f"The hub sent an answer with a missing or malformed '{name}'.")
            required[name] = value
        if required["action"] not in _ACTION_WORDS:
            raise BadResponse(f"The hub sent an answer with action {required['action']!r}.")
        optional = {
            name: raw.get(name) for name in ("note", "received_at", "device_id", "device_name")
        }
        for name, value in optional.items():
            if value is not None and not isinstance(value, str):
                raise BadResponse(f"The hub sent an answer with a malformed '{name}'.")
        return cls(
            ack_id=required["ack_id"],
            alert_id=required["alert_id"],
            action=required["action"],
            note=optional["note"],
            acted_at=required["acted_at"],
            received_at=optional["received_at"],
            device_id=optional["device_id"],
            device_name=optional["device_name"],
        )


def parse_hub_answers(raw: Any, where: str) -> list[HubAnswer]:
    """The well-formed answers of a JSON list (others are logged and skipped); [] if not a list."""
    if not isinstance(raw, list):
        return []
    answers: list[HubAnswer] = []
    for item in raw:
        try:
            answers.append(HubAnswer.from_json(item))
        except BadResponse as exc:
            log.warning("Skipping a malformed answer (%s): %s", where, exc.message)
    return answers


@dataclass(frozen=True)
class AlertAnswer:
    """The agent's answer to one alert: its state, the action, and the hub's reason if refused.

    `device_name` is set when the answer came from the hub's record (maybe another computer).
    """

    state: AnswerState = "unanswered"
    action: str | None = None
    reason: str = ""
    author: str | None = None
    device_name: str | None = None

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


def answer_for(
    acks: Iterable[AckRecord],
    *,
    author: str | None = None,
    hub_answers: Iterable[HubAnswer] = (),
) -> AlertAnswer:
    """The answer to an alert from its acks (oldest first) and `author`'s answers as the hub holds
    them (oldest first); with `author`, only that user's acks."""
    acks = list(acks)
    accepted = {answer.ack_id: answer for answer in hub_answers}
    local, chosen = _local_answer(acks, author)
    if local.state == "pending" and chosen is not None and chosen.ack_id in accepted:
        # The hub already has it (its answer to this computer's upload is on the way).
        return AlertAnswer("synced", local.action, "", local.author)
    if local.stands:
        return local
    if accepted:
        latest = list(accepted.values())[-1]
        return AlertAnswer("synced", latest.action, "", author, latest.device_name)
    return local


def _local_answer(
    acks: Iterable[AckRecord], author: str | None
) -> tuple[AlertAnswer, AckRecord | None]:
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
        return AlertAnswer(), None
    state: AnswerState = "synced" if chosen.state == "synced" else "pending"
    if chosen is refused:
        reason = chosen.detail or chosen.error or ""
        return AlertAnswer("rejected", chosen.action, reason, chosen.author), chosen
    return AlertAnswer(state, chosen.action, "", chosen.author), chosen


class Answers:
    """The signed-in user's answers, merged from this computer's outbox and the hub's record;
    another user of the same profile never sees them. Safe to call from any thread."""

    def __init__(
        self, cache: Cache, outbox: Outbox, current_user: Callable[[], str | None]
    ) -> None:
        self._cache = cache
        self._outbox = outbox
        self._current_user = current_user

    def answered_alert_ids(self) -> set[str]:
        """The alerts the hub says the signed-in user answered (on any computer): no pop-up,
        no reminder. Empty when nobody is signed in."""
        user = self._current_user()
        return set() if user is None else self._cache.hub_answered_alert_ids(owner=user)

    def hub_answer(self, alert_id: str) -> HubAnswer | None:
        """The signed-in user's latest answer to the alert as the hub holds it, or None."""
        user = self._current_user()
        if user is None:
            return None
        answers = self._cache.hub_answers(alert_id, owner=user)
        return answers[-1] if answers else None

    def answer(self, alert_id: str) -> AlertAnswer:
        """The signed-in user's answer to the alert, from both sources."""
        user = self._current_user()
        hub = self._cache.hub_answers(alert_id, owner=user) if user is not None else []
        return answer_for(self._outbox.for_alert(alert_id), author=user, hub_answers=hub)
