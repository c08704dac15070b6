"""1. Cold start to tray icon shown, and 2. idle memory: the app against a bare PySide6 tray
script, both on a private X display with a real system tray."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import requests

from tests.perf.context import BenchContext
from tests.perf.display import TrayDisplay
from tests.perf.procs import REPO, AppDriver, Child, HubProcess, rss_kib, wait_for
from tests.perf.stats import across_runs

MARKS = ("tray_shown", "event_loop")
START_ROUNDS_PER_RUN = 3
# The app does not read stdin, so it is terminated after this; the bare script quits at once.
STOP_GRACE = 1.0
START_TIMEOUT = 30.0
SETTLE_SECONDS = 2.0
ALERT_BATCH = 250
ALERT_BATCHES = 12
# Growth is reported per 1,000 alerts. Memory first grows while SQLite's page caches fill up to
# their bound and the allocator settles to the bursts' peaks; the leak check is the last window.
# Each window's growth is the least-squares slope over its readings (one every 250 alerts),
# which single readings' noise (work still settling, the garbage collector) moves far less than
# the difference of two readings.
GROWTH_WINDOWS = ((ALERT_BATCH, 1000), (1000, ALERT_BATCH * ALERT_BATCHES))
SEARCHES = ("video", "outage phone", "pharmacy refill", "crisis 988", "ehr downtime", "breach")


def _marks(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    found = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition(" ")
        found[name] = float(value)
    return found


def _timed_start(
    args: list[str], env: dict[str, str], marks: Path, log: Path
) -> tuple[Child, dict[str, float]]:
    """Start a process and wait for its start-up marks; ms from just before the spawn."""
    marks.unlink(missing_ok=True)
    started = time.monotonic()
    child = Child(args, env={**env, "VIGIL_PERF_MARKS": str(marks)}, log=log)
    wait_for(lambda: set(MARKS) <= set(_marks(marks)), START_TIMEOUT, f"start-up marks of {args}")
    return child, {name: (at - started) * 1000 for name, at in _marks(marks).items()}


# A checkout or an installation keeps its modules' bytecode (__pycache__) after the first run.
# Without this, a machine that sets PYTHONDONTWRITEBYTECODE would have the app compile every
# client module on every start; the first (uncounted) start writes the caches. An empty value
# switches the variable off.
BYTECODE_ENV = {"PYTHONDONTWRITEBYTECODE": ""}


def _app_env(ctx: BenchContext, hub_url: str) -> dict[str, str]:
    """Fresh config and data folders, with the hub address set (as IT policy would)."""
    config, data = ctx.fresh_dir("app-config"), ctx.fresh_dir("app-data")
    (config / "settings.json").write_text(json.dumps({"hub_url": hub_url, "sounds": False}))
    return {"VIGIL_CONFIG_DIR": str(config), "VIGIL_DATA_DIR": str(data)}


def cold_start(ctx: BenchContext, frozen: Path | None) -> dict[str, Any]:
    """Process start to tray shown and to the first event-loop turn, app vs bare script."""
    display = TrayDisplay()
    hub = HubProcess(ctx.fresh_dir("hub"), "--demo", log=ctx.log("startup-hub"))
    marks = ctx.work_dir / "marks.txt"
    variants: dict[str, list[str]] = {
        "bare": [sys.executable, str(REPO / "tests/perf/bare_tray.py")],
        "source": [sys.executable, "-m", "client.app"],
    }
    if frozen is not None and frozen.exists():
        variants["frozen"] = [str(frozen)]
    samples: dict[str, dict[str, list[float]]] = {
        name: {mark: [] for mark in MARKS} for name in variants
    }
    try:
        # The first round warms the page cache and is not counted: every counted start is "cold"
        # for the process, warm for the disk, as an agent's second start of the day would be.
        for round_number in range(1 + START_ROUNDS_PER_RUN * ctx.runs):
            for name, args in variants.items():
                env = {**display.env, **BYTECODE_ENV, **_app_env(ctx, hub.url)}
                child, found = _timed_start(args, env, marks, ctx.log(f"start-{name}"))
                child.stop(grace=STOP_GRACE)
                if round_number:
                    for mark in MARKS:
                        samples[name][mark].append(found[mark])
    finally:
        hub.stop()
        display.stop()
    result: dict[str, Any] = {
        "display": "Xvfb + openbox + trayer (real QSystemTrayIcon on X11)",
        # Relative to the checkout when it lies inside it: the report names no machine's paths.
        "frozen_build": _shown_path(frozen)
        if frozen is not None and "frozen" in variants
        else None,
    }
    for name in variants:
        result[name] = {mark: across_runs(samples[name][mark]) for mark in MARKS}
    bare = result["bare"]["tray_shown"]["median"]
    for name in variants:
        if name != "bare":
            result[f"{name}_ratio"] = result[name]["tray_shown"]["median"] / bare
    return result


def idle_memory(ctx: BenchContext) -> dict[str, Any]:
    """RSS of the signed-in app at idle, after library searches, and across 1,000 alerts.

    Each run has a hub of its own, so a new client does not catch up on earlier runs' alerts.
    """
    display = TrayDisplay()
    stages: dict[str, list[float]] = {}
    # Per stage, MiB: "malloc" what malloc has handed out (every arena), "sqlite" SQLite's share
    # of it, "python" Python's small objects (mmap-backed, outside malloc).
    heap: dict[str, dict[str, list[float]]] = {"malloc": {}, "sqlite": {}, "python": {}}
    crashes: list[dict[str, Any]] = []
    try:
        for _ in range(ctx.runs):
            hub = HubProcess(ctx.fresh_dir("hub"), "--demo", log=ctx.log("memory-hub"))
            try:
                crash = _memory_run(ctx, display, hub, stages, heap)
            finally:
                hub.stop()
            if crash is not None:
                crashes.append(crash)
    finally:
        display.stop()
    result: dict[str, Any] = {
        "unit": "MiB",
        "display": "Xvfb + openbox + trayer",
        "stages": {stage: across_runs(values) for stage, values in stages.items()},
        "heap": {
            name: {stage: across_runs(values) for stage, values in by_stage.items()}
            for name, by_stage in heap.items()
        },
    }
    bare = result["stages"]["bare"]["median"]
    result["idle_ratio"] = result["stages"]["idle"]["median"] / bare
    result["crashes"] = crashes
    windows = [_growth(stages, heap, start, end) for start, end in GROWTH_WINDOWS]
    result["growth"] = [window for window in windows if window is not None]
    return result


def _growth(
    stages: dict[str, list[float]],
    heap: dict[str, dict[str, list[float]]],
    start: int,
    end: int,
) -> dict[str, Any] | None:
    """Growth per 1,000 alerts between two alert counts: RSS, SQLite's page caches, and the
    live heap besides."""
    counts = range(start, end + 1, ALERT_BATCH)
    names = [f"after_{count}_alerts" for count in counts]
    runs = len(stages.get(names[0], []))
    if runs == 0 or any(len(stages.get(name, [])) != runs for name in names):
        return None

    def live(name: str, run: int) -> float:
        # Live heap outside SQLite: what a leak in Vigil, Qt or a library would add to.
        malloc, sqlite, python = (heap[kind][name][run] for kind in ("malloc", "sqlite", "python"))
        return malloc - sqlite + python

    def per_thousand(reading: Callable[[str, int], float]) -> list[float]:
        return [
            statistics.linear_regression(counts, [reading(name, run) for name in names]).slope
            * 1000
            for run in range(runs)
        ]

    live_heap = per_thousand(live)
    return {
        "from_alerts": start,
        "to_alerts": end,
        "rss": across_runs(per_thousand(lambda name, run: stages[name][run])),
        "sqlite": across_runs(per_thousand(lambda name, run: heap["sqlite"][name][run])),
        "live_heap": across_runs(live_heap),
        "live_heap_kib_per_alert": statistics.median(live_heap) * 1024 / 1000,
    }


def _memory_run(
    ctx: BenchContext,
    display: TrayDisplay,
    hub: HubProcess,
    stages: dict[str, list[float]],
    heap: dict[str, dict[str, list[float]]],
) -> dict[str, Any] | None:
    """One run: the bare script's RSS, then the app's at each stage (and SQLite's share of it);
    how the app died, if so."""

    def note(stage: str, child: Child) -> None:
        stages.setdefault(stage, []).append(rss_kib(child.pid) / 1024)
        if isinstance(child, AppDriver):
            found = child.ask({"cmd": "heap"})
            heap["malloc"].setdefault(stage, []).append(found["malloc_in_use_bytes"] / 2**20)
            heap["sqlite"].setdefault(stage, []).append(found["sqlite_bytes"] / 2**20)
            heap["python"].setdefault(stage, []).append(found["python_bytes"] / 2**20)

    bare, _found = _timed_start(
        [sys.executable, str(REPO / "tests/perf/bare_tray.py")],
        {**display.env, **BYTECODE_ENV},
        ctx.work_dir / "marks.txt",
        ctx.log("memory-bare"),
    )
    time.sleep(SETTLE_SECONDS)
    note("bare", bare)
    bare.stop()
    app = AppDriver(
        hub,
        ctx.fresh_dir("memory-app"),
        tray=True,
        env={**display.env, **BYTECODE_ENV},
        log=ctx.log("memory-app"),
    )
    try:
        app.wait_ready(timeout=300)
        time.sleep(SETTLE_SECONDS)
        app.ask({"cmd": "settle"})
        note("idle", app)
        app.ask({"cmd": "open_library"})
        for text in SEARCHES:
            app.ask({"cmd": "type", "text": text})
        app.ask({"cmd": "close_library"})
        app.ask({"cmd": "settle"})
        note("after_library", app)
        return _alerts_stage(app, hub, requests.Session(), note)
    finally:
        app.stop()


def _alerts_stage(
    app: AppDriver, hub: HubProcess, session: requests.Session, note: Callable[[str, Child], None]
) -> dict[str, Any] | None:
    """Publish ALERT_BATCHES bursts, noting RSS after each; how the app ended if it died."""
    received = 0
    for batch in range(1, ALERT_BATCHES + 1):
        for n in range(ALERT_BATCH):
            hub.publish(session, title=f"Memory check alert {batch}.{n}")
        try:
            wait_for(partial(_received_at_least, app, received + ALERT_BATCH), 120, "alerts")
            # Acknowledged, as agents do: what stays is the history on disk, so any growth in
            # memory across batches is a leak, not alerts kept for their reminders.
            app.ask({"cmd": "ack_all"})
            app.ask({"cmd": "settle"})
        except (RuntimeError, OSError):
            app.proc.wait(10)
            return {
                "alerts_published": received + ALERT_BATCH,
                "exit_status": app.proc.returncode,
                "error": _fatal_line(app),
            }
        received += ALERT_BATCH
        note(f"after_{received}_alerts", app)
    return None


def _received_at_least(app: Child, count: int) -> bool:
    received: int = app.ask({"cmd": "received"})["received"]
    return received >= count


def _fatal_line(app: Child) -> str:
    log = app.log_path
    if log is not None and log.exists():
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("Fatal Python error"):
                return line
    return "the app ended without a fatal error line"


def _shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO.resolve()))
    except ValueError:
        return path.name
