"""Untrusted text without explicit bidi controls: a Qt-free module, so the tray loads it at once."""

from __future__ import annotations

# Explicit bidi embeddings, overrides and isolates. Letters carry their own direction, so untrusted
# text never needs these; an unclosed override would reverse the UI text placed after it.
_BIDI_CONTROLS = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))


def without_bidi_controls(text: str) -> str:
    """`text` without explicit bidi controls (U+202A-U+202E, U+2066-U+2069)."""
    return text.translate(_BIDI_CONTROLS)
