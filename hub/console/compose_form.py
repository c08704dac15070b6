"""The compose form as the console reads it: typed values, the draft they ask for, and refusals
placed beside the field they are about.

No rule of its own: the draft is checked by `hub.alerts_service` exactly as POST /v1/alerts checks
it; this module only turns form text into the draft's types and the service's answer into words
next to a field.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import ValidationError

from hub.alerts_service import AlertDraft, AlertRefused
from hub.storage.alerts import Severity

SEVERITIES: tuple[str, ...] = tuple(reversed(get_args(Severity)))
IDEMPOTENCY_KEY_MAX = 255
SEARCH_MAX = 200

Mode = Literal["live", "drill"]

# Each form field with the words that name it on the page; refusals start with these words.
LABELS: dict[str, str] = {
    "title": "Title",
    "body": "Text",
    "severity": "Severity",
    "mode": "Drill or live",
    "audience": "Audience",
    "playbook_id": "Playbook",
    "template_ids": "Templates",
    "expires_at": "Expires at (UTC)",
    "next_update_by": "Next update by (UTC)",
    "override_approval": "Reason to publish without a second dispatcher",
    "form": "This form",
}

# The draft's field names as the service and pydantic name them, mapped to the form's fields.
_DRAFT_FIELDS = {
    "severity": "severity",
    "title": "title",
    "body": "body",
    "playbook_id": "playbook_id",
    "template_ids": "template_ids",
    "expires_at": "expires_at",
    "next_update_by": "next_update_by",
    "drill": "mode",
    "audience": "audience",
    "override_approval": "override_approval",
}


@dataclass(frozen=True)
class ComposeForm:
    """What the dispatcher typed, kept as text so a refused form comes back as it was."""

    title: str = ""
    body: str = ""
    severity: str = ""
    mode: str = ""
    audience_mode: str = "all"
    groups: tuple[str, ...] = ()
    playbook_id: str = ""
    template_ids: tuple[str, ...] = ()
    expires_at: str = ""
    next_update_by: str = ""
    override_approval: str = ""
    idempotency_key: str = ""
    playbook_q: str = ""
    template_q: str = ""

    @classmethod
    def from_fields(
        cls, values: Mapping[str, str], lists: Mapping[str, Sequence[str]]
    ) -> ComposeForm:
        """The form from single `values` and the multi-valued `lists` (groups, template_ids)."""
        return cls(
            title=values.get("title", ""),
            body=values.get("body", ""),
            severity=values.get("severity", ""),
            mode=values.get("mode", ""),
            audience_mode=values.get("audience_mode", "all"),
            groups=tuple(dict.fromkeys(lists.get("groups", ()))),
            playbook_id=values.get("playbook_id", "").strip(),
            template_ids=tuple(
                dict.fromkeys(
                    item.strip() for item in lists.get("template_ids", ()) if item.strip()
                )
            ),
            expires_at=values.get("expires_at", "").strip(),
            next_update_by=values.get("next_update_by", "").strip(),
            override_approval=values.get("override_approval", ""),
            idempotency_key=values.get("idempotency_key", "").strip(),
            playbook_q=values.get("playbook_q", ""),
            template_q=values.get("template_q", ""),
        )

    @property
    def audience(self) -> list[str] | None:
        """The groups the form targets; None for every agent."""
        return list(self.groups) if self.audience_mode == "groups" else None

    @property
    def audience_conflict(self) -> bool:
        """Whether groups are ticked while every agent is chosen."""
        return self.audience_mode == "all" and bool(self.groups)

    @property
    def drill(self) -> bool:
        """Whether the form asks for a drill."""
        return self.mode == "drill"


@dataclass
class FieldErrors:
    """Refusals by form field, each a sentence that starts with the field's name."""

    by_field: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        """Add a refusal for `name` (a key of LABELS); a second one joins the first."""
        text = f"{LABELS[name]}: {message}"
        previous = self.by_field.get(name)
        self.by_field[name] = text if previous is None else f"{previous} {text}"

    def __bool__(self) -> bool:
        return bool(self.by_field)


