"""Post-incident surveys: agents answer once per resolved alert, dispatchers read the answers."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.deps import AgentUser, DispatcherUser, StoreDep, request_source
from hub.errors import ApiError, error_responses
from hub.routes.acks import ACK_CLOCK_SKEW_SECONDS
from hub.routes.item_batches import aware_time, canonical_uuid, check_batch, echoed_id
from hub.storage.surveys import NewSurvey, SurveyResult, averages

router = APIRouter()

BATCH_MAX = 100
COMMENT_MAX = 2_000
DRILL_LABEL = "DRILL: no action with real patients"
# Newline and tab are how people write comments; every other control character is refused.
_ALLOWED_CONTROLS = frozenset("\n\t")


class SurveyBatch(BaseModel):
    """The request body; items are checked one by one so one bad item cannot sink the rest."""

    model_config = ConfigDict(extra="forbid")

    answers: list[Any]


class SurveyItem(BaseModel):
    """One survey answer as a client sends it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    survey_id: str
    alert_id: str
    clarity: int = Field(ge=1, le=5)
    templates: int | None = Field(default=None, ge=1, le=5)
    comment: str | None = Field(default=None, max_length=COMMENT_MAX)
    answered_at: str

    @field_validator("survey_id", "alert_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return canonical_uuid(value)

    @field_validator("comment")
    @classmethod
    def _plain_text(cls, value: str | None) -> str | None:
        # Format characters (U+202E, zero-width joiners) are text and kept; C0, DEL and C1
        # controls other than newline and tab are not.
        if value is not None:
            for index, char in enumerate(value):
                category = unicodedata.category(char)
                if category == "Cs":
                    # A lone surrogate cannot be stored as UTF-8.
                    raise ValueError(f"holds a lone surrogate at position {index}")
                if category == "Cc" and char not in _ALLOWED_CONTROLS:
                    raise ValueError(
                        f"holds the control character U+{ord(char):04X} at position {index}; "
                        "only newline and tab are allowed"
                    )
        return value

    @field_validator("answered_at")
    @classmethod
    def _rfc3339(cls, value: str) -> str:
        return aware_time(value)

    def to_new_survey(self) -> NewSurvey:
        """The answer in the store's terms: answered_at as Unix milliseconds."""
        answered_at_ms = round(datetime.fromisoformat(self.answered_at).timestamp() * 1000)
        return NewSurvey(
            self.survey_id,
            self.alert_id,
            self.clarity,
            self.templates,
            self.comment,
            answered_at_ms,
        )


@router.post("/v1/surveys", responses=error_responses(401, 403, 413, 422))
def post_surveys(
    batch: SurveyBatch, request: Request, store: StoreDep, user: AgentUser
) -> dict[str, Any]:
    """Store a batch of survey answers; one result per item, in order."""
    checked = check_batch(
        batch.answers,
        limit=BATCH_MAX,
        noun="survey answers",
        parse=lambda raw: SurveyItem.model_validate(raw).to_new_survey(),
        refuse=lambda raw, problems: SurveyResult(
            echoed_id(raw, "survey_id"), "rejected", "invalid_survey", problems
        ),
    )
    valid = checked.valid
    skew_ms = ACK_CLOCK_SKEW_SECONDS * 1000
    outcomes = store.surveys.record(user.username, valid, clock_skew_ms=skew_ms) if valid else []
    store.audit.record_each(
        "survey.recorded",
        actor=user.username,
        source=request_source(request),
        items=[
            (answer.alert_id, {"survey_id": answer.survey_id})
            for answer, outcome in zip(valid, outcomes, strict=True)
            if outcome.status == "accepted"
        ],
    )
    return checked.answer(outcomes)


@router.get("/v1/alerts/{alert_id}/surveys", responses=error_responses(401, 403, 404))
def alert_surveys(alert_id: str, store: StoreDep, user: DispatcherUser) -> dict[str, Any]:
    """The survey answers to one alert and their averages; a drill's are marked as such."""
    try:
        canonical = str(uuid.UUID(alert_id))
    except ValueError:
        canonical = None
    alert = store.alerts.get(canonical) if canonical is not None else None
    if canonical is None or alert is None:
        raise ApiError(
            404, "unknown_alert", "No such alert is kept on the hub; it may be past retention."
        )
    answers = store.surveys.for_alert(canonical)
    return {
        "alert_id": canonical,
        "title": alert.title,
        "status": alert.status,
        "drill": alert.drill,
        "label": DRILL_LABEL if alert.drill else None,
        "targeted": store.alerts.count_targets(canonical),
        "answers": [answer.to_wire() for answer in answers],
        "averages": averages(answers),
    }
