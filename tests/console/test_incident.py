"""The incident page: header, full table and timeline; updates, resolution and retraction posted
from it reach a real client; hostile input gets an error beside its field and changes nothing."""

from __future__ import annotations

import html
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from playwright.sync_api import Page, expect

from tests.console.agent_desk import AgentDesk
from tests.console.conftest import (
    HOSTILE_HTML,
    ConsoleHub,
    assert_accessible,
    form_token,
    sign_in,
    signed_in_session,
)
from tests.console.incident_setup import Team, agent_console_cookie
from tests.hubtools import HTTP_TIMEOUT, auth_headers


@pytest.fixture
def desks(tmp_path: Path) -> Iterator[Callable[[Team, str], AgentDesk]]:
    opened: list[AgentDesk] = []

    def open_desk(team: Team, username: str) -> AgentDesk:
        desk = AgentDesk(team.base_url, username, team.secrets[username], tmp_path / username)
        opened.append(desk)
        return desk

    yield open_desk
    for desk in opened:
        desk.close()


def incident_url(console_hub: ConsoleHub, alert_id: str) -> str:
    return f"{console_hub.base_url}/console/incidents/{alert_id}"


def revision(console_hub: ConsoleHub, alert_id: str) -> int:
    alert = console_hub.store.alerts.get(alert_id)
    assert alert is not None
    return len(alert.changes)


@pytest.mark.slow
def test_an_update_and_a_retraction_posted_from_the_page_reach_the_client(
    console_hub: ConsoleHub,
    page: Page,
    desks: Callable[[Team, str], AgentDesk],
) -> None:
    team = Team(console_hub)
    alex = team.agents[0]
    desk = desks(team, alex)
    desk.wait_until_streaming(console_hub.store)
    alert_id = team.publish(title=HOSTILE_HTML)
    desk.wait_for(alert_id)

    sign_in(page, console_hub, "dina")
    page.goto(incident_url(console_hub, alert_id))
    expect(page.locator("h1")).to_have_text(HOSTILE_HTML)
    expect(page.locator(".incident-header")).to_contain_text(team.group)
    assert_accessible(page, "incident page, open")

    text = "Phones work again.\n<script>alert(3)</script> Use line 2."
    page.fill("#update-text", text)
    page.fill("#update-next", "2099-01-01T10:00")
    page.fill("#update-links", "https://status.example.org/video")
    page.get_by_role("button", name="Post update").click()
    # A next update more than 7 days ahead is refused beside its field; the rest is kept.
    expect(page.locator("#next_update_by-error")).to_contain_text("7 days")
    expect(page.locator("#update-text")).to_have_value(text)
    assert revision(console_hub, alert_id) == 0

    page.fill("#update-next", "")
    page.get_by_role("button", name="Post update").click()
    expect(page.locator(".notice")).to_contain_text("The update was posted")
    held = desk.wait_for(alert_id, revision=1)
    assert held.updates[-1].text == text
    entry = page.locator(".timeline-entry.kind-update")
    expect(entry.locator(".text")).to_have_text(text)
    expect(entry.locator(".links a")).to_have_attribute("href", "https://status.example.org/video")

    # Retracting needs the confirmation; without it (as a browser without the check would post)
    # nothing changes.
    form = page.locator(".retract-form")
    token = form.locator("input[name=csrf_token]").input_value()
    unconfirmed = page.request.post(
        f"{incident_url(console_hub, alert_id)}/retract",
        form={"csrf_token": token, "note": "Sent to the wrong region"},
        max_redirects=0,
    )
    assert unconfirmed.status == 422
    assert "Tick the box to confirm" in unconfirmed.text()
    alert = console_hub.store.alerts.get(alert_id)
    assert alert is not None and alert.status == "open"

    page.fill("#retract-note", "Sent to the wrong region <i>sorry</i>")
    page.check("#retract-confirm")
    page.get_by_role("button", name="Retract").click()
    expect(page.locator(".status")).to_contain_text("Status: Retracted")
    expect(page.locator(".closed-note")).to_contain_text("Sent to the wrong region <i>sorry</i>")
    expect(page.locator("form.update-form, form.resolve-form, form.retract-form")).to_have_count(0)
    held = desk.wait_for(alert_id, status="retracted")
    assert held.updates[-1].text == "Sent to the wrong region <i>sorry</i>"
    # A post that was on its way when the alert closed: refused with why, nothing changed.
    late = page.request.post(
        f"{incident_url(console_hub, alert_id)}/update",
        form={"csrf_token": token, "text": "Too late"},
        max_redirects=0,
    )
    assert late.status == 409
    assert "already retracted" in late.text()
    assert revision(console_hub, alert_id) == 2
    assert_accessible(page, "incident page, retracted")


