"""Alerts as incidents: publish, approve, update, resolve, retract and read them.

The one path used by the /v1 alert endpoints and `vigil-hub alert ...`: the same checks, the same
audit events, whoever asks.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from hub.storage.alerts import (
    Alert,
    AlertClosed,
    Approval,
    ApprovalDecided,
    ApprovalStatus,
    ChangeKind,
    IncidentState,
    PublishKey,
    PublishKeyConflict,
    Severity,
    TooManyChanges,
    UnknownAlert,
    UnknownApproval,
)
from hub.storage.content import ContentKind

if TYPE_CHECKING:
    from hub.config import HubSettings
    from hub.storage import Store

TITLE_MAX = 200
BODY_MAX = 10_000
# An alert is about a crisis happening now: a year is far beyond any real one, and keeps every
# expiry a time the protocol can write.
EXPIRES_MAX_DAYS = 365
# A promised next update further ahead than a week is no promise an agent can plan around.
NEXT_UPDATE_MAX_DAYS = 7
AUDIENCE_MAX = 50
GROUP_NAME_MAX = 64
OVERRIDE_MAX = 500
NOTE_MAX = 2_000
LINKS_MAX = 10
LINK_MAX = 2_000
INCIDENTS_MAX = 1_000
# Explicit bidi controls reorder the text around them: in an update they could make one
# instruction read as another. Other control characters have no place in it either.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


class AlertRefused(Exception):
    """A change to alerts that was not made: `status` and `error` for HTTP, a message for people."""

    def __init__(self, message: str, error: str, status: int) -> None:
        super().__init__(message)
        self.error = error
        self.status = status


class InvalidAlert(AlertRefused, ValueError):
    """An alert that cannot be published; the message says which field and why.

    `error` is the protocol's error code for the refusal.
    """

    def __init__(self, message: str, error: str = "invalid_request") -> None:
        super().__init__(message, error, 422)


def _plain_text(value: str, *, multiline: bool) -> str:
    # Only what a person can read in order: no cursor or line control, no bidi override.
    for char in value:
        allowed = multiline and char in "\n\t"
        if not allowed and (char in _BIDI_CONTROLS or unicodedata.category(char) == "Cc"):
            raise ValueError(
                f"holds the control character U+{ord(char):04X}; use printable characters only"
            )
    return value


def _https_link(value: str) -> str:
    if len(value) > LINK_MAX:
        raise ValueError(f"a link is longer than {LINK_MAX:,} characters")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValueError("a link is not a URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("links must be https:// addresses with a host")
    if any(
        char.isspace() or char in _BIDI_CONTROLS or unicodedata.category(char) == "Cc"
        for char in value
    ):
        raise ValueError("a link holds a space, control or bidi character")
    return value


def _group_name(value: str) -> str:
    if not value.strip():
        raise ValueError("a group name is blank")
    return _plain_text(value, multiline=False)


GroupName = Annotated[
    str, Field(min_length=1, max_length=GROUP_NAME_MAX), AfterValidator(_group_name)
]
UpdateText = Annotated[
    str,
    Field(min_length=1, max_length=BODY_MAX),
    AfterValidator(lambda value: _plain_text(value, multiline=True)),
]
UpdateTitle = Annotated[
    str,
    Field(min_length=1, max_length=TITLE_MAX),
    AfterValidator(lambda value: _plain_text(value, multiline=False)),
]
Note = Annotated[
    str,
    Field(min_length=1, max_length=NOTE_MAX),
    AfterValidator(lambda value: _plain_text(value, multiline=True)),
]
Link = Annotated[str, AfterValidator(_https_link)]


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
    drill: bool = False
    audience: list[GroupName] | None = Field(
        default=None,
        min_length=1,
        max_length=AUDIENCE_MAX,
        description="Group names; omitted or null: every agent.",
    )
    next_update_by: AwareDatetime | None = Field(
        default=None, description=f"After now, and at most {NEXT_UPDATE_MAX_DAYS} days ahead."
    )
    override_approval: str | None = Field(
        default=None,
        min_length=1,
        max_length=OVERRIDE_MAX,
        description="Why a live critical alert goes out without a second dispatcher.",
    )

    def fingerprint(self) -> str:
        """A hash of what the draft asks for: two drafts with one fingerprint are the same alert."""
        expires = None if self.expires_at is None else round(self.expires_at.timestamp() * 1000)
        # Fields left at their defaults are left out, so a draft without the incident fields
        # hashes as it did before they existed.
        incident = self.model_dump(
            mode="json",
            include={"drill", "audience", "override_approval"},
            exclude_defaults=True,
        )
        if self.next_update_by is not None:
            incident["next_update_by_ms"] = round(self.next_update_by.timestamp() * 1000)
        canonical = json.dumps(
            {
                **self.model_dump(
                    mode="json",
                    exclude={
                        "expires_at",
                        "drill",
                        "audience",
                        "next_update_by",
                        "override_approval",
                    },
                ),
                "expires_at_ms": expires,
                **incident,
            },
            sort_keys=True,
            ensure_ascii=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


class AlertUpdateDraft(BaseModel):
    """An update to an open alert (the body of POST /v1/alerts/{id}/updates)."""

    model_config = ConfigDict(extra="forbid")

    text: UpdateText
    severity: Severity | None = None
    title: UpdateTitle | None = None
    links: list[Link] = Field(default_factory=list, max_length=LINKS_MAX)
    next_update_by: AwareDatetime | None = Field(
        default=None, description=f"After now, and at most {NEXT_UPDATE_MAX_DAYS} days ahead."
    )


class ClosingNote(BaseModel):
    """Why an alert is resolved or retracted (the body of .../resolve and .../retract)."""

    model_config = ConfigDict(extra="forbid")

    note: Note


class Rejection(BaseModel):
    """Why a dispatcher rejects an approval request."""

    model_config = ConfigDict(extra="forbid")

    reason: Note


@dataclass(frozen=True)
class Caller:
    """Who acts: the hub user (`username`), who the audit names, and from where."""

    username: str
    actor: str
    source: str | None = None

    @classmethod
    def user(cls, username: str, source: str | None = None) -> Caller:
        """A signed-in user acting for themselves."""
        return cls(username=username, actor=username, source=source)


@dataclass(frozen=True)
class PublishedAlert:
    """The outcome of a publish: the alert and how many agents it targets, or the approval request.

    `created` is False when an earlier call with the same Idempotency-Key stored it.
    """

    alert: dict[str, Any] | None
    created: bool
    targeted: int = 0
    approval: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The answer of POST /v1/alerts: the alert with `targeted`, or the pending request."""
        if self.alert is None:
            # A retry of a held publish answers its request: still pending, or rejected since.
            decided = self.approval is not None and self.approval["status"] == "rejected"
            return {
                "status": "rejected" if decided else "pending_approval",
                "approval": self.approval,
            }
        return {**self.alert, "targeted": self.targeted}


