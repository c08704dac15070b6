"""Test helpers for the delivery side: one user signed in on several named devices."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import requests

from hub.clock import rfc3339
from hub.server import EmbeddedHub
from hub.storage.alerts import Alert, Severity
from tests.hubtools import HTTP_TIMEOUT, auth_headers, login, next_code, submit_code


def sign_in_device(
    hub: EmbeddedHub, username: str, secret: str, device_id: str, device_name: str
) -> str:
    """Both sign-in steps from one named device; its access token."""
    response = login(hub.url, username, device_id=device_id, device_name=device_name)
    assert response.status_code == 200, response.text
    now = hub.settings.clock.now()
    response = submit_code(hub.url, response.json()["mfa_token"], next_code(secret, now))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def now_text(hub: EmbeddedHub, offset: float = 0.0) -> str:
    """The hub's clock (plus `offset` seconds) in the protocol's time format."""
    return rfc3339(hub.settings.clock.now() + offset)


def post(hub: EmbeddedHub, path: str, token: str, body: Any) -> requests.Response:
    """POST a JSON body as the holder of `token`."""
    return requests.post(
        f"{hub.url}{path}", json=body, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )


def get(hub: EmbeddedHub, path: str, token: str, **params: Any) -> requests.Response:
    """GET as the holder of `token`."""
    return requests.get(
        f"{hub.url}{path}", params=params, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )


def ack_item(alert_id: str, hub: EmbeddedHub, **fields: Any) -> dict[str, Any]:
    """An acknowledgement of `alert_id` acted on now by the hub's clock."""
    item: dict[str, Any] = {
        "ack_id": str(uuid.uuid4()),
        "alert_id": alert_id,
        "action": "acknowledged",
        "acted_at": now_text(hub),
    }
    item.update(fields)
    return item


YEAR_ONE = datetime(1, 1, 1, tzinfo=UTC).isoformat().replace("+00:00", "Z")
YEAR_9999 = "9999-12-31T23:59:59.999Z"


def publish_in_store(
    hub: EmbeddedHub,
    *,
    audience: list[str] | None = None,
    severity: Severity = "critical",
    drill: bool = False,
    title: str = "Video visits down in the West region",
) -> Alert:
    """Publish straight into the store, audience and all (the HTTP publish may not take one)."""
    alert, _ = hub.store.alerts.publish(
        severity=severity,
        title=title,
        body="Move today's visits to phone.",
        playbook_id=None,
        template_ids=[],
        requires_ack=True,
        expires_at=None,
        issued_by="dora",
        drill=drill,
        audience=audience,
    )
    hub.broker.notify()
    return alert
