"""The incident core as the tray app builds it (CoreServices): updates, answers from another
computer, receipts and opened content, wired together against the real hub and keyring."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from client.core.models import Alert
from client.core.opened import OpenedItem
from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.services import CoreServices
from client.core.settings import Settings
from client.core.sync import ConnectionState
from hub.server import EmbeddedHub
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    auth_headers,
    create_user,
    next_code,
    publish_alert,
    sign_in,
    wait_until,
)
from tests.vigil_cli import real_keyring

WAIT = 15.0


@pytest.fixture
def services(hub: EmbeddedHub, tmp_path: Path) -> Iterator[CoreServices]:
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"hub_url": hub.url}))
    built = CoreServices.build(paths, Settings.load(paths, load_policy(policy_file)))
    yield built
    built.close()


@real_keyring
@pytest.mark.keyring
def test_the_desk_core_tracks_updates_answers_receipts_and_opened_content_per_user(
    hub: EmbeddedHub, services: CoreServices
) -> None:
    alex_secret = create_user(hub.store, "alex", "agent")
    blair_secret = create_user(hub.store, "blair", "agent")
    dora = sign_in(hub.url, "dora", DEFAULT_PASSWORD, create_user(hub.store, "dora", "dispatcher"))
    changed: list[tuple[Alert, Alert]] = []
    lock = threading.Lock()

    def on_changed(change: tuple[Alert, Alert]) -> None:
        with lock:
            changed.append(change)

    services.alert_stream.alert_changed.connect(on_changed)
    services.start()
    services.auth.complete(services.auth.begin("alex", DEFAULT_PASSWORD), next_code(alex_secret))
    wait_until(lambda: services.sync.status.state is ConnectionState.ONLINE, timeout=WAIT)

    alert_id = publish_alert(hub.url, dora["access_token"])["id"]
    wait_until(lambda: services.cache.alert(alert_id) is not None, timeout=WAIT)
    receipt = services.cache.receipt(alert_id, author="alex")
    assert receipt is not None and receipt.receipt.shown_at is None
    assert services.receipts.mark_shown(alert_id)

    # An update on the hub reaches the open stream as a change of the alert.
    hub.store.alerts.change(alert_id, kind="update", text="Phones work", by="dora")
    hub.broker.notify()
    wait_until(lambda: len(changed) == 1, timeout=WAIT)
    assert changed[0][1].updates[-1].text == "Phones work"

    # What the desk showed for the alert goes with the answer made here.
    assert services.opened_content.opened(alert_id, "playbook", "pb-video-visit-outage", 2)
    ack = services.outbox.record(alert_id, "acknowledged", author="alex")
    assert ack.opened == (OpenedItem("playbook", "pb-video-visit-outage", 2),)

    # Alex answers on another computer: this one learns it if the hub reports answers.
    laptop = sign_in(hub.url, "alex", DEFAULT_PASSWORD, alex_secret, device_id="laptop-2")
    other = publish_alert(hub.url, dora["access_token"], title="Phones down")["id"]
    wait_until(lambda: services.cache.alert(other) is not None, timeout=WAIT)
    answered = requests.post(
        f"{hub.url}/v1/acks",
        json={
            "acks": [
                {
                    "ack_id": str(uuid.uuid4()),
                    "alert_id": other,
                    "action": "escalated",
                    "acted_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                }
            ]
        },
        headers=auth_headers(laptop["access_token"]),
        timeout=HTTP_TIMEOUT,
    )
    assert answered.json()["results"][0]["status"] == "accepted"
    hub_reports_answers = (
        "answers"
        in requests.get(
            f"{hub.url}/v1/alerts",
            headers=auth_headers(laptop["access_token"]),
            timeout=HTTP_TIMEOUT,
        ).json()
    )
    if hub_reports_answers:
        wait_until(lambda: other in services.answers.answered_alert_ids(), timeout=WAIT)
        assert services.answers.answer(other).state == "synced"

    # Blair signs in on this computer: nothing of Alex's is Blair's.
    services.auth.sign_out()
    assert services.answers.answered_alert_ids() == set()
    services.auth.complete(services.auth.begin("blair", DEFAULT_PASSWORD), next_code(blair_secret))
    assert services.answers.answered_alert_ids() == set()
    assert services.answers.hub_answer(other) is None
    assert services.answers.answer(alert_id).state == "unanswered"
    assert not services.opened_content.for_alert(alert_id, "blair")
    assert hub_reports_answers