def publish_draft(
    store: Store,
    settings: HubSettings,
    draft: AlertDraft,
    *,
    issued_by: str | None,
    idempotency_key: str | None = None,
    caller: Caller | None = None,
) -> PublishedAlert:
    """Check a draft's times, audience and content, then store it (once per idempotency key).

    Where the hub requires two dispatchers, a live critical draft without an override is held as
    an approval request instead and reaches no one.
    """
    who = caller or Caller(issued_by or "", issued_by or "")
    publish_key = (
        None if idempotency_key is None else PublishKey(idempotency_key, draft.fingerprint())
    )
    try:
        if publish_key is not None:
            # A retry answers what the first request stored, even if its expiry has passed or
            # its playbook was deleted since.
            first = store.alerts.first_published(issued_by, publish_key)
            if first is not None:
                return PublishedAlert(
                    first.to_wire(), created=False, targeted=store.alerts.count_targets(first.id)
                )
        checked = _checked_draft(store, settings, draft)
        override = None
        if _needs_approval(store, draft):
            if draft.override_approval is None:
                return _hold_for_approval(store, draft, who, publish_key)
            override = draft.override_approval
        alert, created = store.alerts.publish(
            severity=draft.severity,
            title=draft.title,
            body=draft.body,
            playbook_id=draft.playbook_id,
            template_ids=draft.template_ids,
            requires_ack=draft.requires_ack,
            expires_at=checked.expires_at,
            issued_by=issued_by,
            publish_key=publish_key,
            drill=draft.drill,
            audience=checked.audience,
            next_update_by=checked.next_update_by,
            approval_override=override,
        )
    except PublishKeyConflict as exc:
        raise InvalidAlert(f"Idempotency-Key: {exc}.", "idempotency_key_reused") from exc
    targeted = store.alerts.count_targets(alert.id)
    if created:
        _audit_published(store, alert, who, targeted)
        if override is not None:
            store.audit.record(
                "alert.approval_overridden",
                actor=who.actor,
                subject=alert.id,
                source=who.source,
                detail={"reason": override, "by": who.username},
            )
    return PublishedAlert(alert.to_wire(), created, targeted)


