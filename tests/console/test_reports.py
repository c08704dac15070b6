"""The console's reports page in real headless Chromium against a real hub: the KPI tables equal
GET /v1/reports/kpis, the charts draw under the CSP, the CSV download equals `vigil-hub report`,
drills stay apart, hostile titles and filters stay text, and each view passes axe-core."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from playwright.sync_api import Locator, Page, expect

from hub.clock import Clock, ManualClock
from hub.console.report_figures import ReportFilters, figure_text, read_report
from hub.storage import Store
from hub.storage.alerts import AckAction, NewAck
from hub.storage.delivery import NewReceipt
from hub.storage.surveys import NewSurvey
from tests.console.conftest import (
    HOSTILE_HTML,
    ConsoleHub,
    assert_accessible,
    sign_in,
    signed_in_session,
)
from tests.hub.report_scenario import T0, add_user
from tests.hubtools import HTTP_TIMEOUT, auth_headers, next_code
from tests.hubtools import sign_in as api_sign_in

HOSTILE_TITLE = HOSTILE_HTML + "\u202e reversed"
FORMULA_TITLE = '=HYPERLINK("http://evil.example","Open")'
HOSTILE_GROUP = "North <b>Team</b>"
HOSTILE_COMMENT = "<b>bold</b>\u202eevil\nsecond line <img src=x onerror=alert(3)>"
# Device times may run ahead of the hub's by this much: the seed's answers come "after" now.
SKEW_MS = 3_600_000
WAIT_MS = 5_000
PROCESS_TIMEOUT = 60


@dataclass(frozen=True)
class Seeded:
    """The seeded history: alert ids, and the period (as dates) that holds all of it."""

    hostile: str
    formula: str
    open_alert: str
    drill: str
    since: str
    until: str


def _receipt(store: Store, username: str, alert: Any, after: float) -> None:
    at = round((alert.issued_at + after) * 1000)
    [result] = store.delivery.record_receipts(
        username,
        ("laptop", "Laptop"),
        [NewReceipt(alert.id, at, at)],
        clock_skew_ms=SKEW_MS,
        sees_all=False,
    )
    assert result.status == "accepted", result


def _answer(store: Store, username: str, alert: Any, after: float, action: AckAction) -> None:
    ack = NewAck(str(uuid.uuid4()), alert.id, action, None, round((alert.issued_at + after) * 1000))
    [result] = store.alerts.record_acks(username, [ack], clock_skew_ms=SKEW_MS)
    assert result.status == "accepted", result


def _survey(
    store: Store,
    clock: Clock,
    username: str,
    alert: Any,
    ratings: tuple[int, int | None],
    text: str,
) -> None:
    clarity, templates = ratings
    answer = NewSurvey(
        str(uuid.uuid4()), alert.id, clarity, templates, text or None, round(clock.now() * 1000)
    )
    [result] = store.surveys.record(username, [answer], clock_skew_ms=SKEW_MS)
    assert result.status == "accepted", result


def _publish(store: Store, title: str, audience: list[str] | None, drill: bool = False) -> Any:
    alert, _ = store.alerts.publish(
        severity="critical",
        title=title,
        body="Move today's visits to phone.",
        playbook_id=None,
        template_ids=[],
        requires_ack=True,
        expires_at=None,
        issued_by="dina",
        drill=drill,
        audience=audience,
    )
    return alert


def seed(store: Store, clock: Clock) -> Seeded:
    """Two groups of agents; a resolved alert with a hostile title and surveys, a resolved one
    with a formula title, an open one and a drill; receipts, answers and surveys go through the
    stores' own methods, as the /v1 routes record them."""
    for name in ("rhea", "sam", "tess", "uma"):
        add_user(store, name)
    store.groups.create(HOSTILE_GROUP, "team")
    store.groups.create("South", "region")
    store.groups.add_members(HOSTILE_GROUP, ["rhea", "sam"])
    store.groups.add_members("South", ["tess", "uma"])

    hostile = _publish(store, HOSTILE_TITLE, None)
    for name, delivered, answered, action in (
        ("rhea", 2.0, 20.0, "acknowledged"),
        ("sam", 70.0, 100.0, "escalated"),
        ("tess", 5.0, 40.0, "unable"),
    ):
        _receipt(store, name, hostile, delivered)
        _answer(store, name, hostile, answered, action)  # type: ignore[arg-type]
    store.alerts.change(hostile.id, kind="update", text="Phones only", by="dina")
    store.alerts.change(hostile.id, kind="resolved", text="Fixed", by="dina")
    _survey(store, clock, "rhea", hostile, (5, 4), HOSTILE_COMMENT)
    _survey(store, clock, "sam", hostile, (2, None), "")
    _survey(store, clock, "tess", hostile, (5, 4), "Clear enough")

    formula = _publish(store, FORMULA_TITLE, ["South"])
    _receipt(store, "uma", formula, 3.0)
    _answer(store, "uma", formula, 9.0, "acknowledged")
    store.alerts.change(formula.id, kind="resolved", text="Done", by="dina")

    open_alert = _publish(store, "Lab results delayed", [HOSTILE_GROUP])
    drill = _publish(store, "DRILL phones down", None, drill=True)
    for name in ("rhea", "sam", "tess", "uma"):
        _answer(store, name, drill, 1.0, "acknowledged")

    today = datetime.fromtimestamp(clock.now(), UTC).date()
    return Seeded(
        hostile=hostile.id,
        formula=formula.id,
        open_alert=open_alert.id,
        drill=drill.id,
        since=today.isoformat(),
        until=(today + timedelta(days=1)).isoformat(),
    )


