"""GET /v1/reports/kpis on a real hub, and `vigil-hub report` on a real data dir."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.app import prepare_data_dir
from hub.cli import main
from hub.clock import ManualClock
from hub.server import EmbeddedHub
from hub.storage import Store
from tests.hub.report_scenario import T0, Scenario, fill
from tests.hubtools import HTTP_TIMEOUT, access_token, auth_headers, settings_for

COMMAND = [sys.executable, "-m", "hub"]
PROCESS_TIMEOUT = 60
SINCE = "2027-01-15T08:00:00Z"
UNTIL = "2027-01-15T10:46:40Z"


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def scenario(hub: EmbeddedHub, manual_clock: ManualClock) -> Scenario:
    return fill(hub.store, manual_clock)


@pytest.fixture
def dispatcher(hub: EmbeddedHub, manual_clock: ManualClock, scenario: Scenario) -> str:
    return access_token(hub.store, hub.url, "dora", "dispatcher", at=manual_clock.now())


def _kpis(hub: EmbeddedHub, token: str, **params: str) -> requests.Response:
    return requests.get(
        f"{hub.url}/v1/reports/kpis",
        params=params,
        headers=auth_headers(token),
        timeout=HTTP_TIMEOUT,
    )


def test_a_dispatcher_reads_the_kpis_and_an_agent_is_refused(
    hub: EmbeddedHub, manual_clock: ManualClock, scenario: Scenario, dispatcher: str
) -> None:
    response = _kpis(hub, dispatcher, since=SINCE, until=UNTIL)

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["period"] == {
        "since": "2027-01-15T08:00:00.000Z",
        "until": "2027-01-15T10:46:40.000Z",
    }
    assert [alert["alert_id"] for alert in report["alerts"]] == [scenario.everyone, scenario.west]
    totals = report["totals"]
    assert (totals["targeted"], totals["ack_median_seconds"], totals["ack_p90_seconds"]) == (
        7,
        40.0,
        100.0,
    )
    assert totals["reachability"] == {"agents": 4, "mean_share": 0.2125, "lowest_share": 0.05}
    drills = _kpis(hub, dispatcher, since=SINCE, until=UNTIL, drill="drill").json()
    assert [alert["alert_id"] for alert in drills["alerts"]] == [scenario.drill]

    agent = access_token(hub.store, hub.url, "agnes", "agent", at=manual_clock.now())
    refused = _kpis(hub, agent, since=SINCE, until=UNTIL)
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    assert "alerts" not in refused.json()
    anonymous = requests.get(f"{hub.url}/v1/reports/kpis", timeout=HTTP_TIMEOUT)
    assert anonymous.status_code == 401


HOSTILE_QUERIES: list[tuple[dict[str, str], str, str]] = [
    ({"since": UNTIL, "until": SINCE}, "invalid_request", "since"),
    ({"since": SINCE, "until": SINCE}, "invalid_request", "since"),
    ({"since": "yesterday"}, "invalid_request", "since"),
    ({"until": "10000-01-01"}, "invalid_request", "until"),
    ({"since": "<b>2027</b>\u202e"}, "invalid_request", "since"),
    ({"since": ""}, "invalid_request", "since"),
    ({"since": "2" * 5000}, "invalid_request", "since"),
    ({"group": "Nowhere"}, "unknown_group", "Nowhere"),
    ({"group": "West\u202e<script>"}, "unknown_group", "\\u202e"),
    ({"group": "W" * 201}, "invalid_request", "group"),
    ({"drill": "both"}, "invalid_request", "drill"),
]


def test_hostile_query_values_get_a_clear_422_never_a_500(
    hub: EmbeddedHub, dispatcher: str
) -> None:
    for params, error, named in HOSTILE_QUERIES:
        response = _kpis(hub, dispatcher, **params)

        assert response.status_code == 422, (params, response.text)
        body = response.json()
        assert body["error"] == error
        assert named in body["detail"], (params, body)
        assert "\u202e" not in body["detail"]
        assert "alerts" not in body


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    since=st.one_of(st.none(), st.text(max_size=70), st.datetimes().map(str)),
    until=st.one_of(st.none(), st.text(max_size=70), st.datetimes().map(lambda d: d.isoformat())),
    group=st.one_of(st.none(), st.text(max_size=210)),
)
def test_any_query_is_answered_or_refused_by_name_never_a_500(
    hub: EmbeddedHub, dispatcher: str, since: str | None, until: str | None, group: str | None
) -> None:
    params = {
        name: value
        for name, value in (("since", since), ("until", until), ("group", group))
        if value is not None
    }
    response = _kpis(hub, dispatcher, **params)

    assert response.status_code in (200, 422), (params, response.text)
    if response.status_code == 422:
        assert response.json()["error"] in ("invalid_request", "unknown_group")
    else:
        assert set(response.json()) == {"period", "drill", "group", "alerts", "groups", "totals"}


def test_years_1_and_9999_and_an_empty_period_are_answered(
    hub: EmbeddedHub, scenario: Scenario, dispatcher: str
) -> None:
    widest = _kpis(hub, dispatcher, since="0001-01-01", until="9999-12-31T23:59:59.999Z")
    empty = _kpis(hub, dispatcher, since="9999-01-01", until="9999-12-31")

    assert widest.status_code == 200, widest.text
    assert widest.json()["period"] == {
        "since": "0001-01-01T00:00:00.000Z",
        "until": "9999-12-31T23:59:59.999Z",
    }
    assert len(widest.json()["alerts"]) == 2
    assert empty.status_code == 200, empty.text
    assert empty.json()["alerts"] == []
    assert empty.json()["totals"]["answered_share"] is None


def test_40_parallel_copies_of_one_request_get_the_same_report(
    hub: EmbeddedHub, scenario: Scenario, dispatcher: str
) -> None:
    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(
            pool.map(lambda _: _kpis(hub, dispatcher, since=SINCE, until=UNTIL), range(40))
        )

    assert {response.status_code for response in answers} == {200}
    assert len({response.text for response in answers}) == 1


def _vigil_hub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> tuple[Path, Scenario]:
    data = tmp_path / "hub-data"
    clock = ManualClock(T0)
    settings = settings_for(data, clock=clock)
    # As `vigil-hub serve` makes it: owner-only, so the command has no modes to correct.
    prepare_data_dir(settings)
    store = Store.open(settings.database, clock)
    try:
        scenario = fill(store, clock)
    finally:
        store.close()
    return data, scenario


def test_the_report_command_prints_json_and_csv_of_a_real_data_dir(
    data_dir: tuple[Path, Scenario], capsys: pytest.CaptureFixture[str]
) -> None:
    data, scenario = data_dir
    period = ["--since", SINCE, "--until", UNTIL, "--data", str(data)]

    # The installed command once, as a process; the other formats through its main().
    as_json = _vigil_hub("report", *period, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert as_json.stderr == ""
    outputs = {}
    for name, extra in (
        ("csv", []),
        ("west", ["--group", "west", "--format", "json"]),
        ("drill", ["--drill", "--format", "json"]),
    ):
        assert main(["report", *period, *extra]) == 0
        captured = capsys.readouterr()
        assert captured.err == ""
        outputs[name] = captured.out

    report: dict[str, Any] = json.loads(as_json.stdout)
    assert [alert["alert_id"] for alert in report["alerts"]] == [scenario.everyone, scenario.west]
    assert report["totals"]["resolve_median_seconds"] == 3600.0
    rows = list(csv.DictReader(io.StringIO(outputs["csv"], newline="")))
    assert [row["alert_id"] for row in rows] == [scenario.everyone, scenario.west]
    assert rows[0]["ack_p90_seconds"] == "100.0"
    assert rows[1]["resolve_seconds"] == ""
    west = json.loads(outputs["west"])
    assert (west["group"], west["totals"]["targeted"]) == ("West", 4)
    drill = json.loads(outputs["drill"])
    assert [alert["alert_id"] for alert in drill["alerts"]] == [scenario.drill]


def test_the_report_command_refuses_bad_periods_and_groups_in_one_line(
    data_dir: tuple[Path, Scenario], capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(data_dir[0])
    late = _vigil_hub("report", "--since", UNTIL, "--until", SINCE, "--data", data)
    assert late.returncode == 1
    assert "--since (2027-01-15T10:46:40.000Z) must be before --until" in late.stderr
    assert len(late.stderr.strip().splitlines()) == 1
    assert late.stdout == ""

    for args, expected in (
        (["--group", "Nowhere\u202e"], "no group is named 'Nowhere\\u202e'"),
        (["--since", "soon"], "--since: 'soon' is not a date or time"),
        (["--until", "0001-01-01"], "must be before --until (0001-01-01T00:00:00.000Z)"),
    ):
        assert main(["report", *args, "--data", data]) == 1
        captured = capsys.readouterr()
        assert expected in captured.err
        assert len(captured.err.strip().splitlines()) == 1
        assert "Traceback" not in captured.err
        assert captured.out == ""


@pytest.mark.sqlite_only
def test_the_report_command_names_a_missing_hub_folder_and_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--data", str(tmp_path / "typo")]) == 1
    assert "no hub at" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