def approve(
    store: Store, settings: HubSettings, approval_id: str, caller: Caller
) -> PublishedAlert:
    """Publish a held alert as approved by a second dispatcher; exactly once, whoever races."""
    approval = _pending_approval(store, approval_id)
    if approval.requested_by.casefold() == caller.username.casefold():
        _audit_approval(store, "alert.approved", approval, caller, "own_request")
        raise AlertRefused(
            "You asked for this alert yourself: another dispatcher must approve it.",
            "own_request",
            409,
        )
    try:
        draft = AlertDraft.model_validate(approval.draft)
    except ValidationError as exc:
        raise InvalidAlert(f"the held draft is no longer valid: {describe(exc)}") from exc
    checked = _checked_draft(store, settings, draft)
    try:
        alert, _ = store.alerts.publish(
            severity=draft.severity,
            title=draft.title,
            body=draft.body,
            playbook_id=draft.playbook_id,
            template_ids=draft.template_ids,
            requires_ack=draft.requires_ack,
            expires_at=checked.expires_at,
            issued_by=approval.requested_by,
            # A retry of the held publish then answers this alert.
            publish_key=approval.publish_key,
            drill=draft.drill,
            audience=checked.audience,
            next_update_by=checked.next_update_by,
            approved_by=caller.username,
            approval_id=approval.id,
        )
    except ApprovalDecided as exc:
        raise _already_decided(exc.status) from None
    except UnknownApproval:
        raise _unknown_approval() from None
    except PublishKeyConflict as exc:
        # The requester reused the request's key for another alert that was published alone.
        raise AlertRefused(
            f"the request's Idempotency-Key was since used for another alert ({exc}); reject "
            "this request and publish again.",
            "idempotency_key_reused",
            409,
        ) from exc
    targeted = store.alerts.count_targets(alert.id)
    _audit_approval(store, "alert.approved", approval, caller, "ok", alert_id=alert.id)
    _audit_published(store, alert, caller, targeted)
    return PublishedAlert(alert.to_wire(), True, targeted)


def reject(store: Store, approval_id: str, reason: str, caller: Caller) -> dict[str, Any]:
    """Refuse a held alert: it is never sent; the approval object."""
    try:
        Rejection.model_validate({"reason": reason})
    except ValidationError as exc:
        raise InvalidAlert(describe(exc)) from exc
    try:
        approval = store.alerts.reject_approval(approval_id, caller.username, reason)
    except UnknownApproval:
        raise _unknown_approval() from None
    except ApprovalDecided as exc:
        raise _already_decided(exc.status) from None
    _audit_approval(store, "alert.approval_rejected", approval, caller, "ok", reason=reason)
    return approval.to_wire()


def approvals(store: Store, status: ApprovalStatus | None) -> list[dict[str, Any]]:
    """Approval requests in one status (None: every status), newest first."""
    return [item.to_wire() for item in store.alerts.approvals(status, INCIDENTS_MAX)]


def update_alert(
    store: Store, settings: HubSettings, alert_id: str, update: AlertUpdateDraft, caller: Caller
) -> dict[str, Any]:
    """Add an update to an open alert; the whole alert with `targeted`."""
    next_update_by = _checked_next_update(update.next_update_by, settings.clock.now())
    alert = _change(
        store,
        alert_id,
        "update",
        caller,
        text=update.text,
        severity=update.severity,
        title=update.title,
        links=update.links,
        next_update_by=next_update_by,
    )
    return {**alert.to_wire(), "targeted": store.alerts.count_targets(alert.id)}


def close_alert(
    store: Store, alert_id: str, kind: Literal["resolved", "retracted"], note: str, caller: Caller
) -> dict[str, Any]:
    """Resolve or retract an open alert with a note; the whole alert with `targeted`."""
    try:
        ClosingNote.model_validate({"note": note})
    except ValidationError as exc:
        raise InvalidAlert(describe(exc)) from exc
    alert = _change(store, alert_id, kind, caller, text=note)
    return {**alert.to_wire(), "targeted": store.alerts.count_targets(alert.id)}