@pytest.fixture
def seeded(console_hub: ConsoleHub) -> Seeded:
    return seed(console_hub.store, console_hub.hub.settings.clock)


def _api_token(console_hub: ConsoleHub) -> str:
    user = console_hub.users["dora"]
    tokens = api_sign_in(console_hub.base_url, user.username, user.password, user.totp_secret)
    token: str = tokens["access_token"]
    return token


def _kpis(console_hub: ConsoleHub, token: str, **params: str) -> dict[str, Any]:
    response = requests.get(
        console_hub.url("/v1/reports/kpis"),
        params=params,
        headers=auth_headers(token),
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _reports_url(console_hub: ConsoleHub, **params: str) -> str:
    return console_hub.url("/console/reports?" + urlencode(params))


def _value(text: str) -> float | int | None:
    """A figure's text on the page, back to the JSON's value."""
    text = text.strip()
    if text == "—":
        return None
    if text.endswith(" %"):
        return round(float(text[:-2]) / 100, 4)
    if text.endswith(" s"):
        return float(text[:-2])
    return float(text) if "." in text else int(text)


def _row_figures(page: Page, row_selector: str) -> dict[str, float | int | None]:
    cells = page.locator(f"{row_selector} td[data-key]")
    keys = cells.evaluate_all("cells => cells.map(cell => cell.dataset.key)")
    texts = cells.all_inner_texts()
    return {key: _value(text) for key, text in zip(keys, texts, strict=True)}


def _total_figures(page: Page) -> dict[str, float | int | None]:
    rows = page.locator("table.report-totals tr[data-key]")
    keys = rows.evaluate_all("rows => rows.map(row => row.dataset.key)")
    texts = page.locator("table.report-totals tr[data-key] td").all_inner_texts()
    return {key: _value(text) for key, text in zip(keys, texts, strict=True)}


def _assert_same(shown: dict[str, Any], wire: dict[str, Any]) -> None:
    expected = {
        **wire,
        "silent": wire["targeted"] - wire["answered"],
        **{f"reachability.{key}": value for key, value in wire.get("reachability", {}).items()},
    }
    assert len(shown) >= 10, shown
    for key, value in shown.items():
        assert value == expected[key], (key, value, expected[key])


def _chart(page: Page, canvas_id: str) -> dict[str, Any]:
    chart: dict[str, Any] = page.evaluate(
        """id => {
            const chart = Chart.getChart(id);
            return {labels: chart.data.labels, data: chart.data.datasets.map(d => d.data)};
        }""",
        canvas_id,
    )
    return chart


def _tab_to(page: Page, target: Locator, presses: int = 4) -> None:
    """Press Tab until `target` has the focus; fails after `presses` presses."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    expect(target).to_be_focused(timeout=1)


@pytest.mark.slow
def test_the_tables_and_charts_show_the_apis_figures_and_the_csv_is_the_commands(
    console_hub: ConsoleHub, seeded: Seeded, page: Page
) -> None:
    period = {"since": seeded.since, "until": seeded.until}
    wire = _kpis(console_hub, _api_token(console_hub), **period)
    sign_in(page, console_hub, "dina", next_path="/console/reports")
    page.goto(_reports_url(console_hub, **period))

    rows = page.locator("table.report-per-alert tbody tr")
    expect(rows).to_have_count(3)
    assert [row.get_attribute("data-alert-id") for row in rows.all()] == [
        alert["alert_id"] for alert in wire["alerts"]
    ]
    for alert in wire["alerts"]:
        _assert_same(_row_figures(page, f'tr[data-alert-id="{alert["alert_id"]}"]'), alert)
    group_rows = page.locator("table.report-per-group tbody tr")
    expect(group_rows).to_have_count(len(wire["groups"]))
    for index, group in enumerate(wire["groups"]):
        expect(group_rows.nth(index).locator("th")).to_have_text(group["group"])
        row = f"table.report-per-group tbody tr:nth-child({index + 1})"
        _assert_same(_row_figures(page, row), {**group, **group["reachability"]})
    _assert_same(_total_figures(page), wire["totals"])
    assert _total_figures(page)["ack_p90_seconds"] == 100.0

    # Hostile text is text: the title and the group name, literally, with no element made.
    expect(page.locator(f'tr[data-alert-id="{seeded.hostile}"] th')).to_have_text(HOSTILE_TITLE)
    expect(page.locator("table.report-per-group tbody th").first).to_have_text(HOSTILE_GROUP)
    assert page.locator("main img, main script:not([type='application/json']), main b").count() == 0
    # Live figures only: the drill is in neither the tables nor the charts.
    expect(page.get_by_text("DRILL phones down")).to_have_count(0)

    # The charts exist (Chart.js loaded under the CSP), with the tables' labels and numbers.
    page.wait_for_function(
        "() => window.Chart && Chart.getChart('chart-timing') && Chart.getChart('chart-answers')",
        timeout=WAIT_MS,
    )
    timing = _chart(page, "chart-timing")
    assert timing["labels"] == [alert["title"] for alert in wire["alerts"]]
    assert timing["labels"][0] == HOSTILE_TITLE
    assert timing["data"] == [
        [alert[key] for alert in wire["alerts"]]
        for key in ("first_delivery_seconds", "ack_median_seconds", "ack_p90_seconds")
    ]
    answers = _chart(page, "chart-answers")
    assert answers["labels"] == [group["group"] for group in wire["groups"]]
    assert answers["data"] == [
        [group["acknowledged"] for group in wire["groups"]],
        [group["escalated"] for group in wire["groups"]],
        [group["unable"] for group in wire["groups"]],
        [group["targeted"] - group["answered"] for group in wire["groups"]],
    ]
    for canvas in ("#chart-timing", "#chart-answers"):
        assert page.locator(canvas).get_attribute("aria-label")
        assert page.locator(canvas).bounding_box()["height"] > 100  # type: ignore[index]
    assert_accessible(page, "reports page with data")

    # The CSV download is the command's CSV, byte for byte; the formula title is defused.
    with page.expect_download(timeout=WAIT_MS) as download_info:
        page.get_by_role("button", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename == (f"vigil-kpis-live-{seeded.since}-to-{seeded.until}.csv")
    downloaded = Path(download.path()).read_bytes()
    bounds = ["--since", seeded.since, "--until", seeded.until]
    data = ["--data", str(console_hub.hub.settings.data_dir)]
    command = subprocess.run(
        [sys.executable, "-m", "hub", "report", *bounds, "--format", "csv", *data],
        capture_output=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    assert command.returncode == 0, command.stderr
    assert downloaded == command.stdout
    titles = {
        row["alert_id"]: row["title"]
        for row in csv.DictReader(io.StringIO(downloaded.decode("utf-8"), newline=""))
    }
    assert titles[seeded.formula] == "'" + FORMULA_TITLE
    assert titles[seeded.hostile] == HOSTILE_TITLE
    assert seeded.drill not in titles


@pytest.mark.slow
def test_filters_work_by_keyboard_and_drills_are_reported_apart(
    console_hub: ConsoleHub, seeded: Seeded, page: Page
) -> None:
    token = _api_token(console_hub)
    sign_in(page, console_hub, "dina", next_path="/console/reports")
    page.goto(console_hub.url("/console/reports"))

    # Tab moves through the filters in reading order (through a date's day, month and year
    # first); arrows choose; Enter shows the report.
    page.get_by_label("Issued from", exact=True).fill(seeded.since)
    _tab_to(page, page.get_by_label("Issued before", exact=True))
    page.get_by_label("Issued before", exact=True).fill(seeded.until)
    _tab_to(page, page.get_by_label("Group", exact=True))
    _tab_to(page, page.get_by_label("Live", exact=True))
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Drills", exact=True)).to_be_checked()
    _tab_to(page, page.get_by_role("button", name="Show report"))
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "drill=drill" in url)

    # The drill report: the drill alone, marked in words; no live alert in it.
    expect(page.locator("table.report-per-alert tbody tr")).to_have_count(1)
    expect(page.locator(f'tr[data-alert-id="{seeded.drill}"] th')).to_have_text("DRILL phones down")
    expect(page.locator(".drill-banner")).to_contain_text("Drill figures only")
    expect(page.get_by_text(FORMULA_TITLE)).to_have_count(0)
    drills = _kpis(console_hub, token, since=seeded.since, until=seeded.until, drill="drill")
    _assert_same(_total_figures(page), drills["totals"])
    _assert_same(_row_figures(page, f'tr[data-alert-id="{seeded.drill}"]'), drills["alerts"][0])
    assert _total_figures(page)["acknowledged"] == 4

    # Enter in a date field submits too; the group filter narrows every figure to its members.
    page.get_by_label("Live", exact=True).check()
    page.get_by_label("Group", exact=True).select_option("South")
    page.get_by_label("Issued from", exact=True).press("Enter")
    page.wait_for_url(lambda url: "group=South" in url and "drill=live" in url)
    expect(page.locator("table.report-per-alert tbody tr")).to_have_count(2)
    expect(page.locator("table.report-per-group tbody tr")).to_have_count(1)
    south = _kpis(console_hub, token, since=seeded.since, until=seeded.until, group="south")
    _assert_same(_total_figures(page), south["totals"])
    for alert in south["alerts"]:
        _assert_same(_row_figures(page, f'tr[data-alert-id="{alert["alert_id"]}"]'), alert)


BAD_FILTERS: list[tuple[dict[str, str], str, str]] = [
    ({"since": "yesterday"}, "since", "since: 'yesterday' is not a date or time"),
    ({"since": "0000-01-01"}, "since", "is not a date or time"),
    ({"until": "10000-01-01"}, "until", "until: '10000-01-01' is not a date or time"),
    ({"since": "9999-12-31"}, "since", "since (9999-12-31T00:00:00.000Z) must be before until"),
    ({"since": "2027-01-02", "until": "2027-01-01"}, "until", "must be before until"),
    ({"since": "0001-01-01", "until": "0001-01-01"}, "until", "must be before until"),
    ({"since": "2" * 5000}, "since", "since: at most 64 characters"),
    ({"since": "<b>2027</b>\u202e"}, "since", "since: '<b>2027</b>\\u202e' is not a date"),
    ({"group": "Nowhere<script>\u202e"}, "group", "no group is named 'Nowhere<script>\\u202e'"),
    ({"group": "W" * 201}, "group", "group: at most 200 characters"),
    ({"drill": "both"}, "drill", "drill: choose live alerts or drills"),
]


@pytest.mark.slow
def test_bad_filters_are_named_beside_their_field_and_years_1_to_9999_are_answered(
    console_hub: ConsoleHub, seeded: Seeded, page: Page
) -> None:
    sign_in(page, console_hub, "dina", next_path="/console/reports")
    for params, field, expected in BAD_FILTERS:
        answer = page.goto(_reports_url(console_hub, **params))

        assert answer is not None and answer.status == 422, (params, answer)
        error = page.locator(f"#report-{field}-error")
        expect(error).to_contain_text(expected)
        assert "\u202e" not in error.inner_text()
        expect(page.locator("table")).to_have_count(0)
        expect(page.get_by_role("alert")).to_contain_text(expected)
        if field in ("since", "until", "group"):
            expect(page.locator(f"#report-{field}")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "reports page with an error")

    # The widest period the report can write holds every live alert; the last days of 9999 none.
    page.goto(_reports_url(console_hub, since="0001-01-01", until="9999-12-31"))
    expect(page.locator("table.report-per-alert tbody tr")).to_have_count(3)
    expect(page.locator("#report-period")).to_contain_text("0001-01-01 00:00:00 UTC")
    empty = page.goto(_reports_url(console_hub, since="9999-12-01", until="9999-12-31"))
    assert empty is not None and empty.status == 200
    expect(page.get_by_text("No live alerts were issued in this period.")).to_be_visible()
    expect(page.locator("table.report-per-alert, canvas")).to_have_count(0)
    assert_accessible(page, "reports page for an empty period")

    # The CSV of bad filters is no CSV: the page, with the error beside the field.
    http = signed_in_session(console_hub, "dora")
    refused = http.get(console_hub.url("/console/reports.csv?since=soon"), timeout=HTTP_TIMEOUT)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("text/html")
    assert "content-disposition" not in refused.headers
    assert "since: &#39;soon&#39; is not a date or time" in refused.text

    # Good filters: an attachment no cache keeps.
    download = http.get(
        console_hub.url("/console/reports.csv?since=" + seeded.since), timeout=HTTP_TIMEOUT
    )
    assert download.status_code == 200
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    assert download.headers["content-disposition"].startswith('attachment; filename="vigil-kpis-')
    assert download.headers["cache-control"] == "no-store"
    assert download.text.startswith("alert_id,title,")

    # Forty parallel copies of one request: the same page forty times, never a 500.
    url = _reports_url(console_hub, since=seeded.since, until=seeded.until)
    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(lambda _: http.get(url, timeout=HTTP_TIMEOUT), range(40)))
    assert {response.status_code for response in answers} == {200}
    assert len({response.text for response in answers}) == 1


@pytest.mark.slow
def test_survey_results_count_each_rating_and_show_comments_as_plain_text(
    console_hub: ConsoleHub, seeded: Seeded, page: Page
) -> None:
    sign_in(page, console_hub, "dina", next_path="/console/reports")
    page.goto(_reports_url(console_hub, since=seeded.since, until=seeded.until))
    surveys = page.locator("table.report-surveys tbody tr")
    # Resolved alerts only: the open one has no survey row.
    expect(surveys).to_have_count(2)
    expect(surveys.nth(0).locator("td").nth(0)).to_have_text("3")
    expect(page.locator("table.report-surveys")).not_to_contain_text("Lab results delayed")

    page.locator("table.report-surveys a").first.click()
    page.wait_for_url(f"**/console/reports/surveys/{seeded.hostile}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Survey answers: {HOSTILE_TITLE}")
    clarity = page.locator("table.survey-clarity tbody td")
    assert clarity.all_inner_texts() == ["0", "1", "0", "0", "2"]
    templates = page.locator("table.survey-templates tbody td")
    assert templates.all_inner_texts() == ["0", "0", "0", "2", "0", "1"]
    expect(page.locator("table.survey-clarity caption")).to_contain_text("mean 4.0")
    comments = page.locator(".survey-comment")
    expect(comments).to_have_count(2)
    # Both comments, literally; their order is the API's (checked below), which ties on time.
    assert sorted(comments.all_text_contents()) == sorted([HOSTILE_COMMENT, "Clear enough"])
    # The same answers as GET /v1/alerts/{id}/surveys gives.
    api = requests.get(
        console_hub.url(f"/v1/alerts/{seeded.hostile}/surveys"),
        headers=auth_headers(_api_token(console_hub)),
        timeout=HTTP_TIMEOUT,
    ).json()
    answers = api["answers"]
    assert clarity.all_inner_texts() == [
        str(sum(answer["clarity"] == rating for answer in answers)) for rating in range(1, 6)
    ]
    assert comments.all_text_contents() == [
        answer["comment"] for answer in answers if answer["comment"]
    ]
    expect(page.locator("table.survey-templates caption")).to_contain_text(
        f"mean {api['averages']['templates']}"
    )
    assert page.locator("main img, main b").count() == 0
    assert_accessible(page, "survey answers")

    # An open alert has no survey yet; an id the hub does not keep is a 404 page, not a 500.
    page.goto(console_hub.url(f"/console/reports/surveys/{seeded.open_alert}"))
    expect(page.locator("main")).to_contain_text("asked the survey when an alert is resolved")
    for missing in (str(uuid.uuid4()), "not-an-id", "%E2%80%AE<b>"):
        answer = page.goto(console_hub.url(f"/console/reports/surveys/{missing}"))
        assert answer is not None and answer.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("No such alert")


def test_an_agent_a_stranger_and_a_demoted_dispatcher_get_no_figures(
    console_hub: ConsoleHub, seeded: Seeded, page: Page
) -> None:
    # Not signed in: the sign-in page, for the page and the CSV alike.
    for path in (
        "/console/reports",
        "/console/reports.csv",
        f"/console/reports/surveys/{seeded.hostile}",
    ):
        answer = requests.get(console_hub.url(path), allow_redirects=False, timeout=HTTP_TIMEOUT)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/sign-in?next=")
        assert "alert_id" not in answer.text

    # An agent is refused at sign-in and never reaches the report.
    user = console_hub.users["avery"]
    page.goto(console_hub.url("/console/sign-in?next=/console/reports"))
    page.get_by_label("Username", exact=True).fill(user.username)
    page.get_by_label("Password", exact=True).fill(user.password)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code", exact=True).fill(next_code(user.totp_secret))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This account cannot use the console")
    page.goto(console_hub.url("/console/reports"))
    page.wait_for_url("**/console/sign-in**")
    expect(page.get_by_text(FORMULA_TITLE)).to_have_count(0)

    # A dispatcher made an agent while signed in: 403 on the next request, and no figures.
    http = signed_in_session(console_hub, "dora")
    assert http.get(console_hub.url("/console/reports"), timeout=HTTP_TIMEOUT).status_code == 200
    with console_hub.store.db.write() as conn:
        conn.execute("UPDATE users SET role = 'agent' WHERE username = 'dora'")
    for path in ("/console/reports", "/console/reports.csv"):
        refused = http.get(console_hub.url(path), timeout=HTTP_TIMEOUT)
        assert refused.status_code == 403
        assert "needs the dispatcher role" in refused.text
        assert "content-disposition" not in refused.headers
        assert FORMULA_TITLE not in refused.text


@pytest.fixture(scope="module")
def filter_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    clock = ManualClock(T0)
    store = Store.open(tmp_path_factory.mktemp("filters") / "hub.sqlite3", clock)
    store.groups.create("South", "region")
    yield store
    store.close()


@settings(max_examples=80, deadline=None)
@given(
    since=st.one_of(st.text(max_size=70), st.datetimes().map(str), st.dates().map(str)),
    until=st.one_of(st.text(max_size=70), st.dates().map(str)),
    group=st.one_of(st.just(""), st.just("south"), st.text(max_size=210)),
    drill=st.one_of(st.sampled_from(["live", "drill"]), st.text(max_size=10)),
)
def test_any_filters_give_a_report_or_errors_by_field_never_an_exception(
    filter_store: Store, since: str, until: str, group: str, drill: str
) -> None:
    outcome = read_report(filter_store, ReportFilters(since, until, group, drill), now=T0)

    assert (outcome.report is None) == bool(outcome.errors)
    assert set(outcome.errors) <= {"since", "until", "group", "drill"}
    for name, message in outcome.errors.items():
        assert name in message
        assert "\u202e" not in message


@settings(max_examples=200, deadline=None)
@given(
    share=st.integers(0, 10_000).map(lambda n: n / 10_000),
    seconds=st.floats(0, 1e12, allow_nan=False).map(lambda s: round(s, 3)),
    count=st.integers(0, 10**9),
)
def test_figures_read_back_as_the_jsons_values(share: float, seconds: float, count: int) -> None:
    assert _value(figure_text(share, "share")) == share
    assert _value(figure_text(seconds, "seconds")) == seconds
    assert _value(figure_text(count, "count")) == count
    assert figure_text(None, "seconds") == "—"
