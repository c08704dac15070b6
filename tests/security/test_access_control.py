"""Access control on every endpoint, sustained guessing, and the shift-long sign-in, on a hub whose
clock the tests move (no sleeps). The requirement ids these map to are in docs/security.md."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import keyring
import pytest
import requests
from fastapi.routing import iter_route_contexts

from client.core.auth import Authenticator
from client.core.hub_client import HubClient
from client.core.token_vault import SERVICE, TokenVault
from hub.clock import ManualClock, rfc3339
from hub.server import EmbeddedHub
from hub.storage.accounts import Role, UsernameTaken
from tests.client.test_auth import real_keyring
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    auth_headers,
    create_user,
    current_code,
    login,
    next_code,
    publish_alert,
    sign_in,
    submit_code,
)

ALERT_ID = "{alert_id}"
# Every route of the hub and the least role that may call it (None: anyone, "signed-in": any role).
# A route missing here fails test_every_route_of_the_hub_is_in_the_access_table.
ACCESS: dict[tuple[str, str], Role | str | None] = {
    ("GET", "/healthz"): None,
    ("GET", "/v1/netcheck"): None,
    ("GET", "/v1/updates/latest"): None,
    ("GET", "/v1/keys"): None,
    ("POST", "/v1/auth/login"): None,
    ("POST", "/v1/auth/mfa"): None,
    ("POST", "/v1/auth/refresh"): None,
    ("POST", "/v1/auth/logout"): "signed-in",
    ("GET", "/v1/me"): "signed-in",
    ("GET", "/v1/content"): "agent",
    ("GET", "/v1/alerts"): "agent",
    ("GET", "/v1/alerts/stream"): "agent",
    ("POST", "/v1/acks"): "agent",
    ("POST", "/v1/readiness"): "agent",
    ("POST", "/v1/alerts"): "dispatcher",
    ("GET", "/v1/alerts/{alert_id}/acks"): "dispatcher",
    ("POST", "/v1/receipts"): "agent",
    ("GET", "/v1/agents"): "dispatcher",
    ("GET", "/v1/alerts/{alert_id}/delivery"): "dispatcher",
    ("POST", "/v1/surveys"): "agent",
    ("GET", "/v1/alerts/{alert_id}/surveys"): "dispatcher",
    ("GET", "/v1/alerts/{alert_id}"): "dispatcher",
    ("POST", "/v1/alerts/{alert_id}/updates"): "dispatcher",
    ("POST", "/v1/alerts/{alert_id}/resolve"): "dispatcher",
    ("POST", "/v1/alerts/{alert_id}/retract"): "dispatcher",
    ("GET", "/v1/incidents"): "dispatcher",
    ("GET", "/v1/approvals"): "dispatcher",
    ("POST", "/v1/approvals/{approval_id}/approve"): "dispatcher",
    ("POST", "/v1/approvals/{approval_id}/reject"): "dispatcher",
    ("GET", "/v1/groups"): "dispatcher",
    ("GET", "/v1/reports/kpis"): "dispatcher",
    ("GET", "/v1/admin/groups"): "admin",
    ("POST", "/v1/admin/groups"): "admin",
    ("GET", "/v1/admin/groups/{name}"): "admin",
    ("DELETE", "/v1/admin/groups/{name}"): "admin",
    ("POST", "/v1/admin/groups/{name}/members"): "admin",
    ("DELETE", "/v1/admin/groups/{name}/members/{username}"): "admin",
    ("POST", "/v1/admin/users/{username}/contact"): "admin",
    ("GET", "/v1/admin/users"): "admin",
    ("POST", "/v1/admin/users"): "admin",
    ("GET", "/v1/admin/users/{username}"): "admin",
    ("DELETE", "/v1/admin/users/{username}"): "admin",
    ("POST", "/v1/admin/users/{username}/disable"): "admin",
    ("POST", "/v1/admin/users/{username}/enable"): "admin",
    ("POST", "/v1/admin/users/{username}/password"): "admin",
    ("POST", "/v1/admin/users/{username}/reset-mfa"): "admin",
    ("POST", "/v1/admin/users/{username}/unlock"): "admin",
    ("POST", "/v1/admin/users/{username}/revoke-sessions"): "admin",
    ("GET", "/v1/admin/audit"): "admin",
}
ROLE_BELOW: dict[str, Role] = {"dispatcher": "agent", "admin": "dispatcher"}
PROTECTED = [(method, path) for (method, path), role in ACCESS.items() if role is not None]
BODIES: dict[str, Any] = {
    "/v1/acks": {"acks": []},
    "/v1/readiness": {
        "ran_at": rfc3339(time.time()),
        "checks": {"hub": {"status": "ok", "detail": "Role check"}},
    },
    "/v1/receipts": {"receipts": []},
    "/v1/surveys": {"answers": []},
    "/v1/alerts": {"severity": "info", "title": "Role check", "body": "Role check"},
    "/v1/admin/users": {"username": "new-user", "role": "agent", "password": "a long new password"},
    "/v1/admin/users/{username}/password": {"password": "a long new password"},
    "/v1/alerts/{alert_id}/updates": {"text": "Role check"},
    "/v1/alerts/{alert_id}/resolve": {"note": "Role check"},
    "/v1/alerts/{alert_id}/retract": {"note": "Role check"},
    "/v1/approvals/{approval_id}/reject": {"reason": "Role check"},
    "/v1/admin/groups": {"name": "new-group", "kind": "team"},
    "/v1/admin/groups/{name}/members": {"usernames": ["agent-user"]},
    "/v1/admin/users/{username}/contact": {"phone": "555 0100"},
}
# The group and the approval request the group and approval routes act on.
GROUP = "{name}"
TARGET_GROUP = "role-check"
APPROVAL_ID = "{approval_id}"
# The account the admin routes act on.
USERNAME = "{username}"
TARGET_USER = "agent-user"


@pytest.fixture
def tokens(hub: EmbeddedHub, manual_clock: ManualClock) -> dict[Role, str]:
    """An access token for one user of each role."""
    result: dict[Role, str] = {}
    role: Role
    for role in ("agent", "dispatcher", "admin"):
        secret = create_user(hub.store, f"{role}-user", role)
        result[role] = sign_in(
            hub.url, f"{role}-user", DEFAULT_PASSWORD, secret, manual_clock.now()
        )["access_token"]
    return result


@pytest.fixture
def alert_id(hub: EmbeddedHub, tokens: dict[Role, str]) -> str:
    alert: str = publish_alert(hub.url, tokens["dispatcher"], **BODIES["/v1/alerts"])["id"]
    hub.store.groups.create(TARGET_GROUP, "team")
    # Asked for by someone else, so that both the dispatcher and the admin may decide it.
    hub.store.alerts.request_approval(BODIES["/v1/alerts"], "another-dispatcher")
    return alert


def call(
    hub: EmbeddedHub, method: str, path: str, alert: str, token: str | None
) -> requests.Response:
    """One request to a route, with a well-formed body so that only access decides the answer."""
    headers = auth_headers(token) if token is not None else {}
    streaming = path == "/v1/alerts/stream"
    response = requests.request(
        method,
        hub.url
        + path.replace(ALERT_ID, alert)
        .replace(USERNAME, TARGET_USER)
        .replace(GROUP, TARGET_GROUP)
        .replace(APPROVAL_ID, hub.store.alerts.approvals(None, 1)[0].id),
        json=BODIES.get(path) if method == "POST" else None,
        headers=headers,
        timeout=HTTP_TIMEOUT,
        stream=streaming,
    )
    if streaming and response.status_code == 200:
        # The stream never ends on its own: only its status matters here.
        response.close()
    return response


def error_of(response: requests.Response) -> str:
    body = response.json() if response.headers.get("content-type") == "application/json" else {}
    return str(body.get("error"))


def test_every_route_of_the_hub_is_in_the_access_table(hub: EmbeddedHub) -> None:
    # The console's pages are checked route by route in tests/console/test_access.py.
    routes = {
        (method, route.path)
        for route in iter_route_contexts(hub.app.routes)
        for method in route.methods or ()
        if method != "HEAD" and not route.path.startswith("/console")
    }
    assert routes == set(ACCESS)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_route_refuses_no_unknown_expired_and_revoked_tokens(
    hub: EmbeddedHub,
    manual_clock: ManualClock,
    tokens: dict[Role, str],
    alert_id: str,
    method: str,
    path: str,
) -> None:
    admin = tokens["admin"]
    if path != "/v1/auth/logout":  # its success revokes the token; see the signed-out test
        assert call(hub, method, path, alert_id, admin).status_code < 400

    for token in (None, "", "not-a-token", admin[:-2]):
        response = requests.request(
            method,
            hub.url + path.replace(ALERT_ID, alert_id),
            headers={"Authorization": f"Bearer {token}"} if token is not None else {},
            json=BODIES.get(path) if method == "POST" else None,
            timeout=HTTP_TIMEOUT,
        )
        assert (response.status_code, error_of(response)) == (401, "token_invalid"), token
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    manual_clock.advance(15 * 60)
    expired = call(hub, method, path, alert_id, admin)
    assert (expired.status_code, expired.json()["error"]) == (401, "token_expired")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_a_signed_out_token_is_refused_everywhere(
    hub: EmbeddedHub, tokens: dict[Role, str], alert_id: str, method: str, path: str
) -> None:
    admin = tokens["admin"]
    assert call(hub, "POST", "/v1/auth/logout", alert_id, admin).status_code == 204

    response = call(hub, method, path, alert_id, admin)

    assert (response.status_code, response.json()["error"]) == (401, "token_invalid")


@pytest.mark.parametrize(
    ("method", "path"), [(m, p) for (m, p), role in ACCESS.items() if role in ROLE_BELOW]
)
def test_a_role_below_the_one_needed_is_forbidden(
    hub: EmbeddedHub, tokens: dict[Role, str], alert_id: str, method: str, path: str
) -> None:
    needed = ACCESS[(method, path)]
    assert isinstance(needed, str)
    below = ROLE_BELOW[needed]

    refused = call(hub, method, path, alert_id, tokens[below])

    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    # The refused call changed nothing: the agent published no alert.
    assert len(hub.store.alerts.since(None, 10).alerts) == 1
    assert call(hub, method, path, alert_id, tokens[needed]).status_code < 400  # type: ignore[index]


def test_an_agent_cannot_publish_or_read_who_acknowledged(
    hub: EmbeddedHub, tokens: dict[Role, str], alert_id: str
) -> None:
    agent = tokens["agent"]
    publish = call(hub, "POST", "/v1/alerts", alert_id, agent)
    acks = call(hub, "GET", "/v1/alerts/{alert_id}/acks", alert_id, agent)

    assert [publish.status_code, acks.status_code] == [403, 403]


def test_sustained_guessing_of_password_and_code_never_gets_in_and_the_lock_holds(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    secret = create_user(hub.store, "target")
    pending = login(hub.url, "target").json()["mfa_token"]
    passwords: list[int] = []
    codes: list[tuple[int, str]] = []
    # 40 password guesses and 40 code guesses over 14 minutes: the lock (5 failures in 15 min)
    # is never lifted by the guesses themselves.
    for attempt in range(40):
        passwords.append(login(hub.url, "target", f"guess-{attempt}").status_code)
        answer = submit_code(hub.url, pending, f"{attempt:06d}")
        codes.append((answer.status_code, answer.json()["error"]))
        manual_clock.advance(20)
    assert passwords[:3] == [401, 401, 401]
    assert set(passwords[3:]) == {429}
    assert codes[:2] == [(401, "invalid_code")] * 2
    # Locked from the 5th failure on; once the MFA token's 5 minutes are over it is dead too.
    assert set(codes[2:]) <= {(429, "locked_out"), (401, "mfa_token_invalid")}

    right_password = login(hub.url, "target")
    right_code = submit_code(hub.url, pending, current_code(secret, manual_clock.now()))
    assert right_password.status_code == 429
    assert right_code.status_code in (401, 429)
    assert int(right_password.headers["Retry-After"]) == right_password.json()["retry_after"]

    manual_clock.advance(right_password.json()["retry_after"])
    assert sign_in(hub.url, "target", DEFAULT_PASSWORD, secret, manual_clock.now())["access_token"]


@pytest.fixture
def authenticators(hub: EmbeddedHub) -> Iterator[Callable[[], Authenticator]]:
    """Authenticators on the real keyring, each as a fresh start of the app would make it."""
    clients: list[HubClient] = []

    def make() -> Authenticator:
        client = HubClient(hub.url)
        clients.append(client)
        return Authenticator(
            client, TokenVault(client.base_url), device_id="laptop-1", device_name="Laptop"
        )

    yield make
    for client in clients:
        client.close()


@real_keyring
@pytest.mark.keyring
def test_the_keyring_token_never_extends_a_sign_in_past_its_shift(
    hub: EmbeddedHub, manual_clock: ManualClock, authenticators: Callable[[], Authenticator]
) -> None:
    secret = create_user(hub.store, "amira")
    first = authenticators()
    challenge = first.begin("amira", DEFAULT_PASSWORD)
    first.complete(challenge, next_code(secret, manual_clock.now()))
    # Restarts every 4 hours resume silently from the keyring, each rotating the refresh token.
    for _ in range(2):
        manual_clock.advance(4 * 3600)
        assert authenticators().resume("amira") is not None

    manual_clock.advance(4 * 3600 + 1)
    late = authenticators()
    ended: list[str] = []
    late.signed_out.connect(ended.append)

    assert late.resume("amira") is None
    assert late.account is None
    assert ended and "Sign in again" in ended[0]
    assert keyring.get_password(SERVICE, f"{hub.url}|amira") is None


def test_a_username_names_one_account_in_any_letter_case(hub: EmbeddedHub) -> None:
    create_user(hub.store, "amira")

    with pytest.raises(UsernameTaken):
        create_user(hub.store, "AMIRA", role="admin")
    assert login(hub.url, "Amira").status_code == 200
