"""The console's user and group pages, driven in headless Chromium against a real hub."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Page, expect

from hub.console.enrolment import TICKET_SECONDS, Enrolment, EnrolmentTickets
from hub.console.session import SESSION_COOKIE, csrf_token_for
from hub.storage.audit import AuditQuery
from tests.console.conftest import (
    HOSTILE_HTML,
    ConsoleHub,
    ConsoleUser,
    assert_accessible,
    form_token,
    sign_in,
    signed_in_session,
)
from tests.hub.test_stream import SseEvent, SseReader
from tests.hubtools import HTTP_TIMEOUT, auth_headers, login, next_code
from tests.hubtools import sign_in as api_sign_in

EXPECT_MS = 5000
# The bound: a disabled agent's stream ends within a second.
STREAM_END_SECONDS = 1.0
MAX_STREAM_EVENTS = 20
ADMIN_PAGES = (
    "/console/admin/users",
    "/console/admin/users/new",
    "/console/admin/users/avery",
    "/console/admin/users/avery/remove",
    "/console/admin/groups",
    "/console/admin/audit",
)


@contextmanager
def agent_stream(base_url: str, token: str, read_timeout: float) -> Iterator[SseReader]:
    """An agent's alert stream, already live, whose reads give up after `read_timeout`."""
    response = requests.get(
        f"{base_url}/v1/alerts/stream",
        headers=auth_headers(token),
        stream=True,
        timeout=(HTTP_TIMEOUT, read_timeout),
    )
    with closing(response):
        assert response.status_code == 200, response.text
        reader = SseReader(response)
        reader.wait_until_live()
        yield reader


def read_until_closed(stream: SseReader) -> list[SseEvent]:
    """Events until the hub ends the stream; fails when it stays open past the read timeout."""
    received: list[SseEvent] = []
    for _ in range(MAX_STREAM_EVENTS):
        try:
            event = stream.next()
        except requests.ConnectionError as exc:
            raise AssertionError("the agent's stream was still open") from exc
        if event is None:
            return received
        received.append(event)
    raise AssertionError(f"the stream went on for {MAX_STREAM_EVENTS} events")


def test_an_enrolment_ticket_is_read_once_by_its_own_session_only() -> None:
    tickets = EnrolmentTickets()
    enrolment = Enrolment("nadia", "otpauth://totp/Vigil:nadia?secret=ABCDEFGH&issuer=Vigil")
    assert "ABCDEFGH" not in repr(enrolment)
    first = tickets.put(1, enrolment, now=1000.0)
    assert tickets.take(first, 2, now=1000.0) is None
    assert tickets.take(first, 1, now=1000.0) is None
    second = tickets.put(1, enrolment, now=1000.0)
    assert tickets.take(second, 1, now=1000.0 + TICKET_SECONDS) is None
    third = tickets.put(1, enrolment, now=1000.0)
    taken = tickets.take(third, 1, now=1001.0)
    assert taken is not None and taken.secret == "ABCDEFGH"
    assert tickets.take(third, 1, now=1001.0) is None
    assert tickets.take("", 1, now=1001.0) is None


def audit_outcomes(hub: ConsoleHub, event: str, subject: str) -> list[str]:
    """The outcome of each `event` about `subject`, oldest first."""
    return [
        item.outcome
        for item in hub.store.audit.query(AuditQuery(event=event, user=subject, limit=1000))
        if item.subject == subject
    ]


