"""The KPI report computed from a real SQLite store: every figure against hand-worked values,
drills never in live figures, empty and hostile periods, and spreadsheet-safe CSV."""

from __future__ import annotations

import csv
import io
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.clock import ManualClock
from hub.reports import ALERT_COLUMNS, InvalidReport, build_report
from hub.storage import Store
from tests.hub.report_scenario import (
    PERIOD_END,
    T0,
    Scenario,
    add_user,
    answer,
    fill,
    publish,
    receipt,
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[Store]:
    opened = Store.open(tmp_path / "hub.sqlite3", clock)
    yield opened
    opened.close()


@pytest.fixture
def scenario(store: Store, clock: ManualClock) -> Scenario:
    return fill(store, clock)


def _report(store: Store, **options: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "since": T0,
        "until": PERIOD_END,
        "drill": False,
        "group": None,
        "now": PERIOD_END,
        **options,
    }
    wire: dict[str, Any] = build_report(store, **arguments).to_wire()
    return wire


def _by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {alert["alert_id"]: alert for alert in report["alerts"]}


def test_every_figure_of_each_live_alert_matches_the_hand_worked_values(
    store: Store, scenario: Scenario
) -> None:
    report = _report(store)
    alerts = _by_id(report)

    assert report["period"] == {
        "since": "2027-01-15T08:00:00.000Z",
        "until": "2027-01-15T10:46:40.000Z",
    }
    assert (report["drill"], report["group"]) == (False, None)
    assert list(alerts) == [scenario.everyone, scenario.west]
    assert scenario.drill not in alerts
    assert alerts[scenario.everyone] == {
        "alert_id": scenario.everyone,
        "title": "Video visits down",
        "severity": "critical",
        "status": "resolved",
        "issued_at": "2027-01-15T08:00:00.000Z",
        "closed_at": "2027-01-15T09:00:00.000Z",
        "targeted": 5,
        "delivered": 4,
        "first_delivery_seconds": 0.0,
        "delivered_within_1m_share": 0.4,
        "answered": 3,
        "answered_share": 0.6,
        "acknowledged": 1,
        "acknowledged_share": 0.2,
        "escalated": 1,
        "unable": 1,
        "ack_median_seconds": 40.0,
        "ack_p90_seconds": 100.0,
        "resolve_seconds": 3600.0,
        "updates": 2,
        "update_interval_mean_seconds": 750.0,
        "update_interval_max_seconds": 900.0,
        "survey_count": 2,
        "survey_clarity_mean": 3.0,
        "survey_templates_mean": 5.0,
    }
    west = alerts[scenario.west]
    assert (west["status"], west["closed_at"]) == ("retracted", "2027-01-15T10:01:40.000Z")
    assert (west["targeted"], west["delivered"], west["first_delivery_seconds"]) == (2, 1, 30.0)
    assert west["delivered_within_1m_share"] == 0.5
    assert (west["answered"], west["answered_share"], west["ack_median_seconds"]) == (0, 0.0, None)
    # A retracted alert was never resolved: it has no time to resolve.
    assert west["resolve_seconds"] is None
    assert (west["updates"], west["update_interval_mean_seconds"]) == (0, None)


def test_totals_pool_the_live_alerts_and_list_retracted_ones_apart(
    store: Store, scenario: Scenario
) -> None:
    totals = _report(store)["totals"]

    assert totals == {
        "alerts": 2,
        "open": 0,
        "resolved": 1,
        "targeted": 7,
        "delivered": 5,
        # The median over the alerts of each one's first delivery: [0, 30] at rank 1.
        "first_delivery_seconds": 0.0,
        "delivered_within_1m_share": round(3 / 7, 4),
        "answered": 3,
        "answered_share": round(3 / 7, 4),
        "acknowledged": 1,
        "acknowledged_share": round(1 / 7, 4),
        "escalated": 1,
        "unable": 1,
        "ack_median_seconds": 40.0,
        "ack_p90_seconds": 100.0,
        "survey_count": 2,
        "survey_clarity_mean": 3.0,
        "survey_templates_mean": 5.0,
        "resolve_median_seconds": 3600.0,
        "resolve_max_seconds": 3600.0,
        "updates": 2,
        "update_interval_mean_seconds": 750.0,
        "update_interval_max_seconds": 900.0,
        "reachability": {"agents": 4, "mean_share": 0.2125, "lowest_share": 0.05},
        "retracted": [
            {
                "alert_id": scenario.west,
                "title": "West phones down",
                "issued_at": "2027-01-15T10:00:00.000Z",
                "retracted_at": "2027-01-15T10:01:40.000Z",
            }
        ],
    }


def test_groups_count_their_members_targets_and_reachability(
    store: Store, scenario: Scenario
) -> None:
    groups = {group["group"]: group for group in _report(store)["groups"]}

    assert list(groups) == ["East", "West"]
    east, west = groups["East"], groups["West"]
    assert {key: east[key] for key in ("alerts", "targeted", "delivered", "answered")} == {
        "alerts": 1,
        "targeted": 2,
        "delivered": 1,
        "answered": 1,
    }
    assert (east["first_delivery_seconds"], east["delivered_within_1m_share"]) == (0.0, 0.5)
    assert (east["unable"], east["ack_median_seconds"], east["ack_p90_seconds"]) == (1, 40.0, 40.0)
    assert (east["survey_count"], east["survey_clarity_mean"]) == (0, None)
    assert east["reachability"] == {"agents": 2, "mean_share": 0.075, "lowest_share": 0.05}

    assert (west["alerts"], west["targeted"], west["delivered"]) == (2, 4, 3)
    # Each alert's first delivery to West: A1 3 s (ana), A2 30 s; the median at rank 1.
    assert (west["first_delivery_seconds"], west["delivered_within_1m_share"]) == (3.0, 0.5)
    assert (west["answered"], west["answered_share"], west["acknowledged_share"]) == (2, 0.5, 0.25)
    assert (west["ack_median_seconds"], west["ack_p90_seconds"]) == (20.0, 100.0)
    assert (west["survey_count"], west["survey_templates_mean"]) == (2, 5.0)
    assert west["reachability"] == {"agents": 2, "mean_share": 0.35, "lowest_share": 0.1}


def test_one_group_in_any_letter_case_restricts_every_figure_to_its_members(
    store: Store, scenario: Scenario
) -> None:
    report = _report(store, group="wEST")

    assert report["group"] == "West"
    assert [group["group"] for group in report["groups"]] == ["West"]
    alerts = _by_id(report)
    assert list(alerts) == [scenario.everyone, scenario.west]
    # Only ana and ben of A1's five targets; cy's and dee's answers are not West's.
    assert (alerts[scenario.everyone]["targeted"], alerts[scenario.everyone]["unable"]) == (2, 0)
    totals = report["totals"]
    assert (totals["targeted"], totals["answered"], totals["ack_median_seconds"]) == (4, 2, 20.0)
    assert totals["reachability"] == {"agents": 2, "mean_share": 0.35, "lowest_share": 0.1}
    # East's alerts would be left out entirely: A2 never targeted East.
    east = _by_id(_report(store, group="East"))
    assert list(east) == [scenario.everyone]


def test_drills_are_reported_alone_and_never_mixed_into_live_figures(
    store: Store, scenario: Scenario
) -> None:
    drill = _report(store, drill=True)
    live = _report(store)

    assert drill["drill"] is True
    assert [alert["alert_id"] for alert in drill["alerts"]] == [scenario.drill]
    # All four enabled agents answered the drill in 5 s; old was disabled before it.
    assert drill["totals"]["targeted"] == 4
    assert (drill["totals"]["answered_share"], drill["totals"]["ack_median_seconds"]) == (1.0, 5.0)
    assert scenario.drill not in _by_id(live)
    assert live["totals"]["targeted"] == 7
    assert live["totals"]["ack_median_seconds"] == 40.0


def test_an_empty_period_gives_zeros_and_nulls_not_an_error(
    store: Store, scenario: Scenario
) -> None:
    report = _report(store, since=PERIOD_END + 1, until=PERIOD_END + 3600)

    assert report["alerts"] == []
    totals = report["totals"]
    assert (totals["alerts"], totals["targeted"], totals["answered"], totals["updates"]) == (
        0,
        0,
        0,
        0,
    )
    for key in ("answered_share", "ack_median_seconds", "resolve_median_seconds"):
        assert totals[key] is None
    assert totals["retracted"] == []
    # The whole period is after now: nobody's reachability can be measured yet.
    assert totals["reachability"] == {"agents": 0, "mean_share": None, "lowest_share": None}
    assert [group["targeted"] for group in report["groups"]] == [0, 0]


def test_years_1_to_9999_cover_everything_and_write_back_as_four_digit_years(
    store: Store, scenario: Scenario
) -> None:
    year_1 = -62_135_596_800.0
    year_9999_end = 253_402_300_799.0
    report = _report(store, since=year_1, until=year_9999_end)

    assert report["period"] == {
        "since": "0001-01-01T00:00:00.000Z",
        "until": "9999-12-31T23:59:59.000Z",
    }
    assert [alert["alert_id"] for alert in report["alerts"]] == [scenario.everyone, scenario.west]
    reach = report["totals"]["reachability"]
    # Reachability runs to now: a few hours of streams over two thousand years is almost none.
    assert reach["agents"] == 4
    assert 0 <= reach["mean_share"] < 1e-6


def test_since_not_before_until_and_an_unknown_group_are_clear_errors(store: Store) -> None:
    with pytest.raises(InvalidReport) as late:
        _report(store, since=PERIOD_END, until=T0)
    assert late.value.error == "invalid_request"
    assert "since (2027-01-15T10:46:40.000Z) must be before until" in str(late.value)
    with pytest.raises(InvalidReport):
        _report(store, since=T0, until=T0)

    hostile = "<b>West</b>\u202e" + "x" * 500
    with pytest.raises(InvalidReport) as unknown:
        _report(store, group=hostile)
    assert unknown.value.error == "unknown_group"
    # The name is quoted with its control character escaped, and cut.
    assert "\\u202e" in str(unknown.value)
    assert "\u202e" not in str(unknown.value)
    assert len(str(unknown.value)) < 200


def test_csv_has_one_row_per_alert_with_every_formula_start_escaped(
    store: Store, clock: ManualClock
) -> None:
    titles = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tTab", "\rReturn", "Plain"]
    for title in titles:
        publish(store, title=title)
        clock.advance(1)
    out = io.StringIO()
    build_report(store, since=T0, until=T0 + 60, drill=False, group=None, now=T0 + 60).write_csv(
        out
    )

    text = out.getvalue()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    # Each record ends in CRLF; the CR inside a title is quoted, so it cannot end a row.
    assert text.count("\r\n") == len(titles) + 1
    assert '"\'\rReturn"' in text
    assert tuple(rows[0]) == ALERT_COLUMNS
    shown = [row[ALERT_COLUMNS.index("title")] for row in rows[1:]]
    assert shown == ["'" + title for title in titles[:-1]] + ["Plain"]
    # No cell of any row starts a formula.
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)
    empty = [row[ALERT_COLUMNS.index("ack_median_seconds")] for row in rows[1:]]
    assert empty == [""] * len(titles)


