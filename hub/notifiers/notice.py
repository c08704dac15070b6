"""The fallback notice: who to reach about which alert, and the short text every channel sends."""

from __future__ import annotations

import re
from dataclasses import dataclass

SUBJECT_MAX_CHARS = 78
TEXT_MAX_CHARS = 300
ELLIPSIS = "…"
DRILL_PREFIX = "DRILL: "
DRILL_NOTE = " Drill only: no action with real patients."
CALL_TO_ACTION = ". Open Vigil now."

_WHITESPACE_RUN = re.compile(r"\s+")


@dataclass(frozen=True)
class FallbackNotice:
    """An agent the alert stream could not reach, and the alert they must open Vigil for."""

    alert_id: str
    title: str  # the alert's title only: never its body, playbook or templates
    severity: str
    drill: bool
    username: str
    display_name: str
    phone: str | None  # the agent's phone-tree entry (call-out number)
    fallback_email: str | None  # e.g. an email-to-SMS or pager gateway address
    issued_at: float  # unix seconds


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one channel did with one notice; `detail` is for people and never holds a secret."""

    channel: str
    ok: bool
    detail: str


def one_line(text: str) -> str:
    """`text` with control, bidi and other invisible characters gone, whitespace one space.

    Nothing that passes through here can end a mail header or start a new one.
    """
    kept: list[str] = []
    for char in text:
        if char.isspace():
            kept.append(" ")
        elif char.isprintable():
            kept.append(char)
        # Everything else goes: controls; format characters, among them the bidi overrides,
        # isolates and marks (U+202A-E, U+2066-9, U+200E/F, U+061C) that make a title read
        # backwards in a mail client or SMS; lone surrogates that no mail encoder takes;
        # private-use and unassigned code points.
    return _WHITESPACE_RUN.sub(" ", "".join(kept)).strip()


def elide(text: str, max_chars: int) -> str:
    """`text` cut to at most `max_chars` characters, ending in "…" when it was cut."""
    if len(text) <= max_chars:
        return text
    return text[: max(max_chars - len(ELLIPSIS), 0)].rstrip() + ELLIPSIS


def _parts(notice: FallbackNotice) -> tuple[str, str]:
    prefix = DRILL_PREFIX if notice.drill else ""
    severity = one_line(notice.severity)[:20] or "crisis"
    # A title's own closing full stop would double the one before "Open Vigil now".
    title = one_line(notice.title).rstrip(". ")
    return prefix + f"Vigil: {severity} alert: ", title or "(no title)"


def notice_subject(notice: FallbackNotice) -> str:
    """The subject line: "[DRILL: ]Vigil: <severity> alert: <title>", at most 78 characters."""
    head, title = _parts(notice)
    return head + elide(title, SUBJECT_MAX_CHARS - len(head))


def notice_text(notice: FallbackNotice) -> str:
    """The message: "[DRILL: ]Vigil: <severity> alert: <title>. Open Vigil now.", <= 300 chars.

    A drill also says that it asks for no action with real patients.
    """
    head, title = _parts(notice)
    tail = CALL_TO_ACTION + (DRILL_NOTE if notice.drill else "")
    return head + elide(title, TEXT_MAX_CHARS - len(head) - len(tail)) + tail