@pytest.mark.slow
def test_add_user_shows_the_authenticator_once_and_it_signs_in(
    console_hub: ConsoleHub, page: Page, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    console_hub.store.groups.create("West region", "region")
    sign_in(page, console_hub, "ada")
    page.goto(f"{console_hub.base_url}/console/admin/users/new")
    assert_accessible(page, "add-user form")

    # Keyboard only: Tab walks the fields in reading order, Escape changes nothing, Enter submits.
    page.locator("#new-username").focus()
    page.keyboard.type("nadia")
    page.keyboard.press("Tab")
    expect(page.locator("#new-display-name")).to_be_focused()
    page.keyboard.type("Nadia Okafor")
    page.keyboard.press("Tab")
    expect(page.locator("#new-role")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("input[name=groups]").first).to_be_focused()
    page.keyboard.press("Space")
    for _ in range(20):
        if page.evaluate("document.activeElement.id") == "new-password":
            break
        page.keyboard.press("Tab")
    expect(page.locator("#new-password")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page).to_have_url(re.compile(r"/console/admin/users/new$"))
    expect(page.locator("#new-username")).to_have_value("nadia")
    assert console_hub.store.accounts.user_summary(username="nadia") is None
    page.keyboard.press("Enter")

    expect(page.locator("#otpauth-qr")).to_be_visible(timeout=EXPECT_MS)
    enrolment_url = page.url
    secret = page.locator("#totp-secret").inner_text().strip()
    password = page.locator("#initial-password").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    src = page.locator("#otpauth-qr").get_attribute("src") or ""
    assert src.startswith("data:image/svg+xml;base64,")
    assert_accessible(page, "new user result with QR code")

    tokens = api_sign_in(console_hub.base_url, "nadia", password, secret)
    assert tokens["user"]["display_name"] == "Nadia Okafor"
    assert console_hub.store.groups.groups_of("nadia")

    # Reload, back and forward: the secret is gone for good, and never was cacheable.
    response = page.reload()
    assert response is not None
    assert response.status == 410
    assert response.headers["cache-control"] == "no-store"
    expect(page.locator("#enrolment-gone")).to_be_visible()
    assert secret not in page.content()
    assert password not in page.content()
    assert_accessible(page, "new user result, shown already")
    page.go_back()
    assert secret not in page.content()
    page.go_forward()
    expect(page).to_have_url(enrolment_url)
    expect(page.locator("#enrolment-gone")).to_be_visible()
    assert secret not in page.content()

    # Nowhere else either: not in the audit trail, not in the hub's logs.
    trail = repr(console_hub.store.audit.query(AuditQuery(limit=1000)))
    assert secret not in trail and password not in trail
    assert secret not in caplog.text and password not in caplog.text


@pytest.mark.slow
def test_add_user_refusals_are_shown_beside_the_field(console_hub: ConsoleHub, page: Page) -> None:
    sign_in(page, console_hub, "ada")
    new_user = f"{console_hub.base_url}/console/admin/users/new"
    page.goto(new_user)
    page.fill("#new-username", "rtl")
    page.fill("#new-display-name", "Ann \u202eevil")
    page.fill("#new-password", "a fine long passphrase")
    page.click("button:has-text('Add user')")
    expect(page.locator("#display_name-error")).to_contain_text("U+202E")
    assert console_hub.store.accounts.user_summary(username="rtl") is None
    assert_accessible(page, "add-user form with an error")

    page.fill("#new-display-name", "Ann")
    page.fill("#new-password", "password")
    page.click("button:has-text('Add user')")
    expect(page.locator("#password-error")).to_contain_text("common and breached passwords")

    page.fill("#new-username", "avery")
    page.fill("#new-password", "a fine long passphrase")
    page.click("button:has-text('Add user')")
    expect(page.locator("#username-error")).to_contain_text("already exists")

    page.fill("#new-username", "no spaces allowed")
    page.click("button:has-text('Add user')")
    expect(page.locator("#username-error")).to_contain_text("not a valid username")

    # A hostile display name is taken (the service allows it) and shown as text everywhere.
    page.fill("#new-username", "hostile")
    page.fill("#new-display-name", HOSTILE_HTML)
    page.click("button:has-text('Add user')")
    expect(page.locator("#otpauth-qr")).to_be_visible(timeout=EXPECT_MS)
    # The filter narrows the table as one types (htmx), and works as a plain GET form too.
    page.goto(console_hub.url("/console/admin/users"))
    expect(page.locator("#users-table tbody tr")).to_have_count(5)
    page.locator("#users-filter").press_sequentially("hostile")
    expect(page.locator("#users-table tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/console/admin/users\?q=hostile$"))
    assert_accessible(page, "users, filtered")
    expect(page.locator("td.display-name")).to_have_text(HOSTILE_HTML)
    page.goto(f"{console_hub.base_url}/console/admin/users?q=hostile")
    expect(page.locator("td.display-name")).to_have_text(HOSTILE_HTML)
    assert page.locator("img[src=x]").count() == 0
    page.goto(f"{console_hub.base_url}/console/admin/users/hostile")
    expect(page.locator("dd.display-name")).to_have_text(HOSTILE_HTML)
    assert page.locator("img[src=x]").count() == 0
    # The page is about that user; the one signed in is still the admin.
    expect(page.locator(".who-name")).to_contain_text("Ada Admin")


@pytest.mark.slow
def test_disabling_a_signed_in_agent_ends_their_stream(console_hub: ConsoleHub, page: Page) -> None:
    avery: ConsoleUser = console_hub.users["avery"]
    tokens = api_sign_in(console_hub.base_url, avery.username, avery.password, avery.totp_secret)
    sign_in(page, console_hub, "ada")
    page.goto(f"{console_hub.base_url}/console/admin/users/avery")
    assert_accessible(page, "user detail")
    with agent_stream(console_hub.base_url, tokens["access_token"], STREAM_END_SECONDS) as stream:
        page.click("#disable-button")
        received = read_until_closed(stream)
    assert received and received[-1].event == "closed"
    expect(page.locator(".notice, [role=status]").first).to_contain_text("Disabled")
    expect(page.locator("#account-state")).to_contain_text("Disabled since")
    assert audit_outcomes(console_hub, "user.disabled", "avery") == ["ok"]

    refused = login(console_hub.base_url, avery.username, avery.password)
    assert refused.status_code != 200
    page.click("#enable-button")
    expect(page.locator("#account-state")).to_have_text("Enabled")


@pytest.mark.slow
def test_end_sessions_unlock_and_password_rules(console_hub: ConsoleHub, page: Page) -> None:
    avery: ConsoleUser = console_hub.users["avery"]
    tokens = api_sign_in(console_hub.base_url, avery.username, avery.password, avery.totp_secret)
    sign_in(page, console_hub, "ada")
    detail = f"{console_hub.base_url}/console/admin/users/avery"
    page.goto(detail)

    page.click("#revoke-button")
    expect(page.locator("#session-count")).to_have_text("0")
    refreshed = requests.post(
        f"{console_hub.base_url}/v1/auth/refresh",
        json={"refresh_token": tokens["refresh_token"]},
        timeout=HTTP_TIMEOUT,
    )
    assert refreshed.status_code == 401

    for _ in range(console_hub.hub.settings.lockout_threshold):
        login(console_hub.base_url, avery.username, "not the password at all")
    assert login(console_hub.base_url, avery.username, avery.password).status_code != 200
    page.goto(detail)
    expect(page.locator("#lock-state")).to_contain_text("Locked until")
    page.click("#unlock-button")
    expect(page.locator("#lock-state")).to_have_text("No")
    assert login(console_hub.base_url, avery.username, avery.password).status_code == 200

    page.fill("#reset-password", "password")
    page.click("button:has-text('Set password')")
    expect(page.locator("#password-error")).to_have_text(
        "The password is on the list of common and breached passwords; choose another."
    )
    expect(page.locator("#reset-password")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "user detail with a refused password")
    assert audit_outcomes(console_hub, "user.password_set", "avery") == ["password_refused"]

    # Refusals from the service are messages, never a 500: oneself, and the contact rules.
    page.goto(f"{console_hub.base_url}/console/admin/users/ada")
    page.click("#disable-button")
    expect(page.locator("#status-error")).to_contain_text("You cannot disable your own account")
    assert console_hub.store.accounts.user_summary(username="ada").disabled_at is None  # type: ignore[union-attr]
    page.fill("#contact-phone", "call me \u202e maybe")
    page.click("button:has-text('Save contact')")
    expect(page.locator("#phone-error")).to_contain_text("U+202E")
    page.fill("#contact-phone", "+1 (555) 010-2030")
    page.click("button:has-text('Save contact')")
    expect(page.locator("dd").filter(has_text="+1 (555) 010-2030")).to_have_count(1)


def test_post_without_csrf_is_refused_and_changes_nothing(console_hub: ConsoleHub) -> None:
    admin = signed_in_session(console_hub, "ada")
    detail = admin.get(console_hub.url("/console/admin/users/avery"), timeout=HTTP_TIMEOUT)
    token = form_token(detail.text)
    for path in ("disable", "revoke-sessions", "reset-mfa", "remove", "password"):
        for forged in ({}, {"csrf_token": "0" * len(token)}):
            answer = admin.post(
                console_hub.url(f"/console/admin/users/avery/{path}"),
                data={**forged, "password": "a fine long passphrase"},
                allow_redirects=False,
                timeout=HTTP_TIMEOUT,
            )
            assert answer.status_code == 403, path
            assert "nothing was changed" in answer.text
    answer = admin.post(
        console_hub.url("/console/admin/groups"),
        data={"name": "night", "kind": "shift"},
        allow_redirects=False,
        timeout=HTTP_TIMEOUT,
    )
    assert answer.status_code == 403
    user = console_hub.store.accounts.user_summary(username="avery")
    assert user is not None and user.disabled_at is None
    assert console_hub.store.groups.get("night") is None
    assert not console_hub.store.audit.query(AuditQuery(event="user.*", user="avery"))
    assert not console_hub.store.audit.query(AuditQuery(event="group.*"))


@pytest.mark.slow
def test_a_dispatcher_gets_403_on_every_admin_page(console_hub: ConsoleHub, page: Page) -> None:
    dispatcher = signed_in_session(console_hub, "dina")
    for path in (*ADMIN_PAGES, "/console/admin/audit.csv", "/console/admin/audit.json"):
        answer = dispatcher.get(console_hub.url(path), allow_redirects=False, timeout=HTTP_TIMEOUT)
        assert answer.status_code == 403, path
    sign_in(page, console_hub, "dina")
    page.goto(console_hub.url("/console/admin/users"))
    expect(page.locator("h1")).to_be_visible()
    assert page.locator("#users-table").count() == 0
    assert_accessible(page, "admin page refused to a dispatcher")
    # A valid token of the dispatcher's own session: the role alone must refuse the change.
    token = csrf_token_for(dispatcher.cookies[SESSION_COOKIE])
    answer = dispatcher.post(
        console_hub.url("/console/admin/users/avery/disable"),
        data={"csrf_token": token},
        allow_redirects=False,
        timeout=HTTP_TIMEOUT,
    )
    assert answer.status_code == 403
    user = console_hub.store.accounts.user_summary(username="avery")
    assert user is not None and user.disabled_at is None


def test_hostile_names_in_addresses_are_not_found_never_a_500(console_hub: ConsoleHub) -> None:
    admin = signed_in_session(console_hub, "ada")
    token = form_token(admin.get(console_hub.url("/console/admin/users/new")).text)
    for name in ("\u202eada", "%3Cscript%3E", "x" * 5000, "ada%00", "%E2%80%AE"):
        for path in (f"/console/admin/users/{name}", f"/console/admin/groups/{name}"):
            answer = admin.get(console_hub.url(path), timeout=HTTP_TIMEOUT)
            assert answer.status_code == 404, path
            for action in ("disable", "remove", "members"):
                answer = admin.post(
                    console_hub.url(f"{path}/{action}"),
                    data={"csrf_token": token, "usernames": "avery"},
                    allow_redirects=False,
                    timeout=HTTP_TIMEOUT,
                )
                assert answer.status_code in (404, 405), (path, action, answer.status_code)
    answer = admin.get(
        console_hub.url("/console/admin/users/avery/enrolment/not-a-ticket"), timeout=HTTP_TIMEOUT
    )
    assert answer.status_code == 410
    assert answer.headers["cache-control"] == "no-store"


def test_an_agent_cannot_open_the_admin_pages(console_hub: ConsoleHub, page: Page) -> None:
    for path in ADMIN_PAGES:
        response = page.request.get(f"{console_hub.base_url}{path}", max_redirects=0)
        assert response.status in (303, 401, 403), path
    avery = console_hub.users["avery"]
    page.goto(console_hub.url("/console/sign-in?next=/console/admin/users"))
    page.get_by_label("Username").fill(avery.username)
    page.get_by_label("Password").fill(avery.password)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code", exact=True).fill(next_code(avery.totp_secret))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h1")).to_be_visible()
    assert "/console/sign-in" in page.url
    for path in ADMIN_PAGES:
        response = page.request.get(console_hub.url(path), max_redirects=0)
        assert response.status == 303, path
        assert response.headers["location"].startswith("/console/sign-in"), path


