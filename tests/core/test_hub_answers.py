"""The user's answers as the hub holds them (from any of their computers): stored per user,
merged with this computer's outbox into one answer, and reported to the desk at once."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from client.core.alert_stream import AlertStream
from client.core.answers import Answers, HubAnswer, answer_for
from client.core.backoff import Backoff
from client.core.cache import Cache
from client.core.hub_client import HubClient
from client.core.outbox import AckRecord, AckState, Outbox
from hub.server import EmbeddedHub
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    auth_headers,
    create_user,
    publish_alert,
    sign_in,
    wait_until,
)

ALERT_ID = "6f1c1f7e-8f0e-4d57-9a39-0b4b3e1f2a10"


def hub_answer(ack_id: str = "a1", device: str | None = "LAPTOP-2", **fields: Any) -> HubAnswer:
    values: dict[str, Any] = {
        "ack_id": ack_id,
        "alert_id": ALERT_ID,
        "action": "acknowledged",
        "note": None,
        "acted_at": "2026-12-03T10:01:00.000Z",
        "received_at": "2026-12-03T10:01:01.000Z",
        "device_id": "dev-2",
        "device_name": device,
    }
    values.update(fields)
    return HubAnswer(**values)


def local_ack(ack_id: str, state: AckState, author: str = "alex") -> AckRecord:
    return AckRecord(
        ack_id, ALERT_ID, "escalated", None, "2026-12-03T10:00:00.000Z", state, author=author
    )


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    opened = Cache.open(tmp_path / "cache.sqlite3")
    yield opened
    opened.close()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    opened = Outbox.open(tmp_path / "outbox.sqlite3")
    yield opened
    opened.close()


def test_answers_of_one_user_are_never_marked_for_another_on_the_same_profile(
    cache: Cache, outbox: Outbox
) -> None:
    user: list[str | None] = ["alex"]
    answers = Answers(cache, outbox, lambda: user[0])
    assert cache.store_hub_answers([hub_answer()], owner="alex") == [hub_answer()]
    assert answers.answered_alert_ids() == {ALERT_ID}
    assert answers.answer(ALERT_ID).stands

    user[0] = None  # signed out
    assert answers.answered_alert_ids() == set()
    assert answers.hub_answer(ALERT_ID) is None
    user[0] = "blair"  # the next user of this computer
    assert answers.answered_alert_ids() == set()
    assert answers.hub_answer(ALERT_ID) is None
    assert answers.answer(ALERT_ID).state == "unanswered"

    user[0] = "alex"
    assert answers.hub_answer(ALERT_ID) == hub_answer()


def test_the_same_answer_sent_again_is_stored_and_reported_once(cache: Cache) -> None:
    assert cache.store_hub_answers([hub_answer(), hub_answer()], owner="alex") == [hub_answer()]
    assert cache.store_hub_answers([hub_answer()], owner="alex") == []
    assert cache.hub_answers(ALERT_ID, owner="alex") == [hub_answer()]


def test_a_hub_answer_counts_as_accepted_in_the_one_answer_model() -> None:
    answered_elsewhere = answer_for([], author="alex", hub_answers=[hub_answer()])
    assert (answered_elsewhere.state, answered_elsewhere.device_name) == ("synced", "LAPTOP-2")
    assert answered_elsewhere.describe(requires_ack=True) == "Acknowledged · synced"

    # This computer's own ack, still pending locally, that the hub already reports: synced.
    mine = answer_for(
        [local_ack("a1", AckState.PENDING)], author="alex", hub_answers=[hub_answer("a1")]
    )
    assert (mine.state, mine.action) == ("synced", "escalated")

    # A refused local answer does not outweigh an accepted one from another computer.
    refused = answer_for(
        [local_ack("a9", AckState.REJECTED)], author="alex", hub_answers=[hub_answer()]
    )
    assert refused.state == "synced" and refused.stands

    # Without a hub answer, nothing changes for the old callers.
    assert answer_for([local_ack("a9", AckState.REJECTED)], author="alex").state == "rejected"


# A loopback server that plays a hub's stream with answers, hostile ones among them


class _CannedHub(BaseHTTPRequestHandler):
    stream_body = b""
    catch_up_body = b""

    def do_GET(self) -> None:
        if self.path.startswith("/v1/alerts/stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(self.stream_body)
            self.wfile.flush()
            # Hold the stream open briefly, as a hub does, then end it.
            threading.Event().wait(0.5)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.catch_up_body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _answer_json(ack_id: str, **fields: Any) -> dict[str, Any]:
    answer = {
        "ack_id": ack_id,
        "alert_id": ALERT_ID,
        "action": "unable",
        "note": "<b>no</b>",
        "acted_at": "0001-01-01T00:00:00.000Z",
        "received_at": "9999-12-31T23:59:59.999Z",
        "device_id": "dev-9",
        "device_name": "\u202eLAPTOP",
    }
    answer.update(fields)
    return answer


@pytest.fixture
def canned_hub() -> Iterator[str]:
    snapshot = {"answers": [_answer_json("s1"), _answer_json("bad", action="deleted"), 7]}
    live = _answer_json("l1", device_name="x" * 5000)
    _CannedHub.stream_body = (
        f"event: answers\ndata: {json.dumps(snapshot)}\n\n"
        ": connected\n\n"
        "event: answer\ndata: not json\n\n"
        f"event: answer\ndata: {json.dumps(live)}\n\n"
    ).encode()
    _CannedHub.catch_up_body = json.dumps(
        {
            "alerts": [],
            "more": False,
            "gap": False,
            "last_seq": 0,
            "answers": [_answer_json("c1"), {"ack_id": 5}],
        }
    ).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CannedHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_stream_and_catch_up_answers_are_stored_for_the_streams_user_hostile_ones_skipped(
    canned_hub: str, cache: Cache
) -> None:
    client = HubClient(canned_hub, connect_timeout=2.0)
    client.set_access_token("token")
    user: list[str | None] = ["alex"]
    stream = AlertStream(
        client, cache, backoff=Backoff(first=5.0, cap=5.0), current_user=lambda: user[0]
    )
    received: list[HubAnswer] = []
    lock = threading.Lock()

    def on_answer(answer: HubAnswer) -> None:
        with lock:
            received.append(answer)

    stream.answer_received.connect(on_answer)
    stream.start()
    try:
        wait_until(lambda: {a.ack_id for a in received} >= {"s1", "c1", "l1"}, timeout=10)
    finally:
        stream.stop()
        client.close()
    with lock:
        ids = sorted(a.ack_id for a in received)
    assert ids == ["c1", "l1", "s1"], "each once; malformed ones skipped"
    stored = {a.ack_id: a for a in cache.hub_answers(ALERT_ID, owner="alex")}
    assert stored["l1"].device_name == "x" * 5000
    assert stored["s1"].device_name == "\u202eLAPTOP" and stored["s1"].note == "<b>no</b>"
    assert cache.hub_answers(ALERT_ID, owner="blair") == []


# Against the real hub


def test_an_answer_from_another_computer_reaches_this_one_within_a_second(
    hub: EmbeddedHub, cache: Cache
) -> None:
    secret = create_user(hub.store, "alex")
    here = sign_in(hub.url, "alex", DEFAULT_PASSWORD, secret, device_id="desk-1")
    elsewhere = sign_in(hub.url, "alex", DEFAULT_PASSWORD, secret, device_id="laptop-2")
    dispatcher = sign_in(
        hub.url, "dora", DEFAULT_PASSWORD, create_user(hub.store, "dora", "dispatcher")
    )
    alert_id = publish_alert(hub.url, dispatcher["access_token"])["id"]
    probe = requests.get(
        f"{hub.url}/v1/alerts", headers=auth_headers(here["access_token"]), timeout=HTTP_TIMEOUT
    )
    assert "answers" in probe.json()
    client = HubClient(hub.url, connect_timeout=2.0)
    client.set_access_token(here["access_token"])
    stream = AlertStream(client, cache, current_user=lambda: "alex")
    received = threading.Event()
    stream.answer_received.connect(lambda _answer: received.set())
    connected = threading.Event()
    stream.state_changed.connect(
        lambda state: connected.set() if state.phase.value == "connected" else None
    )
    stream.start()
    try:
        assert connected.wait(10)
        wait_until(lambda: cache.alert(alert_id) is not None, timeout=10)
        ack = {
            "ack_id": str(uuid.uuid4()),
            "alert_id": alert_id,
            "action": "acknowledged",
            "acted_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        answered = requests.post(
            f"{hub.url}/v1/acks",
            json={"acks": [ack]},
            headers=auth_headers(elsewhere["access_token"]),
            timeout=HTTP_TIMEOUT,
        )
        assert answered.json()["results"][0]["status"] == "accepted"
        # Within 1 s on a live stream (the margin is for this shared test machine).
        assert received.wait(5.0), "no answer event"
        assert alert_id in cache.hub_answered_alert_ids(owner="alex")
        assert cache.hub_answered_alert_ids(owner="blair") == set()
    finally:
        stream.stop()
        client.close()