@pytest.mark.slow
def test_resolving_from_the_page_opens_the_survey_for_the_agent_who_saw_it(
    console_hub: ConsoleHub,
    page: Page,
    desks: Callable[[Team, str], AgentDesk],
) -> None:
    team = Team(console_hub)
    alex = team.agents[0]
    desk = desks(team, alex)
    desk.wait_until_streaming(console_hub.store)
    alert_id = team.publish(title="Video down")
    sign_in(page, console_hub, "dina")
    page.goto(incident_url(console_hub, alert_id))
    expect(page.locator("[data-live-status]")).to_have_text("Live: updates as they happen")
    row = page.locator(f"tr[data-username='{alex}']")
    expect(row.locator(".state-label")).to_have_text("Silent: no device reported it")

    # The page's table and timeline follow the client without a reload.
    page.evaluate("window.vigilPageMarker = 'no reload'")
    desk.wait_for(alert_id)
    desk.show(alert_id)
    assert desk.send_receipts() == 1
    desk.answer(alert_id, "unable", "No headset <b>today</b>")
    assert desk.offered_surveys(alert_id) == []
    expect(row.locator(".state-label")).to_have_text("Unable to act")
    expect(row.locator(".note")).to_have_text("Note: No headset <b>today</b>")
    timeline = page.locator(".timeline-entry")
    expect(timeline.first).to_have_class("timeline-entry kind-published")
    expect(page.locator(".timeline-entry.kind-received")).to_contain_text("received on Test laptop")
    expect(page.locator(".timeline-entry.kind-shown")).to_have_count(1)
    expect(page.locator(".timeline-entry.kind-unable .text")).to_have_text(
        "No headset <b>today</b>"
    )
    expect(page.locator(".live-summary")).to_have_text(
        "1 of 2 delivered, 1 shown, 0 acknowledged, 0 escalated, 1 unable, 1 silent"
    )
    assert page.evaluate("window.vigilPageMarker") == "no reload"

    page.fill("#resolve-note", "Fixed by the vendor.")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator(".status")).to_contain_text("Status: Resolved")
    expect(timeline.last).to_have_class("timeline-entry kind-resolved")
    expect(timeline.last.locator(".text")).to_have_text("Fixed by the vendor.")
    expect(page.locator("form.update-form")).to_have_count(0)
    assert_accessible(page, "incident page, resolved")

    desk.wait_for(alert_id, status="resolved")
    [survey] = desk.offered_surveys(alert_id)
    assert survey.alert_id == alert_id
    surveys = requests.get(
        f"{team.base_url}/v1/alerts/{alert_id}/surveys",
        headers=auth_headers(team.token),
        timeout=HTTP_TIMEOUT,
    )
    assert surveys.status_code == 200 and surveys.json()["status"] == "resolved"


