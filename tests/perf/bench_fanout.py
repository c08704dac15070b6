"""9. Hub fan-out: one alert to N open SSE streams held by reader processes (not Qt apps)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
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


def open_readers(streams: dict[str, int], token: str, log: Path) -> list[Child]:
    """Reader processes holding `streams[port]` streams to each hub port, 1,250 a process."""
    readers = []
    for port, count in streams.items():
        per_reader = [STREAMS_PER_READER] * (count // STREAMS_PER_READER)
        if count % STREAMS_PER_READER:
            per_reader.append(count % STREAMS_PER_READER)
        readers += [
            Child(
                python_module("tests.perf.sse_readers", "--port", port, "--count", str(n)),
                env={"VIGIL_BENCH_TOKEN": token},
                log=log,
            )
            for n in per_reader
        ]
    return readers


@dataclass
class Rounds:
    """Each round's p50, p99 and last delivery (ms), and the deliveries missed in all."""

    p50s: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)
    lasts: list[float] = field(default_factory=list)
    missed: int = 0


def timed_rounds(
    readers: list[Child], connected: int, title: str, publish: Callable[[str], dict[str, Any]]
) -> Rounds:
    """ROUNDS alerts published one by one (`publish(title)`), each timed from the hub's
    issued_at to every one of the `connected` streams."""
    rounds = Rounds()
    for n in range(ROUNDS):
        for reader in readers:
            reader.send("arm")
        for reader in readers:
            reader.receive()
        issued = _unix(publish(f"{title}.{n}")["issued_at"])
        times = []
        for reader in readers:
            times += reader.receive(timeout=60)["times"]
        rounds.missed += connected - len(times)
        latencies = [(t - issued) * 1000 for t in times]
        rounds.p50s.append(percentile(latencies, 0.5))
        rounds.p99s.append(percentile(latencies, 0.99))
        rounds.lasts.append(max(latencies))
    return rounds


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
            readers = open_readers({port: target}, token, ctx.log("fanout-readers"))
            try:
                opened = [reader.receive(timeout=300) for reader in readers]
                connected = sum(o["connected"] for o in opened)
                failed = sum(o["failed"] for o in opened)
                level: dict[str, Any] = {
                    "connected": connected,
                    "failed": failed,
                    "hub_rss_mib": rss_kib(hub.pid) / 1024,
                }
                rounds = timed_rounds(
                    readers, connected, f"Fan-out {target}", lambda t: hub.publish(session, title=t)
                )
                level.update(
                    p50=across_runs(rounds.p50s),
                    p99=across_runs(rounds.p99s),
                    all_reached=across_runs(rounds.lasts),
                    missed=rounds.missed,
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