def incidents(
    store: Store,
    settings: HubSettings,
    state: IncidentState = "all",
    drill: bool | None = None,
    limit: int = INCIDENTS_MAX,
) -> list[dict[str, Any]]:
    """Incidents newest first, each with its targets, answers and whether an update is overdue."""
    store.alerts.purge_expired(settings.retention_seconds)
    found = store.alerts.incidents(state, drill, limit)
    ids = [alert.id for alert in found]
    targeted = store.alerts.target_counts(ids)
    answered = store.alerts.answer_counts(ids)
    now = settings.clock.now()
    served = []
    for alert in found:
        counts = answered.get(alert.id)
        served.append(
            {
                "alert": alert.to_wire(),
                "targeted": targeted.get(alert.id, 0),
                "answered": (counts.to_wire() if counts is not None else _no_answers()),
                "update_overdue": update_overdue(alert, now),
            }
        )
    return served


def incident(store: Store, settings: HubSettings, alert_id: str) -> dict[str, Any]:
    """One alert for a dispatcher: `{alert, targeted, update_overdue, approval_override}`."""
    alert = _kept_alert(store, alert_id)
    return {
        "alert": alert.to_wire(),
        "targeted": store.alerts.count_targets(alert.id),
        "update_overdue": update_overdue(alert, settings.clock.now()),
        "approval_override": store.alerts.approval_override(alert.id),
    }


def update_overdue(alert: Alert, now: float) -> bool:
    """Whether an open alert's promised next update time has passed."""
    return (
        alert.status == "open" and alert.next_update_by is not None and alert.next_update_by < now
    )


@dataclass(frozen=True)
class _CheckedDraft:
    expires_at: float | None
    next_update_by: float | None
    audience: list[str] | None


def _checked_draft(store: Store, settings: HubSettings, draft: AlertDraft) -> _CheckedDraft:
    now = settings.clock.now()
    expires = _checked_expiry(draft, now)
    next_update_by = _checked_next_update(draft.next_update_by, now)
    _check_linked_content(store, draft)
    return _CheckedDraft(expires, next_update_by, _checked_audience(store, draft.audience))


def _checked_audience(store: Store, audience: Sequence[str] | None) -> list[str] | None:
    if audience is None:
        return None
    names = list(dict.fromkeys(audience))
    missing = store.groups.missing(names)
    if missing:
        raise InvalidAlert(
            "audience: no group named "
            + ", ".join(_quoted(name) for name in missing)
            + " on this hub; list them with GET /v1/groups or `vigil-hub group list`.",
            "unknown_group",
        )
    # The stored spelling, so targets and the alert's audience name the group the same way.
    canonical = []
    for name in names:
        group = store.groups.get(name)
        canonical.append(name if group is None else group.name)
    return list(dict.fromkeys(canonical))


def _checked_next_update(value: datetime | None, now: float) -> float | None:
    if value is None:
        return None
    moment = value.timestamp()
    if moment <= now:
        raise InvalidAlert(
            "next_update_by is not in the future; give a later time or leave it out."
        )
    if moment > now + NEXT_UPDATE_MAX_DAYS * 86_400:
        raise InvalidAlert(
            f"next_update_by is more than {NEXT_UPDATE_MAX_DAYS} days ahead; give an earlier "
            "time or leave it out."
        )
    return moment


def _needs_approval(store: Store, draft: AlertDraft) -> bool:
    return draft.severity == "critical" and not draft.drill and store.settings.require_approval()


def _hold_for_approval(
    store: Store, draft: AlertDraft, caller: Caller, publish_key: PublishKey | None
) -> PublishedAlert:
    held, created = store.alerts.request_approval(
        draft.model_dump(mode="json", exclude={"override_approval"}), caller.username, publish_key
    )
    if created:
        _audit_approval(store, "alert.approval_requested", held, caller, "ok")
    return PublishedAlert(None, created=created, approval=held.to_wire())


def _pending_approval(store: Store, approval_id: str) -> Approval:
    approval = store.alerts.approval(approval_id)
    if approval is None:
        raise _unknown_approval()
    if approval.status != "pending":
        raise _already_decided(approval.status)
    return approval


