"""GET /v1/alerts/{id}/delivery: where each target stands, silent and unreachable first; anyone
else who answered is listed as not targeted and never counted."""

from __future__ import annotations

import uuid
from typing import Any

from hub.server import EmbeddedHub
from tests.hub.devices import ack_item, get, now_text, post, publish_in_store, sign_in_device
from tests.hub.test_stream import open_stream
from tests.hubtools import access_token, create_user


def test_the_delivery_view_orders_silent_and_unreachable_first(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    ana_secret = create_user(hub.store, "ana", "agent", display_name="Ana <i>\u202e")
    ana = sign_in_device(hub, "ana", ana_secret, "dev-a", "Desk PC")
    bob = access_token(hub.store, hub.url, "bob", "agent")
    create_user(hub.store, "cy", "agent")
    hub.store.groups.create("west", "region")
    hub.store.groups.add_members("west", ["ana", "cy"])
    with hub.store.db.write() as conn:
        conn.execute("UPDATE users SET phone = '+1-555-0100' WHERE username = 'cy'")
    alert = publish_in_store(hub, drill=True)
    other = publish_in_store(hub)

    receipt = {"alert_id": alert.id, "received_at": now_text(hub, -5), "shown_at": now_text(hub)}
    assert post(hub, "/v1/receipts", ana, {"receipts": [receipt]}).status_code == 200
    assert post(hub, "/v1/receipts", bob, {"receipts": [receipt | {"shown_at": None}]}).ok
    answer = ack_item(alert.id, hub, note="called <b>NOC</b>")
    assert post(hub, "/v1/acks", ana, {"acks": [answer]}).json()["results"][0]["status"] == (
        "accepted"
    )
    assert post(hub, "/v1/acks", dispatcher, {"acks": [ack_item(alert.id, hub)]}).ok
    # Another alert's records must not leak into this one's view.
    assert post(hub, "/v1/acks", bob, {"acks": [ack_item(other.id, hub)]}).ok
    hub.store.delivery.claim_fallback(alert.id, "cy", ["none"])
    hub.store.delivery.record_fallback_outcome(
        alert.id, "cy", "none", ok=False, detail="No channel", sent=False
    )

    with open_stream(hub, ana) as stream:
        stream.wait_until_live()
        view = get(hub, f"/v1/alerts/{alert.id}/delivery", dispatcher).json()

    assert (view["alert_id"], view["targeted"], view["drill"]) == (alert.id, 3, True)
    assert view["counts"] == {
        "silent": 1,
        "delivered": 1,
        "shown": 0,
        "acknowledged": 1,
        "escalated": 0,
        "unable": 0,
        "unreachable": 1,
    }
    rows = {agent["username"]: agent for agent in view["agents"]}
    assert [agent["username"] for agent in view["agents"]] == ["cy", "bob", "ana", "dora"]
    assert [rows[name]["targeted"] for name in ("cy", "bob", "ana", "dora")] == [
        True,
        True,
        True,
        False,
    ]
    cy = rows["cy"]
    assert (cy["state"], cy["phone"], cy["groups"], cy["reachable"]) == (
        "silent",
        "+1-555-0100",
        ["west"],
        False,
    )
    assert cy["unreachable_marked_at"] is not None
    assert cy["fallback"] == [
        {"channel": "none", "ok": False, "sent_at": None, "detail": "No channel"}
    ]
    ana_row = rows["ana"]
    assert ana_row["display_name"] == "Ana <i>\u202e"
    assert (ana_row["state"], ana_row["note"], ana_row["answer_device"]) == (
        "acknowledged",
        "called <b>NOC</b>",
        "dev-a",
    )
    assert ana_row["answered_at"] == answer["acted_at"]
    assert ana_row["reachable"] is True
    assert ana_row["devices"] == [
        {
            "device_id": "dev-a",
            "device_name": "Desk PC",
            "received_at": receipt["received_at"],
            "shown_at": receipt["shown_at"],
        }
    ]
    assert (rows["bob"]["state"], rows["bob"]["answered_at"]) == ("delivered", None)
    assert (ana_row["unreachable_marked_at"], ana_row["fallback"]) == (None, [])


def test_unknown_alerts_and_agents_are_refused(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    agent = access_token(hub.store, hub.url, "ana", "agent")
    alert = publish_in_store(hub)

    answers: list[Any] = [
        get(hub, f"/v1/alerts/{uuid.uuid4()}/delivery", dispatcher),
        get(hub, "/v1/alerts/%3Cb%3E%E2%80%AE/delivery", dispatcher),
        get(hub, f"/v1/alerts/{'9' * 5000}/delivery", dispatcher),
    ]
    forbidden = get(hub, f"/v1/alerts/{alert.id}/delivery", agent)

    assert [(r.status_code, r.json()["error"]) for r in answers] == [(404, "unknown_alert")] * 3
    assert (forbidden.status_code, forbidden.json()["error"]) == (403, "forbidden")
    silent = get(hub, f"/v1/alerts/{alert.id.upper()}/delivery", dispatcher).json()
    assert [(a["username"], a["state"]) for a in silent["agents"]] == [("ana", "silent")]
