"""3. Alert latency (hub accepts a publish → the pop-up's show event) and 4. reconnect after the
hub's connections drop, with every alert published during the gap delivered."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import datetime
from functools import partial
from typing import Any

import requests

from client.core.alert_stream import AlertStream, StreamPhase, StreamState
from client.core.models import Alert
from tests.perf.context import BenchContext
from tests.perf.core_client import open_stores, signed_in_hub
from tests.perf.procs import AppDriver, HubProcess, wait_for
from tests.perf.proxy import LoopbackProxy
from tests.perf.stats import across_runs, distribution

LATENCY_ALERTS = 200
SHOW_TIMEOUT = 10.0
GAP_SECONDS = (2.0, 10.0)
GAP_ALERTS = 5
DELIVERY_TIMEOUT = 60.0


def _all_in(ids: list[str], delivered: dict[str, float]) -> bool:
    return all(alert_id in delivered for alert_id in ids)


def _unix(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def alert_latency(ctx: BenchContext) -> dict[str, Any]:
    """Publish alerts one at a time; each one's latency from the hub's issued_at to the show.

    Each run has a hub of its own: a new client would otherwise catch up on the earlier runs'
    alerts and keep the pop-up open, and an open pop-up gets no show event.
    """
    session = requests.Session()
    runs: list[dict[str, Any]] = []
    count = 50 if ctx.quick else LATENCY_ALERTS
    for _ in range(ctx.runs):
        hub = HubProcess(ctx.fresh_dir("hub"), "--demo", log=ctx.log("latency-hub"))
        try:
            runs.append(distribution(_latencies(ctx, hub, session, count)))
        finally:
            hub.stop()
    return {
        "unit": "ms",
        "alerts_per_run": count,
        "p50": across_runs([run["p50"] for run in runs]),
        "p99": across_runs([run["p99"] for run in runs]),
        "max": across_runs([run["max"] for run in runs]),
        "clock": "hub's issued_at (ms resolution, wall clock) to time.time() at the show event",
    }


def _latencies(
    ctx: BenchContext, hub: HubProcess, session: requests.Session, count: int
) -> list[float]:
    app = AppDriver(
        hub,
        ctx.fresh_dir("latency-app"),
        env={"QT_QPA_PLATFORM": "offscreen"},
        log=ctx.log("latency-app"),
    )
    try:
        app.wait_ready(timeout=300)
        app.ask({"cmd": "watch_popups"})
        latencies = []
        for n in range(count):
            alert = hub.publish(session, title=f"Latency check {n}")
            for _ in range(100):
                try:
                    shown = app.receive(timeout=SHOW_TIMEOUT)
                except RuntimeError as exc:
                    state = app.ask({"cmd": "popup"}) if app.proc.poll() is None else {}
                    raise RuntimeError(f"alert {n} was not shown: {exc}; pop-up: {state}") from None
                if shown["shown"] == alert["id"]:
                    break
            latencies.append((shown["at"] - _unix(alert["issued_at"])) * 1000)
            # Hidden again before the next alert, so that each one gets its own show event.
            app.ask({"cmd": "dismiss_all"})
        return latencies
    finally:
        app.stop()


def reconnect(ctx: BenchContext) -> dict[str, Any]:
    """Drop every connection (proxy down), publish during the gap, bring the proxy back."""
    hub = HubProcess(ctx.fresh_dir("hub"), log=ctx.log("reconnect-hub"))
    proxy = LoopbackProxy(int(hub.url.rsplit(":", 1)[1]))
    session = requests.Session()
    client, _auth = signed_in_hub(proxy.url, *hub.take_agent())
    cache, outbox = open_stores(ctx.fresh_dir("reconnect-client"))
    stream = AlertStream(client, cache)
    delivered: dict[str, float] = {}
    lock = threading.Lock()

    dropped: list[float] = []

    def on_alert(alert: Alert) -> None:
        with lock:
            delivered[alert.id] = time.monotonic()

    def on_state(state: StreamState) -> None:
        # The moment the tray turns to "Hub unreachable: alerts paused" (client.core.status).
        if state.phase is StreamPhase.DISCONNECTED:
            dropped.append(time.monotonic())

    stream.alert_received.connect(on_alert)
    stream.state_changed.connect(on_state)
    stream.start()
    result: dict[str, Any] = {"unit": "ms", "alerts_per_gap": GAP_ALERTS}
    to_paused: list[float] = []
    try:
        wait_for(lambda: stream.state.phase == StreamPhase.CONNECTED, 30, "stream to connect")
        for gap in GAP_SECONDS:
            to_first, to_all, missed = [], [], 0
            for _ in range(ctx.runs):
                dropped.clear()
                down_at = time.monotonic()
                proxy.down()
                wait_for(lambda: stream.state.phase != StreamPhase.CONNECTED, 10, "stream to drop")
                if dropped:
                    to_paused.append((dropped[0] - down_at) * 1000)
                ids = [
                    hub.publish(session, title=f"Gap alert {n}")["id"] for n in range(GAP_ALERTS)
                ]
                time.sleep(gap)
                proxy.up()
                back = time.monotonic()
                with contextlib.suppress(RuntimeError):
                    wait_for(
                        partial(_all_in, ids, delivered),
                        DELIVERY_TIMEOUT,
                        "alerts published during the gap",
                    )
                arrived = [delivered[i] for i in ids if i in delivered]
                missed += len(ids) - len(arrived)
                if arrived:
                    to_first.append((min(arrived) - back) * 1000)
                    to_all.append((max(arrived) - back) * 1000)
                wait_for(lambda: stream.state.phase == StreamPhase.CONNECTED, 30, "reconnect")
            result[f"gap_{gap:g}s"] = {
                "back_to_first_alert": across_runs(to_first),
                "back_to_all_alerts": across_runs(to_all),
                "missed": missed,
            }
        if to_paused:
            # How soon the tray says alerts are paused once the hub's connections are gone.
            result["hub_gone_to_paused"] = across_runs(to_paused)
    finally:
        stream.stop()
        client.close()
        cache.close()
        outbox.close()
        proxy.down()
        hub.stop()
    return result
