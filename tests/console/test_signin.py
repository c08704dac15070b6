"""Console sign-in: password then code with the client's rules, the session cookie, timeouts,
CSRF on every form, roles."""

from __future__ import annotations

from collections.abc import Callable

import requests
from playwright.sync_api import Page, expect

from hub.clock import ManualClock
from hub.server import EmbeddedHub
from hub.storage.audit import AuditQuery
from tests.console.conftest import (
    ConsoleHub,
    ConsoleUser,
    assert_accessible,
    form_token,
    sign_in,
    signed_in_session,
)
from tests.hubtools import create_user, next_code
from tests.hubtools import sign_in as api_sign_in

WRONG_CODE = "000000"


def _password_step(page: Page, console_hub: ConsoleHub, user: ConsoleUser) -> None:
    page.goto(console_hub.url("/console/sign-in"))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_label("Password").press("Enter")
    expect(page).to_have_url(console_hub.url("/console/sign-in/code"))


def test_a_dispatcher_signs_in_with_password_and_code_by_keyboard(
    page: Page, console_hub: ConsoleHub
) -> None:
    user = console_hub.users["dina"]
    page.goto(console_hub.url("/console/sign-in"))
    assert_accessible(page, "sign-in page")
    # The username field has focus; Escape in it neither submits nor clears anything.
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type(user.username)
    page.keyboard.press("Escape")
    expect(page).to_have_url(console_hub.url("/console/sign-in"))
    expect(page.get_by_label("Username")).to_have_value(user.username)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(user.password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(console_hub.url("/console/sign-in/code"))
    assert_accessible(page, "code page")
    expect(page.get_by_label("Code", exact=True)).to_be_focused()
    page.keyboard.type(next_code(user.totp_secret))
    page.keyboard.press("Enter")
    expect(page).to_have_url(console_hub.url("/console"))
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    session = cookies["vigil-console"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    # Loopback HTTP: a browser would drop a Secure cookie here; everywhere else it is Secure.
    assert not session["secure"]
    assert "vigil-console-mfa" not in cookies
    # Scripts on the page cannot read it.
    assert "vigil-console" not in page.evaluate("document.cookie")


def test_a_wrong_code_then_the_lockout_are_shown_as_on_the_client(
    page: Page, console_hub: ConsoleHub
) -> None:
    user = console_hub.users["dina"]
    _password_step(page, console_hub, user)
    page.get_by_label("Code", exact=True).fill(WRONG_CODE)
    page.get_by_label("Code", exact=True).press("Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("code")
    assert_accessible(page, "code page with an error")
    # The API answers the same attempt with the same words: the client shows those.
    api = requests.post(
        console_hub.url("/v1/auth/mfa"), json={"mfa_token": "x" * 43, "code": WRONG_CODE}
    )
    assert api.status_code == 401
    threshold = console_hub.hub.settings.lockout_threshold
    for _ in range(threshold - 1):
        page.get_by_label("Code", exact=True).fill(WRONG_CODE)
        page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    # Locked: even the right password is refused, with the lock in words.
    page.goto(console_hub.url("/console/sign-in"))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    expect(page).to_have_url(console_hub.url("/console/sign-in"))
    assert not any(c["name"] == "vigil-console" for c in page.context.cookies())
    failures = [
        event
        for event in console_hub.store.audit.query(AuditQuery(event="signin.failed"))
        if event.subject == user.username
    ]
    assert len(failures) >= threshold


def test_a_wrong_password_names_neither_field_and_keeps_the_username(
    page: Page, console_hub: ConsoleHub
) -> None:
    page.goto(console_hub.url("/console/sign-in"))
    page.get_by_label("Username").fill("dina")
    page.get_by_label("Password").fill("not the password")
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    expect(page.get_by_label("Username")).to_have_value("dina")
    expect(page.get_by_label("Password")).to_have_value("")
    assert_accessible(page, "sign-in page with an error")


def test_an_agent_account_cannot_open_the_console(page: Page, console_hub: ConsoleHub) -> None:
    agent = console_hub.users["avery"]
    _password_step(page, console_hub, agent)
    page.get_by_label("Code", exact=True).fill(next_code(agent.totp_secret))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This account cannot use the console")
    assert_accessible(page, "agent refused")
    assert not any(c["name"] == "vigil-console" for c in page.context.cookies())
    page.goto(console_hub.url("/console"))
    expect(page).to_have_url(console_hub.url("/console/sign-in?next=/console"))
    refused = console_hub.store.audit.query(AuditQuery(event="console.refused"))
    assert [event.subject for event in refused] == [agent.username]


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    console_hub: ConsoleHub,
) -> None:
    http = signed_in_session(console_hub, "dina")
    forged = http.post(console_hub.url("/console/sign-out"), allow_redirects=False)
    assert forged.status_code == 403
    assert "nothing was changed" in forged.text
    wrong = http.post(
        console_hub.url("/console/sign-out"),
        data={"csrf_token": "0" * 64},
        allow_redirects=False,
    )
    assert wrong.status_code == 403
    # Still signed in: the forged posts did not sign out.
    still = http.get(console_hub.url("/console/sign-in"), allow_redirects=False)
    token_page = http.get(console_hub.url("/console/static/console.css"))
    assert still.status_code == 200 and token_page.status_code == 200
    assert console_hub.store.audit.query(AuditQuery(event="console.signout")) == []


def test_the_sign_in_form_itself_needs_its_token(console_hub: ConsoleHub) -> None:
    user = console_hub.users["dina"]
    answer = requests.post(
        console_hub.url("/console/sign-in"),
        data={"username": user.username, "password": user.password},
        allow_redirects=False,
    )
    assert answer.status_code == 403
    assert "vigil-console-mfa" not in answer.headers.get("set-cookie", "")


def test_sign_out_ends_the_session_and_its_cookie_cannot_be_replayed(
    console_hub: ConsoleHub,
) -> None:
    http = signed_in_session(console_hub, "dina")
    cookie = http.cookies.get("vigil-console")
    assert cookie
    # Any console page of the signed-in user carries the session's token in its forms.
    token = form_token(http.get(console_hub.url("/console")).text)
    out = http.post(
        console_hub.url("/console/sign-out"), data={"csrf_token": token}, allow_redirects=False
    )
    assert out.status_code == 303
    assert out.headers["location"] == "/console/sign-in?signed_out=1"
    replay = requests.get(
        console_hub.url("/console/admin/users"),
        cookies={"vigil-console": cookie},
        allow_redirects=False,
    )
    assert replay.status_code == 303
    assert replay.headers["location"].startswith("/console/sign-in")


def test_fifteen_idle_minutes_end_the_session(
    manual_clock: ManualClock, start_hub: Callable[..., EmbeddedHub]
) -> None:
    hub = start_hub()
    secret = create_user(hub.store, "dina", "dispatcher", "console test password 42")
    console_hub = ConsoleHub(
        hub=hub,
        users={"dina": ConsoleUser("dina", "console test password 42", secret, "dispatcher")},
    )
    http = signed_in_session(console_hub, "dina", clock_time=manual_clock.now())
    manual_clock.advance(14 * 60)
    assert http.get(console_hub.url("/console"), allow_redirects=False).status_code == 200
    # Activity restarts the count: 14 more minutes are still within 15 of the last page.
    manual_clock.advance(14 * 60)
    assert http.get(console_hub.url("/console"), allow_redirects=False).status_code == 200
    manual_clock.advance(15 * 60 + 1)
    gone = http.get(console_hub.url("/console"), allow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/console/sign-in")


def test_the_session_ends_with_the_sign_in_behind_it(
    manual_clock: ManualClock, start_hub: Callable[..., EmbeddedHub]
) -> None:
    hub = start_hub()
    secret = create_user(hub.store, "dina", "dispatcher", "console test password 42")
    console_hub = ConsoleHub(
        hub=hub,
        users={"dina": ConsoleUser("dina", "console test password 42", secret, "dispatcher")},
    )
    http = signed_in_session(console_hub, "dina", clock_time=manual_clock.now())
    # Kept busy, the session still ends at the sign-in's absolute limit (one shift).
    shift = hub.settings.session_seconds
    for _ in range(int(shift // 600)):
        manual_clock.advance(600)
        http.get(console_hub.url("/console"), allow_redirects=False)
    manual_clock.advance(600)
    gone = http.get(console_hub.url("/console"), allow_redirects=False)
    assert gone.status_code == 303


def test_a_disabled_user_is_signed_out_of_the_console(console_hub: ConsoleHub) -> None:
    http = signed_in_session(console_hub, "dina")
    admin = console_hub.users["ada"]
    token = api_sign_in(console_hub.base_url, admin.username, admin.password, admin.totp_secret)
    disabled = requests.post(
        console_hub.url("/v1/admin/users/dina/disable"),
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert disabled.status_code == 200, disabled.text
    gone = http.get(console_hub.url("/console"), allow_redirects=False)
    assert gone.status_code == 303


def test_the_cookie_is_secure_and_host_only_off_loopback(console_hub: ConsoleHub) -> None:
    # The hub behind a TLS proxy sees plain HTTP with the site's name: Secure all the same.
    page = requests.get(
        console_hub.url("/console/sign-in"), headers={"Host": "vigil.example.org"}, timeout=10
    )
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-vigil-console-signin=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_next_never_leaves_the_console(page: Page, console_hub: ConsoleHub) -> None:
    for hostile in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:1"):
        sign_in(page, console_hub, "dina", next_path=hostile)
        expect(page).to_have_url(console_hub.url("/console"))
        page.context.clear_cookies()


def test_every_console_answer_carries_the_console_policy(console_hub: ConsoleHub) -> None:
    answer = requests.get(console_hub.url("/console/sign-in"), timeout=10)
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["cache-control"] == "no-store"
    # The API keeps its own, stricter policy.
    api = requests.get(console_hub.url("/healthz"), timeout=10)
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
