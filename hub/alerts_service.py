"""Publishing an alert: the one path used by POST /v1/alerts and `vigil-hub alert publish`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from hub.storage.alerts import PublishKey, PublishKeyConflict, Severity
from hub.storage.content import ContentKind

if TYPE_CHECKING:
    from hub.config import HubSettings
    from hub.storage import Store

TITLE_MAX = 200
BODY_MAX = 10_000
# An alert is about a crisis happening now: a year is far beyond any real one, and keeps every
# expiry a time the protocol can write.
EXPIRES_MAX_DAYS = 365


class InvalidAlert(ValueError):
    """An alert that cannot be published; the message says which field and why.

    `error` is the protocol's error code for the refusal.
    """

    def __init__(self, message: str, error: str = "invalid_request") -> None:
        super().__init__(message)
        self.error = error


class AlertDraft(BaseModel):
    """What a dispatcher sends to publish an alert (the body of POST /v1/alerts)."""

    model_config = ConfigDict(extra="forbid")

    severity: Severity
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    body: str = Field(min_length=1, max_length=BODY_MAX)
    playbook_id: str | None = Field(default=None, min_length=1, max_length=200)
    template_ids: list[str] = Field(default_factory=list, max_length=100)
    requires_ack: bool = True
    expires_at: AwareDatetime | None = Field(
        default=None,
        description=f"After now, and at most {EXPIRES_MAX_DAYS} days ahead.",
    )

    def fingerprint(self) -> str:
        """A hash of what the draft asks for: two drafts with one fingerprint are the same alert."""
        expires = None if self.expires_at is None else round(self.expires_at.timestamp() * 1000)
        canonical = json.dumps(
            {**self.model_dump(mode="json", exclude={"expires_at"}), "expires_at_ms": expires},
            sort_keys=True,
            ensure_ascii=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class PublishedAlert:
    """The alert's protocol object, and whether this call stored it (False: an earlier call did)."""

    alert: dict[str, Any]
    created: bool


def publish_draft(
    store: Store,
    settings: HubSettings,
    draft: AlertDraft,
    *,
    issued_by: str | None,
    idempotency_key: str | None = None,
) -> PublishedAlert:
    """Check a draft's times and linked content, then store it (once per idempotency key)."""
    publish_key = (
        None if idempotency_key is None else PublishKey(idempotency_key, draft.fingerprint())
    )
    try:
        if publish_key is not None:
            # A retry answers what the first request stored, even if its expiry has passed or
            # its playbook was deleted since.
            first = store.alerts.first_published(issued_by, publish_key)
            if first is not None:
                return PublishedAlert(first.to_wire(), created=False)
        expires = _checked_expiry(draft, settings.clock.now())
        _check_linked_content(store, draft)
        alert, created = store.alerts.publish(
            severity=draft.severity,
            title=draft.title,
            body=draft.body,
            playbook_id=draft.playbook_id,
            template_ids=draft.template_ids,
            requires_ack=draft.requires_ack,
            expires_at=expires,
            issued_by=issued_by,
            publish_key=publish_key,
        )
    except PublishKeyConflict as exc:
        raise InvalidAlert(f"Idempotency-Key: {exc}.", "idempotency_key_reused") from exc
    if created:
        store.audit.record(
            "alert.published",
            actor=issued_by,
            subject=alert.id,
            detail={"seq": alert.seq, "severity": alert.severity},
        )
    return PublishedAlert(alert.to_wire(), created)


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
    return publish_draft(store, settings, draft, issued_by=issued_by).alert


def _checked_expiry(draft: AlertDraft, now: float) -> float | None:
    if draft.expires_at is None:
        return None
    expires = draft.expires_at.timestamp()
    if expires <= now:
        raise InvalidAlert("expires_at is not in the future; give a later time or leave it out.")
    if expires > now + EXPIRES_MAX_DAYS * 86_400:
        raise InvalidAlert(
            f"expires_at is more than {EXPIRES_MAX_DAYS} days ahead; give an earlier time "
            "or leave it out."
        )
    return expires


def _check_linked_content(store: Store, draft: AlertDraft) -> None:
    # An alert that points at a playbook or template no agent has would open to nothing.
    missing = []
    if draft.playbook_id is not None and not _is_live(store, "playbook", draft.playbook_id):
        missing.append(f"playbook {draft.playbook_id!r}")
    missing += [
        f"template {template_id!r}"
        for template_id in dict.fromkeys(draft.template_ids)
        if not _is_live(store, "template", template_id)
    ]
    if missing:
        raise InvalidAlert(
            f"no such {', '.join(missing)} on this hub; import the content first or fix the id.",
            "unknown_content",
        )


def _is_live(store: Store, kind: ContentKind, content_id: str) -> bool:
    item = store.content.get(kind, content_id)
    return item is not None and not item.deleted


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "alert"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
