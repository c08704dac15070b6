"""The compose page in real headless Chromium against a real hub: target, preview, publish,
refusals beside their field, one alert per form however often it is sent, keyboard use."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests
from playwright.sync_api import Page, expect

from client.core.hub_client import HubClient
from tests.console.compose_tools import (
    EAST,
    INCIDENT_URL,
    PLAYBOOK,
    PLAYBOOK_TITLE,
    TEMPLATE,
    TEMPLATE_TITLE,
    WEST,
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
    ConsoleHub,
    assert_accessible,
    sign_in,
    signed_in_session,
)
from tests.hubtools import HTTP_TIMEOUT
from tests.hubtools import sign_in as api_sign_in

PARALLEL = 40


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleHub]:
    """One hub for the module (users cost a password hash each); tests sign in as their own."""
    with running_console_hub(tmp_path_factory.mktemp("compose") / "hub") as started:
        yield started


@pytest.fixture(scope="module")
def dispatcher(console: ConsoleHub) -> requests.Session:
    """One dispatcher signed in without a browser, for the many posts that need no page."""
    return signed_in_session(console, new_user(console, "dana"))


def _alerts_of(console: ConsoleHub, username: str) -> list[str]:
    """The alert ids an agent's own client core fetches from the hub."""
    user = console.users[username]
    client = HubClient(console.base_url, allow_plain_http=True)
    tokens = api_sign_in(console.base_url, username, user.password, user.totp_secret)
    client.set_access_token(tokens["access_token"])
    return [item["id"] for item in client.get_json("/v1/alerts")["alerts"]]


