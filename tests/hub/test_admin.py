"""/v1/admin: accounts IT runs over HTTP, against a real hub on 127.0.0.1."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from hub.clock import ManualClock
from hub.server import EmbeddedHub
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    access_token,
    auth_headers,
    create_user,
    login,
    next_code,
    publish_alert,
    sign_in,
    submit_code,
)

NEW_PASSWORD = "a new and long passphrase"
# Each admin route, with a body that would succeed for an admin.
ADMIN_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/admin/users", None),
    ("GET", "/v1/admin/users/target", None),
    (
        "POST",
        "/v1/admin/users",
        {"username": "newbie", "role": "agent", "password": NEW_PASSWORD},
    ),
    ("POST", "/v1/admin/users/target/disable", None),
    ("POST", "/v1/admin/users/target/enable", None),
    ("POST", "/v1/admin/users/target/password", {"password": NEW_PASSWORD}),
    ("POST", "/v1/admin/users/target/reset-mfa", None),
    ("POST", "/v1/admin/users/target/unlock", None),
    ("POST", "/v1/admin/users/target/revoke-sessions", None),
    ("GET", "/v1/admin/audit", None),
    ("DELETE", "/v1/admin/users/target", None),
]


def _call(
    hub: EmbeddedHub, token: str, method: str, path: str, body: dict[str, Any] | None = None
) -> requests.Response:
    return requests.request(
        method, hub.url + path, json=body, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )


def _admin(hub: EmbeddedHub, name: str = "root") -> str:
    return access_token(hub.store, hub.url, name, "admin")


def _me(hub: EmbeddedHub, token: str) -> requests.Response:
    return requests.get(f"{hub.url}/v1/me", headers=auth_headers(token), timeout=HTTP_TIMEOUT)


def _audit(hub: EmbeddedHub, event: str) -> list[tuple[str | None, str | None, str]]:
    from hub.storage.audit import AuditQuery

    return [
        (item.actor, item.subject, item.outcome)
        for item in hub.store.audit.query(AuditQuery(event=event, limit=1000))
    ]


def _secret_of(uri: str) -> str:
    match = re.search(r"secret=([A-Z2-7]+)", uri)
    assert match is not None, uri
    return match.group(1)


def test_agents_and_dispatchers_get_403_on_every_admin_endpoint_and_change_nothing(
    hub: EmbeddedHub,
) -> None:
    create_user(hub.store, "target")
    tokens = [access_token(hub.store, hub.url, role, role) for role in ("agent", "dispatcher")]
    admin = _admin(hub)
    before = hub.store.accounts.list_users()

    for token in tokens:
        for method, path, body in ADMIN_ROUTES:
            refused = _call(hub, token, method, path, body)
            assert (refused.status_code, refused.json()["error"]) == (403, "forbidden"), path

    assert hub.store.accounts.list_users() == before
    trail = _call(hub, admin, "GET", "/v1/admin/audit").json()["events"]
    assert [item["event"] for item in trail] == ["signin.ok"] * 3
    for method, path, body in ADMIN_ROUTES:
        assert _call(hub, admin, method, path, body).status_code < 400, path


def test_an_admin_creates_a_user_who_signs_in_with_the_uri_shown_once(hub: EmbeddedHub) -> None:
    admin = _admin(hub)
    created = _call(
        hub,
        admin,
        "POST",
        "/v1/admin/users",
        {"username": "ruth", "role": "dispatcher", "password": NEW_PASSWORD, "display_name": "R"},
    )
    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    secret = _secret_of(created.json()["otpauth_uri"])

    tokens = sign_in(hub.url, "ruth", NEW_PASSWORD, secret)

    assert tokens["user"]["roles"] == ["agent", "dispatcher"]
    shown = _call(hub, admin, "GET", "/v1/admin/users/RUTH").json()
    assert shown["username"] == "ruth"
    assert shown["status"] == "active"
    assert shown["active_sessions"] == 1
    # What an admin reads back never holds the secret, the hash or a token.
    listing = _call(hub, admin, "GET", "/v1/admin/users").text
    for text in (shown, listing):
        for secret_value in (secret, "argon2", tokens["access_token"], NEW_PASSWORD):
            assert secret_value not in str(text)
    again = _call(
        hub,
        admin,
        "POST",
        "/v1/admin/users",
        {"username": "Ruth", "role": "agent", "password": NEW_PASSWORD},
    )
    assert (again.status_code, again.json()["error"]) == (409, "username_taken")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("password", "password", "common_password"),
        ("password", "12345678", "common_password"),
        ("password", " " * 8, "only_spaces"),
        ("password", "newbie-1", "contains_username"),
        ("display_name", "Evil\u202eeman", "U+202E"),
        ("display_name", "two\nlines", "U+000A"),
        ("display_name", "x" * 201, "display_name"),
        ("display_name", "   ", "display_name"),
        ("username", "has space", "username"),
        ("username", "", "username"),
        ("username", "x" * 65, "username"),
        ("role", "root", "role"),
    ],
)
def test_a_bad_new_user_gets_a_clear_422_naming_the_field_and_nothing_is_stored(
    hub: EmbeddedHub, field: str, value: str, expected: str
) -> None:
    body = {"username": "newbie", "role": "agent", "password": NEW_PASSWORD, field: value}

    refused = _call(hub, _admin(hub), "POST", "/v1/admin/users", body)

    assert refused.status_code == 422, refused.text
    answer = refused.json()
    assert expected in answer.get("rule", "") + answer["detail"]
    if field == "password":
        assert answer["error"] == "password_refused"
        assert value.strip() == "" or value not in answer["detail"].replace("password", "")
    assert hub.store.accounts.user_summary(username="newbie") is None


def test_html_and_unicode_in_display_names_are_kept_as_plain_text(hub: EmbeddedHub) -> None:
    admin = _admin(hub)
    for number, name in enumerate(["<b>Bold</b><script>x()</script>", "Zoë Ωmega 李 🚑"]):
        body = {"username": f"u{number}", "role": "agent", "password": NEW_PASSWORD}
        created = _call(hub, admin, "POST", "/v1/admin/users", {**body, "display_name": name})
        assert created.status_code == 201, created.text
        assert created.json()["user"]["display_name"] == name
        assert _call(hub, admin, "GET", f"/v1/admin/users/u{number}").json()["display_name"] == name


def test_disabling_ends_every_session_at_once_and_sign_in_answers_as_a_wrong_password(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    admin = access_token(hub.store, hub.url, "root", "admin", at=manual_clock.now())
    secret = create_user(hub.store, "sam")
    laptop = sign_in(hub.url, "sam", DEFAULT_PASSWORD, secret, manual_clock.now(), "laptop")
    manual_clock.advance(30)
    phone = sign_in(hub.url, "sam", DEFAULT_PASSWORD, secret, manual_clock.now(), "phone")
    pending = login(hub.url, "sam").json()["mfa_token"]  # a password step not finished yet

    disabled = _call(hub, admin, "POST", "/v1/admin/users/sam/disable")

    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["sessions_ended"] == 2
    assert disabled.json()["user"]["status"] == "disabled"
    for tokens in (laptop, phone):
        assert _me(hub, tokens["access_token"]).status_code == 401
        refreshed = requests.post(
            f"{hub.url}/v1/auth/refresh",
            json={"refresh_token": tokens["refresh_token"]},
            timeout=HTTP_TIMEOUT,
        )
        assert refreshed.status_code == 401
    manual_clock.advance(30)
    late_code = submit_code(hub.url, pending, next_code(secret, manual_clock.now()))
    assert late_code.status_code == 401
    right = login(hub.url, "sam")
    wrong = login(hub.url, "nobody-here")
    assert right.status_code == wrong.status_code == 401
    assert right.json() == wrong.json()
    assert (None, None, "unknown_user") in _audit(hub, "signin.failed")
    assert ("sam", "sam", "disabled") in _audit(hub, "signin.failed")

    enabled = _call(hub, admin, "POST", "/v1/admin/users/sam/enable")
    assert enabled.json()["user"]["status"] == "active"
    manual_clock.advance(30)
    assert sign_in(hub.url, "sam", DEFAULT_PASSWORD, secret, manual_clock.now())["user"]


def test_forty_parallel_disables_of_one_user_disable_once(hub: EmbeddedHub) -> None:
    admin = _admin(hub)
    secret = create_user(hub.store, "pat")
    sign_in(hub.url, "pat", DEFAULT_PASSWORD, secret)
    barrier = threading.Barrier(40, timeout=30)

    def disable() -> requests.Response:
        barrier.wait()
        return _call(hub, admin, "POST", "/v1/admin/users/pat/disable")

    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(lambda _: disable(), range(40)))

    assert [answer.status_code for answer in answers] == [200] * 40
    assert sum(answer.json()["changed"] for answer in answers) == 1
    assert sum(answer.json()["sessions_ended"] for answer in answers) == 1
    outcomes = [outcome for _, _, outcome in _audit(hub, "user.disabled")]
    assert sorted(outcomes) == ["no_change"] * 39 + ["ok"]


def test_an_admin_cannot_disable_or_remove_themselves_or_the_last_admin(
    hub: EmbeddedHub,
) -> None:
    root = _admin(hub, "root")
    for method, path in (
        ("POST", "/v1/admin/users/ROOT/disable"),
        ("DELETE", "/v1/admin/users/root"),
    ):
        refused = _call(hub, root, method, path)
        assert (refused.status_code, refused.json()["error"]) == (409, "cannot_change_self")
    other = _admin(hub, "other")
    assert _call(hub, other, "POST", "/v1/admin/users/root/disable").status_code == 200
    # root is disabled and signed out; "other" is now the last enabled admin.
    assert _me(hub, root).status_code == 401
    create_user(hub.store, "third", "admin")
    assert _call(hub, other, "DELETE", "/v1/admin/users/third").status_code == 200
    summary = hub.store.accounts.user_summary(username="other")
    assert summary is not None and summary.disabled_at is None


def test_a_removed_users_acks_stay_attributed_to_them(hub: EmbeddedHub) -> None:
    admin = _admin(hub)
    dispatcher = access_token(hub.store, hub.url, "disp", "dispatcher")
    alert = publish_alert(hub.url, dispatcher)
    agent = access_token(hub.store, hub.url, "leaver")
    ack = {
        "ack_id": "0b4f8e54-6a8e-4c31-9d4e-8c1a3f0e2b71",
        "alert_id": alert["id"],
        "action": "acknowledged",
        # Now, as a client stamps it: an ack from before its alert was issued is refused.
        "acted_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    posted = _call(hub, agent, "POST", "/v1/acks", {"acks": [ack]})
    assert posted.json()["results"][0]["status"] == "accepted"

    removed = _call(hub, admin, "DELETE", "/v1/admin/users/leaver")

    assert removed.status_code == 200, removed.text
    assert _me(hub, agent).status_code == 401
    assert _call(hub, admin, "GET", "/v1/admin/users/leaver").status_code == 404
    assert _call(hub, admin, "DELETE", "/v1/admin/users/leaver").status_code == 404
    acks = _call(hub, dispatcher, "GET", f"/v1/alerts/{alert['id']}/acks").json()["acks"]
    assert [item["username"] for item in acks] == ["leaver"]
    trail = _call(hub, admin, "GET", "/v1/admin/audit?user=leaver").json()["events"]
    recorded = [item for item in trail if item["event"] == "ack.recorded"]
    assert [(item["actor"], item["subject"], item["detail"]["ack_id"]) for item in recorded] == [
        ("leaver", alert["id"], ack["ack_id"])
    ]
    assert recorded[0]["source"] == "127.0.0.1"
    assert any(item["event"] == "user.removed" and item["actor"] == "root" for item in trail)
    published = _call(hub, admin, "GET", "/v1/admin/audit?event=alert.published").json()
    assert [(item["actor"], item["subject"]) for item in published["events"]] == [
        ("disp", alert["id"])
    ]


def test_a_new_password_must_pass_the_policy_and_ends_the_old_sessions(hub: EmbeddedHub) -> None:
    admin = _admin(hub)
    secret = create_user(hub.store, "kim")
    old = sign_in(hub.url, "kim", DEFAULT_PASSWORD, secret)

    weak = _call(hub, admin, "POST", "/v1/admin/users/kim/password", {"password": "12345678"})
    assert (weak.status_code, weak.json()["rule"]) == (422, "common_password")
    assert _me(hub, old["access_token"]).status_code == 200
    changed = _call(hub, admin, "POST", "/v1/admin/users/kim/password", {"password": NEW_PASSWORD})

    assert changed.json()["sessions_ended"] == 1
    assert _me(hub, old["access_token"]).status_code == 401
    assert login(hub.url, "kim", DEFAULT_PASSWORD).status_code == 401
    assert sign_in(hub.url, "kim", NEW_PASSWORD, secret)["user"]["username"] == "kim"
    unknown = _call(
        hub, admin, "POST", "/v1/admin/users/ghost/password", {"password": NEW_PASSWORD}
    )
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_user")


def test_reset_mfa_gives_a_new_secret_and_the_old_one_stops_working(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    admin = access_token(hub.store, hub.url, "root", "admin", at=manual_clock.now())
    old_secret = create_user(hub.store, "lee")
    old = sign_in(hub.url, "lee", DEFAULT_PASSWORD, old_secret, at=manual_clock.now())

    reset = _call(hub, admin, "POST", "/v1/admin/users/lee/reset-mfa")

    assert reset.status_code == 200, reset.text
    assert reset.headers["Cache-Control"] == "no-store"
    new_secret = _secret_of(reset.json()["otpauth_uri"])
    assert new_secret != old_secret
    assert _me(hub, old["access_token"]).status_code == 401
    manual_clock.advance(60)
    mfa_token = login(hub.url, "lee").json()["mfa_token"]
    assert (
        submit_code(hub.url, mfa_token, next_code(old_secret, manual_clock.now())).status_code
        == 401
    )
    tokens = sign_in(hub.url, "lee", DEFAULT_PASSWORD, new_secret, at=manual_clock.now())
    assert tokens["user"]["username"] == "lee"


def test_unlock_lets_a_locked_user_in_before_the_lock_ends(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    admin = access_token(hub.store, hub.url, "root", "admin", at=manual_clock.now())
    secret = create_user(hub.store, "max")
    for attempt in range(5):
        login(hub.url, "max", f"wrong guess {attempt}")
    assert login(hub.url, "max").status_code == 429
    assert _call(hub, admin, "GET", "/v1/admin/users/max").json()["status"] == "locked"

    unlocked = _call(hub, admin, "POST", "/v1/admin/users/max/unlock")

    assert unlocked.json()["user"]["status"] == "active"
    assert sign_in(hub.url, "max", DEFAULT_PASSWORD, secret, at=manual_clock.now())
    outcomes = _audit(hub, "signin.locked") + _audit(hub, "user.unlocked")
    assert outcomes == [("max", "max", "locked"), ("root", "max", "ok")]


def test_revoke_sessions_ends_them_and_the_user_may_sign_in_again(hub: EmbeddedHub) -> None:
    admin = _admin(hub)
    secret = create_user(hub.store, "ada")
    tokens = sign_in(hub.url, "ada", DEFAULT_PASSWORD, secret)

    revoked = _call(hub, admin, "POST", "/v1/admin/users/ada/revoke-sessions")

    assert revoked.json()["sessions_ended"] == 1
    assert _me(hub, tokens["access_token"]).status_code == 401
    assert sign_in(hub.url, "ada", DEFAULT_PASSWORD, secret)["user"]["username"] == "ada"


def test_the_audit_endpoint_filters_and_pages(hub: EmbeddedHub, manual_clock: ManualClock) -> None:
    admin = access_token(hub.store, hub.url, "root", "admin", at=manual_clock.now())
    for number in range(5):
        login(hub.url, "root", f"wrong guess {number}")
        manual_clock.advance(1)

    def get(query: str) -> requests.Response:
        return _call(hub, admin, "GET", "/v1/admin/audit" + query)

    seen: list[int] = []
    after = 0
    for _ in range(10):
        page = get(f"?event=signin.*&limit=2&after={after}").json()
        seen += [item["id"] for item in page["events"]]
        after = page["after"]
        if not page["more"]:
            break
    everything = get("?event=signin.*&limit=1000").json()["events"]
    assert seen == [item["id"] for item in everything]
    assert len(everything) >= 6  # one sign-in, five failures, the lock
    assert {item["event"] for item in everything} >= {"signin.ok", "signin.failed"}
    assert get("?since=0001-01-01&until=9999-12-31T23:59:59Z&user=ROOT").json()["events"]
    assert get("?since=9999-12-31").json()["events"] == []
    for bad in ("?since=yesterday", "?until=2026-13-01", "?limit=0", "?after=-1", "?limit=1001"):
        answer = get(bad)
        assert (answer.status_code, answer.json()["error"]) == (422, "invalid_request"), bad


@pytest.mark.parametrize(
    ("trusted", "recorded"), [([], "127.0.0.1"), (["127.0.0.1/32"], "203.0.113.7")]
)
def test_admin_changes_record_the_address_the_trusted_proxies_name(
    start_hub: Any, trusted: list[str], recorded: str
) -> None:
    from hub.storage.audit import AuditQuery

    hub = start_hub(trusted_proxies=trusted)
    create_user(hub.store, "target")
    response = requests.post(
        f"{hub.url}/v1/admin/users/target/disable",
        headers={**auth_headers(_admin(hub)), "X-Forwarded-For": "203.0.113.7"},
        timeout=HTTP_TIMEOUT,
    )

    assert response.status_code == 200, response.text
    (event,) = hub.store.audit.query(AuditQuery(event="user.disabled", limit=10))
    # Behind a trusted proxy, the laptop's address; from anyone else the header is ignored.
    assert event.source == recorded