def draft_from(form: ComposeForm, errors: FieldErrors) -> AlertDraft | None:
    """The draft the form asks for, or None with every refusal of its shape added to `errors`."""
    if form.mode not in get_args(Mode):
        errors.add("mode", "choose Live or Drill; the choice is required.")
    if form.audience_mode not in ("all", "groups"):
        errors.add("audience", "choose all agents or one or more groups.")
    elif form.audience_mode == "groups" and not form.groups:
        errors.add("audience", "tick at least one group, or choose all agents.")
    elif form.audience_conflict:
        # Ticked groups under "All agents" would send to everyone: ask, never guess.
        errors.add(
            "audience", "you chose all agents and also ticked groups; choose one or the other."
        )
    times: dict[str, datetime | None] = {}
    for name in ("expires_at", "next_update_by"):
        try:
            times[name] = utc_from_form(getattr(form, name))
        except ValueError as exc:
            errors.add(name, str(exc))
    fields: dict[str, Any] = {
        "severity": form.severity,
        "title": form.title,
        "body": form.body,
        "playbook_id": form.playbook_id or None,
        "template_ids": list(form.template_ids),
        "drill": form.drill,
        "audience": form.audience,
        "override_approval": form.override_approval.strip() or None,
        **times,
    }
    try:
        draft = AlertDraft.model_validate(fields)
    except ValidationError as exc:
        for error in exc.errors():
            where = str(error["loc"][0]) if error["loc"] else "form"
            name = _DRAFT_FIELDS.get(where, "form")
            errors.add(name, _sentence(error["msg"]))
        return None
    return None if errors else draft


def place_refusal(exc: AlertRefused, errors: FieldErrors) -> None:
    """Put the service's refusal beside the field it names (the form's top when it names none)."""
    message = str(exc)
    if exc.error == "idempotency_key_reused":
        errors.add(
            "form",
            "it was already sent with other content, and that alert stands. Nothing new was "
            "published; the form now has a new key: publish again to send this as a new alert.",
        )
        return
    if exc.error == "unknown_group":
        errors.add("audience", _without_prefix(message, "audience:"))
        return
    if exc.error == "unknown_content":
        if "template" in message and "playbook" not in message:
            errors.add("template_ids", message)
        else:
            errors.add("playbook_id", message)
        return
    for name in ("expires_at", "next_update_by"):
        if message.startswith(name):
            errors.add(name, _without_prefix(message, name))
            return
    errors.add("form", message)


def utc_from_form(value: str) -> datetime | None:
    """A datetime-local value read as UTC; None when empty; ValueError naming the format."""
    text = value.strip()
    if not text:
        return None
    if len(text) > 32 or not text.isascii():
        raise ValueError("give a date and time as YYYY-MM-DDTHH:MM, in UTC.")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date and time; give YYYY-MM-DDTHH:MM, in UTC."
        ) from None
    if moment.tzinfo is not None:
        raise ValueError("give the time without a zone: the console reads it as UTC.")
    return moment.replace(tzinfo=UTC)


def idempotency_key_ok(key: str) -> bool:
    """Whether the form's one-time key is what POST /v1/alerts accepts as an Idempotency-Key."""
    return 1 <= len(key) <= IDEMPOTENCY_KEY_MAX and key.isascii() and key.isprintable()


def search_text(value: str) -> str:
    """A content search as typed, without control characters, cut to SEARCH_MAX."""
    kept = "".join(char for char in value if unicodedata.category(char) != "Cc")
    return kept.strip()[:SEARCH_MAX]


def _without_prefix(message: str, prefix: str) -> str:
    return message[len(prefix) :].strip() if message.startswith(prefix) else message


def _sentence(text: str) -> str:
    # pydantic words a custom validator's refusal "Value error, ..."; the reason is the rest.
    text = text.removeprefix("Value error, ")
    return text if text.endswith(".") else f"{text}."