def _utc_input(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


@pytest.mark.slow
def test_a_critical_alert_for_one_group_reaches_its_agents_only(
    page: Page, console: ConsoleHub
) -> None:
    outsider_name = new_user(console, "eve", "agent")
    console.store.groups.add_members(EAST, [outsider_name])
    dina = new_user(console, "dina")
    sign_in(page, console, dina, next_path="/console/compose")
    expect(page.get_by_role("heading", name="Compose an alert")).to_be_visible()
    # Live is the default, and shown as chosen: a drill is a deliberate choice.
    expect(page.get_by_role("radio", name="Live")).to_be_checked()
    expect(page.get_by_role("radio", name="Drill")).not_to_be_checked()
    assert_accessible(page, "compose, empty")

    page.get_by_role("radio", name="Critical").check()
    page.get_by_label("Title").fill("Video visits down in the West region")
    page.locator("#field-body").fill("Move today's visits to phone.")
    page.get_by_role("radio", name="Only the groups ticked below").check()
    page.get_by_role("checkbox", name=re.compile(f"^{WEST}")).check()
    count = page.locator("#audience-count")
    expect(count).to_have_text(re.compile(r"^\s*2 agents will receive this\.\s*$"))
    page.get_by_role("checkbox", name=re.compile(f"^{EAST}")).check()
    expect(count).to_have_text(re.compile(r"^\s*4 agents will receive this\.\s*$"))
    page.get_by_role("checkbox", name=re.compile(f"^{EAST}")).uncheck()
    expect(count).to_have_text(re.compile(r"^\s*2 agents will receive this\.\s*$"))
    shown_count = int(re.sub(r"\D", "", count.inner_text()))

    page.get_by_label("Search playbooks").fill("video visit")
    playbook = page.get_by_role("radio", name=re.compile(PLAYBOOK_TITLE))
    expect(playbook).to_be_visible()
    playbook.check()
    page.get_by_label("Search templates").fill("disrupted")
    template = page.get_by_role("checkbox", name=re.compile(TEMPLATE_TITLE))
    expect(template).to_be_visible()
    template.check()
    preview = page.locator("#popup-preview")
    expect(preview.locator(".popup-playbook")).to_contain_text(PLAYBOOK_TITLE)
    expect(preview.locator(".popup-templates")).to_contain_text(TEMPLATE_TITLE)

    page.get_by_role("button", name="Publish").click()
    page.wait_for_url(INCIDENT_URL)
    found = INCIDENT_URL.search(page.url)
    assert found is not None
    alert_id = found.group(1)

    served = api_alert(console, api_token(console, "dora"), alert_id)
    assert served["targeted"] == shown_count == 2
    alert = served["alert"]
    assert alert["audience"] == [WEST]
    assert alert["severity"] == "critical"
    assert alert["drill"] is False
    assert alert["playbook_id"] == PLAYBOOK
    assert alert["template_ids"] == [TEMPLATE]
    assert alert["issued_by"] == dina

    # The agent's own client core fetches it; an agent outside the group never does.
    assert alert_id in _alerts_of(console, "avery")
    assert alert_id not in _alerts_of(console, outsider_name)


def test_content_search_offers_only_what_the_hub_holds(console: ConsoleHub) -> None:
    signer = console.hub.app.state.signer
    console.store.content.upsert("playbook", "pb-gone", {"title": "Video gone"}, signer)
    console.store.content.delete("playbook", "pb-gone", signer)
    http = signed_in_session(console, new_user(console, "dina"))

    def offered(kind: str, query: str) -> list[str]:
        answer = http.get(
            console.url("/console/compose/content"),
            params={"kind": kind, "q": query},
            timeout=HTTP_TIMEOUT,
        )
        assert answer.status_code == 200, answer.text
        assert "<script>" not in answer.text
        return re.findall(r'name="(?:playbook_id|template_ids)" value="([^"]*)"', answer.text)

    assert PLAYBOOK in offered("playbook", "video")
    assert "pb-gone" not in offered("playbook", "video")
    assert offered("playbook", "no such words") == [""]
    assert offered("playbook", HOSTILE_HTML) == [""]
    assert offered("playbook", "\u202e" + "video") == [""]
    assert offered("playbook", "x" * 5_000) == [""]
    assert TEMPLATE in offered("template", "disrupted")
    assert PLAYBOOK not in offered("template", "video")
    bad_kind = http.get(
        console.url("/console/compose/content"),
        params={"kind": "secret", "q": "video"},
        timeout=HTTP_TIMEOUT,
    )
    assert bad_kind.status_code == 422

    # An id the hub does not hold (forged into the form) is refused by name beside its field,
    # and never offered back as a choice.
    for unknown in ("pb-nope", "pb-gone"):
        fields = compose_fields(http, console, playbook_id=unknown)
        answer = post_form(http, console, "/console/compose", fields)
        assert answer.status_code == 422, answer.text
        error = re.search(r'<p class="field-error" id="playbook_id-error">([^<]*)</p>', answer.text)
        assert error is not None, answer.text
        assert "Playbook:" in error.group(1) and unknown in error.group(1)
        assert f'value="{unknown}"' not in answer.text
        assert alerts_titled(console, dict(fields)["title"]) == []


@pytest.mark.slow
def test_preview_shows_what_the_agent_will_read_as_plain_text(
    page: Page, console: ConsoleHub
) -> None:
    sign_in(page, console, new_user(console, "dina"), next_path="/console/compose")
    page.get_by_role("radio", name="Major").check()
    page.get_by_label("Title").fill(HOSTILE_HTML)
    page.locator("#field-body").fill("Call \u202eenohp\u202c patients first.")
    preview = page.locator("#popup-preview")
    expect(preview.locator(".popup-title")).to_have_text(HOSTILE_HTML)
    expect(preview.locator(".popup-severity")).to_have_text("Major")
    # The pop-up drops bidi controls: the preview shows the text as the agent will read it.
    expect(preview.locator(".popup-body")).to_have_text("Call enohp patients first.")
    expect(preview.locator(".preview-note")).to_contain_text("U+202E")
    assert preview.locator("img, script").count() == 0
    expect(preview.locator(".popup-drill")).to_have_count(0)
    page.get_by_role("radio", name="Drill").check()
    expect(preview.locator(".popup-drill")).to_have_text("DRILL: no action with real patients")
    assert_accessible(page, "compose with a preview")

    # Without JavaScript the Preview button answers the whole page with the same preview.
    http = signed_in_session(console, new_user(console, "dora"))
    answer = post_form(
        http,
        console,
        "/console/compose/preview",
        compose_fields(http, console, title=HOSTILE_HTML, mode="drill"),
    )
    assert answer.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in answer.text
    assert HOSTILE_HTML not in answer.text
    assert 'id="compose-form"' in answer.text and "DRILL: no action" in answer.text
    assert alerts_titled(console, HOSTILE_HTML) == []


@pytest.mark.slow
def test_keyboard_tab_reaches_every_field_and_enter_or_escape_never_publish(
    page: Page, console: ConsoleHub
) -> None:
    sign_in(page, console, new_user(console, "dina"), next_path="/console/compose")
    page.get_by_role("radio", name="Live").focus()
    reached: list[str] = []
    for _ in range(60):
        described = page.evaluate(
            "() => { const e = document.activeElement;"
            " return (e.name || '') + '|' + (e.textContent || '').trim(); }"
        )
        reached.append(described)
        if described == "|Publish":
            break
        page.keyboard.press("Tab")
    names = [item.split("|")[0] for item in reached]
    for name in (
        "mode",
        "severity",
        "title",
        "body",
        "audience_mode",
        "groups",
        "playbook_q",
        "playbook_id",
        "template_q",
        "expires_at",
        "next_update_by",
    ):
        assert name in names, f"Tab never reached {name}: {reached}"
    assert reached[-1] == "|Publish", reached
    assert names.index("title") < names.index("body") < names.index("expires_at")

    # Enter in the title of a half-written form previews it: nothing is published.
    page.get_by_role("radio", name="Critical").check()
    title = page.get_by_label("Title")
    title.fill("Half an alert")
    title.press("Enter")
    page.wait_for_url(re.compile(r"/console/compose/preview$"))
    expect(page.locator("#popup-preview .popup-title")).to_have_text("Half an alert")
    expect(page.get_by_label("Title")).to_have_value("Half an alert")
    # Escape clears nothing.
    body = page.locator("#field-body")
    body.fill("Typed words")
    body.press("Escape")
    page.get_by_label("Title").press("Escape")
    expect(body).to_have_value("Typed words")
    expect(page.get_by_label("Title")).to_have_value("Half an alert")
    expect(page.get_by_role("radio", name="Critical")).to_be_checked()
    assert alerts_titled(console, "Half an alert") == []


@pytest.mark.slow
def test_refusals_are_named_beside_their_field_and_keep_the_form(
    page: Page, console: ConsoleHub
) -> None:
    sign_in(page, console, new_user(console, "dina"), next_path="/console/compose")
    page.get_by_role("radio", name="Critical").check()
    page.get_by_label("Title").fill(HOSTILE_HTML)
    page.locator("#field-body").fill("Typed text")
    expires = page.locator("#input-expires_at")
    for typed, words in (
        ("0001-01-01T00:00", "not in the future"),
        ("9999-12-31T23:59", "more than 365 days ahead"),
        (_utc_input(datetime.now(UTC) - timedelta(hours=1)), "not in the future"),
    ):
        expires.fill(typed)
        page.get_by_role("button", name="Publish").click()
        error = page.locator("#expires_at-error")
        expect(error).to_contain_text("Expires at (UTC):")
        expect(error).to_contain_text(words)
        expect(expires).to_have_attribute("aria-invalid", "true")
        expect(expires).to_have_attribute("aria-describedby", re.compile(r"\bexpires_at-error\b"))
        expect(expires).to_have_value(typed)
        expect(page.get_by_label("Title")).to_have_value(HOSTILE_HTML)
        expect(page.locator("#field-body")).to_have_value("Typed text")
        expect(page.locator(".compose-errors")).to_contain_text("Expires at (UTC)")
    assert_accessible(page, "compose with errors")

    # An empty text is named too; the browser cannot even type past the limit (the hub's
    # refusal of a longer one is in test_every_bad_value_is_refused_beside_its_field).
    expect(page.locator("#field-body")).to_have_attribute("maxlength", "10000")
    page.locator("#field-body").fill("")
    expires.fill("")
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("#body-error")).to_have_text(re.compile(r"^Text: "))
    expect(page.locator("#field-body")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#expires_at-error")).to_have_count(0)
    expect(expires).not_to_have_attribute("aria-invalid", "true")
    assert alerts_titled(console, HOSTILE_HTML) == []


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"expires_at": "0001-01-01T00:00"}, "expires_at", "not in the future"),
        ({"expires_at": "9999-12-31T23:59"}, "expires_at", "365 days"),
        ({"expires_at": "2020-01-01T00:00"}, "expires_at", "not in the future"),
        ({"expires_at": "T10:00"}, "expires_at", "not a date and time"),
        ({"expires_at": "2026-13-45T99:99"}, "expires_at", "not a date and time"),
        ({"expires_at": "2030-01-01T00:00+05:00"}, "expires_at", "without a zone"),
        ({"expires_at": "9" * 5_000}, "expires_at", "YYYY-MM-DDTHH:MM"),
        ({"next_update_by": "0001-01-01T00:00"}, "next_update_by", "not in the future"),
        ({"next_update_by": "9999-12-31T23:59"}, "next_update_by", "7 days"),
        ({"title": ""}, "title", "Title:"),
        ({"title": "t" * 201}, "title", "200"),
        ({"body": "b" * 200_000}, "body", "10000"),
        ({"body": None}, "body", "Text:"),
        ({"mode": None}, "mode", "choose Live or Drill"),
        ({"mode": "both"}, "mode", "choose Live or Drill"),
        ({"severity": "apocalyptic"}, "severity", "Severity:"),
        ({"severity": None}, "severity", "Severity:"),
        ({"groups": ["Nowhere"]}, "audience", "no group named 'Nowhere'"),
        ({"groups": ["West\u202e"]}, "audience", "U+202E"),
        ({"groups": []}, "audience", "tick at least one group"),
        ({"audience_mode": "all"}, "audience", "choose one or the other"),
        ({"template_ids": ["tpl-nope"]}, "template_ids", "tpl-nope"),
        ({"override_approval": "r" * 501}, "override_approval", "500"),
        ({"idempotency_key": ""}, "form", "one-time key"),
        ({"idempotency_key": "k\u00e9y"}, "form", "one-time key"),
    ],
)
def test_every_bad_value_is_refused_beside_its_field(
    console: ConsoleHub,
    dispatcher: requests.Session,
    changes: dict[str, object],
    field: str,
    words: str,
) -> None:
    http = dispatcher
    fields = compose_fields(http, console, **changes)
    answer = post_form(http, console, "/console/compose", fields)
    assert 400 <= answer.status_code < 500, answer.text
    error = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', answer.text)
    assert error is not None, answer.text
    assert words in error.group(1).replace("&#39;", "'"), error.group(1)
    if field != "form":
        # The field points at its error, and says it is invalid; no other field does.
        assert re.search(rf'aria-describedby="[^"]*\b{field}-error\b', answer.text)
        assert 'aria-invalid="true"' in answer.text
        assert len(re.findall(r'<p class="field-error"', answer.text)) == 1
    # What was typed comes back (the title at least), and nothing was published.
    title = dict(fields).get("title")
    if title:
        assert f'value="{title[:200]}' in answer.text
        assert alerts_titled(console, title) == []


