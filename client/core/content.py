"""Playbooks and templates as the client shows them, parsed strictly from a content item's `data`.

Search snippets mark matched words with HIGHLIGHT_START and HIGHLIGHT_END (the control characters
STX and ETX). Content text is untrusted, so a snippet is never HTML: the UI splits it with
`highlight_parts()` and styles the marked parts itself, escaping everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client.core.errors import BadResponse

HIGHLIGHT_START = "\x02"
HIGHLIGHT_END = "\x03"
TEMPLATE_CHANNELS = ("phone_script", "sms", "email", "chat", "portal_banner")


def strip_markers(text: str) -> str:
    """Remove the highlight marker characters so content can never fake a highlight."""
    return text.replace(HIGHLIGHT_START, "").replace(HIGHLIGHT_END, "")


def highlight_parts(snippet: str) -> list[tuple[str, bool]]:
    """Split a search snippet into (text, is_highlighted) parts, in order."""
    parts: list[tuple[str, bool]] = []
    rest = snippet
    while rest:
        start = rest.find(HIGHLIGHT_START)
        if start < 0:
            parts.append((rest.replace(HIGHLIGHT_END, ""), False))
            break
        if start:
            parts.append((rest[:start].replace(HIGHLIGHT_END, ""), False))
        end = rest.find(HIGHLIGHT_END, start + 1)
        if end < 0:
            end = len(rest)
        parts.append((rest[start + 1 : end], True))
        rest = rest[end + 1 :]
    return [(text, marked) for text, marked in parts if text]


class _Fields:
    """Typed reads from one item's data, each failure naming the item and the field."""

    def __init__(self, data: Any, what: str) -> None:
        if not isinstance(data, dict):
            raise BadResponse(f"{what} has data that is not a JSON object.")
        self.data = data
        self.what = what

    def _bad(self, name: str) -> BadResponse:
        return BadResponse(f"{self.what} has a missing or malformed '{name}'.")

    def text(self, name: str, default: str | None = None) -> str:
        value = self.data.get(name, default)
        if not isinstance(value, str):
            raise self._bad(name)
        return value

    def optional_text(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, str):
            raise self._bad(name)
        return value

    def texts(self, name: str) -> tuple[str, ...]:
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(name)
        return tuple(value)

    def objects(self, name: str) -> list[_Fields]:
        value = self.data.get(name, [])
        if not isinstance(value, list):
            raise self._bad(name)
        return [_Fields(entry, f"{self.what} ('{name}')") for entry in value]

    def number(self, name: str) -> int:
        value = self.data.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._bad(name)
        return value


@dataclass(frozen=True)
class EscalationLevel:
    """One step of a playbook's escalation path."""

    level: int
    role: str
    contact: str
    after_minutes: int


@dataclass(frozen=True)
class PhoneTreeEntry:
    """One person to call, in order, from a playbook's phone tree."""

    order: int
    name: str
    role: str
    phone: str
    notes: str


@dataclass(frozen=True)
class Playbook:
    """What to do in one kind of crisis: steps, who to escalate to, whom to call."""

    id: str
    version: int
    title: str
    category: str
    severity: str
    summary: str
    steps: tuple[str, ...]
    escalation_path: tuple[EscalationLevel, ...]
    phone_tree: tuple[PhoneTreeEntry, ...]
    template_ids: tuple[str, ...]
    tags: tuple[str, ...]

    @classmethod
    def from_data(cls, item_id: str, version: int, data: Any) -> Playbook:
        """Parse a playbook item's `data`; raise BadResponse naming the bad field."""
        fields = _Fields(data, f"Playbook {item_id!r}")
        return cls(
            id=item_id,
            version=version,
            title=fields.text("title"),
            category=fields.text("category", ""),
            severity=fields.text("severity", ""),
            summary=fields.text("summary", ""),
            steps=fields.texts("steps"),
            escalation_path=tuple(
                EscalationLevel(
                    level=entry.number("level"),
                    role=entry.text("role", ""),
                    contact=entry.text("contact", ""),
                    after_minutes=entry.number("after_minutes"),
                )
                for entry in fields.objects("escalation_path")
            ),
            phone_tree=tuple(
                PhoneTreeEntry(
                    order=entry.number("order"),
                    name=entry.text("name"),
                    role=entry.text("role", ""),
                    phone=entry.text("phone"),
                    notes=entry.text("notes", ""),
                )
                for entry in fields.objects("phone_tree")
            ),
            template_ids=fields.texts("template_ids"),
            tags=fields.texts("tags"),
        )


@dataclass(frozen=True)
class Placeholder:
    """A `{name}` slot in a template body, with what to fill in."""

    name: str
    description: str


@dataclass(frozen=True)
class Template:
    """A pre-approved message to patients, with placeholders the agent fills in."""

    id: str
    version: int
    title: str
    channel: str
    subject: str | None
    body: str
    placeholders: tuple[Placeholder, ...]
    approved_by: str
    approved_at: str
    locale: str
    tags: tuple[str, ...]

    @classmethod
    def from_data(cls, item_id: str, version: int, data: Any) -> Template:
        """Parse a template item's `data`; raise BadResponse naming the bad field."""
        fields = _Fields(data, f"Template {item_id!r}")
        channel = fields.text("channel")
        if channel not in TEMPLATE_CHANNELS:
            raise BadResponse(f"Template {item_id!r} has an unknown channel {channel!r}.")
        return cls(
            id=item_id,
            version=version,
            title=fields.text("title"),
            channel=channel,
            subject=fields.optional_text("subject"),
            body=fields.text("body"),
            placeholders=tuple(
                Placeholder(name=entry.text("name"), description=entry.text("description", ""))
                for entry in fields.objects("placeholders")
            ),
            approved_by=fields.text("approved_by", ""),
            approved_at=fields.text("approved_at", ""),
            locale=fields.text("locale", ""),
            tags=fields.texts("tags"),
        )


@dataclass(frozen=True)
class SearchHit:
    """One search result. `snippet` marks matches with HIGHLIGHT_START/HIGHLIGHT_END;
    `rank` is FTS5's bm25 score, lower is a better match."""

    kind: str
    id: str
    title: str
    snippet: str
    rank: float