def _change(
    store: Store,
    alert_id: str,
    kind: ChangeKind,
    caller: Caller,
    *,
    text: str,
    severity: Severity | None = None,
    title: str | None = None,
    links: Sequence[str] = (),
    next_update_by: float | None = None,
) -> Alert:
    event = {
        "update": "alert.updated",
        "resolved": "alert.resolved",
        "retracted": "alert.retracted",
    }[kind]
    detail: dict[str, str | int | None] = {"by": caller.username}
    # Anything but a known refusal (a locked or failing database) is recorded as an error.
    outcome = "error"
    try:
        alert = store.alerts.change(
            alert_id,
            kind=kind,
            text=text,
            by=caller.username,
            severity=severity,
            title=title,
            links=links,
            next_update_by=next_update_by,
        )
        detail.update(seq=alert.seq, number=len(alert.changes))
        outcome = "ok"
        return alert
    except UnknownAlert:
        outcome = "unknown_alert"
        raise _unknown_alert() from None
    except AlertClosed as exc:
        outcome = "alert_closed"
        raise AlertRefused(
            f"This alert is already {exc.status}: it takes no more changes. Publish a new alert "
            "if there is more to say.",
            "alert_closed",
            409,
        ) from None
    except TooManyChanges:
        outcome = "too_many_changes"
        raise AlertRefused(
            "This alert already holds the most changes one alert may have; resolve it and "
            "publish a new one.",
            "too_many_changes",
            409,
        ) from None
    finally:
        store.audit.record(
            event,
            actor=caller.actor,
            subject=alert_id,
            source=caller.source,
            outcome=outcome,
            detail=detail,
        )


def _kept_alert(store: Store, alert_id: str) -> Alert:
    alert = store.alerts.get(alert_id)
    if alert is None:
        raise _unknown_alert()
    return alert


def _audit_published(store: Store, alert: Alert, caller: Caller, targeted: int) -> None:
    store.audit.record(
        "alert.published",
        actor=caller.actor,
        subject=alert.id,
        source=caller.source,
        detail={
            "seq": alert.seq,
            "severity": alert.severity,
            "drill": int(alert.drill),
            "audience": None if alert.audience is None else ", ".join(alert.audience),
            "targeted": targeted,
            "by": caller.username,
            "approved_by": alert.approved_by,
        },
    )


def _audit_approval(
    store: Store,
    event: str,
    approval: Approval,
    caller: Caller,
    outcome: str,
    *,
    alert_id: str | None = None,
    reason: str | None = None,
) -> None:
    detail: dict[str, str | int | None] = {
        "by": caller.username,
        "requested_by": approval.requested_by,
    }
    if alert_id is not None:
        detail["alert_id"] = alert_id
    if reason is not None:
        detail["reason"] = reason
    store.audit.record(
        event,
        actor=caller.actor,
        subject=approval.id,
        source=caller.source,
        outcome=outcome,
        detail=detail,
    )


def _no_answers() -> dict[str, int]:
    return {"acknowledged": 0, "escalated": 0, "unable": 0}


def _unknown_alert() -> AlertRefused:
    return AlertRefused(
        "No such alert is kept on the hub; it may be past retention.", "unknown_alert", 404
    )


def _unknown_approval() -> AlertRefused:
    return AlertRefused("No such approval request on this hub.", "unknown_approval", 404)


def _already_decided(status: str) -> AlertRefused:
    return AlertRefused(
        f"This request was already {status}; nothing changed.", "already_decided", 409
    )


def _quoted(text: str) -> str:
    quoted = repr(text[:GROUP_NAME_MAX])
    return "".join(f"\\u{ord(char):04x}" if char in _BIDI_CONTROLS else char for char in quoted)


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
    """Validate and store an alert to every agent; returns its protocol object (id and seq)."""
    draft = build_draft(
        severity=severity,
        title=title,
        body=body,
        playbook_id=playbook_id,
        template_ids=template_ids,
        requires_ack=requires_ack,
        expires_at=expires_at,
    )
    published = publish_draft(store, settings, draft, issued_by=issued_by)
    if published.alert is None:
        raise AlertRefused(
            "this hub requires a second dispatcher for live critical alerts: the alert is held "
            f"as approval request {published.approval and published.approval['id']}",
            "pending_approval",
            202,
        )
    return published.alert


def build_draft(**fields: Any) -> AlertDraft:
    """A checked draft from keyword fields (as POST /v1/alerts takes them); InvalidAlert if bad."""
    fields["template_ids"] = list(fields.get("template_ids", ()))
    try:
        return AlertDraft.model_validate(fields)
    except ValidationError as exc:
        raise InvalidAlert(describe(exc)) from exc


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


def describe(exc: ValidationError) -> str:
    """Which fields of a model are wrong and why, in one line."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "alert"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
