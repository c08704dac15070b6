"""Delivery receipts: when this computer received each alert and when its pop-up was on screen.

Both are queued in the cache (the received time in the same transaction that stores the alert,
so a SIGKILL can never keep an alert and lose its receipt) under the signed-in user, and sent with
that user's session by POST /v1/receipts: at once when online, otherwise at the next sync, each
until the hub accepts it. The hub keeps the earliest times, so sending one again is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from client.core.errors import BadResponse, RequestRefused
from client.core.events import Event

if TYPE_CHECKING:
    from client.core.cache import Cache
    from client.core.hub_client import HubClient

log = logging.getLogger(__name__)

RECEIPTS_PATH = "/v1/receipts"
# Enough batches for a day's backlog; the rest goes with the next flush.
MAX_BATCHES = 20


@dataclass(frozen=True)
class Receipt:
    """One alert's receipt as POST /v1/receipts takes it."""

    alert_id: str
    received_at: str
    shown_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The item as the hub takes it (shown_at only once the alert was shown)."""
        body: dict[str, Any] = {"alert_id": self.alert_id, "received_at": self.received_at}
        if self.shown_at is not None:
            body["shown_at"] = self.shown_at
        return body


@dataclass(frozen=True)
class ReceiptState:
    """A stored receipt and what the hub has accepted of it (`refused`: why it never will)."""

    receipt: Receipt
    received_sent: bool
    shown_sent: bool
    refused: str | None


@dataclass(frozen=True)
class ReceiptFlush:
    """What one flush did; `unsupported` when the hub has no receipts endpoint (kept queued)."""

    accepted: int = 0
    refused: int = 0
    unsupported: bool = False


class Receipts:
    """The desk's side: mark an alert shown for the signed-in user. Event `queued` (how many
    receipts wait) fires whenever one is queued, so they can be sent at once."""

    def __init__(self, cache: Cache, current_user: Callable[[], str | None]) -> None:
        self._cache = cache
        self._current_user = current_user
        self.queued: Event[int] = Event("receipts.queued")

    def mark_shown(self, alert_id: str) -> bool:
        """The alert's pop-up is on screen now; False when nobody is signed in or it was
        already marked shown (the first time counts)."""
        user = self._current_user()
        if user is None or not alert_id:
            return False
        if not self._cache.mark_shown(alert_id, author=user):
            return False
        self.queued.emit(1)
        return True


class ReceiptSender:
    """Sends `author`'s unsent receipts with the hub session the caller holds for that user."""

    def __init__(self, cache: Cache, hub: HubClient, *, author: str) -> None:
        self._cache = cache
        self._hub = hub
        self._author = author

    def flush(self) -> ReceiptFlush:
        """Send until nothing waits; raises HubError (the rest stays queued) when the hub cannot
        take them now. A hub without the endpoint (404) leaves them queued and says so."""
        accepted = refused = 0
        for _ in range(MAX_BATCHES):
            batch = self._cache.unsent_receipts(author=self._author)
            if not batch:
                break
            try:
                body = self._hub.post_json(
                    RECEIPTS_PATH, {"receipts": [receipt.to_json() for receipt in batch]}
                )
            except RequestRefused as exc:
                if exc.status == 404:
                    log.info("the hub takes no receipts yet; %d stay queued", len(batch))
                    return ReceiptFlush(accepted, refused, unsupported=True)
                raise
            ok, bad = _parse_results(body, batch)
            self._cache.receipts_accepted(ok, author=self._author)
            for receipt, reason in bad:
                log.warning("hub refused the receipt of alert %s: %s", receipt.alert_id, reason)
                self._cache.receipt_refused(receipt.alert_id, reason, author=self._author)
            accepted += len(ok)
            refused += len(bad)
            if len(ok) + len(bad) < len(batch):
                raise BadResponse(
                    f"The hub answered for {len(ok) + len(bad)} of {len(batch)} receipts; the "
                    "others stay queued and are sent again."
                )
        return ReceiptFlush(accepted, refused)


def _parse_results(
    body: Any, batch: list[Receipt]
) -> tuple[list[Receipt], list[tuple[Receipt, str]]]:
    """The batch's receipts the hub accepted, and those it refused with the reason."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise BadResponse("The hub's answer to the receipts has no list of results.")
    by_alert = {receipt.alert_id: receipt for receipt in batch}
    accepted: dict[str, Receipt] = {}
    refused: dict[str, tuple[Receipt, str]] = {}
    for raw in body["results"]:
        if not isinstance(raw, dict) or raw.get("alert_id") not in by_alert:
            continue
        receipt = by_alert[raw["alert_id"]]
        if raw.get("status") == "accepted":
            accepted[receipt.alert_id] = receipt
        elif raw.get("status") == "rejected":
            error = raw.get("error")
            refused[receipt.alert_id] = (receipt, error if isinstance(error, str) else "rejected")
    return list(accepted.values()), list(refused.values())
