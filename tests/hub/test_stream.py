"""The SSE alert stream over real HTTP: live delivery, Last-Event-ID replay, gaps, heartbeats."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from hub.clock import ManualClock
from hub.server import EmbeddedHub
from tests.hubtools import (
    HTTP_TIMEOUT,
    access_token,
    auth_headers,
    create_user,
    publish_alert,
    wait_until,
)

DAY = 86_400
# Each read from a stream waits at most this long: a missing event fails the test, never hangs it.
READ_TIMEOUT = 10.0
MAX_LINES = 1_000


@dataclass
class SseEvent:
    """One dispatched SSE event, or one comment line."""

    event: str | None = None
    id: str | None = None
    data: str = ""
    comment: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


class SseReader:
    """Parses a text/event-stream response line by line, as an EventSource does."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self._lines = response.iter_lines(decode_unicode=True)
        self.answers: list[dict[str, Any]] | None = None

    def next(self) -> SseEvent | None:
        """The next event or comment; None when the hub ended the stream."""
        current = SseEvent()
        has_field = False
        for _ in range(MAX_LINES):
            line = next(self._lines, None)
            if line is None:
                return None
            if line.startswith(":"):
                return SseEvent(comment=line[1:].strip())
            if line == "":
                if has_field:
                    return current
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            has_field = True
            if name == "event":
                current.event = value
            elif name == "id":
                current.id = value
            elif name == "data":
                current.data = f"{current.data}\n{value}" if current.data else value
        raise AssertionError(f"No complete event within {MAX_LINES} lines")

    def next_event(self) -> SseEvent:
        """The next real event, skipping comments."""
        for _ in range(MAX_LINES):
            event = self.next()
            assert event is not None, "the stream ended"
            if event.comment is None:
                return event
        raise AssertionError(f"Only comments in {MAX_LINES} reads")

    def wait_until_live(self) -> list[SseEvent]:
        """Read up to the `: connected` comment; returns the events replayed before it.

        The snapshot of the user's answers that precedes it is kept in `answers`, not returned.
        """
        replayed: list[SseEvent] = []
        for _ in range(MAX_LINES):
            event = self.next()
            assert event is not None, "the stream ended before it was live"
            if event.comment == "connected":
                return replayed
            if event.event == "answers":
                self.answers = event.json()["answers"]
            elif event.comment is None:
                replayed.append(event)
        raise AssertionError("The stream never said it was live")


@contextmanager
def open_stream(
    hub: EmbeddedHub, token: str, last_event_id: str | None = None
) -> Iterator[SseReader]:
    headers = auth_headers(token)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    response = requests.get(
        f"{hub.url}/v1/alerts/stream",
        headers=headers,
        stream=True,
        timeout=(HTTP_TIMEOUT, READ_TIMEOUT),
    )
    try:
        assert response.status_code == 200, response.text
        yield SseReader(response)
    finally:
        response.close()


