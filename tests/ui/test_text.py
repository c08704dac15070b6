"""Safe rendering of untrusted text: search snippets, eliding, local times."""

from datetime import UTC, datetime, timedelta, timezone

from client.core.content import HIGHLIGHT_END as E
from client.core.content import HIGHLIGHT_START as S
from client.ui.text import (
    elide,
    local_time,
    local_when,
    parse_timestamp,
    search_hit_html,
    snippet_html,
    snippet_plain,
)


def test_marked_words_become_bold() -> None:
    assert snippet_html(f"call the {S}NOC{E} on-call") == "call the <b>NOC</b> on-call"


def test_script_in_snippet_is_escaped() -> None:
    rendered = snippet_html(f"<script>alert('x')</script> {S}video{E}")
    assert "<script>" not in rendered
    assert rendered == "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; <b>video</b>"


def test_bold_tags_in_content_are_shown_literally() -> None:
    assert snippet_html(f"<b>fake</b> {S}real{E}") == "&lt;b&gt;fake&lt;/b&gt; <b>real</b>"


def test_ampersands_and_quotes_are_escaped_inside_highlights() -> None:
    assert snippet_html(f'{S}A&B "x"{E}') == "<b>A&amp;B &quot;x&quot;</b>"


def test_markers_inside_a_tag_cannot_open_markup() -> None:
    rendered = snippet_html(f'<img src=x on{S}error{E}="alert(1)">')
    assert rendered == "&lt;img src=x on<b>error</b>=&quot;alert(1)&quot;&gt;"
    assert "<img" not in rendered


def test_unbalanced_markers_never_leak() -> None:
    assert snippet_html(f"a{E}b {S}c") == "ab <b>c</b>"
    assert "\x02" not in snippet_html(f"{S}{S}x{E}")


def test_newlines_are_flattened() -> None:
    assert snippet_html(f"step one\n\nstep {S}two{E}") == "step one step <b>two</b>"


def test_plain_snippet_drops_markers() -> None:
    assert snippet_plain(f"the {S}<b>NOC</b>{E}\nline") == "the <b>NOC</b> line"


def test_elide() -> None:
    assert elide("short", 10) == "short"
    assert elide("a much longer title here", 10) == "a much lo…"
    assert len(elide("x" * 50, 10)) == 10
    assert elide("two\nlines", 20) == "two lines"


def test_local_time_formats_in_the_given_zone() -> None:
    when = datetime(2026, 11, 27, 10, 42, 30, tzinfo=UTC)
    assert local_time(when, UTC) == "10:42"
    assert local_time(when, timezone(timedelta(hours=-5))) == "05:42"


def test_local_when_shows_the_day_only_for_other_days() -> None:
    now = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert local_when(datetime(2026, 11, 27, 10, 42, tzinfo=UTC), now, UTC) == "10:42"
    assert local_when(datetime(2026, 11, 26, 9, 5, tzinfo=UTC), now, UTC) == "26 Nov 09:05"


def test_parse_timestamp() -> None:
    assert parse_timestamp("2026-11-27T10:42:00.123Z") == datetime(
        2026, 11, 27, 10, 42, 0, 123000, tzinfo=UTC
    )
    assert parse_timestamp(None) is None
    assert parse_timestamp("yesterday") is None
    assert parse_timestamp("2026-11-27T10:42:00") is None


def test_search_hit_title_is_escaped_too() -> None:
    rendered = search_hit_html("Playbook", "<i>Outage</i> & more", f"the {S}outage{E}")
    assert rendered == (
        "<b>&lt;i&gt;Outage&lt;/i&gt; &amp; more</b> <small>(Playbook)</small><br>the <b>outage</b>"
    )
