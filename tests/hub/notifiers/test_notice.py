"""The fallback notice's text: short enough for SMS, one line, the title only."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.notifiers.notice import (
    SUBJECT_MAX_CHARS,
    TEXT_MAX_CHARS,
    FallbackNotice,
    notice_subject,
    notice_text,
)

NOTICE = FallbackNotice(
    alert_id="a-1",
    title="Video visits down in the West region",
    severity="critical",
    drill=False,
    username="jlee",
    display_name="J. Lee",
    phone="+1 555 123 4567",
    fallback_email="5551234567@sms-gateway.example.org",
    issued_at=1_700_000_000.0,
)
HIDDEN = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def test_the_text_names_the_alert_and_asks_the_agent_to_open_vigil() -> None:
    assert notice_text(NOTICE) == (
        "Vigil: critical alert: Video visits down in the West region. Open Vigil now."
    )
    assert notice_subject(NOTICE) == "Vigil: critical alert: Video visits down in the West region"


def test_a_drill_says_so_first_and_asks_for_no_action_with_patients() -> None:
    drill = replace(NOTICE, drill=True)
    assert notice_text(drill).startswith("DRILL: Vigil: critical alert: ")
    assert "no action with real patients" in notice_text(drill)
    assert notice_subject(drill).startswith("DRILL: ")
    assert "DRILL" not in notice_text(NOTICE)


def test_a_huge_title_is_elided_to_fit_an_sms() -> None:
    huge = replace(NOTICE, title="Outage " * 10_000, drill=True)
    text, subject = notice_text(huge), notice_subject(huge)
    assert len(text) <= TEXT_MAX_CHARS and len(subject) <= SUBJECT_MAX_CHARS
    assert "…" in text and "…" in subject
    assert text.endswith("Open Vigil now. Drill only: no action with real patients.")


def test_header_injection_and_bidi_tricks_are_removed() -> None:
    hostile = replace(NOTICE, title="Down\r\nBcc: x@y\u202eevil\u2028<b>HTML</b>\x00\x1b[31m")
    for line in (notice_text(hostile), notice_subject(hostile)):
        assert "\r" not in line and "\n" not in line and "\x00" not in line
        assert not set(line) & set(HIDDEN)
        assert "Down Bcc: x@yevil <b>HTML</b>" in line


def test_an_empty_or_invisible_title_still_says_something() -> None:
    for title in ("", "   ", HIDDEN, "\r\n\t", "..."):
        text = notice_text(replace(NOTICE, title=title))
        assert text == "Vigil: critical alert: (no title). Open Vigil now."


@settings(max_examples=200, deadline=None)
@given(title=st.text(), severity=st.text(max_size=50), drill=st.booleans())
def test_any_title_gives_one_short_line_without_controls(
    title: str, severity: str, drill: bool
) -> None:
    notice = replace(NOTICE, title=title, severity=severity, drill=drill)
    for line, limit in ((notice_text(notice), TEXT_MAX_CHARS), (notice_subject(notice), 78)):
        assert 0 < len(line) <= limit
        assert line.isprintable()
        assert not set(line) & set(HIDDEN)
        assert line.startswith("DRILL: ") == drill
