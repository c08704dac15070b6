"""Answers on every device: an ack from one device of a user reaches every stream of that user
(in this hub process and from another on the same data dir), never another user's; a stream
starts with a snapshot of the user's answers; GET /v1/alerts carries them too."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.clock import SystemClock
from hub.config import HubSettings
from hub.server import EmbeddedHub
from tests.hub.devices import ack_item, get, post, sign_in_device
from tests.hub.test_stream import SseReader, open_stream
from tests.hubtools import access_token, create_user, publish_alert

# Alerts of earlier tests a new stream may still get live before this test's own.
MAX_LATE_ALERTS = 20


@dataclass
class World:
    """Two hub processes on one data dir and their users, made once: each sign-in costs a
    password hash. Each test publishes alerts of its own."""

    hub: EmbeddedHub
    other_process: EmbeddedHub
    dispatcher: str
    device_a: str
    device_b: str
    other: str


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, module_hub_database: str | None
) -> Iterator[World]:
    settings = HubSettings(
        data_dir=Path(tmp_path_factory.mktemp("answers")) / "hub-data",
        clock=SystemClock(),
        database_url=module_hub_database,
    )
    with EmbeddedHub(settings) as hub, EmbeddedHub(settings) as other_process:
        secret = create_user(hub.store, "ana", "agent")
        yield World(
            hub=hub,
            other_process=other_process,
            dispatcher=access_token(hub.store, hub.url, "dora", "dispatcher"),
            device_a=sign_in_device(hub, "ana", secret, "dev-a", "Desk PC"),
            device_b=sign_in_device(hub, "ana", secret, "dev-b", "Laptop \u202e <b>x</b>"),
            other=access_token(hub.store, hub.url, "bob", "agent"),
        )


def accepted(hub: EmbeddedHub, token: str, *items: dict[str, Any]) -> None:
    response = post(hub, "/v1/acks", token, {"acks": list(items)})
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == ["accepted"] * len(items)


def published_to(hub: EmbeddedHub, dispatcher: str, streams: Sequence[SseReader]) -> dict[str, Any]:
    """An alert published now, read off each of the live `streams` before the test reads on.

    The broker fans alerts out after the publish has answered, so a stream opened just after an
    alert was published may still get it live; alerts come in seq order, so once this one has
    arrived, every earlier one has too.
    """
    alert = publish_alert(hub.url, dispatcher)
    for stream in streams:
        for _ in range(MAX_LATE_ALERTS):
            event = stream.next_event()
            assert event.event == "alert", f"{event.event} before the alert published"
            if event.json()["id"] == alert["id"]:
                break
        else:
            raise AssertionError(f"The alert was not among {MAX_LATE_ALERTS} alert events")
    return alert


def test_an_answer_from_one_device_reaches_the_other_and_no_other_user(world: World) -> None:
    hub, dispatcher, other = world.hub, world.dispatcher, world.other
    device_a, device_b = world.device_a, world.device_b

    with (
        open_stream(hub, device_b) as b_stream,
        open_stream(hub, device_a) as a_stream,
        open_stream(hub, other) as other_stream,
    ):
        for stream in (a_stream, b_stream, other_stream):
            stream.wait_until_live()
            assert stream.answers == []
        alert = published_to(hub, dispatcher, (a_stream, b_stream, other_stream))
        item = ack_item(alert["id"], hub, action="escalated", note="<script>x</script>")
        accepted(hub, device_a, item)

        on_b = b_stream.next_event()
        on_a = a_stream.next_event()
        # The fan-out to every stream is done once B has it: bob's next event must be the alert.
        marker = publish_alert(hub.url, dispatcher, title="Marker")
        bobs_next = other_stream.next_event()

    expected = {
        "ack_id": item["ack_id"],
        "alert_id": alert["id"],
        "action": "escalated",
        "note": "<script>x</script>",
        "acted_at": item["acted_at"],
        "device_id": "dev-a",
        "device_name": "Desk PC",
    }
    for event in (on_a, on_b):
        assert event.event == "answer"
        assert event.id is None
        answer = event.json()
        assert {key: answer[key] for key in expected} == expected
        assert answer["received_at"].endswith("Z")
    assert (bobs_next.event, bobs_next.json()["id"]) == ("alert", marker["id"])


def test_an_answer_stored_by_another_hub_process_reaches_the_stream(world: World) -> None:
    hub, dispatcher = world.hub, world.dispatcher
    device_a, device_b = world.device_a, world.device_b
    # A second hub on the same data dir: its broker knows nothing of the first's streams.
    other_process = world.other_process

    with open_stream(hub, device_b) as b_stream:
        b_stream.wait_until_live()
        alert = published_to(hub, dispatcher, (b_stream,))
        item = ack_item(alert["id"], other_process)
        accepted(other_process, device_a, item)
        event = b_stream.next_event()

    assert event.event == "answer"
    assert (event.json()["ack_id"], event.json()["device_id"]) == (item["ack_id"], "dev-a")


def test_forty_parallel_copies_of_one_ack_give_one_answer_event(world: World) -> None:
    hub, dispatcher = world.hub, world.dispatcher
    device_a, device_b = world.device_a, world.device_b

    with open_stream(hub, device_b) as b_stream:
        b_stream.wait_until_live()
        alert = published_to(hub, dispatcher, (b_stream,))
        item = ack_item(alert["id"], hub)
        with ThreadPoolExecutor(max_workers=40) as pool:
            responses = list(
                pool.map(lambda _: post(hub, "/v1/acks", device_a, {"acks": [item]}), range(40))
            )
        statuses = sorted(r.json()["results"][0]["status"] for r in responses)
        first = b_stream.next_event()
        marker = publish_alert(hub.url, dispatcher, title="Marker")
        second = b_stream.next_event()

    assert statuses == ["accepted"] + ["duplicate"] * 39
    assert (first.event, first.json()["ack_id"]) == ("answer", item["ack_id"])
    assert (second.event, second.json()["id"]) == ("alert", marker["id"])


def test_a_reconnecting_stream_starts_with_the_users_answers_only(world: World) -> None:
    hub, dispatcher, other = world.hub, world.dispatcher, world.other
    device_a, device_b = world.device_a, world.device_b
    alerts = [publish_alert(hub.url, dispatcher, title=f"Alert {n}") for n in range(2)]
    mine = ack_item(alerts[0]["id"], hub)
    accepted(hub, device_a, mine)
    theirs = ack_item(alerts[1]["id"], hub)
    accepted(hub, other, theirs)

    with open_stream(hub, device_b, last_event_id=str(alerts[1]["seq"])) as stream:
        lines = _lines_until_live(stream)

    # After the replay, before `: connected`, without an id line.
    assert lines[-2:] == ["event: answers", lines[-1]]
    snapshot = json.loads(lines[-1].removeprefix("data: "))["answers"]
    assert (mine["ack_id"], "Desk PC") in [(a["ack_id"], a["device_name"]) for a in snapshot]
    assert all(_owner(hub, a["ack_id"]) == "ana" for a in snapshot), "only the user's own"
    assert theirs["ack_id"] not in [a["ack_id"] for a in snapshot]


def test_get_alerts_carries_the_callers_own_answers_to_that_page(world: World) -> None:
    hub, dispatcher, other = world.hub, world.dispatcher, world.other
    device_a, device_b = world.device_a, world.device_b
    before = publish_alert(hub.url, dispatcher, title="Before")
    first, second = (publish_alert(hub.url, dispatcher, title=f"A{n}") for n in range(2))
    mine = ack_item(first["id"], hub, action="unable")
    accepted(hub, device_a, mine)
    accepted(hub, other, ack_item(first["id"], hub))

    everything = get(hub, "/v1/alerts", device_b, since=before["seq"]).json()
    after_first = get(hub, "/v1/alerts", device_b, since=first["seq"]).json()

    assert [(a["ack_id"], a["action"]) for a in everything["answers"]] == [
        (mine["ack_id"], "unable")
    ]
    assert after_first["answers"] == []
    assert [a["id"] for a in after_first["alerts"]] == [second["id"]]


HOSTILE_OPENED: list[tuple[Any, str]] = [
    ([{"kind": "video", "id": "pb-1", "version": 1}], "kind"),
    ([{"kind": "playbook", "id": "", "version": 1}], "id"),
    ([{"kind": "playbook", "id": "x" * 201, "version": 1}], "id"),
    ([{"kind": "playbook", "id": "pb-1", "version": 0}], "version"),
    ([{"kind": "playbook", "id": "pb-1", "version": -3}], "version"),
    ([{"kind": "playbook", "id": "pb-1", "version": True}], "version"),
    ([{"kind": "playbook", "id": "pb-1", "version": "3"}], "version"),
    ([{"kind": "playbook", "id": "pb-1", "version": 2**63}], "version"),
    ([{"kind": "playbook", "id": "pb-1", "version": 1, "extra": 1}], "extra"),
    ([{"kind": "template", "id": "t", "version": 1}] * 51, "opened"),
    ("pb-1", "opened"),
    ([None], "opened"),
]


def test_a_malformed_opened_list_rejects_that_ack_only(world: World) -> None:
    hub, dispatcher, agent = world.hub, world.dispatcher, world.device_a
    alert = publish_alert(hub.url, dispatcher)
    bad = [ack_item(alert["id"], hub, opened=opened) for opened, _ in HOSTILE_OPENED]
    good = ack_item(alert["id"], hub)

    response = post(hub, "/v1/acks", agent, {"acks": [*bad, good]})

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    for item, result, (_, where) in zip(bad, results, HOSTILE_OPENED, strict=False):
        assert (result["ack_id"], result["status"]) == (item["ack_id"], "rejected")
        assert result["error"] == "invalid_ack"
        assert where in result["detail"], result["detail"]
        assert _stored_opened(hub, item["ack_id"]) is None
    assert results[-1]["status"] == "accepted"


def test_the_opened_versions_and_the_device_are_stored_with_the_ack(world: World) -> None:
    hub, dispatcher, device_a = world.hub, world.dispatcher, world.device_a
    alert = publish_alert(hub.url, dispatcher)
    opened = [{"kind": "playbook", "id": "pb-\u202e<b>", "version": 3}] + [
        {"kind": "template", "id": f"t-{n}", "version": 2**63 - 1} for n in range(49)
    ]
    item = ack_item(alert["id"], hub, opened=opened)

    accepted(hub, device_a, item)

    assert _stored_opened(hub, item["ack_id"]) == ("dev-a", "Desk PC", opened)


def _stored_opened(hub: EmbeddedHub, ack_id: str) -> tuple[str, str, Any] | None:
    with hub.store.db.read() as conn:
        row = conn.execute(
            "SELECT device_id, device_name, opened FROM alert_acks WHERE ack_id = ?", (ack_id,)
        ).fetchone()
    return None if row is None else (row[0], row[1], json.loads(row[2]))


def _owner(hub: EmbeddedHub, ack_id: str) -> str:
    with hub.store.db.read() as conn:
        row = conn.execute("SELECT username FROM alert_acks WHERE ack_id = ?", (ack_id,)).fetchone()
    return str(row[0])


def _lines_until_live(stream: SseReader) -> list[str]:
    lines = []
    for _ in range(1_000):
        line = next(stream._lines)
        if line == ": connected":
            return [text for text in lines if text]
        lines.append(line)
    raise AssertionError("The stream never said it was live")
