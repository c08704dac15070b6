"""POST /v1/acks: a batch of acknowledgements, each accepted, duplicate or rejected on its own."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from hub.deps import CURSOR_MAX, AccessGrantDep, AgentUser, StoreDep, request_source
from hub.errors import error_responses
from hub.routes.alerts import BrokerDep
from hub.routes.item_batches import aware_time, canonical_uuid, check_batch, echoed_id
from hub.storage.alerts import AckAction, AckResult, NewAck, OpenedContent

router = APIRouter()

BATCH_MAX = 500
# A laptop clock set by hand with the wrong time zone is off by up to 14 hours; an ack that far
# off is still the agent's real answer and must not be lost. Beyond a day it cannot be right.
ACK_CLOCK_SKEW_SECONDS = 86_400
NOTE_MAX = 2_000
OPENED_MAX = 50
CONTENT_ID_MAX = 200


class AckBatch(BaseModel):
    """The request body; items are checked one by one so one bad item cannot sink the rest."""

    model_config = ConfigDict(extra="forbid")

    acks: list[Any]


class OpenedItem(BaseModel):
    """A playbook or template version the agent opened before answering."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["playbook", "template"]
    id: str = Field(min_length=1, max_length=CONTENT_ID_MAX)
    # Strict: `true` or "3" is not a version a client could have opened.
    version: Annotated[StrictInt, Field(ge=1, le=CURSOR_MAX)]


class AckItem(BaseModel):
    """One acknowledgement as a client sends it."""

    model_config = ConfigDict(extra="forbid")

    ack_id: str
    alert_id: str
    action: AckAction
    note: str | None = Field(default=None, max_length=NOTE_MAX)
    acted_at: str
    opened: list[OpenedItem] = Field(default_factory=list, max_length=OPENED_MAX)

    @field_validator("ack_id", "alert_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return canonical_uuid(value)

    @field_validator("acted_at")
    @classmethod
    def _rfc3339(cls, value: str) -> str:
        return aware_time(value)

    def to_new_ack(self) -> NewAck:
        """The ack in the store's terms: acted_at as Unix milliseconds."""
        acted_at_ms = round(datetime.fromisoformat(self.acted_at).timestamp() * 1000)
        opened = tuple(OpenedContent(o.kind, o.id, o.version) for o in self.opened)
        return NewAck(self.ack_id, self.alert_id, self.action, self.note, acted_at_ms, opened)


@router.post("/v1/acks", responses=error_responses(401, 403, 413, 422))
def post_acks(
    batch: AckBatch,
    request: Request,
    store: StoreDep,
    broker: BrokerDep,
    user: AgentUser,
    grant: AccessGrantDep,
) -> dict[str, Any]:
    """Store a batch of acks; one result per item, in order.

    Each accepted ack reaches every open stream of the user as an `answer`.
    """
    checked = check_batch(
        batch.acks,
        limit=BATCH_MAX,
        noun="acknowledgements",
        parse=lambda raw: AckItem.model_validate(raw).to_new_ack(),
        refuse=lambda raw, problems: AckResult(
            echoed_id(raw, "ack_id"), "rejected", "invalid_ack", problems
        ),
    )
    valid = checked.valid
    skew_ms = ACK_CLOCK_SKEW_SECONDS * 1000
    device = (grant.device_id, grant.device_name)
    outcomes = (
        store.alerts.record_acks(user.username, valid, clock_skew_ms=skew_ms, device=device)
        if valid
        else []
    )
    if any(outcome.status == "accepted" for outcome in outcomes):
        # The broker reads new answers from the store, so other processes' answers come the
        # same way; this only saves the wait for its next poll.
        broker.notify()
    store.audit.record_each(
        "ack.recorded",
        actor=user.username,
        source=request_source(request),
        items=[
            (ack.alert_id, {"ack_id": ack.ack_id, "action": ack.action})
            for ack, outcome in zip(valid, outcomes, strict=True)
            if outcome.status == "accepted"
        ],
    )
    return checked.answer(outcomes)
