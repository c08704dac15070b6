"""Filling a template's `{name}` placeholders and measuring the result against its channel's limit.

Values are inserted literally in one pass, so braces inside a value never expand again.
SMS length follows GSM 03.38: 160 characters in one message (153 per part when split) while every
character is in the GSM-7 alphabet, otherwise UCS-2 with 70 (67 per part), counted in UTF-16 units.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from client.core.content import Placeholder

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

PORTAL_BANNER_LIMIT = 280

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension-table characters take an escape plus the character: two septets each.
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

Encoding = Literal["GSM-7", "UCS-2"]


def placeholder_names(text: str) -> list[str]:
    """The distinct `{name}` placeholders in `text`, in order of first appearance."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def form_fields(texts: Iterable[str], declared: Iterable[Placeholder]) -> list[Placeholder]:
    """The placeholders to ask for: those declared (in order), then any others the texts use."""
    fields = {p.name: p for p in declared}
    for text in texts:
        for name in placeholder_names(text):
            fields.setdefault(name, Placeholder(name=name, description=""))
    return list(fields.values())


@dataclass(frozen=True)
class FilledText:
    """A template text with values filled in; unfilled placeholders stay visible as `{name}`."""

    text: str
    unfilled: tuple[str, ...]


def fill(text: str, values: Mapping[str, str]) -> FilledText:
    """Put each non-blank value in place of its `{name}`, literally and in one pass."""
    unfilled: dict[str, None] = {}

    def replace(match: re.Match[str]) -> str:
        value = values.get(match.group(1), "")
        if value.strip():
            return value
        unfilled[match.group(1)] = None
        return match.group(0)

    return FilledText(text=PLACEHOLDER.sub(replace, text), unfilled=tuple(unfilled))


@dataclass(frozen=True)
class LengthReport:
    """How long a text is for its channel: `limit` is one message's size (None: no limit)."""

    length: int
    limit: int | None
    segments: int
    encoding: Encoding | None

    @property
    def over(self) -> bool:
        """Whether the text is longer than one message (or banner) allows."""
        return self.limit is not None and self.length > self.limit


def measure(text: str, channel: str) -> LengthReport:
    """Measure `text` for `channel`: SMS in GSM-7 or UCS-2 units, banners in characters."""
    if channel == "sms":
        return _measure_sms(text)
    if channel == "portal_banner":
        return LengthReport(len(text), PORTAL_BANNER_LIMIT, 1 if text else 0, None)
    return LengthReport(len(text), None, 1 if text else 0, None)


def _measure_sms(text: str) -> LengthReport:
    if all(c in _GSM7_BASIC or c in _GSM7_EXTENDED for c in text):
        length = sum(2 if c in _GSM7_EXTENDED else 1 for c in text)
        return LengthReport(length, 160, _segments(length, 160, 153), "GSM-7")
    length = len(text.encode("utf-16-le")) // 2
    return LengthReport(length, 70, _segments(length, 70, 67), "UCS-2")


def _segments(length: int, single: int, per_part: int) -> int:
    if length == 0:
        return 0
    return 1 if length <= single else math.ceil(length / per_part)