def _nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=86_400_000), min_size=1, max_size=30))
def test_the_sql_median_and_p90_are_the_nearest_rank_of_the_first_answers(
    delays_ms: list[int],
) -> None:
    clock = ManualClock(T0)
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(Path(folder) / "hub.sqlite3", clock)
        try:
            names = [f"agent{n}" for n in range(len(delays_ms))]
            for name in names:
                add_user(store, name)
            alert_id = publish(store)
            clock.advance(86_401)
            for name, delay in zip(names, delays_ms, strict=True):
                receipt(store, alert_id, name, "d1", T0 + delay / 1000)
                answer(store, name, alert_id, "acknowledged", T0 + delay / 1000)
            [alert] = build_report(
                store, since=T0, until=T0 + 1, drill=False, group=None, now=clock.now()
            ).to_wire()["alerts"]
        finally:
            store.close()
    seconds = [delay / 1000 for delay in delays_ms]
    assert alert["ack_median_seconds"] == round(_nearest_rank(seconds, 0.5), 3)
    assert alert["ack_p90_seconds"] == round(_nearest_rank(seconds, 0.9), 3)
    assert alert["first_delivery_seconds"] == round(min(seconds), 3)
    within = sum(second <= 60 for second in seconds)
    assert alert["delivered_within_1m_share"] == round(within / len(seconds), 4)


