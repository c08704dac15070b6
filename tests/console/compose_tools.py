"""Shared setup for the compose and approvals tests: groups, content, form posts, API reads."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from hub import passwords, totp
from hub.config import HubSettings
from hub.content_import import import_content
from hub.server import EmbeddedHub
from hub.storage.accounts import Role
from hub.tokens import token_hash
from tests.console.conftest import CONSOLE_PASSWORD, ConsoleHub, ConsoleUser, form_token
from tests.hubtools import HTTP_TIMEOUT, auth_headers, sign_in
from tests.library_content import DEMO_DIR

WEST = "West region"
EAST = "East region"
PLAYBOOK = "pb-video-visit-outage"
PLAYBOOK_TITLE = "Video visit platform outage"
TEMPLATE = "tpl-video-outage-banner"
TEMPLATE_TITLE = "Video visits disrupted"
INCIDENT_URL = re.compile(r"/console/incidents/([0-9a-f-]{36})$")
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


@contextmanager
def running_console_hub(data_dir: Path) -> Iterator[ConsoleHub]:
    """A hub for a whole test module, with the audience of `set_up_audience` and no users of
    its own beyond avery (agent) and dora (dispatcher, a member of West)."""
    settings = HubSettings(data_dir=data_dir, signin_refusal_delay_seconds=0)
    with EmbeddedHub(settings) as hub:
        console_hub = ConsoleHub(hub=hub, users={})
        for username, role in (("avery", "agent"), ("dora", "dispatcher")):
            _add_user(console_hub, username, role)
        set_up_audience(console_hub)
        yield console_hub


def new_user(console_hub: ConsoleHub, prefix: str, role: Role = "dispatcher") -> str:
    """A new user of `role` on the hub, known to the console fixtures: its username.

    Each sign-in takes a fresh authenticator code, and a user has only two in any 30 s: tests
    that share a hub sign in as users of their own.
    """
    username = f"{prefix}-{uuid.uuid4().hex[:6]}"
    _add_user(console_hub, username, role)
    return username


@cache
def _password_hash() -> str:
    # One hash for every user the tests add: hashing is the slow part of making a user.
    return passwords.hash_password(CONSOLE_PASSWORD)


def _add_user(console_hub: ConsoleHub, username: str, role: Role) -> None:
    secret = totp.new_secret()
    console_hub.store.accounts.create_user(
        username=username,
        display_name=username.title(),
        role=role,
        password_hash=_password_hash(),
        totp_secret=secret,
    )
    console_hub.users[username] = ConsoleUser(username, CONSOLE_PASSWORD, secret, role)


def set_up_audience(console_hub: ConsoleHub) -> None:
    """Demo content, and two groups: West holds avery and wes (agents), a disabled agent and a
    dispatcher; East holds wes and eve. So an alert to West targets exactly 2 agents."""
    store = console_hub.store
    import_content(store, console_hub.hub.app.state.signer, DEMO_DIR)
    for username in ("wes", "eve", "gone"):
        if username not in console_hub.users:
            _add_user(console_hub, username, "agent")
    store.accounts.disable_user(username="gone")
    store.groups.create(WEST, "region")
    store.groups.create(EAST, "region")
    store.groups.add_members(WEST, ["avery", "wes", "gone", "dora"])
    store.groups.add_members(EAST, ["wes", "eve"])


def compose_fields(
    http: requests.Session, console_hub: ConsoleHub, **changes: Any
) -> list[tuple[str, str]]:
    """A complete, valid compose form from a fresh compose page, with `changes` over it.

    A value of None leaves the field out; a list repeats the field (groups, template_ids).
    """
    page = http.get(console_hub.url("/console/compose"), timeout=HTTP_TIMEOUT)
    assert page.status_code == 200, page.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text)
    assert key is not None
    values: dict[str, Any] = {
        "csrf_token": form_token(page.text),
        "idempotency_key": key.group(1),
        "mode": "live",
        "severity": "critical",
        "title": f"Video visits down {uuid.uuid4().hex[:8]}",
        "body": "Move today's visits to phone.",
        "audience_mode": "groups",
        "groups": [WEST],
        "playbook_id": PLAYBOOK,
        "template_ids": [TEMPLATE],
        "expires_at": "",
        "next_update_by": "",
        **changes,
    }
    fields: list[tuple[str, str]] = []
    for name, value in values.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            fields.append((name, str(item)))
    return fields


def post_form(
    http: requests.Session, console_hub: ConsoleHub, path: str, fields: list[tuple[str, str]]
) -> requests.Response:
    """POST a form (repeated fields kept) without following the redirect."""
    return http.post(
        console_hub.url(path),
        data=urlencode(fields),
        headers=FORM_HEADERS,
        allow_redirects=False,
        timeout=HTTP_TIMEOUT,
    )


def api_token(console_hub: ConsoleHub, username: str) -> str:
    """An access token for one of the console hub's users, signed in over the API."""
    user = console_hub.users[username]
    tokens = sign_in(console_hub.base_url, username, user.password, user.totp_secret)
    token: str = tokens["access_token"]
    return token


def api_alert(console_hub: ConsoleHub, token: str, alert_id: str) -> dict[str, Any]:
    """GET /v1/alerts/{id} as a dispatcher: {alert, targeted, ...}."""
    answer = requests.get(
        console_hub.url(f"/v1/alerts/{alert_id}"), headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def alerts_titled(console_hub: ConsoleHub, title: str) -> list[str]:
    """The ids of the hub's alerts with this title."""
    return [
        alert.id
        for alert in console_hub.store.alerts.incidents("all", None, 1000)
        if alert.title == title
    ]


def agent_console_cookie(console_hub: ConsoleHub, username: str) -> str:
    """A console session forged in the store for an agent's sign-in (the sign-in page never
    gives one): proves every route checks the role itself. Its cookie value."""
    user = console_hub.users[username]
    tokens = sign_in(console_hub.base_url, username, user.password, user.totp_secret)
    grant = console_hub.store.accounts.find_access(access_hash=token_hash(tokens["access_token"]))
    assert grant is not None
    cookie = uuid.uuid4().hex + uuid.uuid4().hex
    console_hub.store.console_sessions.create(
        token_hash=token_hash(cookie), family_id=grant.family_id
    )
    return cookie
