"""Alerts over HTTP: publishing, validation, catch-up paging, and the retention gap."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from hub.clock import ManualClock
from hub.content_import import import_content
from hub.demo import demo_content_dir
from hub.server import EmbeddedHub
from tests.hubtools import (
    HTTP_TIMEOUT,
    access_token,
    auth_headers,
)

DAY = 86_400


def publish(hub: EmbeddedHub, token: str, **fields: Any) -> requests.Response:
    body = {"severity": "major", "title": "Video visits down", "body": "Move visits to phone."}
    body.update(fields)
    return requests.post(
        f"{hub.url}/v1/alerts", json=body, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )


def catch_up(hub: EmbeddedHub, token: str, **params: Any) -> dict[str, Any]:
    response = requests.get(
        f"{hub.url}/v1/alerts", params=params, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_dispatcher_publishes_an_alert(hub: EmbeddedHub) -> None:
    import_content(hub.store, hub.app.state.signer, demo_content_dir())
    token = access_token(hub.store, hub.url, "dora", "dispatcher")

    response = publish(
        hub,
        token,
        severity="critical",
        playbook_id="pb-video-visit-outage",
        template_ids=["tpl-video-outage-phone"],
        requires_ack=True,
    )

    assert response.status_code == 201
    alert = response.json()
    assert uuid.UUID(alert["id"])
    assert alert["seq"] == 1
    assert alert["severity"] == "critical"
    assert alert["playbook_id"] == "pb-video-visit-outage"
    assert alert["template_ids"] == ["tpl-video-outage-phone"]
    assert alert["requires_ack"] is True
    assert alert["issued_by"] == "dora"
    assert alert["expires_at"] is None
    assert alert["issued_at"].endswith("Z")
    assert datetime.fromisoformat(alert["issued_at"]).tzinfo is not None


def test_seq_grows_with_every_alert(hub: EmbeddedHub) -> None:
    token = access_token(hub.store, hub.url, "dora", "dispatcher")

    seqs = [publish(hub, token, title=f"Alert {n}").json()["seq"] for n in range(3)]

    assert seqs == [1, 2, 3]


def test_an_agent_may_not_publish(hub: EmbeddedHub) -> None:
    response = publish(hub, access_token(hub.store, hub.url, "ana", "agent"))

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert catch_up(hub, access_token(hub.store, hub.url, "dora", "dispatcher"))["alerts"] == []


def test_a_future_expiry_is_kept(manual_clock: ManualClock, hub: EmbeddedHub) -> None:
    token = access_token(hub.store, hub.url, "dora", "dispatcher", at=manual_clock.now())
    expires = datetime.fromtimestamp(manual_clock.now() + 3600, UTC)

    response = publish(hub, token, expires_at=expires.isoformat())

    assert response.status_code == 201
    kept = datetime.fromisoformat(response.json()["expires_at"])
    assert abs((kept - expires).total_seconds()) < 0.001


@pytest.mark.parametrize(
    "fields",
    [
        {"title": "x" * 201},
        {"body": "x" * 10_001},
        {"title": ""},
        {"severity": "apocalyptic"},
        {"requires_ack": "sometimes"},
        {"template_ids": "tpl-1"},
        {"expires_at": "2001-01-01T00:00:00Z"},
        {"expires_at": "tomorrow"},
        {"audience": "everyone"},
    ],
    ids=[
        "title-201",
        "body-10001",
        "empty-title",
        "unknown-severity",
        "bad-bool",
        "ids-not-a-list",
        "expiry-in-past",
        "expiry-not-a-time",
        "unknown-field",
    ],
)
def test_a_bad_alert_is_refused_and_not_stored(hub: EmbeddedHub, fields: dict[str, Any]) -> None:
    token = access_token(hub.store, hub.url, "dora", "dispatcher")

    response = publish(hub, token, **fields)

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert response.json()["detail"]
    assert catch_up(hub, token) == {
        "alerts": [],
        "last_seq": 0,
        "more": False,
        "gap": False,
        "answers": [],
    }


def test_the_longest_allowed_title_and_body_are_accepted(hub: EmbeddedHub) -> None:
    response = publish(
        hub,
        access_token(hub.store, hub.url, "dora", "dispatcher"),
        title="t" * 200,
        body="b" * 10_000,
    )

    assert response.status_code == 201


def test_catch_up_returns_alerts_after_since_in_order(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    published = [publish(hub, dispatcher, title=f"Alert {n}").json() for n in range(4)]
    agent = access_token(hub.store, hub.url, "ana", "agent")

    everything = catch_up(hub, agent)
    after_first = catch_up(hub, agent, since=published[0]["seq"])
    first_page = catch_up(hub, agent, since=0, limit=2)
    second_page = catch_up(hub, agent, since=first_page["alerts"][-1]["seq"], limit=2)

    # The publish answer adds how many agents the alert targets to the alert object.
    assert [{**alert, "targeted": 0} for alert in everything["alerts"]] == published
    assert (everything["last_seq"], everything["more"], everything["gap"]) == (4, False, False)
    assert [alert["seq"] for alert in after_first["alerts"]] == [2, 3, 4]
    assert [alert["seq"] for alert in first_page["alerts"]] == [1, 2]
    assert first_page["more"] is True
    assert [alert["seq"] for alert in second_page["alerts"]] == [3, 4]
    assert second_page["more"] is False
    assert catch_up(hub, agent, since=4) == {
        "alerts": [],
        "last_seq": 4,
        "more": False,
        "gap": False,
        "answers": [],
    }


def test_alerts_past_retention_are_reported_as_a_gap(
    manual_clock: ManualClock, hub: EmbeddedHub
) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher", at=manual_clock.now())
    publish(hub, dispatcher, title="Old 1")
    publish(hub, dispatcher, title="Old 2")
    manual_clock.advance(31 * DAY)
    dispatcher = access_token(hub.store, hub.url, "dora2", "dispatcher", at=manual_clock.now())
    agent = access_token(hub.store, hub.url, "ana2", "agent", at=manual_clock.now())
    publish(hub, dispatcher, title="New")

    missed = catch_up(hub, agent, since=1)
    current = catch_up(hub, agent, since=2)
    fresh = catch_up(hub, agent)

    assert missed["gap"] is True
    assert [alert["title"] for alert in missed["alerts"]] == ["New"]
    assert missed["last_seq"] == 3
    assert current["gap"] is False
    assert fresh["gap"] is False
    assert [alert["seq"] for alert in fresh["alerts"]] == [3]


def test_seqs_are_never_reused_after_a_purge(manual_clock: ManualClock, hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher", at=manual_clock.now())
    publish(hub, dispatcher, title="Old")
    manual_clock.advance(31 * DAY)
    # The hub's broker also purges on its own schedule, so it may have got there first.
    hub.store.alerts.purge_expired(hub.settings.retention_seconds)
    assert hub.store.alerts.since(None, 10).alerts == []
    dispatcher = access_token(hub.store, hub.url, "dora2", "dispatcher", at=manual_clock.now())

    assert publish(hub, dispatcher, title="New").json()["seq"] == 2


@pytest.mark.parametrize(
    "params",
    [{"since": -1}, {"since": "x"}, {"limit": 0}, {"limit": 1001}],
    ids=["negative-since", "text-since", "zero-limit", "limit-over-max"],
)
def test_bad_catch_up_parameters_get_invalid_request(
    hub: EmbeddedHub, params: dict[str, Any]
) -> None:
    response = requests.get(
        f"{hub.url}/v1/alerts",
        params=params,
        headers=auth_headers(access_token(hub.store, hub.url, "ana", "agent")),
        timeout=HTTP_TIMEOUT,
    )

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_catch_up_needs_a_signed_in_user(hub: EmbeddedHub) -> None:
    response = requests.get(f"{hub.url}/v1/alerts", timeout=HTTP_TIMEOUT)

    assert response.status_code == 401


def test_acks_of_an_unknown_alert_are_404(hub: EmbeddedHub) -> None:
    token = access_token(hub.store, hub.url, "dora", "dispatcher")

    for alert_id in (str(uuid.uuid4()), "not-a-uuid"):
        response = requests.get(
            f"{hub.url}/v1/alerts/{alert_id}/acks",
            headers=auth_headers(token),
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 404
        assert response.json()["error"] == "unknown_alert"


def test_only_dispatchers_see_who_acknowledged(hub: EmbeddedHub) -> None:
    alert = publish(hub, access_token(hub.store, hub.url, "dora", "dispatcher")).json()

    response = requests.get(
        f"{hub.url}/v1/alerts/{alert['id']}/acks",
        headers=auth_headers(access_token(hub.store, hub.url, "ana", "agent")),
        timeout=HTTP_TIMEOUT,
    )

    assert response.status_code == 403