@pytest.mark.slow
def test_forty_parallel_disables_make_one_change(console_hub: ConsoleHub, page: Page) -> None:
    admin = signed_in_session(console_hub, "ada")
    detail = admin.get(console_hub.url("/console/admin/users/dora"), timeout=HTTP_TIMEOUT)
    token = form_token(detail.text)
    url = console_hub.url("/console/admin/users/dora/disable")

    def disable(_: int) -> int:
        answer = admin.post(
            url, data={"csrf_token": token}, allow_redirects=False, timeout=HTTP_TIMEOUT
        )
        return answer.status_code

    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(disable, range(40)))
    assert statuses == [303] * 40
    outcomes = audit_outcomes(console_hub, "user.disabled", "dora")
    assert outcomes.count("ok") == 1
    assert outcomes.count("no_change") == 39
    sign_in(page, console_hub, "ada")
    page.goto(f"{console_hub.base_url}/console/admin/audit?event=user.disabled&user=dora")
    expect(page.locator("#audit-table tbody tr")).to_have_count(40)
    expect(page.locator("#audit-table td", has_text=re.compile(r"^ok$"))).to_have_count(1)


@pytest.mark.slow
def test_groups_create_members_and_remove(console_hub: ConsoleHub, page: Page) -> None:
    sign_in(page, console_hub, "ada")
    page.goto(f"{console_hub.base_url}/console/admin/groups")
    assert_accessible(page, "groups")

    page.fill("#group-name", "Nuit \u202e shift")
    page.click("button:has-text('Create group')")
    expect(page.locator("#name-error")).to_contain_text("U+202E")
    assert_accessible(page, "groups with an error")

    page.fill("#group-name", "Équipe nord")
    page.select_option("#group-kind", "region")
    page.fill("#group-description", HOSTILE_HTML)
    page.click("button:has-text('Create group')")
    expect(page.locator("h1")).to_have_text("Group Équipe nord")
    expect(page.locator("dd").filter(has_text="<script>")).to_have_text(HOSTILE_HTML)
    assert page.locator("img[src=x]").count() == 0

    page.fill("#add-members", "avery, dora nobody")
    page.click("button:has-text('Add')")
    expect(page.locator("#usernames-error")).to_contain_text("no user named 'nobody'")
    assert_accessible(page, "group with an error")
    page.fill("#add-members", "avery, dora")
    page.click("button:has-text('Add')")
    expect(page.locator("#member-list li")).to_have_count(2)
    assert_accessible(page, "group")
    page.get_by_role("button", name="Take dora out of Équipe nord").click()
    expect(page.locator("#member-list li")).to_have_count(1)

    page.goto(f"{console_hub.base_url}/console/admin/groups")
    row = page.locator("#groups-table tbody tr", has_text="Équipe nord")
    expect(row.locator("td").nth(0)).to_have_text("region")
    expect(row.locator("td").nth(2)).to_have_text("1")
    expect(row.locator("td").nth(3)).to_have_text("1")

    page.fill("#group-name", "Équipe NORD")
    page.click("button:has-text('Create group')")
    expect(page.locator("#name-error")).to_contain_text("already exists")

    page.goto(f"{console_hub.base_url}/console/admin/groups/%C3%89quipe%20nord/remove")
    assert_accessible(page, "remove group confirmation")
    page.click("#confirm-remove")
    expect(page).to_have_url(re.compile(r"/console/admin/groups\?done=removed$"))
    assert console_hub.store.groups.get("Équipe nord") is None
    response = page.goto(f"{console_hub.base_url}/console/admin/groups/%C3%89quipe%20nord")
    assert response is not None and response.status == 404
    assert_accessible(page, "missing group")


