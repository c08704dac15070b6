"""Reachability: every alert stream a hub holds is recorded (opened, stamped, closed), and
GET /v1/agents says who a live stream reaches now, with each device's latest readiness."""

from __future__ import annotations

import json

import pytest

from hub import broker as broker_module
from hub.clock import ManualClock
from hub.config import HubSettings
from hub.server import EmbeddedHub
from tests.hub.devices import get, sign_in_device
from tests.hub.test_stream import open_stream
from tests.hubtools import access_token, create_user, other_process_rows, wait_until


def agents(hub: EmbeddedHub, token: str, **params: str) -> dict[str, dict[str, object]]:
    response = get(hub, "/v1/agents", token, **params)
    assert response.status_code == 200, response.text
    return {agent["username"]: agent for agent in response.json()["agents"]}


def test_a_live_stream_makes_its_agent_reachable_until_it_closes(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    secret = create_user(hub.store, "ana", "agent", display_name="Ana \u202e<b>")
    agent = sign_in_device(hub, "ana", secret, "dev-a", "Desk PC")
    create_user(hub.store, "bob", "agent")
    hub.store.groups.create("west", "region")
    hub.store.groups.add_members("west", ["ana"])

    before = agents(hub, dispatcher)
    with open_stream(hub, agent) as stream, open_stream(hub, dispatcher) as own:
        stream.wait_until_live()
        own.wait_until_live()
        during = agents(hub, dispatcher)
    wait_until(lambda: not agents(hub, dispatcher)["ana"]["reachable"])
    after = agents(hub, dispatcher)

    assert set(before) == {"ana", "bob"}, "dispatchers are not listed as agents"
    assert before["ana"] == {
        "username": "ana",
        "display_name": "Ana \u202e<b>",
        "groups": ["west"],
        "phone": None,
        "reachable": False,
        "last_seen_at": None,
        "devices": [],
    }
    assert during["ana"]["reachable"] is True
    assert during["ana"]["last_seen_at"] is not None
    assert during["ana"]["devices"] == [
        {
            "device_id": "dev-a",
            "device_name": "Desk PC",
            "streaming": True,
            "last_seen_at": during["ana"]["last_seen_at"],
            "readiness": None,
        }
    ]
    assert during["bob"]["reachable"] is False
    assert after["ana"]["devices"][0]["streaming"] is False
    assert after["ana"]["last_seen_at"] is not None


def test_a_stream_not_stamped_for_45_seconds_no_longer_counts(
    manual_clock: ManualClock, hub: EmbeddedHub
) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher", at=manual_clock.now())
    agent = access_token(hub.store, hub.url, "ana", "agent", at=manual_clock.now())

    with open_stream(hub, agent) as stream:
        stream.wait_until_live()
        manual_clock.advance(44)
        still = agents(hub, dispatcher)["ana"]["reachable"]
        manual_clock.advance(2)
        stale = agents(hub, dispatcher)["ana"]["reachable"]

    assert (still, stale) == (True, False)


def test_open_streams_are_stamped_seen_in_one_batched_write(
    manual_clock: ManualClock, monkeypatch: pytest.MonkeyPatch, hub_settings: HubSettings
) -> None:
    # The stamp comes every 15 s in production; the test does not wait that long.
    monkeypatch.setattr(broker_module, "PRESENCE_SECONDS", 0.2)
    with EmbeddedHub(hub_settings) as running:
        dispatcher = access_token(
            running.store, running.url, "dora", "dispatcher", at=manual_clock.now()
        )
        secret = create_user(running.store, "ana", "agent")
        laptop = sign_in_device(running, "ana", secret, "dev-a", "Laptop")
        phone = sign_in_device(running, "ana", secret, "dev-b", "Phone")
        with open_stream(running, laptop) as first, open_stream(running, phone) as second:
            first.wait_until_live()
            second.wait_until_live()
            manual_clock.advance(600)
            wait_until(lambda: agents(running, dispatcher)["ana"]["reachable"], timeout=10)
            devices = agents(running, dispatcher)["ana"]["devices"]

    assert [(d["device_id"], d["streaming"]) for d in devices] == [
        ("dev-a", True),
        ("dev-b", True),
    ]
    assert devices[0]["last_seen_at"] == devices[1]["last_seen_at"]


def test_each_device_shows_its_latest_readiness_and_a_damaged_one_loses_only_details(
    hub: EmbeddedHub,
) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    create_user(hub.store, "ana", "agent")
    now = hub.settings.clock.now()
    checks = {"vpn": {"status": "ok", "detail": "<b>on</b>"}, "audio": {"status": "fail"}}
    with hub.store.db.write() as conn:
        conn.executemany(
            "INSERT INTO readiness (username, device_id, device_name, ran_at, received_at, "
            "ready, checks) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                ("ana", "dev-a", "Desk PC", now, now, 0, json.dumps(checks)),
                ("ana", "dev-b", "Phone", now, now, 1, "{not json"),
            ],
        )

    devices = agents(hub, dispatcher)["ana"]["devices"]

    assert [(d["device_id"], d["device_name"], d["streaming"]) for d in devices] == [
        ("dev-a", "Desk PC", False),
        ("dev-b", "Phone", False),
    ]
    assert devices[0]["readiness"]["ready"] is False
    assert devices[0]["readiness"]["checks"] == checks
    assert devices[1]["readiness"]["ready"] is True
    assert devices[1]["readiness"]["checks"] == {}


def test_agents_by_group_and_who_may_ask(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    agent = access_token(hub.store, hub.url, "ana", "agent")
    create_user(hub.store, "bob", "agent")
    hub.store.groups.create("West", "region")
    hub.store.groups.add_members("West", ["bob"])

    assert set(agents(hub, dispatcher, group="west")) == {"bob"}
    unknown = get(hub, "/v1/agents", dispatcher, group="<b>\u202e")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_group")
    assert get(hub, "/v1/agents", dispatcher, group="").status_code == 422
    assert get(hub, "/v1/agents", dispatcher, group="x" * 201).status_code == 422
    forbidden = get(hub, "/v1/agents", agent)
    assert (forbidden.status_code, forbidden.json()["error"]) == (403, "forbidden")


def test_a_stopping_hub_records_its_streams_closed(hub_settings: HubSettings) -> None:
    running = EmbeddedHub(hub_settings).start()
    try:
        agent = access_token(running.store, running.url, "ana", "agent")
        with open_stream(running, agent) as stream:
            stream.wait_until_live()
            running.stop()
    finally:
        running.stop()

    rows = other_process_rows(
        hub_settings,
        "SELECT username, closed_at > 0 FROM stream_presence",
    )
    assert rows == [("ana", 1)]
