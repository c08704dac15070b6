"""The console's audit trail page: filters, paging, plain-text rows and the export."""

from __future__ import annotations

import json
import re

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Page, expect

from hub import cli
from tests.console.conftest import (
    HOSTILE_HTML,
    ConsoleHub,
    assert_accessible,
    sign_in,
    signed_in_session,
)
from tests.hubtools import HTTP_TIMEOUT

PAGING_EVENTS = 60
PAGE_SIZE = 50
WIDE = "since=0001-01-01&until=9999-12-31T23:59:59Z"
# Year 1 and 9999, a negative and an overflowing number, and a digit int() refuses.
EDGE_VALUES = ["0001-01-01", "9999-12-31", "-1", "1e999", "\u00b2"]
WIDE_ARGS = ("--since", "0001-01-01", "--until", "9999-12-31T23:59:59Z")


def cli_audit(console_hub: ConsoleHub, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """What `vigil-hub audit ARGS` prints for this hub's data (run in this process: it is the
    same code as the installed command, without a second interpreter's start-up)."""
    capsys.readouterr()
    status = cli.main(["audit", *args, "--data", str(console_hub.hub.settings.data_dir)])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    return printed.out


def seed(console_hub: ConsoleHub) -> None:
    """Events to page through, and hostile text in every column an event shows."""
    for number in range(PAGING_EVENTS):
        console_hub.store.audit.record(
            "test.paging", actor="robot", subject=f"item-{number}", detail={"n": number}
        )
    console_hub.store.audit.record(
        "test.hostile",
        actor=HOSTILE_HTML,
        subject="\u202e" + HOSTILE_HTML,
        source='=HYPERLINK("http://example.invalid")',
        detail={"note": HOSTILE_HTML},
    )


@pytest.mark.slow
def test_audit_filters_page_and_show_hostile_text_as_text(
    console_hub: ConsoleHub, page: Page
) -> None:
    seed(console_hub)
    sign_in(page, console_hub, "ada")
    page.goto(console_hub.url("/console/admin/audit"))
    assert_accessible(page, "audit")

    # Keyboard: type a filter and press Enter.
    page.locator("#audit-event").focus()
    page.keyboard.type("test.paging")
    page.keyboard.press("Enter")
    expect(page.locator("#audit-table tbody tr")).to_have_count(PAGE_SIZE)
    page.get_by_role("link", name="Next page").click()
    expect(page.locator("#audit-table tbody tr")).to_have_count(PAGING_EVENTS - PAGE_SIZE)
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    expect(page.locator("#audit-event")).to_have_value("test.paging")
    page.get_by_role("link", name="First page").click()
    expect(page.locator("#audit-table tbody tr")).to_have_count(PAGE_SIZE)

    page.goto(console_hub.url("/console/admin/audit?event=test.hostile"))
    row = page.locator("#audit-table tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(3)).to_have_text(HOSTILE_HTML)
    expect(row.locator("td").nth(4)).to_have_text("\u202e" + HOSTILE_HTML)
    assert page.locator("img[src=x]").count() == 0
    expect(row.locator("td").nth(7)).to_have_text(json.dumps({"note": HOSTILE_HTML}))

    # By user: the actor or the subject.
    page.goto(console_hub.url("/console/admin/audit?user=robot&event=test.*"))
    expect(page.locator("#audit-table tbody tr")).to_have_count(PAGE_SIZE)

    # Year 1 and 9999 are dates like any other; a period that holds nothing says so.
    page.goto(console_hub.url(f"/console/admin/audit?event=test.paging&{WIDE}"))
    expect(page.locator("#audit-table tbody tr")).to_have_count(PAGE_SIZE)
    page.goto(console_hub.url("/console/admin/audit?until=0001-01-01"))
    expect(page.locator("#audit-table tbody")).to_have_text("No events match.")


@pytest.mark.slow
def test_bad_filters_are_named_and_never_a_500(console_hub: ConsoleHub, page: Page) -> None:
    sign_in(page, console_hub, "ada")
    bad = "/console/admin/audit?since=last+tuesday&until=10000-01-01"
    response = page.goto(console_hub.url(bad))
    assert response is not None and response.status == 422
    expect(page.locator("#since-error")).to_contain_text("is not a date or time")
    expect(page.locator("#until-error")).to_contain_text("is not a date or time")
    expect(page.locator("#audit-since")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#audit-since")).to_have_value("last tuesday")
    assert_accessible(page, "audit with bad filters")

    admin = signed_in_session(console_hub, "ada")
    for query in (
        "user=" + "u" * 65,
        "event=" + "e" * 65,
        "after=-1",
        "after=99999999999999999999999",
        "since=0001-01-01T00:00:00%2B01:00",
        "since=%E2%80%AE2026-01-01",
    ):
        answer = admin.get(console_hub.url(f"/console/admin/audit?{query}"), timeout=HTTP_TIMEOUT)
        assert answer.status_code in (200, 422), query
        for export in ("audit.csv", "audit.json"):
            url = console_hub.url(f"/console/admin/{export}?{query}")
            answer = admin.get(url, timeout=HTTP_TIMEOUT)
            assert answer.status_code in (200, 422), (export, query)


def test_export_equals_the_command_line_for_the_same_filter(
    console_hub: ConsoleHub, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(console_hub)
    admin = signed_in_session(console_hub, "ada")
    for query, args in (
        (f"event=test.*&{WIDE}", ("--event", "test.*", *WIDE_ARGS)),
        ("user=robot", ("--user", "robot")),
        ("event=nothing.matches", ("--event", "nothing.matches")),
    ):
        as_csv = admin.get(console_hub.url(f"/console/admin/audit.csv?{query}"), timeout=60)
        assert as_csv.status_code == 200
        assert as_csv.headers["content-type"].startswith("text/csv")
        assert as_csv.headers["content-disposition"] == 'attachment; filename="audit.csv"'
        assert as_csv.headers["cache-control"] == "no-store"
        assert as_csv.text == cli_audit(console_hub, capsys, *args)
        as_json = admin.get(console_hub.url(f"/console/admin/audit.json?{query}"), timeout=60)
        assert as_json.status_code == 200
        assert as_json.text == cli_audit(console_hub, capsys, "--format", "json", *args)
        json.loads(as_json.text)
    # Formula-safe like the command line: the hostile source starts with a quote.
    hostile = admin.get(console_hub.url("/console/admin/audit.csv?event=test.hostile"), timeout=60)
    assert re.search(r"'=HYPERLINK", hostile.text)


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    field=st.sampled_from(["since", "until", "user", "event", "after"]),
    value=st.text(max_size=80) | st.sampled_from(EDGE_VALUES),
)
def test_any_filter_value_is_a_page_or_a_named_refusal(
    signed_in_admin: tuple[ConsoleHub, requests.Session], field: str, value: str
) -> None:
    console_hub, admin = signed_in_admin
    for path in ("/console/admin/audit", "/console/admin/audit.json"):
        answer = admin.get(console_hub.url(path), params={field: value}, timeout=HTTP_TIMEOUT)
        assert answer.status_code in (200, 422), (path, field, value, answer.text[:200])
        if answer.status_code == 422:
            assert f'id="{field}-error"' in answer.text


@pytest.fixture
def signed_in_admin(console_hub: ConsoleHub) -> tuple[ConsoleHub, requests.Session]:
    """The hub and an admin's console session, signed in once for many examples."""
    return console_hub, signed_in_session(console_hub, "ada")