def test_a_published_alert_reaches_every_open_stream(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    agent = access_token(hub.store, hub.url, "ana", "agent")

    with open_stream(hub, agent) as first, open_stream(hub, dispatcher) as second:
        assert first.response.headers["content-type"].startswith("text/event-stream")
        assert first.response.headers["cache-control"] == "no-cache"
        assert first.response.headers["x-accel-buffering"] == "no"
        assert first.wait_until_live() == []
        assert second.wait_until_live() == []

        alert = publish_alert(hub.url, dispatcher, title="Video visits down in the West region")

        for stream in (first, second):
            event = stream.next_event()
            assert (event.event, event.id) == ("alert", str(alert["seq"]))
            assert event.json() == alert


def test_last_event_id_replays_what_was_missed_then_goes_live(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    agent = access_token(hub.store, hub.url, "ana", "agent")
    published = [publish_alert(hub.url, dispatcher, title=f"Alert {n}") for n in range(3)]

    with open_stream(hub, agent, last_event_id=str(published[0]["seq"])) as stream:
        replayed = stream.wait_until_live()
        live = publish_alert(hub.url, dispatcher, title="Alert after reconnecting")
        next_event = stream.next_event()

    assert [event.json() for event in replayed] == published[1:]
    assert [event.id for event in replayed] == [str(alert["seq"]) for alert in published[1:]]
    assert next_event.json() == live


def test_a_last_event_id_past_retention_gets_a_gap_event_first(
    manual_clock: ManualClock, hub: EmbeddedHub
) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher", at=manual_clock.now())
    old = [publish_alert(hub.url, dispatcher, title=f"Old {n}") for n in range(2)]
    manual_clock.advance(31 * DAY)
    dispatcher = access_token(hub.store, hub.url, "dora2", "dispatcher", at=manual_clock.now())
    agent = access_token(hub.store, hub.url, "ana", "agent", at=manual_clock.now())
    new = publish_alert(hub.url, dispatcher, title="New")

    with open_stream(hub, agent, last_event_id=str(old[0]["seq"])) as stream:
        replayed = stream.wait_until_live()

    assert replayed[0].event == "gap"
    assert replayed[0].json() == {"since": old[0]["seq"], "oldest_kept_seq": new["seq"]}
    assert [event.json() for event in replayed[1:]] == [new]


def test_an_up_to_date_last_event_id_gets_no_gap(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    alert = publish_alert(hub.url, dispatcher, title="Seen already")

    with open_stream(
        hub, access_token(hub.store, hub.url, "ana", "agent"), str(alert["seq"])
    ) as stream:
        assert stream.wait_until_live() == []


def test_an_idle_stream_gets_heartbeat_comments(start_hub: Callable[..., EmbeddedHub]) -> None:
    hub = start_hub(heartbeat_seconds=0.2)
    agent = access_token(hub.store, hub.url, "ana", "agent")

    with open_stream(hub, agent) as stream:
        stream.wait_until_live()
        comments = [stream.next() for _ in range(2)]

    assert [event.comment if event else None for event in comments] == ["heartbeat", "heartbeat"]


def test_an_alert_published_by_another_process_reaches_the_stream(hub: EmbeddedHub) -> None:
    agent = access_token(hub.store, hub.url, "ana", "agent")
    create_user(hub.store, "dora", "dispatcher")

    with open_stream(hub, agent) as stream:
        stream.wait_until_live()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "hub",
                "alert",
                "publish",
                "--severity",
                "major",
                "--title",
                "EHR read-only from the command line",
                "--body",
                "Use downtime forms.",
                "--as",
                "dora",
                "--data",
                str(hub.settings.data_dir),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        event = stream.next_event()

    assert event.event == "alert"
    assert event.json()["title"] == "EHR read-only from the command line"
    assert event.json()["issued_by"] == "dora"


def test_a_closed_stream_is_forgotten_by_the_hub(hub: EmbeddedHub) -> None:
    agent = access_token(hub.store, hub.url, "ana", "agent")

    with open_stream(hub, agent) as stream:
        stream.wait_until_live()
        assert hub.broker.open_streams == 1

    wait_until(lambda: hub.broker.open_streams == 0)


def test_stopping_the_hub_ends_open_streams(hub: EmbeddedHub) -> None:
    agent = access_token(hub.store, hub.url, "ana", "agent")

    with open_stream(hub, agent) as stream:
        stream.wait_until_live()
        hub.stop()
        last = stream.next()
        ended = stream.next()

    assert last is not None
    assert (last.event, last.json()["reason"]) == ("closed", "hub_stopping")
    assert ended is None


def test_a_malformed_last_event_id_is_refused(hub: EmbeddedHub) -> None:
    headers = {
        **auth_headers(access_token(hub.store, hub.url, "ana", "agent")),
        "Last-Event-ID": "yesterday",
    }

    response = requests.get(f"{hub.url}/v1/alerts/stream", headers=headers, timeout=HTTP_TIMEOUT)

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_the_stream_needs_a_signed_in_user(hub: EmbeddedHub) -> None:
    response = requests.get(f"{hub.url}/v1/alerts/stream", timeout=HTTP_TIMEOUT)

    assert response.status_code == 401
    assert response.json()["error"] == "token_invalid"


def test_a_last_event_id_from_a_reset_hub_still_gets_new_alerts(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")

    with open_stream(
        hub, access_token(hub.store, hub.url, "ana", "agent"), last_event_id="99"
    ) as stream:
        assert stream.wait_until_live() == []
        alert = publish_alert(hub.url, dispatcher, title="First alert on a new hub")
        event = stream.next_event()

    assert event.json() == alert
