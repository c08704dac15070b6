"""The approval queue in real headless Chromium against a real hub that requires two dispatchers:
a live critical alert waits, its requester cannot approve it, a second dispatcher publishes it
exactly once, a rejection needs a reason, an override is audited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from hub.storage.audit import AuditQuery
from tests.console.compose_tools import (
    INCIDENT_URL,
    PLAYBOOK,
    PLAYBOOK_TITLE,
    TEMPLATE,
    TEMPLATE_TITLE,
    agent_console_cookie,
    alerts_titled,
    api_alert,
    api_token,
    compose_fields,
    new_user,
    post_form,
    running_console_hub,
)
from tests.console.conftest import (
    HOSTILE_HTML,
    LAPTOP,
    ConsoleHub,
    PageProblems,
    assert_accessible,
    form_token,
    sign_in,
    signed_in_session,
)
from tests.hubtools import HTTP_TIMEOUT

PARALLEL = 40
HELD_URL = re.compile(r"/console/compose/held/([0-9a-f-]{36})$")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleHub]:
    """One hub for the module that holds live critical alerts for a second dispatcher."""
    with running_console_hub(tmp_path_factory.mktemp("approvals") / "hub") as started:
        started.store.settings.set_require_approval(True)
        yield started


def _ask(http: requests.Session, console: ConsoleHub, title: str) -> str:
    """Publish a live critical alert from the compose form; asserts it is held: its request id."""
    answer = post_form(
        http, console, "/console/compose", compose_fields(http, console, title=title)
    )
    assert answer.status_code == 303, answer.text
    held = HELD_URL.search(answer.headers["location"])
    assert held is not None, answer.headers["location"]
    return held.group(1)


def _decide(
    http: requests.Session, console: ConsoleHub, approval_id: str, action: str, **fields: str
) -> requests.Response:
    page = http.get(console.url("/console/approvals"), timeout=HTTP_TIMEOUT)
    return post_form(
        http,
        console,
        f"/console/approvals/{approval_id}/{action}",
        [("csrf_token", form_token(page.text)), *fields.items()],
    )


@pytest.mark.slow
def test_dina_asks_dora_approves_and_dina_cannot_approve_her_own(
    page: Page, browser: Browser, page_problems: PageProblems, tmp_path: Path
) -> None:
    with running_console_hub(tmp_path / "hub") as console:
        console.store.settings.set_require_approval(True)
        dina = new_user(console, "dina")
        sign_in(page, console, dina, next_path="/console/approvals")
        expect(page.get_by_text("No alert is waiting for approval.")).to_be_visible()
        assert_accessible(page, "approvals, empty")

        page.goto(console.url("/console/compose"))
        page.get_by_role("radio", name="Critical").check()
        page.get_by_label("Title").fill(HOSTILE_HTML)
        page.locator("#field-body").fill("Evacuate the West clinic.")
        page.get_by_role("radio", name="Only the groups ticked below").check()
        page.get_by_role("checkbox", name=re.compile("^West region")).check()
        page.get_by_role("button", name="Publish").click()
        page.wait_for_url(HELD_URL)
        held = HELD_URL.search(page.url)
        assert held is not None
        approval_id = held.group(1)
        expect(page.get_by_role("heading", name="Waiting for a second dispatcher")).to_be_visible()
        expect(page.get_by_role("status")).to_contain_text(HOSTILE_HTML)
        assert_accessible(page, "held for approval")
        # Held means sent to no one.
        assert alerts_titled(console, HOSTILE_HTML) == []

        page.get_by_role("link", name="approval queue").click()
        page.wait_for_url(re.compile(r"/console/approvals$"))
        request = page.get_by_role("article")
        expect(request.get_by_role("heading")).to_contain_text(HOSTILE_HTML)
        expect(request).to_contain_text("2 agents now")
        expect(request).to_contain_text("You asked for this alert")
        expect(request.get_by_role("button", name="Approve and publish")).to_have_count(0)
        assert_accessible(page, "approvals with a request")

        # Posting the approval anyway: the service's refusal, shown on the page.
        own = page.request.post(
            console.url(f"/console/approvals/{approval_id}/approve"),
            form={"csrf_token": form_token(page.content())},
            max_redirects=0,
        )
        assert own.status == 409
        assert "You asked for this alert yourself" in own.text()
        assert alerts_titled(console, HOSTILE_HTML) == []

        # Dora, in a browser of her own, approves it: published once, by her, for dina.
        context = browser.new_context(viewport=LAPTOP, locale="en-GB", timezone_id="UTC")
        try:
            dora_page = context.new_page()
            dora_page.on("dialog", page_problems.dialog)
            dora_page.on("pageerror", lambda error: page_problems.errors.append(str(error)))
            sign_in(dora_page, console, "dora", next_path="/console/approvals")
            item = dora_page.get_by_role("article")
            expect(item).not_to_contain_text("You asked for this alert")
            item.get_by_role("button", name="Approve and publish").click()
            dora_page.wait_for_url(INCIDENT_URL)
            found = INCIDENT_URL.search(dora_page.url)
            assert found is not None
            alert_id = found.group(1)
        finally:
            context.close()

        assert alerts_titled(console, HOSTILE_HTML) == [alert_id]
        served = api_alert(console, api_token(console, "dora"), alert_id)
        assert served["alert"]["issued_by"] == dina
        assert served["alert"]["approved_by"] == "dora"
        assert served["targeted"] == 2

        page.goto(console.url("/console/approvals"))
        expect(page.get_by_text("No alert is waiting for approval.")).to_be_visible()
        decided = page.locator("table.approval-decided tbody tr")
        expect(decided).to_have_count(1)
        expect(decided).to_contain_text("Approved")
        expect(decided).to_contain_text("dora")
        expect(decided.get_by_role("link", name="Open the incident")).to_have_attribute(
            "href", f"/console/incidents/{alert_id}"
        )
        assert_accessible(page, "approvals with a decided request")
        # The queue's live line holds a stream open: close it before this test's hub stops.
        page.goto("about:blank")


@pytest.mark.slow
def test_the_queue_says_without_a_reload_when_a_request_arrives(
    page: Page, console: ConsoleHub
) -> None:
    sign_in(page, console, new_user(console, "dora"), next_path="/console/approvals")
    expect(page.locator("[data-live-status]")).to_have_text(re.compile("^Live"))
    expect(page.locator(".compose-queue-changed")).to_have_count(0)
    title = "Arrives while the queue is open"
    _ask(signed_in_session(console, new_user(console, "dina")), console, title)
    changed = page.locator(".compose-queue-changed")
    expect(changed).to_contain_text("The queue has changed")
    expect(page.get_by_role("heading", name=title)).to_have_count(0)
    changed.get_by_role("link", name="Show the queue as it is now").click()
    expect(page.get_by_role("heading", name=re.compile(title))).to_be_visible()
    expect(page.locator(".compose-queue-changed")).to_have_count(0)


def test_a_rejection_needs_a_reason_and_the_request_is_never_sent(console: ConsoleHub) -> None:
    dina = signed_in_session(console, new_user(console, "dina"))
    dora = signed_in_session(console, new_user(console, "dora"))
    approval_id = _ask(dina, console, "Reject me")
    queue = dora.get(console.url("/console/approvals"), timeout=HTTP_TIMEOUT).text
    assert f"{PLAYBOOK_TITLE} ({PLAYBOOK})" in queue
    assert f"{TEMPLATE_TITLE} ({TEMPLATE})" in queue

    for reason in ("", "r" * 2_001):
        answer = _decide(dora, console, approval_id, "reject", reason=reason)
        assert answer.status_code == 422, answer.text
        error = re.search(
            rf'<p class="field-error" id="reason-{approval_id}-error">([^<]*)</p>', answer.text
        )
        assert error is not None, answer.text
        assert error.group(1).startswith("Reason: ")
        assert (
            f'id="reason-{approval_id}" name="reason" rows="2" maxlength="2000" aria-invalid="true"'
            in answer.text
        )
        assert f">{reason}</textarea>" in answer.text

    answer = _decide(dora, console, approval_id, "reject", reason=HOSTILE_HTML)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/approvals"
    queue = dora.get(console.url("/console/approvals"), timeout=HTTP_TIMEOUT).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in queue and HOSTILE_HTML not in queue
    assert "Rejected" in queue

    # Decided means decided: approving it now is refused with the service's words.
    answer = _decide(dora, console, approval_id, "approve")
    assert answer.status_code == 409
    assert "already rejected" in answer.text
    assert alerts_titled(console, "Reject me") == []
    held = dina.get(console.url(f"/console/compose/held/{approval_id}"), timeout=HTTP_TIMEOUT)
    assert "It was never sent" in held.text

    for bad_id in ("not-an-id", "0" * 5_000, "00000000-0000-0000-0000-000000000000"):
        answer = _decide(dora, console, bad_id, "approve")
        assert answer.status_code == 404, answer.text
        assert "No such approval request" in answer.text
    missing = dina.get(console.url("/console/compose/held/nope"), timeout=HTTP_TIMEOUT)
    assert missing.status_code == 404


def test_a_held_form_sent_twice_is_one_request(
    console: ConsoleHub,
) -> None:
    dina = signed_in_session(console, new_user(console, "dina"))
    fields = compose_fields(dina, console, title="Held twice")
    first = post_form(dina, console, "/console/compose", fields)
    again = post_form(dina, console, "/console/compose", fields)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert HELD_URL.search(first.headers["location"])
    requests_made = [
        approval
        for approval in console.store.alerts.approvals("pending", 1000)
        if approval.draft["title"] == "Held twice"
    ]
    assert len(requests_made) == 1


@pytest.mark.slow
def test_forty_approvals_at_once_publish_one_alert(console: ConsoleHub) -> None:
    dina = signed_in_session(console, new_user(console, "dina"))
    dora = signed_in_session(console, new_user(console, "dora"))
    approval_id = _ask(dina, console, "Approve me forty times")
    token = form_token(dora.get(console.url("/console/approvals"), timeout=HTTP_TIMEOUT).text)
    cookies = dora.cookies.get_dict()

    def approve(_: int) -> requests.Response:
        with requests.Session() as own:
            own.cookies.update(cookies)
            return post_form(
                own, console, f"/console/approvals/{approval_id}/approve", [("csrf_token", token)]
            )

    with ThreadPoolExecutor(PARALLEL) as pool:
        answers = list(pool.map(approve, range(PARALLEL)))
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [303] + [409] * (PARALLEL - 1), codes
    assert len(alerts_titled(console, "Approve me forty times")) == 1


def test_an_override_publishes_at_once_and_its_reason_is_audited(console: ConsoleHub) -> None:
    name = new_user(console, "dina")
    dina = signed_in_session(console, name)
    reason = "Fire in the building: no second dispatcher on shift"
    fields = compose_fields(dina, console, title="Override", override_approval=reason)
    answer = post_form(dina, console, "/console/compose", fields)
    assert answer.status_code == 303, answer.text
    found = INCIDENT_URL.search(answer.headers["location"])
    assert found is not None
    served = api_alert(console, api_token(console, "dora"), found.group(1))
    assert served["approval_override"] == reason
    events = console.store.audit.query(AuditQuery(event="alert.approval_overridden"))
    assert [(event.actor, event.detail["reason"]) for event in events] == [(name, reason)]

    # The page offers the override only where the hub holds alerts, and says it is audited.
    page = dina.get(console.url("/console/compose"), timeout=HTTP_TIMEOUT).text
    assert "Reason to publish without a second dispatcher" in page
    assert "audit trail" in page


def test_a_post_without_the_csrf_token_or_from_an_agent_is_refused(console: ConsoleHub) -> None:
    dina = signed_in_session(console, new_user(console, "dina"))
    dora = signed_in_session(console, new_user(console, "dora"))
    approval_id = _ask(dina, console, "Forged decisions")
    for action, fields in (("approve", []), ("reject", [("reason", "forged")])):
        answer = post_form(dora, console, f"/console/approvals/{approval_id}/{action}", fields)
        assert answer.status_code == 403, answer.text
    agent = requests.Session()
    agent.cookies.set(
        "vigil-console", agent_console_cookie(console, new_user(console, "ann", "agent"))
    )
    queue = agent.get(
        console.url("/console/approvals"), allow_redirects=False, timeout=HTTP_TIMEOUT
    )
    assert queue.status_code == 403
    assert "Forged decisions" not in queue.text
    token = form_token(dora.get(console.url("/console/approvals"), timeout=HTTP_TIMEOUT).text)
    answer = post_form(
        agent, console, f"/console/approvals/{approval_id}/approve", [("csrf_token", token)]
    )
    assert answer.status_code == 403
    still = console.store.alerts.approval(approval_id)
    assert still is not None and still.status == "pending"
    assert alerts_titled(console, "Forged decisions") == []