@pytest.mark.slow
def test_the_same_form_sent_twice_or_forty_times_at_once_publishes_once(
    console: ConsoleHub,
) -> None:
    http = signed_in_session(console, new_user(console, "dina"))
    fields = compose_fields(http, console)
    title = dict(fields)["title"]
    first = post_form(http, console, "/console/compose", fields)
    again = post_form(http, console, "/console/compose", fields)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert INCIDENT_URL.search(first.headers["location"])
    assert len(alerts_titled(console, title)) == 1

    fields = compose_fields(http, console, title="Forty at once")
    cookies = http.cookies.get_dict()

    def send(_: int) -> requests.Response:
        with requests.Session() as own:
            own.cookies.update(cookies)
            return post_form(own, console, "/console/compose", fields)

    with ThreadPoolExecutor(PARALLEL) as pool:
        answers = list(pool.map(send, range(PARALLEL)))
    assert {answer.status_code for answer in answers} == {303}, [
        (answer.status_code, answer.text[:200]) for answer in answers if answer.status_code != 303
    ]
    assert len({answer.headers["location"] for answer in answers}) == 1
    published = alerts_titled(console, "Forty at once")
    assert len(published) == 1
    assert answers[0].headers["location"].endswith(published[0])


def test_a_sent_form_changed_and_sent_again_asks_before_a_second_alert(
    console: ConsoleHub, dispatcher: requests.Session
) -> None:
    fields = compose_fields(dispatcher, console, title="Sent once")
    assert post_form(dispatcher, console, "/console/compose", fields).status_code == 303
    changed = [(name, "Sent twice" if name == "title" else value) for name, value in fields]
    answer = post_form(dispatcher, console, "/console/compose", changed)
    assert answer.status_code == 422, answer.text
    assert "already sent with other content" in answer.text
    key = dict(fields)["idempotency_key"]
    assert f'name="idempotency_key" value="{key}"' not in answer.text
    assert 'value="Sent twice"' in answer.text
    assert alerts_titled(console, "Sent twice") == []
    assert len(alerts_titled(console, "Sent once")) == 1