@pytest.mark.slow
def test_groups_new_authenticator_and_removal_from_a_users_page(
    console_hub: ConsoleHub, page: Page
) -> None:
    sign_in(page, console_hub, "ada")
    page.goto(f"{console_hub.base_url}/console/admin/users/ada/remove")
    page.click("#confirm-remove")
    expect(page.locator("#remove-error")).to_contain_text("You cannot remove your own account")
    assert_accessible(page, "remove user refused")

    # Groups from the user's page: tick one, untick another; each is one audited change.
    console_hub.store.groups.create("West region", "region")
    console_hub.store.groups.create("Night shift", "shift")
    console_hub.store.groups.add_members("Night shift", ["dora"])
    page.goto(console_hub.url("/console/admin/users/dora"))
    page.get_by_label("West region").check()
    page.get_by_label("Night shift").uncheck()
    page.get_by_role("button", name="Save groups").click()
    expect(page.locator("[role=status]").first).to_have_text("Groups saved.")
    assert console_hub.store.groups.groups_of("dora") == ["West region"]
    assert audit_outcomes(console_hub, "group.members_added", "West region") == ["ok"]
    assert audit_outcomes(console_hub, "group.members_removed", "Night shift") == ["ok"]

    # A new authenticator, shown once; the new secret signs in, the old one is dead.
    dora = console_hub.users["dora"]
    page.get_by_role("button", name="Reset authenticator").click()
    expect(page.locator("#otpauth-qr")).to_be_visible()
    assert page.locator("#initial-password").count() == 0
    secret = page.locator("#totp-secret").inner_text().strip()
    assert secret != dora.totp_secret
    api_sign_in(console_hub.base_url, "dora", dora.password, secret)
    page.reload()
    expect(page.locator("#enrolment-gone")).to_be_visible()

    page.goto(f"{console_hub.base_url}/console/admin/users/dora")
    page.click("text=Remove dora")
    expect(page.locator("h1")).to_have_text("Remove dora?")
    assert console_hub.store.accounts.user_summary(username="dora") is not None
    page.click("#confirm-remove")
    expect(page).to_have_url(re.compile(r"/console/admin/users\?done=removed$"))
    assert console_hub.store.accounts.user_summary(username="dora") is None
    response = page.goto(f"{console_hub.base_url}/console/admin/users/dora")
    assert response is not None and response.status == 404
    assert_accessible(page, "missing user")


