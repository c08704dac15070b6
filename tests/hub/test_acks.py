"""Acknowledgements over HTTP: idempotency by ack_id, per-item rejection, batch limits."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from hub.clock import ManualClock, rfc3339
from hub.server import EmbeddedHub
from hub.storage import db
from tests.hubtools import (
    HTTP_TIMEOUT,
    access_token,
    auth_headers,
    publish_alert,
    write_lock_held,
)

# An ack is acted on after its alert was issued; the hub refuses times far from its own clock.
ACTED = datetime.now(UTC).replace(microsecond=123_000)
ACTED_AT = rfc3339(ACTED.timestamp())


def ack(alert_id: str, **fields: Any) -> dict[str, Any]:
    item = {
        "ack_id": str(uuid.uuid4()),
        "alert_id": alert_id,
        "action": "acknowledged",
        "acted_at": ACTED_AT,
    }
    item.update(fields)
    return item


def post_acks(hub: EmbeddedHub, token: str, body: Any) -> requests.Response:
    return requests.post(
        f"{hub.url}/v1/acks", json=body, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )


def send(hub: EmbeddedHub, token: str, *items: Any) -> list[dict[str, Any]]:
    response = post_acks(hub, token, {"acks": list(items)})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def stored_acks(hub: EmbeddedHub, token: str, alert_id: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{hub.url}/v1/alerts/{alert_id}/acks", headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 200, response.text
    assert response.json()["alert_id"] == alert_id
    acks: list[dict[str, Any]] = response.json()["acks"]
    return acks


@pytest.fixture
def dispatcher(hub: EmbeddedHub) -> str:
    return access_token(hub.store, hub.url, "dora", "dispatcher")


@pytest.fixture
def agent(hub: EmbeddedHub) -> str:
    return access_token(hub.store, hub.url, "ana", "agent")


def test_an_ack_is_accepted_and_kept_with_both_times(
    manual_clock: ManualClock, hub: EmbeddedHub
) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher", at=manual_clock.now())
    agent = access_token(hub.store, hub.url, "ana", "agent", at=manual_clock.now())
    alert_id = publish_alert(hub.url, dispatcher, severity="major")["id"]
    item = ack(alert_id, action="escalated", note="Called the shift lead")

    results = send(hub, agent, item)

    assert results == [{"ack_id": item["ack_id"], "status": "accepted"}]
    assert stored_acks(hub, dispatcher, alert_id) == [
        {
            "ack_id": item["ack_id"],
            "username": "ana",
            "action": "escalated",
            "note": "Called the shift lead",
            "acted_at": ACTED_AT,
            "received_at": rfc3339(manual_clock.now()),
        }
    ]


def test_the_same_ack_sent_again_is_a_duplicate_stored_once(
    hub: EmbeddedHub, dispatcher: str, agent: str
) -> None:
    alert_id = publish_alert(hub.url, dispatcher, severity="major")["id"]
    item = ack(alert_id)

    first = send(hub, agent, item)
    again = send(hub, agent, item, item)

    assert [result["status"] for result in first] == ["accepted"]
    assert [result["status"] for result in again] == ["duplicate", "duplicate"]
    assert len(stored_acks(hub, dispatcher, alert_id)) == 1


def test_the_same_instant_in_another_zone_is_the_same_payload(
    hub: EmbeddedHub, dispatcher: str, agent: str
) -> None:
    alert_id = publish_alert(hub.url, dispatcher, severity="major")["id"]
    item = ack(alert_id)
    send(hub, agent, item)

    an_hour_east = ACTED.astimezone(timezone(timedelta(hours=1))).isoformat()
    [result] = send(hub, agent, {**item, "acted_at": an_hour_east})

    assert result["status"] == "duplicate"


@pytest.mark.parametrize(
    "change",
    [
        {"note": "Different note"},
        {"action": "unable"},
        {"acted_at": rfc3339(ACTED.timestamp() + 60)},
    ],
    ids=["note", "action", "acted_at"],
)
def test_an_ack_id_reused_with_another_payload_is_a_conflict(
    hub: EmbeddedHub, dispatcher: str, agent: str, change: dict[str, Any]
) -> None:
    alert_id = publish_alert(hub.url, dispatcher, severity="major")["id"]
    item = ack(alert_id)
    send(hub, agent, item)

    [result] = send(hub, agent, {**item, **change})

    assert result["status"] == "rejected"
    assert result["error"] == "ack_id_conflict"
    [kept] = stored_acks(hub, dispatcher, alert_id)
    assert (kept["action"], kept["note"], kept["acted_at"]) == ("acknowledged", None, ACTED_AT)


def test_an_ack_id_reused_by_another_user_is_a_conflict(
    hub: EmbeddedHub, dispatcher: str, agent: str
) -> None:
    alert_id = publish_alert(hub.url, dispatcher, severity="major")["id"]
    item = ack(alert_id)
    send(hub, agent, item)

    [result] = send(hub, access_token(hub.store, hub.url, "ben", "agent"), item)

    assert (result["status"], result["error"]) == ("rejected", "ack_id_conflict")
    assert [kept["username"] for kept in stored_acks(hub, dispatcher, alert_id)] == ["ana"]


def test_an_ack_for_an_unknown_alert_is_rejected(hub: EmbeddedHub, agent: str) -> None:
    item = ack(str(uuid.uuid4()))

    [result] = send(hub, agent, item)

    assert result["ack_id"] == item["ack_id"]
    assert (result["status"], result["error"]) == ("rejected", "unknown_alert")
    assert result["detail"]


def test_bad_items_are_rejected_alone_and_the_good_ones_stored(
    hub: EmbeddedHub, dispatcher: str, agent: str
) -> None:
    alert_id = publish_alert(hub.url, dispatcher, severity="major")["id"]
    good = [ack(alert_id), ack(alert_id, action="unable", note="No phone line")]
    bad = [
        ack(alert_id, ack_id="not-a-uuid"),
        ack(alert_id, action="ignored"),
        ack(alert_id, note=42),
        ack(alert_id, acted_at=ACTED.replace(tzinfo=None).isoformat()),
        ack(alert_id, acted_at="last tuesday"),
        ack(alert_id, note="x" * 2001),
        ack(alert_id, colour="red"),
        {"ack_id": str(uuid.uuid4())},
        "acknowledged",
    ]
    batch = [good[0], *bad, good[1]]

    results = send(hub, agent, *batch)

    assert [result["status"] for result in results] == ["accepted", *["rejected"] * 9, "accepted"]
    for item, result in zip(batch[1:-1], results[1:-1], strict=True):
        assert result["error"] == "invalid_ack"
        assert result["detail"]
        if isinstance(item, dict) and isinstance(item.get("ack_id"), str):
            assert result["ack_id"] == item["ack_id"]
    assert results[-2]["ack_id"] is None
    kept = stored_acks(hub, dispatcher, alert_id)
    assert sorted(entry["ack_id"] for entry in kept) == sorted(item["ack_id"] for item in good)


def test_a_full_batch_of_500_is_stored(hub: EmbeddedHub, dispatcher: str, agent: str) -> None:
    alert_id = publish_alert(hub.url, dispatcher, severity="major")["id"]

    results = send(hub, agent, *[ack(alert_id) for _ in range(500)])

    assert {result["status"] for result in results} == {"accepted"}
    assert len(stored_acks(hub, dispatcher, alert_id)) == 500


def test_a_batch_of_501_fails_whole(hub: EmbeddedHub, dispatcher: str, agent: str) -> None:
    alert_id = publish_alert(hub.url, dispatcher, severity="major")["id"]

    response = post_acks(hub, agent, {"acks": [ack(alert_id) for _ in range(501)]})

    assert response.status_code == 413
    assert response.json()["error"] == "batch_too_large"
    assert stored_acks(hub, dispatcher, alert_id) == []


@pytest.mark.parametrize(
    "body",
    [{"acks": {"ack_id": "x"}}, {"acks": "all of them"}, {}, [], {"acks": [], "extra": 1}],
    ids=["object", "string", "missing", "top-level-list", "unknown-field"],
)
def test_a_batch_that_is_not_a_list_fails_whole(hub: EmbeddedHub, agent: str, body: Any) -> None:
    response = post_acks(hub, agent, body)

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_acks_need_a_signed_in_user(hub: EmbeddedHub) -> None:
    response = requests.post(f"{hub.url}/v1/acks", json={"acks": []}, timeout=HTTP_TIMEOUT)

    assert response.status_code == 401


def test_concurrent_identical_batches_store_each_ack_once(
    hub: EmbeddedHub, dispatcher: str, agent: str
) -> None:
    alert_id = publish_alert(hub.url, dispatcher, severity="major")["id"]
    batch = [ack(alert_id) for _ in range(20)]
    senders = 6
    ready = threading.Barrier(senders, timeout=HTTP_TIMEOUT)

    def send_together() -> list[dict[str, Any]]:
        ready.wait()
        return send(hub, agent, *batch)

    with ThreadPoolExecutor(max_workers=senders) as pool:
        answers = list(pool.map(lambda _: send_together(), range(senders)))

    for index, item in enumerate(batch):
        statuses = sorted(answer[index]["status"] for answer in answers)
        assert statuses == ["accepted"] + ["duplicate"] * (senders - 1), item["ack_id"]
    kept = stored_acks(hub, dispatcher, alert_id)
    assert sorted(entry["ack_id"] for entry in kept) == sorted(item["ack_id"] for item in batch)


def test_acks_go_with_their_alert_at_retention(manual_clock: ManualClock, hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher", at=manual_clock.now())
    agent = access_token(hub.store, hub.url, "ana", "agent", at=manual_clock.now())
    alert_id = publish_alert(hub.url, dispatcher, severity="major")["id"]
    item = ack(alert_id)
    send(hub, agent, item)
    manual_clock.advance(29 * 86_400)
    assert hub.store.alerts.purge_expired(hub.settings.retention_seconds) == 0
    assert [kept.ack_id for kept in hub.store.alerts.acks_for(alert_id)] == [item["ack_id"]]

    manual_clock.advance(2 * 86_400)
    # The hub's broker also purges on its own schedule, so it may have got there first.
    hub.store.alerts.purge_expired(hub.settings.retention_seconds)

    assert hub.store.alerts.since(None, 10).alerts == []
    assert hub.store.alerts.acks_for(alert_id) == []


def test_an_ack_that_cannot_take_the_database_lock_is_503_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, start_hub: Callable[..., EmbeddedHub]
) -> None:
    # Two hub processes on one SQLite file under a flood of acks: a write that waited out the
    # busy timeout was answered 500. It changed nothing, so it is a 503 the client retries.
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 200)
    hub = start_hub()
    agent_token = access_token(hub.store, hub.url, "ana", "agent")
    dispatcher_token = access_token(hub.store, hub.url, "dora", "dispatcher")
    alert_id = publish_alert(hub.url, dispatcher_token)["id"]
    item = ack(alert_id)
    with write_lock_held(hub.settings):
        busy = post_acks(hub, agent_token, {"acks": [item]})
    assert busy.status_code == 503, busy.text
    assert busy.json()["error"] == "hub_busy"
    assert busy.headers["Retry-After"] == "2"
    assert stored_acks(hub, dispatcher_token, alert_id) == []
    assert [result["status"] for result in send(hub, agent_token, item)] == ["accepted"]
    assert len(stored_acks(hub, dispatcher_token, alert_id)) == 1
