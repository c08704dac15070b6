"""Publishing an alert: the one path used by POST /v1/alerts and `vigil-hub alert publish`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from hub.storage.alerts import Severity

if TYPE_CHECKING:
    from hub.config import HubSettings
    from hub.storage import Store

TITLE_MAX = 200
BODY_MAX = 10_000


class InvalidAlert(ValueError):
    """An alert that cannot be published; the message says which field and why."""


class AlertDraft(BaseModel):
    """What a dispatcher sends to publish an alert (the body of POST /v1/alerts)."""

    model_config = ConfigDict(extra="forbid")

    severity: Severity
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    body: str = Field(min_length=1, max_length=BODY_MAX)
    playbook_id: str | None = Field(default=None, min_length=1, max_length=200)
    template_ids: list[str] = Field(default_factory=list, max_length=100)
    requires_ack: bool = True
    expires_at: AwareDatetime | None = Field(default=None, description="Must be in the future.")


def publish_alert(
    store: Store,
    settings: HubSettings,
    *,
    severity: str,
    title: str,
    body: str,
    playbook_id: str | None = None,
    template_ids: Sequence[str] = (),
    requires_ack: bool = True,
    expires_at: datetime | str | None = None,
    issued_by: str | None = None,
) -> dict[str, Any]:
    """Validate and store an alert; returns its protocol object (with id and seq)."""
    try:
        draft = AlertDraft.model_validate(
            {
                "severity": severity,
                "title": title,
                "body": body,
                "playbook_id": playbook_id,
                "template_ids": list(template_ids),
                "requires_ack": requires_ack,
                "expires_at": expires_at,
            }
        )
    except ValidationError as exc:
        raise InvalidAlert(_describe(exc)) from exc
    expires = None if draft.expires_at is None else draft.expires_at.timestamp()
    if expires is not None and expires <= settings.clock.now():
        raise InvalidAlert("expires_at is not in the future; give a later time or leave it out.")
    alert = store.alerts.publish(
        severity=draft.severity,
        title=draft.title,
        body=draft.body,
        playbook_id=draft.playbook_id,
        template_ids=draft.template_ids,
        requires_ack=draft.requires_ack,
        expires_at=expires,
        issued_by=issued_by,
    )
    store.audit.record(
        "alert.published",
        actor=issued_by,
        subject=alert.id,
        detail={"seq": alert.seq, "severity": alert.severity},
    )
    return alert.to_wire()


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "alert"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
