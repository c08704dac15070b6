"""Delivery: receipts from agents' devices, who is reachable now, and where each target of an
alert stands."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, field_validator

from hub.deps import AccessGrantDep, AgentUser, DispatcherUser, StoreDep
from hub.errors import ApiError, error_responses
from hub.routes.acks import ACK_CLOCK_SKEW_SECONDS, BATCH_MAX
from hub.routes.item_batches import canonical_uuid, check_batch, echoed_id
from hub.storage.delivery import NewReceipt, ReceiptResult

router = APIRouter()

GROUP_NAME_MAX = 200


class ReceiptBatch(BaseModel):
    """The request body; items are checked one by one so one bad item cannot sink the rest."""

    model_config = ConfigDict(extra="forbid")

    receipts: list[Any]


class ReceiptItem(BaseModel):
    """One receipt as a client sends it: when its device stored the alert, and showed it."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str
    received_at: str
    shown_at: str | None = None

    @field_validator("alert_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return canonical_uuid(value)

    @field_validator("received_at", "shown_at")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            _millis(value)
        return value

    def to_new_receipt(self) -> NewReceipt:
        """The receipt in the store's terms: times as Unix milliseconds."""
        shown = None if self.shown_at is None else _millis(self.shown_at)
        return NewReceipt(self.alert_id, _millis(self.received_at), shown)


def _millis(value: str) -> int:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an RFC 3339 time such as 2026-11-27T10:42:00.123Z") from None
    if moment.tzinfo is None:
        raise ValueError("must carry a time zone (end it with Z for UTC)")
    try:
        return round(moment.timestamp() * 1000)
    except (OverflowError, ValueError):
        # Year 1 with a positive offset lies before the earliest time Python can represent.
        raise ValueError("is outside the times the hub can store") from None


@router.post("/v1/receipts", responses=error_responses(401, 403, 413, 422))
def post_receipts(
    batch: ReceiptBatch, store: StoreDep, user: AgentUser, grant: AccessGrantDep
) -> dict[str, Any]:
    """Record when the caller's device stored and showed alerts; one result per item, in order."""
    checked = check_batch(
        batch.receipts,
        limit=BATCH_MAX,
        noun="receipts",
        parse=lambda raw: ReceiptItem.model_validate(raw).to_new_receipt(),
        refuse=lambda raw, problems: ReceiptResult(
            echoed_id(raw, "alert_id"), "rejected", "invalid_receipt", problems
        ),
    )
    valid = checked.valid
    outcomes = (
        store.delivery.record_receipts(
            user.username,
            (grant.device_id, grant.device_name),
            valid,
            clock_skew_ms=ACK_CLOCK_SKEW_SECONDS * 1000,
            sees_all=user.has_role("dispatcher"),
        )
        if valid
        else []
    )
    return checked.answer(outcomes)


@router.get("/v1/agents", responses=error_responses(401, 403, 404, 422))
def agents(
    store: StoreDep,
    user: DispatcherUser,
    group: Annotated[str | None, Query(min_length=1, max_length=GROUP_NAME_MAX)] = None,
) -> dict[str, Any]:
    """Every enabled agent (of one group), whether a live stream reaches them, and their devices."""
    if group is not None and store.groups.get(group) is None:
        # A filter naming nothing is a missing resource, not a malformed request.
        raise ApiError(404, "unknown_group", f"group: no group is named {group!r}.")
    return {"agents": [agent.to_wire() for agent in store.delivery.agents(group)]}


@router.get("/v1/alerts/{alert_id}/delivery", responses=error_responses(401, 403, 404))
def alert_delivery(alert_id: str, store: StoreDep, user: DispatcherUser) -> dict[str, Any]:
    """Where each target of an alert stands: silent and unreachable agents first."""
    try:
        canonical = str(uuid.UUID(alert_id))
    except ValueError:
        canonical = None
    delivery = None if canonical is None else store.delivery.delivery(canonical)
    if delivery is None:
        raise ApiError(
            404, "unknown_alert", "No such alert is kept on the hub; it may be past retention."
        )
    return delivery.to_wire()