def test_the_preview_address_opened_again_leads_back_to_the_form(
    console: ConsoleHub, dispatcher: requests.Session
) -> None:
    answer = dispatcher.get(
        console.url("/console/compose/preview"), allow_redirects=False, timeout=HTTP_TIMEOUT
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/compose"


def test_a_post_without_the_csrf_token_or_from_an_agent_is_refused(
    console: ConsoleHub,
) -> None:
    http = signed_in_session(console, new_user(console, "dina"))
    fields = compose_fields(http, console)
    for forged in (
        [(name, value) for name, value in fields if name != "csrf_token"],
        [(name, "0" * 64 if name == "csrf_token" else value) for name, value in fields],
    ):
        for path in ("/console/compose", "/console/compose/preview"):
            answer = post_form(http, console, path, forged)
            assert answer.status_code == 403, answer.text
            assert "CSRF" in answer.text or "form" in answer.text.lower()
    assert alerts_titled(console, dict(fields)["title"]) == []

    agent = requests.Session()
    agent.cookies.set(
        "vigil-console", agent_console_cookie(console, new_user(console, "ann", "agent"))
    )
    for path in (
        "/console/compose",
        "/console/compose/audience",
        "/console/compose/content?kind=playbook&q=video",
    ):
        answer = agent.get(console.url(path), allow_redirects=False, timeout=HTTP_TIMEOUT)
        assert answer.status_code == 403, (path, answer.status_code)
        assert PLAYBOOK_TITLE not in answer.text
    token = re.search(
        r'name="csrf_token" value="([^"]+)"',
        agent.get(console.url("/console/compose"), timeout=HTTP_TIMEOUT).text,
    )
    assert token is None
    answer = post_form(agent, console, "/console/compose", fields)
    assert answer.status_code == 403
    assert alerts_titled(console, dict(fields)["title"]) == []
