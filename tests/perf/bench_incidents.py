"""12. The KPI report over a large history, and 13. an update fanned out to 1,000 open streams."""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from hub.clock import ManualClock, rfc3339
from hub.config import HubSettings
from hub.reports import build_report
from hub.storage import Store
from tests.hubtools import auth_headers
from tests.perf.context import BenchContext
from tests.perf.procs import Child, HubProcess, console_session, python_module
from tests.perf.stats import across_runs, percentile

AGENTS = 2_000
REGIONS = 4
TEAMS = 10
ALERTS = 200
ACKS = 100_000
RECEIPTS = 100_000
UPDATES_PER_ALERT = 3
SURVEYS = 20_000
STREAMS_PER_AGENT = 5
# Each run times the report this many times (the first one reads a cold page cache).
REPORTS_PER_RUN = 5
HTTP_TIMEOUT = 60.0

FANOUT_STREAMS = 1_000
UPDATES_PER_RUN = 10


def _unix(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def fill_history(data_dir: Path, seed: int = 7) -> tuple[float, float]:
    """A hub database with the benchmark's history, ending an hour ago; the (since, until) of it.

    Alerts, targets and updates go through the store; the bulk rows (receipts, answers, surveys,
    stream presence) are INSERTed in one transaction each, which is not what is measured.
    """
    rng = random.Random(seed)
    # About 23 days of alerts, all in the past.
    start = time.time() - 25 * 86_400
    clock = ManualClock(start)
    store = Store.open(HubSettings(data_dir=data_dir).database_path, clock)
    try:
        names = [f"a{n:04d}" for n in range(AGENTS)]
        with store.db.write() as conn:
            conn.executemany(
                """
                INSERT INTO users (username, display_name, role, password_hash, totp_secret,
                    created_at)
                VALUES (?, ?, 'agent', 'never used', 'never used', ?)
                """,
                [(name, name, start) for name in names],
            )
        for region in range(REGIONS):
            store.groups.create(f"region-{region}", "region")
            store.groups.add_members(f"region-{region}", names[region::REGIONS])
        for team in range(TEAMS):
            store.groups.create(f"team-{team}", "team")
            store.groups.add_members(f"team-{team}", names[team::TEAMS])
        targets: list[tuple[str, float, str]] = []
        for number in range(ALERTS):
            region = number % REGIONS
            alert, _ = store.alerts.publish(
                severity="critical",
                title=f"Incident {number}",
                body="Move today's visits to phone.",
                playbook_id=None,
                template_ids=[],
                requires_ack=True,
                expires_at=None,
                issued_by="dispatch1",
                audience=[f"region-{region}"],
            )
            targets += [(alert.id, alert.issued_at, name) for name in names[region::REGIONS]]
            for update in range(UPDATES_PER_ALERT):
                clock.advance(rng.uniform(300, 1800))
                store.alerts.change(alert.id, kind="update", text=f"Update {update}", by="d")
            if number % 2 == 0:
                clock.advance(rng.uniform(600, 3600))
                store.alerts.change(alert.id, kind="resolved", text="Fixed", by="d")
            clock.advance(7_000)
        receipts = [
            (alert_id, name, "laptop", "Laptop", round((issued + rng.expovariate(1 / 20)) * 1000))
            for alert_id, issued, name in targets[:RECEIPTS]
        ]
        answered = rng.sample(targets, ACKS * 9 // 10)
        acks = [
            (str(uuid.uuid4()), alert_id, name, rng.choice(_ACTIONS), issued, rng.uniform(5, 900))
            for alert_id, issued, name in answered + answered[: ACKS - len(answered)]
        ]
        surveyed = rng.sample(targets, SURVEYS)
        with store.db.write() as conn:
            conn.executemany(
                """
                INSERT OR IGNORE INTO alert_receipts (alert_id, username, device_id,
                    device_name, received_at_ms, shown_at_ms, reported_at_ms)
                VALUES (?, ?, ?, ?, ?, NULL, ?)
                """,
                [(*row, row[-1]) for row in receipts],
            )
            conn.executemany(
                """
                INSERT INTO alert_acks (ack_id, alert_id, username, action, note, acted_at_ms,
                    received_at_ms, device_id)
                VALUES (?, ?, ?, ?, NULL, ?, ?, 'laptop')
                """,
                [
                    (
                        ack_id,
                        alert_id,
                        name,
                        action,
                        round((issued + delay) * 1000),
                        round((issued + delay + 1) * 1000),
                    )
                    for ack_id, alert_id, name, action, issued, delay in acks
                ],
            )
            conn.executemany(
                """
                INSERT INTO survey_answers (survey_id, alert_id, username, clarity, templates,
                    comment, answered_at_ms, received_at_ms)
                VALUES (?, ?, ?, ?, ?, NULL, 0, 0)
                """,
                [
                    (str(uuid.uuid4()), alert_id, name, rng.randint(1, 5), rng.randint(1, 5))
                    for alert_id, _issued, name in surveyed
                ],
            )
            spans = []
            for name in names:
                opened = start
                for _ in range(STREAMS_PER_AGENT):
                    opened += rng.uniform(0, 4 * 86_400)
                    closed = opened + rng.uniform(600, 86_400)
                    spans.append((name, opened, closed, closed))
            conn.executemany(
                """
                INSERT INTO stream_presence (username, device_id, device_name, opened_at,
                    last_seen_at, closed_at)
                VALUES (?, 'laptop', 'Laptop', ?, ?, ?)
                """,
                spans,
            )
        return start, clock.now() + 1
    finally:
        store.close()


_ACTIONS = ("acknowledged", "acknowledged", "acknowledged", "escalated", "unable")


def report(ctx: BenchContext) -> dict[str, Any]:
    """The KPI report over 200 alerts, 100,000 answers and receipts: in the store, over HTTP and
    as the console's Reports page."""
    in_store: list[float] = []
    in_store_group: list[float] = []
    over_http: list[float] = []
    on_console: list[float] = []
    rows: dict[str, int] = {}
    for _ in range(ctx.runs):
        data = ctx.fresh_dir("report-hub")
        since, until = fill_history(data)
        store = Store.open(HubSettings(data_dir=data).database_path, ManualClock(until))
        try:
            with store.db.read() as conn:
                for table in ("alerts", "alert_targets", "alert_acks", "alert_receipts"):
                    rows[table] = int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            in_store += [_time_report(store, since, until, None) for _ in range(REPORTS_PER_RUN)]
            in_store_group += [
                _time_report(store, since, until, "team-3") for _ in range(REPORTS_PER_RUN)
            ]
        finally:
            store.close()
        hub = HubProcess(data, log=ctx.log("report-hub"))
        try:
            session = requests.Session()
            headers = auth_headers(hub.dispatcher_token())
            for _ in range(REPORTS_PER_RUN):
                started = time.perf_counter()
                response = session.get(
                    f"{hub.url}/v1/reports/kpis",
                    # A second either side: the query's times have millisecond resolution.
                    params={"since": rfc3339(since - 1), "until": rfc3339(until + 1)},
                    headers=headers,
                    timeout=HTTP_TIMEOUT,
                )
                over_http.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                if len(response.json()["alerts"]) != ALERTS:
                    raise RuntimeError("the report over HTTP did not hold every alert")
            console = console_session(
                hub.url, hub.info["dispatcher"], hub.info["dispatcher_secret"]
            )
            for _ in range(REPORTS_PER_RUN):
                started = time.perf_counter()
                response = console.get(
                    f"{hub.url}/console/reports",
                    params={"since": rfc3339(since - 1), "until": rfc3339(until + 1)},
                    timeout=HTTP_TIMEOUT,
                )
                # Read as the browser gets it: the whole page, tables and chart data.
                page = response.text
                on_console.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                if page.count("data-alert-id=") != ALERTS:
                    raise RuntimeError("the console's report page did not hold every alert")
        finally:
            hub.stop()
    return {
        "unit": "ms",
        "rows": rows,
        "reports_per_run": REPORTS_PER_RUN,
        "store_p50": percentile(in_store, 0.5),
        "store_max": max(in_store),
        "store_group_p50": percentile(in_store_group, 0.5),
        "http_p50": percentile(over_http, 0.5),
        "http_max": max(over_http),
        "console_p50": percentile(on_console, 0.5),
        "console_max": max(on_console),
        "samples": {
            "store": in_store,
            "store_group": in_store_group,
            "http": over_http,
            "console": on_console,
        },
    }


def _time_report(store: Store, since: float, until: float, group: str | None) -> float:
    started = time.perf_counter()
    wire = build_report(
        store, since=since, until=until, drill=False, group=group, now=until
    ).to_wire()
    elapsed = (time.perf_counter() - started) * 1000
    if len(wire["alerts"]) == 0:
        raise RuntimeError("the report found no alerts")
    return elapsed


def update_fanout(ctx: BenchContext) -> dict[str, Any]:
    """1,000 open streams; an update posted to an open alert, timed until all hold it."""
    hub = HubProcess(
        ctx.fresh_dir("update-hub"),
        "--streams-per-user",
        str(FANOUT_STREAMS),
        log=ctx.log("update-hub"),
    )
    session = requests.Session()
    token = hub.agent_token()
    port = hub.url.rsplit(":", 1)[1]
    readers = [
        Child(
            python_module(
                "tests.perf.sse_readers", "--port", port, "--count", str(FANOUT_STREAMS // 2)
            ),
            env={"VIGIL_BENCH_TOKEN": token},
            log=ctx.log("update-readers"),
        )
        for _ in range(2)
    ]
    p50s: list[float] = []
    p99s: list[float] = []
    alls: list[float] = []
    missed = 0
    posted_via = set()
    try:
        opened = [reader.receive(timeout=300) for reader in readers]
        connected = sum(o["connected"] for o in opened)
        failed = sum(o["failed"] for o in opened)
        for _ in range(ctx.runs):
            for reader in readers:
                reader.send("arm")
            for reader in readers:
                reader.receive()
            alert = hub.publish(session, title="Video visits down (update fan-out)")
            for reader in readers:
                reader.receive(timeout=60)
            for number in range(UPDATES_PER_RUN):
                for reader in readers:
                    reader.send("arm")
                for reader in readers:
                    reader.receive()
                updated, via = _post_update(hub, session, alert["id"], f"Update {number}")
                posted_via.add(via)
                at = _unix(updated["updates"][-1]["at"])
                times: list[float] = []
                for reader in readers:
                    times += reader.receive(timeout=60)["times"]
                missed += connected - len(times)
                latencies = [(t - at) * 1000 for t in times]
                p50s.append(percentile(latencies, 0.5))
                p99s.append(percentile(latencies, 0.99))
                alls.append(max(latencies))
    finally:
        for reader in readers:
            reader.stop()
        hub.stop()
    return {
        "unit": "ms",
        "streams": FANOUT_STREAMS,
        "connected": connected,
        "failed": failed,
        "updates": len(p99s),
        "p50": across_runs(p50s),
        "p99": across_runs(p99s),
        "all_reached": across_runs(alls),
        "missed": missed,
        "posted_via": sorted(posted_via),
    }


def _post_update(
    hub: HubProcess, session: requests.Session, alert_id: str, text: str
) -> tuple[dict[str, Any], str]:
    """Post an update over HTTP; where the hub has no such endpoint yet, through its store."""
    response = session.post(
        f"{hub.url}/v1/alerts/{alert_id}/updates",
        json={"text": text},
        headers=auth_headers(hub.dispatcher_token()),
        timeout=HTTP_TIMEOUT,
    )
    if response.status_code == 201:
        updated: dict[str, Any] = response.json()
        return updated, "http"
    if response.status_code == 404 and response.json().get("error") == "not_found":
        answer: dict[str, Any] = hub.child.ask(f"update {alert_id} {text}")
        return answer["alert"], "store"
    response.raise_for_status()
    raise RuntimeError(f"the update was answered {response.status_code}: {response.text[:200]}")
