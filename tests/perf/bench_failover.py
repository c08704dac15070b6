"""Client failover: the preferred hub process SIGKILLed while alerts are published through the
backup; how soon the client's stream delivers from the backup, and what it missed or doubled."""

from __future__ import annotations

import collections
import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from client.core.alert_stream import AlertStream, StreamPhase, StreamState
from client.core.hub_client import HubClient
from client.core.models import Alert
from tests.perf.context import BenchContext
from tests.perf.core_client import open_stores
from tests.perf.procs import HubProcess, wait_for
from tests.perf.stats import across_runs

ALERTS = 20
KILL_AFTER = 5
PUBLISH_EVERY = 0.02
TIMEOUT = 30.0


def _serve(data_dir: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    """`vigil-hub serve` on the benchmark hub's data folder: the preferred address."""
    with log.open("a") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--port", "0", "--data", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert process.stdout is not None
    url = process.stdout.readline().split()[3]
    wait_for(lambda: _answers(url), TIMEOUT, "the preferred hub to serve")
    return process, url


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except requests.RequestException:
        return False


def failover(ctx: BenchContext) -> dict[str, Any]:
    """SIGKILL the preferred mid-stream, `ctx.runs` times; kill → stream delivering from the
    backup, in ms, with alerts missed and doubled over all runs."""
    data_dir = ctx.fresh_dir("hub")
    backup = HubProcess(data_dir, log=ctx.log("failover-backup"))
    session = requests.Session()
    switch_ms: list[float] = []
    missed = doubled = 0
    try:
        token = backup.agent_token()
        for run in range(ctx.runs):
            switched, run_missed, run_doubled = _one_kill(
                ctx, run, data_dir, backup, session, token
            )
            switch_ms.append(switched)
            missed += run_missed
            doubled += run_doubled
    finally:
        session.close()
        backup.stop()
    return {
        "unit": "ms",
        "alerts_per_run": ALERTS,
        "kill_to_backup_stream": across_runs(switch_ms),
        "missed": missed,
        "doubled": doubled,
    }


def _one_kill(
    ctx: BenchContext,
    run: int,
    data_dir: Path,
    backup: HubProcess,
    session: requests.Session,
    token: str,
) -> tuple[float, int, int]:
    """One preferred process, SIGKILLed mid-stream: (ms to the backup's stream, missed, doubled)."""
    process, preferred = _serve(data_dir, ctx.log(f"failover-preferred-{run}"))
    client = HubClient([preferred, backup.url])
    client.set_access_token(token)
    cache, outbox = open_stores(ctx.fresh_dir(f"failover-client-{run}"))
    stream = AlertStream(client, cache)
    lock = threading.Lock()
    delivered: collections.Counter[str] = collections.Counter()
    connected: list[tuple[float, str]] = []

    def on_alert(alert: Alert) -> None:
        with lock:
            delivered[alert.id] += 1

    def on_state(state: StreamState) -> None:
        if state.phase is StreamPhase.CONNECTED:
            with lock:
                connected.append((time.monotonic(), client.current_url))

    def on_backup_since(moment: float) -> list[float]:
        with lock:
            return [at for at, url in connected if at > moment and url == backup.url]

    stream.alert_received.connect(on_alert)
    stream.state_changed.connect(on_state)
    stream.start()
    try:
        wait_for(lambda: bool(connected), TIMEOUT, "the stream to connect")
        ids: list[str] = []
        killed_at = 0.0
        for number in range(ALERTS):
            ids.append(backup.publish(session, title=f"Failover {run}.{number}")["id"])
            if number == KILL_AFTER:
                killed_at = time.monotonic()
                process.kill()
            time.sleep(PUBLISH_EVERY)
        wait_for(lambda: bool(on_backup_since(killed_at)), TIMEOUT, "the stream on the backup")
        switched = (min(on_backup_since(killed_at)) - killed_at) * 1000
        with contextlib.suppress(RuntimeError):
            wait_for(lambda: set(ids) <= set(delivered), TIMEOUT, "every alert")
        with lock:
            missed = sum(1 for alert_id in ids if alert_id not in delivered)
            doubled = sum(n - 1 for n in delivered.values() if n > 1)
        return switched, missed, doubled
    finally:
        stream.stop()
        client.close()
        cache.close()
        outbox.close()
        process.kill()
        process.wait(TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()