def test_group_percentiles_match_members_in_ascii_case_only_as_the_counts_do(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    store = Store.open(tmp_path / "hub.sqlite3", clock)
    try:
        for name in ("ana", "Émile", "émile"):
            add_user(store, name)
        store.groups.create("West", "region")
        store.groups.add_members("West", ["ana", "Émile"])
        alert_id = publish(store)
        clock.advance(2_000)
        # A target row in another ASCII case, as an older hub or another tool might have stored.
        with store.db.write() as conn:
            conn.execute("UPDATE alert_targets SET username = 'ANA' WHERE username = 'ana'")
        answer(store, "ana", alert_id, "acknowledged", T0 + 10)
        answer(store, "Émile", alert_id, "acknowledged", T0 + 20)
        # émile is not West's: outside ASCII, letter case makes another user.
        answer(store, "émile", alert_id, "acknowledged", T0 + 1_000)
        report = build_report(
            store, since=T0, until=T0 + 1, drill=False, group=None, now=clock.now()
        ).to_wire()
        only_west = build_report(
            store, since=T0, until=T0 + 1, drill=False, group="west", now=clock.now()
        ).to_wire()
    finally:
        store.close()
    [west] = report["groups"]
    for figures in (west, only_west["totals"], only_west["groups"][0]):
        assert (figures["answered"], figures["targeted"]) == (2, 2)
        # Nearest rank over [10, 20]: the median at rank 1, the p90 at rank 2; émile's 1,000 s
        # is in neither.
        assert (figures["ack_median_seconds"], figures["ack_p90_seconds"]) == (10.0, 20.0)
    assert (report["totals"]["ack_median_seconds"], report["totals"]["ack_p90_seconds"]) == (
        20.0,
        1000.0,
    )


def test_targets_sharing_a_set_of_groups_count_once_per_group_whatever_the_names(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    store = Store.open(tmp_path / "hub.sqlite3", clock)
    lookalike = "East,West"  # ben's two groups, were sets joined with commas
    try:
        for name in ("ana", "ben", "cy", "dee"):
            add_user(store, name)
        for group in ("West", "East", lookalike):
            store.groups.create(group, "team")
        store.groups.add_members("West", ["ana", "ben"])
        store.groups.add_members("East", ["ben"])
        store.groups.add_members(lookalike, ["dee"])
        alert_id = publish(store)
        clock.advance(100)
        for delay, name in enumerate(("ana", "ben", "cy", "dee"), start=1):
            answer(store, name, alert_id, "acknowledged", T0 + 10 * delay)
        report = build_report(
            store, since=T0, until=T0 + 1, drill=False, group=None, now=clock.now()
        ).to_wire()
    finally:
        store.close()
    groups = {group["group"]: group for group in report["groups"]}
    figures = {
        name: (group["alerts"], group["targeted"], group["answered"], group["ack_median_seconds"])
        for name, group in groups.items()
    }
    # cy is in no group: counted in the alert and the totals only.
    assert figures == {"East": (1, 1, 1, 20.0), "West": (1, 2, 2, 10.0), lookalike: (1, 1, 1, 40.0)}
    assert (report["totals"]["targeted"], report["totals"]["answered"]) == (4, 4)
