"""10. Sign-in flood: 200 concurrent sign-in attempts with wrong passwords while an agent reads
`/v1/me` and acknowledges and a dispatcher publishes; their p99 and the hub's RSS."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests

from tests.hubtools import HTTP_TIMEOUT, auth_headers
from tests.perf.context import BenchContext
from tests.perf.procs import Child, HubProcess, python_module, rss_kib
from tests.perf.stats import across_runs, distribution

CONCURRENCY = 200
FLOOD_SECONDS = 20.0
QUIET_SECONDS = 5.0
# Each working client makes one call, then waits this long: an agent and a dispatcher at work,
# a good deal busier than real ones.
PACE_SECONDS = 0.05
RSS_EVERY_SECONDS = 0.1


class _Worker:
    """One kind of call made over and over on its own thread, each call timed."""

    def __init__(self, call: Callable[[], requests.Response]) -> None:
        self.call = call
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(HTTP_TIMEOUT * 2)

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                response = self.call()
                ok = response.status_code < 300
                outcome = str(response.status_code)
            except requests.RequestException as exc:
                ok, outcome = False, type(exc).__name__
            if ok:
                self.latencies.append((time.perf_counter() - start) * 1000)
            else:
                self.errors[outcome] = self.errors.get(outcome, 0) + 1
            self._stop.wait(PACE_SECONDS)


def _workers(hub: HubProcess) -> dict[str, _Worker]:
    agent = requests.Session()
    agent_headers = auth_headers(hub.agent_token())
    dispatcher = requests.Session()
    dispatcher_headers = auth_headers(hub.dispatcher_token())
    alert_id = hub.publish(dispatcher, title="Flood benchmark alert")["id"]

    def me() -> requests.Response:
        return agent.get(f"{hub.url}/v1/me", headers=agent_headers, timeout=HTTP_TIMEOUT)

    def ack() -> requests.Response:
        item = {
            "ack_id": str(uuid.uuid4()),
            "alert_id": alert_id,
            "action": "acknowledged",
            "acted_at": datetime.now(UTC).isoformat(),
        }
        return agent.post(
            f"{hub.url}/v1/acks",
            json={"acks": [item]},
            headers=agent_headers,
            timeout=HTTP_TIMEOUT,
        )

    def publish() -> requests.Response:
        body = {"severity": "minor", "title": "Flood benchmark", "body": "Still working."}
        return dispatcher.post(
            f"{hub.url}/v1/alerts", json=body, headers=dispatcher_headers, timeout=HTTP_TIMEOUT
        )

    return {"me": _Worker(me), "ack": _Worker(ack), "publish": _Worker(publish)}


def _measure(workers: dict[str, _Worker], pid: int, seconds: float) -> float:
    """Run the workers for `seconds`; the hub's peak RSS meanwhile (MiB)."""
    peak = 0
    for worker in workers.values():
        worker.start()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            peak = max(peak, rss_kib(pid))
            time.sleep(RSS_EVERY_SECONDS)
    finally:
        for worker in workers.values():
            worker.stop()
    return peak / 1024


def signin_flood(ctx: BenchContext) -> dict[str, Any]:
    """Each run: a fresh hub; the calls timed first without, then during the flood."""
    seconds = 8.0 if ctx.quick else FLOOD_SECONDS
    figures: dict[str, dict[str, list[float]]] = {
        phase: {"me": [], "ack": [], "publish": []} for phase in ("quiet", "flood")
    }
    peak_rss: list[float] = []
    idle_rss: list[float] = []
    flood_answers: list[dict[str, Any]] = []
    errors: dict[str, int] = {}
    load_average: list[float] = []
    for _ in range(ctx.runs):
        load_average.append(os.getloadavg()[0])
        hub = HubProcess(
            ctx.fresh_dir("hub"), "--trusted-proxy", "127.0.0.1/32", log=ctx.log("signin-hub")
        )
        try:
            idle_rss.append(rss_kib(hub.pid) / 1024)
            # Both signed in before the flood: a sign-in during it may well be told to wait.
            quiet, during = _workers(hub), _workers(hub)
            _measure(quiet, hub.pid, QUIET_SECONDS)
            flood = Child(
                python_module(
                    "tests.perf.signin_flood",
                    "--port",
                    hub.url.rsplit(":", 1)[1],
                    "--concurrency",
                    str(CONCURRENCY),
                ),
                log=ctx.log("signin-flood"),
            )
            try:
                flood.receive(timeout=120)
                peak_rss.append(_measure(during, hub.pid, seconds))
                flood_answers.append(flood.ask("stop", timeout=120))
            finally:
                flood.stop()
            for phase, workers in (("quiet", quiet), ("flood", during)):
                for name, worker in workers.items():
                    figures[phase][name].append(distribution(worker.latencies)["p99"])
                    for outcome, count in worker.errors.items():
                        key = f"{phase} {name} {outcome}"
                        errors[key] = errors.get(key, 0) + count
        finally:
            hub.stop()
    return {
        "unit": "ms",
        "concurrency": CONCURRENCY,
        "flood_seconds": seconds,
        "p99": {
            phase: {name: across_runs(values) for name, values in calls.items()}
            for phase, calls in figures.items()
        },
        "hub_idle_rss_mib": across_runs(idle_rss),
        "hub_peak_rss_mib": across_runs(peak_rss),
        "flood_answers": flood_answers,
        "errors": errors,
        "load_average": load_average,
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
