"""The SSE parser against the WHATWG event stream rules the alert stream relies on."""

from __future__ import annotations

import pytest

from client.core.sse import SseEvent, SseParser

HUB_LIKE_STREAM = (
    ": heartbeat\n\n"
    'id: 7\nevent: alert\ndata: {"id": "a", "title": "Video visits down \u2013 West"}\n\n'
    'id: 8\nevent: gap\ndata: {"since": 1, "oldest_kept_seq": 5}\n\n'
    ": heartbeat\n\n"
    "data: line one\ndata: line two\n\n"
)
EXPECTED = [
    SseEvent("alert", '{"id": "a", "title": "Video visits down \u2013 West"}', "7"),
    SseEvent("gap", '{"since": 1, "oldest_kept_seq": 5}', "8"),
    SseEvent("message", "line one\nline two", "8"),
]


def parse_all(text: str) -> list[SseEvent]:
    return SseParser().feed(text)


def test_hub_stream_parses_into_alert_gap_and_message_events() -> None:
    assert parse_all(HUB_LIKE_STREAM) == EXPECTED


@pytest.mark.parametrize("line_end", ["\n", "\r", "\r\n"])
def test_every_line_ending_gives_the_same_events(line_end: str) -> None:
    assert parse_all(HUB_LIKE_STREAM.replace("\n", line_end)) == EXPECTED


@pytest.mark.parametrize("line_end", ["\n", "\r", "\r\n"])
def test_chunks_split_at_every_byte_boundary_give_the_same_events(line_end: str) -> None:
    raw = ("\ufeff" + HUB_LIKE_STREAM.replace("\n", line_end)).encode("utf-8")
    for cut in range(len(raw) + 1):
        parser = SseParser()
        events = parser.feed_bytes(raw[:cut]) + parser.feed_bytes(raw[cut:])
        assert events == EXPECTED, f"split at byte {cut}"


def test_byte_at_a_time_feeding_gives_the_same_events() -> None:
    raw = HUB_LIKE_STREAM.replace("\n", "\r\n").encode("utf-8")
    parser = SseParser()
    events = [event for i in range(len(raw)) for event in parser.feed_bytes(raw[i : i + 1])]
    assert events == EXPECTED


def test_events_are_dispatched_as_soon_as_their_blank_line_arrives() -> None:
    parser = SseParser()
    assert parser.feed("id: 1\nevent: alert\ndata: x\n") == []
    assert parser.feed("\n") == [SseEvent("alert", "x", "1")]


def test_a_cr_ending_a_chunk_dispatches_at_once_and_its_lf_is_not_a_second_line() -> None:
    parser = SseParser()
    assert parser.feed("data: a\r\n\r") == [SseEvent("message", "a", "")]
    # If the LF after that CR were read as its own blank line, "b" would be dispatched early.
    assert parser.feed("\ndata: b\r\n") == []
    assert parser.feed("\r\n") == [SseEvent("message", "b", "")]


def test_a_partial_last_event_is_never_dispatched() -> None:
    parser = SseParser()
    assert parser.feed('id: 9\nevent: alert\ndata: {"cut": ') == []
    assert parser.feed("tru") == []


def test_a_bom_is_skipped_only_at_the_start_of_the_stream() -> None:
    parser = SseParser()
    assert parser.feed("\ufeffdata: a\n\n") == [SseEvent("message", "a", "")]
    # Later, a BOM is an ordinary character: the field name "\ufeffdata" is unknown.
    assert parser.feed("\ufeffdata: b\n\n") == []


def test_comments_are_surfaced_and_do_not_dispatch_or_disturb_an_event() -> None:
    comments: list[str] = []
    parser = SseParser(on_comment=comments.append)
    assert parser.feed(": heartbeat\n\n") == []
    assert parser.feed("data: a\n:mid-event\ndata: b\n\n") == [SseEvent("message", "a\nb", "")]
    assert comments == ["heartbeat", "mid-event"]


def test_only_one_leading_space_is_removed_from_a_value() -> None:
    assert parse_all("data:  two spaces\n\n") == [SseEvent("message", " two spaces", "")]
    assert parse_all("data:none\n\n") == [SseEvent("message", "none", "")]


def test_a_field_without_colon_has_an_empty_value() -> None:
    assert parse_all("data\n\n") == [SseEvent("message", "", "")]
    assert parse_all("data\ndata\n\n") == [SseEvent("message", "\n", "")]


def test_an_event_without_data_is_not_dispatched_and_its_type_does_not_leak() -> None:
    assert parse_all("event: gap\n\ndata: x\n\n") == [SseEvent("message", "x", "")]


def test_unknown_fields_are_ignored() -> None:
    assert parse_all("foo: bar\ndata: x\n\n") == [SseEvent("message", "x", "")]


def test_the_last_event_id_persists_until_the_stream_sets_another() -> None:
    parser = SseParser()
    events = parser.feed("id: 5\ndata: a\n\ndata: b\n\nid\ndata: c\n\n")
    assert [event.id for event in events] == ["5", "5", ""]
    assert parser.last_event_id == ""


def test_an_id_containing_nul_is_ignored() -> None:
    parser = SseParser()
    events = parser.feed("id: 5\ndata: a\n\nid: 6\x007\ndata: b\n\n")
    assert [event.id for event in events] == ["5", "5"]


def test_an_id_without_data_still_sets_the_last_event_id() -> None:
    parser = SseParser()
    assert parser.feed("id: 12\n\n") == []
    assert parser.last_event_id == "12"


def test_retry_takes_only_ascii_digits() -> None:
    parser = SseParser()
    parser.feed("retry: 2500\n\n")
    assert parser.retry == 2500
    parser.feed("retry: 12a\n\nretry: -1\n\nretry:\n\nretry: \u0663\n\n")
    assert parser.retry == 2500


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    parser = SseParser()
    assert parser.feed_bytes(b"data: \xff\xfe ok\n\n") == [
        SseEvent("message", "\ufffd\ufffd ok", "")
    ]
