"""End to end: an agent a live critical alert cannot reach gets a short email at the hospital's
mail relay (a real aiosmtpd server on loopback); an agent whose client reported the alert does
not, and nothing is sent twice."""

from __future__ import annotations

import email
from collections.abc import Callable
from email.policy import default as default_policy

from hub.clock import ManualClock
from hub.config import FallbackSettings
from hub.server import EmbeddedHub
from tests.hub.devices import get, now_text, post, sign_in_device
from tests.hub.notifiers.conftest import SmtpServer
from tests.hubtools import access_token, create_user, publish_alert, wait_until

BODY = "Patient Jane Roe, MRN 0042: move her 10:30 video visit to phone."


def test_an_unreachable_agent_gets_one_email_and_a_reached_one_none(
    manual_clock: ManualClock,
    start_hub: Callable[..., EmbeddedHub],
    start_smtp: Callable[..., SmtpServer],
) -> None:
    relay = start_smtp("plain")
    hub = start_hub(
        fallback=FallbackSettings(
            smtp_url=f"smtp://{relay.host}:{relay.port}",
            smtp_from="vigil@hospital.example",
            fallback_after_seconds=60,
        )
    )
    create_user(hub.store, "omar")
    online_secret = create_user(hub.store, "nina")
    with hub.store.db.write() as conn:
        conn.execute(
            "UPDATE users SET fallback_email = username || '@pager.example', phone = '+1 555 0100'"
        )
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    alert = publish_alert(hub.url, dispatcher, body=BODY)
    nina = sign_in_device(hub, "nina", online_secret, "laptop-nina", "Nina's laptop")
    receipt = post(
        hub,
        "/v1/receipts",
        nina,
        {"receipts": [{"alert_id": alert["id"], "received_at": now_text(hub)}]},
    )
    assert receipt.status_code == 200, receipt.text

    manual_clock.advance(30)
    # Before the configured wait nothing is sent, whatever the passes do.
    hub.fallback.run_pass()
    assert relay.mailbox.received() == []

    manual_clock.advance(31)
    wait_until(lambda: len(relay.mailbox.received()) == 1, timeout=20)
    sender, recipients, raw = relay.mailbox.received()[0]
    message = email.message_from_bytes(raw, policy=default_policy)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert (sender, recipients) == ("vigil@hospital.example", ["omar@pager.example"])
    assert "Video visits down in the West region" in message["Subject"]
    assert "Open Vigil" in text
    # No patient data leaves the hub: the body stays on it.
    assert "Jane" not in raw.decode("utf-8", "replace") and "0042" not in text

    # Later passes, in this process or by hand, never send it again.
    hub.fallback.run_pass()
    manual_clock.advance(600)
    hub.fallback.run_pass()
    assert len(relay.mailbox.received()) == 1
    # The dispatcher's view says who was called out, by which channel, and who was reached.
    answer = get(hub, f"/v1/alerts/{alert['id']}/delivery", dispatcher)
    assert answer.status_code == 200, answer.text
    agents = {row["username"]: row for row in answer.json()["agents"]}
    assert agents["nina"]["state"] == "delivered"
    assert agents["nina"]["fallback"] == []
    assert agents["omar"]["state"] == "silent"
    assert agents["omar"]["unreachable_marked_at"] is not None
    assert [(f["channel"], f["ok"]) for f in agents["omar"]["fallback"]] == [("smtp", True)]