@pytest.mark.slow
def test_the_keyboard_reaches_the_update_form_enter_submits_and_escape_does_not(
    console_hub: ConsoleHub, page: Page
) -> None:
    team = Team(console_hub)
    alert_id = team.publish(title="Chat down", drill=True)
    sign_in(page, console_hub, "dina")
    page.goto(incident_url(console_hub, alert_id))
    expect(page.locator(".drill-banner")).to_have_text("DRILL: no action with real patients")
    assert_accessible(page, "incident page, drill")

    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "update-text":
            break
    else:
        pytest.fail("Tab never reached the update text")
    page.keyboard.type("Typed by keyboard")
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.id") == "update-text"
    assert revision(console_hub, alert_id) == 0

    # The date and time field takes a Tab stop for each of its parts.
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Post update":
            break
    else:
        pytest.fail("Tab never reached the Post update button")
    page.keyboard.press("Enter")
    expect(page.locator(".notice")).to_contain_text("The update was posted")
    assert revision(console_hub, alert_id) == 1
    expect(page.locator(".timeline-entry.kind-update .text")).to_have_text("Typed by keyboard")


@pytest.mark.slow
def test_hostile_form_values_are_refused_beside_their_field_and_change_nothing(
    console_hub: ConsoleHub, page: Page
) -> None:
    team = Team(console_hub)
    alert_id = team.publish(title="Portal down")
    http = signed_in_session(console_hub, "dora")
    url = f"{incident_url(console_hub, alert_id)}/update"
    token = form_token(http.get(incident_url(console_hub, alert_id), timeout=HTTP_TIMEOUT).text)
    cases = [
        ({"text": ""}, "text", "at least 1 character"),
        ({"text": "x" * 10_001}, "text", "at most 10000 characters"),
        ({"text": "Turn \u202eleft"}, "text", "U+202E"),
        ({"text": "ok", "next_update_by": "0001-01-01T00:00"}, "next_update_by", "not in the"),
        ({"text": "ok", "next_update_by": "9999-12-31T23:59"}, "next_update_by", "7 days"),
        ({"text": "ok", "next_update_by": "10000-01-01T00:00"}, "next_update_by", "UTC"),
        ({"text": "ok", "next_update_by": "-5"}, "next_update_by", "UTC"),
        ({"text": "ok", "links": "javascript:alert(1)"}, "links", "https://"),
        ({"text": "ok", "links": "http://example.org"}, "links", "https://"),
        ({"text": "ok", "links": "https://ok.example\nhttps://bad example"}, "links", "line 2"),
    ]
    for fields, name, why in cases:
        answer = http.post(
            url, data={"csrf_token": token, **fields}, allow_redirects=False, timeout=HTTP_TIMEOUT
        )
        assert answer.status_code == 422, (fields, answer.status_code)
        error = re.search(f'<p class="field-error" id="{name}-error">([^<]*)</p>', answer.text)
        assert error is not None and why in html.unescape(error.group(1)), (fields, error)
        # What was typed comes back in the form: nothing is lost.
        assert html.escape(fields[name], quote=True).split("\n")[0] in answer.text
    assert revision(console_hub, alert_id) == 0

    sign_in(page, console_hub, "dina")
    page.goto(incident_url(console_hub, alert_id))
    page.fill("#update-text", "ok")
    page.fill("#update-next", "0001-01-01T00:00")
    page.get_by_role("button", name="Post update").click()
    expect(page.locator("#next_update_by-error")).to_contain_text("not in the future")
    expect(page.locator("#update-next")).to_be_focused()
    assert_accessible(page, "incident page with a refused update")

    # Forty copies of one update at once: each is an update of its own, none fails.
    statuses: list[int] = []
    lock = threading.Lock()

    def post() -> None:
        answer = http.post(
            url,
            data={"csrf_token": token, "text": "Same words"},
            allow_redirects=False,
            timeout=HTTP_TIMEOUT * 3,
        )
        with lock:
            statuses.append(answer.status_code)

    threads = [threading.Thread(target=post) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [303] * 40
    assert revision(console_hub, alert_id) == 40


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    console_hub: ConsoleHub,
) -> None:
    team = Team(console_hub)
    alert_id = team.publish(title="Phones down")
    http = signed_in_session(console_hub, "dina")
    for action, form in (
        ("update", {"text": "Forged"}),
        ("resolve", {"note": "Forged"}),
        ("retract", {"note": "Forged", "confirm": "yes"}),
    ):
        for token in ({}, {"csrf_token": "0" * 64}):
            answer = http.post(
                f"{incident_url(console_hub, alert_id)}/{action}",
                data={**form, **token},
                allow_redirects=False,
                timeout=HTTP_TIMEOUT,
            )
            assert answer.status_code == 403, (action, token)
    alert = console_hub.store.alerts.get(alert_id)
    assert alert is not None and alert.status == "open" and not alert.changes


