"""POST /v1/receipts over HTTP: the device comes from the sign-in, the earliest times win, bad
items are rejected one by one, bad batches as a whole, and nothing hostile gives a 500."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.clock import SystemClock
from hub.config import HubSettings
from hub.server import EmbeddedHub
from tests.hub.devices import (
    YEAR_9999,
    YEAR_ONE,
    now_text,
    post,
    publish_in_store,
    sign_in_device,
)
from tests.hubtools import access_token, create_user, publish_alert


@dataclass
class Hub:
    """One hub for this module: sign-ins cost a password hash each, so they are made once."""

    hub: EmbeddedHub
    dispatcher: str
    laptop: str
    phone: str
    outsider: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    data = Path(tmp_path_factory.mktemp("receipts")) / "hub-data"
    hub = EmbeddedHub(HubSettings(data_dir=data, clock=SystemClock())).start()
    try:
        dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
        secret = create_user(hub.store, "ana", "agent")
        laptop = sign_in_device(hub, "ana", secret, "dev-laptop", "Laptop")
        phone = sign_in_device(hub, "ana", secret, "dev-phone", "Phone")
        outsider = access_token(hub.store, hub.url, "bob", "agent")
        hub.store.groups.create("west", "region")
        hub.store.groups.add_members("west", ["ana"])
        yield Hub(hub, dispatcher, laptop, phone, outsider)
    finally:
        hub.stop()


def receipts(world: Hub, token: str, *items: Any) -> list[dict[str, Any]]:
    response = post(world.hub, "/v1/receipts", token, {"receipts": list(items)})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    assert len(results) == len(items)
    return results


def stored(world: Hub, alert_id: str) -> list[tuple[Any, ...]]:
    with world.hub.store.db.read() as conn:
        rows = conn.execute(
            "SELECT username, device_id, device_name, received_at_ms, shown_at_ms "
            "FROM alert_receipts WHERE alert_id = ? ORDER BY device_id",
            (alert_id,),
        ).fetchall()
    return [tuple(row) for row in rows]


def test_each_device_keeps_its_earliest_received_and_shown_times(world: Hub) -> None:
    hub = world.hub
    alert = publish_alert(hub.url, world.dispatcher)
    later, earlier = now_text(hub, -10), now_text(hub, -20)

    first = receipts(world, world.laptop, {"alert_id": alert["id"], "received_at": later})
    receipts(
        world,
        world.laptop,
        {"alert_id": alert["id"], "received_at": earlier, "shown_at": later},
        {"alert_id": alert["id"], "received_at": now_text(hub), "shown_at": earlier},
        {"alert_id": alert["id"], "received_at": now_text(hub)},
    )
    receipts(world, world.phone, {"alert_id": alert["id"], "received_at": later})

    assert first == [{"alert_id": alert["id"], "status": "accepted"}]
    rows = stored(world, alert["id"])
    assert [row[:3] for row in rows] == [
        ("ana", "dev-laptop", "Laptop"),
        ("ana", "dev-phone", "Phone"),
    ]
    laptop, phone = rows
    assert laptop[3] < phone[3]
    # Shown earlier than received on a skewed clock is still the earliest report of each.
    assert laptop[4] is not None and laptop[4] < phone[3]
    assert phone[4] is None


def test_bad_items_are_rejected_alone_and_the_rest_stored(world: Hub) -> None:
    hub = world.hub
    alert = publish_alert(hub.url, world.dispatcher)
    west_only = publish_in_store(hub, audience=["west"]).to_wire()
    unknown = "00000000-0000-4000-8000-000000000000"
    bad: list[tuple[Any, str]] = [
        ({"alert_id": unknown, "received_at": now_text(hub)}, "unknown_alert"),
        ({"alert_id": alert["id"], "received_at": YEAR_ONE}, "invalid_receipt"),
        ({"alert_id": alert["id"], "received_at": YEAR_9999}, "invalid_receipt"),
        ({"alert_id": alert["id"], "received_at": now_text(hub, 2 * 86_400)}, "invalid_receipt"),
        (
            {"alert_id": alert["id"], "received_at": now_text(hub), "shown_at": YEAR_ONE},
            "invalid_receipt",
        ),
        ({"alert_id": alert["id"], "received_at": "2026-11-27T10:42:00"}, "invalid_receipt"),
        ({"alert_id": alert["id"], "received_at": "yesterday"}, "invalid_receipt"),
        ({"alert_id": alert["id"] + "\u202e", "received_at": now_text(hub)}, "invalid_receipt"),
        ({"alert_id": "<b>x</b>", "received_at": now_text(hub)}, "invalid_receipt"),
        ({"alert_id": alert["id"], "received_at": -5}, "invalid_receipt"),
        ({"alert_id": alert["id"]}, "invalid_receipt"),
        (
            {"alert_id": alert["id"], "received_at": now_text(hub), "device_id": "x"},
            "invalid_receipt",
        ),
        ("x" * 10_000, "invalid_receipt"),
        (None, "invalid_receipt"),
    ]
    good = {"alert_id": alert["id"], "received_at": now_text(hub)}

    results = receipts(world, world.laptop, *[item for item, _ in bad], good)
    outsider = receipts(
        world, world.outsider, {"alert_id": west_only["id"], "received_at": now_text(hub)}
    )

    for (item, error), result in zip(bad, results, strict=False):
        assert (result["status"], result["error"]) == ("rejected", error), (item, result)
        assert result["detail"]
    assert results[1]["detail"].startswith("received_at:")
    assert results[-1] == {"alert_id": alert["id"], "status": "accepted"}
    assert [row[1] for row in stored(world, alert["id"])] == ["dev-laptop"]
    # An agent outside an alert's audience cannot tell it exists.
    assert outsider[0]["error"] == "unknown_alert"
    assert stored(world, west_only["id"]) == []


def test_malformed_or_oversized_batches_fail_whole(world: Hub) -> None:
    hub = world.hub
    alert = publish_alert(hub.url, world.dispatcher)
    item = {"alert_id": alert["id"], "received_at": now_text(hub)}
    for body, status, error in [
        ({"receipts": [item] * 501}, 413, "batch_too_large"),
        ({"receipts": item}, 422, "invalid_request"),
        ({"receipts": [item], "extra": 1}, 422, "invalid_request"),
        ({}, 422, "invalid_request"),
        ([item], 422, "invalid_request"),
    ]:
        response = post(hub, "/v1/receipts", world.laptop, body)
        assert (response.status_code, response.json()["error"]) == (status, error)
    assert stored(world, alert["id"]) == []
    assert post(hub, "/v1/receipts", "not-a-token", {"receipts": []}).status_code == 401


def test_forty_parallel_copies_store_one_receipt(world: Hub) -> None:
    alert = publish_alert(world.hub.url, world.dispatcher)
    item = {"alert_id": alert["id"], "received_at": now_text(world.hub, -1)}

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(lambda _: receipts(world, world.phone, item), range(40)))

    assert all(result == [{"alert_id": alert["id"], "status": "accepted"}] for result in results)
    assert [row[1:4] for row in stored(world, alert["id"])] == [
        ("dev-phone", "Phone", _millis_of(item["received_at"]))
    ]


def _millis_of(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
RECEIPT_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "alert_id": st.uuids().map(str) | JSON_VALUES,
        "received_at": st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
        | JSON_VALUES,
        "shown_at": st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
        | JSON_VALUES,
    },
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(RECEIPT_FIELDS | JSON_VALUES, max_size=6))
def test_hostile_receipts_are_answered_item_by_item_never_a_500(
    world: Hub, items: list[Any]
) -> None:
    response = post(world.hub, "/v1/receipts", world.laptop, {"receipts": items})

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == len(items)
    for result in results:
        assert result["status"] == "rejected"
        assert result["error"] in ("invalid_receipt", "unknown_alert")