@pytest.fixture
def signed_in_admin(console_hub: ConsoleHub) -> tuple[ConsoleHub, requests.Session, str]:
    """The hub, an admin's console session signed in once for many examples, and its token."""
    admin = signed_in_session(console_hub, "ada")
    token = form_token(admin.get(console_hub.url("/console/admin/groups")).text)
    return console_hub, admin, token


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    text=st.text(max_size=300) | st.sampled_from([HOSTILE_HTML, "\u202e", " ", "a/b", "x" * 65]),
    field=st.sampled_from(["username", "display_name", "role", "name", "kind", "description"]),
)
def test_any_form_value_is_taken_or_refused_by_name_never_a_500(
    signed_in_admin: tuple[ConsoleHub, requests.Session, str], text: str, field: str
) -> None:
    console_hub, admin, token = signed_in_admin
    # A one-character password: the user is always refused (before any hash is made), so the
    # refusal seen is the first rule the field under test breaks, or the password's.
    user = {"username": "probe", "display_name": "Probe", "role": "agent", "password": "x"}
    group = {"name": "Probe group", "kind": "team", "description": ""}
    form, path = (
        (user, "/console/admin/users/new") if field in user else (group, "/console/admin/groups")
    )
    answer = admin.post(
        console_hub.url(path),
        data={**form, field: text, "csrf_token": token},
        allow_redirects=False,
        timeout=HTTP_TIMEOUT,
    )
    assert answer.status_code in (303, 409, 422), (field, text, answer.status_code)
    if answer.status_code != 303:
        assert 'class="field-error"' in answer.text
    assert console_hub.store.accounts.user_summary(username="probe") is None