@pytest.mark.slow
def test_an_unknown_incident_is_a_404_page_and_an_agent_opens_no_incident(
    console_hub: ConsoleHub, page: Page
) -> None:
    team = Team(console_hub)
    alert_id = team.publish(title="Video down")
    sign_in(page, console_hub, "dina")
    page.goto(incident_url(console_hub, alert_id))
    token = page.locator("input[name=csrf_token]").first.input_value()
    for missing in (str(uuid.uuid4()), "not-an-id", "%E2%80%AE", "x" * 5000):
        response = page.goto(incident_url(console_hub, missing))
        assert response is not None and response.status == 404, missing
        expect(page.locator("h1")).to_have_text("No such incident")
    assert_accessible(page, "unknown incident")
    for action in ("update", "resolve", "retract"):
        forged = page.request.post(
            f"{incident_url(console_hub, str(uuid.uuid4()))}/{action}",
            form={"csrf_token": token, "note": "x", "text": "x", "confirm": "yes"},
            max_redirects=0,
        )
        assert forged.status == 404, action
    live = page.request.get(f"{incident_url(console_hub, str(uuid.uuid4()))}/live")
    assert live.status == 404

    page.context.clear_cookies()
    agent_token = agent_console_cookie(console_hub, page)
    for path in ("", "/live"):
        response = page.goto(incident_url(console_hub, alert_id) + path)
        assert response is not None and response.status == 403, path
        expect(page.locator("h1")).to_have_text("Not for this account")
    answer = page.request.post(
        f"{incident_url(console_hub, alert_id)}/resolve",
        form={"csrf_token": agent_token, "note": "x"},
        max_redirects=0,
    )
    assert answer.status == 403
    assert "Video down" not in answer.text()
    alert = console_hub.store.alerts.get(alert_id)
    assert alert is not None and alert.status == "open"


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
FIELD_ERROR = r'class="field-error" id="(text|next_update_by|links)-error"'


@pytest.mark.slow
def test_any_update_form_is_posted_or_refused_by_field_never_an_error(
    console_hub: ConsoleHub,
) -> None:
    team = Team(console_hub)
    alert_id = team.publish(title="Portal down")
    http = signed_in_session(console_hub, "dora")
    url = f"{incident_url(console_hub, alert_id)}/update"
    token = form_token(http.get(incident_url(console_hub, alert_id), timeout=HTTP_TIMEOUT).text)
    moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda moment: moment.isoformat(timespec="minutes")
    )

    @given(text=_TEXT, next_update_by=st.one_of(st.just(""), moments, _TEXT), links=_TEXT)
    @settings(max_examples=60, deadline=None)
    def post(text: str, next_update_by: str, links: str) -> None:
        before = revision(console_hub, alert_id)
        answer = http.post(
            url,
            data={
                "csrf_token": token,
                "text": text,
                "next_update_by": next_update_by,
                "links": links,
            },
            allow_redirects=False,
            timeout=HTTP_TIMEOUT,
        )
        assert answer.status_code in (303, 422), answer.text[:500]
        if answer.status_code == 303:
            alert = console_hub.store.alerts.get(alert_id)
            assert alert is not None and len(alert.changes) == before + 1
            assert alert.changes[-1].text == text.replace("\r\n", "\n")
        else:
            assert revision(console_hub, alert_id) == before
            assert re.search(FIELD_ERROR, answer.text), answer.text[:500]

    post()
