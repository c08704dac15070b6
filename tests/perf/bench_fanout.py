"""9. Hub fan-out: one alert to N open SSE streams held by reader processes (not Qt apps)."""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any

import requests

from tests.perf.context import BenchContext
from tests.perf.procs import Child, HubProcess, python_module, rss_kib
from tests.perf.stats import across_runs, percentile

LEVELS = (100, 1_000, 2_500, 5_000)
STREAMS_PER_READER = 1_250
ROUNDS = 5


def _unix(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def fan_out(ctx: BenchContext) -> dict[str, Any]:
    """For each N: open N streams, publish ROUNDS alerts one by one, time each to every stream."""
    # Every stream is opened with one agent's token, so the per-user cap (5 in production) is
    # lifted: the cost measured is the hub's per-stream work, whoever holds the streams.
    hub = HubProcess(
        ctx.fresh_dir("hub"),
        "--streams-per-user",
        str(max(LEVELS)),
        log=ctx.log("fanout-hub"),
    )
    session = requests.Session()
    token = hub.agent_token()
    port = hub.url.rsplit(":", 1)[1]
    levels: dict[str, Any] = {"unit": "ms", "hub_open_files_limit": hub.info["open_files"]}
    idle_rss = rss_kib(hub.pid) / 1024
    held = 0
    try:
        for target in LEVELS[:2] if ctx.quick else LEVELS:
            per_reader = [STREAMS_PER_READER] * (target // STREAMS_PER_READER)
            if target % STREAMS_PER_READER:
                per_reader.append(target % STREAMS_PER_READER)
            readers = [
                Child(
                    python_module("tests.perf.sse_readers", "--port", port, "--count", str(n)),
                    env={"VIGIL_BENCH_TOKEN": token},
                    log=ctx.log("fanout-readers"),
                )
                for n in per_reader
            ]
            try:
                opened = [reader.receive(timeout=300) for reader in readers]
                connected = sum(o["connected"] for o in opened)
                failed = sum(o["failed"] for o in opened)
                level: dict[str, Any] = {
                    "connected": connected,
                    "failed": failed,
                    "hub_rss_mib": rss_kib(hub.pid) / 1024,
                }
                p50s, p99s, alls, missing = [], [], [], 0
                for n in range(ROUNDS):
                    for reader in readers:
                        reader.send("arm")
                    for reader in readers:
                        reader.receive()
                    issued = _unix(hub.publish(session, title=f"Fan-out {target}.{n}")["issued_at"])
                    times = []
                    for reader in readers:
                        times += reader.receive(timeout=60)["times"]
                    missing += connected - len(times)
                    latencies = [(t - issued) * 1000 for t in times]
                    p50s.append(percentile(latencies, 0.5))
                    p99s.append(percentile(latencies, 0.99))
                    alls.append(max(latencies))
                level.update(
                    p50=across_runs(p50s),
                    p99=across_runs(p99s),
                    all_reached=across_runs(alls),
                    missed=missing,
                )
                levels[f"n_{target}"] = level
                if failed:
                    break
                held = connected
            finally:
                for reader in readers:
                    reader.stop()
    finally:
        hub.stop()
    levels["hub_idle_rss_mib"] = idle_rss
    levels["most_streams_held"] = held
    levels["rss_per_stream_kib"] = statistics.median(
        [
            (level["hub_rss_mib"] - idle_rss) * 1024 / level["connected"]
            for key, level in levels.items()
            if key.startswith("n_") and level["connected"]
        ]
    )
    return levels
