"""Governance: which playbook and template versions an agent had on screen for an alert.

The UI reports each one as it is shown; they are kept per user and alert (in the cache) and sent
with that user's answer to the alert as `opened`, so a review can tell which approved words the
agent worked from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from client.core.cache import Cache

OPENED_KINDS = ("playbook", "template")
MAX_ID_CHARS = 200
# The hub takes at most this many per ack; the first ones opened are the ones sent.
MAX_OPENED_PER_ACK = 50


@dataclass(frozen=True)
class OpenedItem:
    """One content version opened for an alert: kind (playbook or template), id and version."""

    kind: str
    id: str
    version: int

    def __post_init__(self) -> None:
        if self.kind not in OPENED_KINDS:
            raise ValueError(f"opened kind must be playbook or template, not {self.kind!r}")
        if not isinstance(self.id, str) or not 1 <= len(self.id) <= MAX_ID_CHARS:
            raise ValueError(f"opened id must be 1-{MAX_ID_CHARS} characters")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            raise ValueError(f"opened version must be a whole number from 1, not {self.version!r}")

    def to_json(self) -> dict[str, Any]:
        """The item as POST /v1/acks takes it in `opened`."""
        return {"kind": self.kind, "id": self.id, "version": self.version}


class OpenedContent:
    """Records what the signed-in user opened for an alert; safe to call from any thread."""

    def __init__(self, cache: Cache, current_user: Callable[[], str | None]) -> None:
        self._cache = cache
        self._current_user = current_user

    def opened(self, alert_id: str, kind: str, id: str, version: int) -> bool:
        """The UI showed this playbook or template version for the alert. False (nothing kept)
        when nobody is signed in; ValueError for a kind, id or version the hub would refuse."""
        item = OpenedItem(kind, id, version)
        user = self._current_user()
        if user is None or not alert_id:
            return False
        self._cache.record_opened(alert_id, item, author=user)
        return True

    def for_alert(self, alert_id: str, author: str) -> tuple[OpenedItem, ...]:
        """What `author` opened for the alert (at most what one ack carries)."""
        return self._cache.opened_for(alert_id, author=author)[:MAX_OPENED_PER_ACK]
