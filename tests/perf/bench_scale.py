"""15. Hub scale: one alert to 10,000 streams held by one hub process on SQLite and by two hub
processes sharing one PostgreSQL database; publish and ack throughput on each engine."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import requests

from hub.connection_limits import ConnectionLimits
from tests.perf.bench_fanout import open_readers, timed_rounds
from tests.perf.context import BenchContext
from tests.perf.procs import HubProcess, rss_kib, sign_in_token
from tests.perf.stats import across_runs
from tests.postgres import PostgresCluster, server_binaries

STREAMS = 10_000
# Agents who never sign in: each alert is written for every one of them, as for a site's staff.
AUDIENCE = 2_000
PUBLISHES = 60
# Requests at once: a few dispatchers' tools, a crowd of laptops acknowledging.
PUBLISHERS = 4
ACKERS = 16
HTTP_TIMEOUT = 60.0


def scale(ctx: BenchContext) -> dict[str, Any]:
    """The same measures on SQLite (one hub process) and PostgreSQL (two hub processes)."""
    results: dict[str, Any] = {"streams": STREAMS, "audience": AUDIENCE, "sqlite": _engine(ctx)}
    binaries = server_binaries()
    if binaries is None:
        results["postgresql"] = {"skipped": "PostgreSQL's server is not installed"}
        return results
    # Durable (fsync and synchronous commits on, as in production), as SQLite's commits are.
    cluster = PostgresCluster(binaries, durable=True).start()
    try:
        results["postgresql"] = _engine(ctx, cluster.new_database())
        results["postgresql"]["server_version"] = _server_version(cluster)
    finally:
        cluster.stop()
    return results


def _server_version(cluster: PostgresCluster) -> str:
    with cluster.connect("postgres") as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def _engine(ctx: BenchContext, database_url: str | None = None) -> dict[str, Any]:
    name = "sqlite" if database_url is None else "postgresql"
    data = ctx.fresh_dir(f"scale-{name}")
    database = [] if database_url is None else ["--database", database_url]
    # As a site sizing one process for 10,000 agents would: room for every stream, and the
    # connections kept for requests beside them.
    room = STREAMS + ConnectionLimits().connections_kept_for_requests
    common = ["--streams-per-user", str(STREAMS), "--max-connections", str(room), *database]
    first = HubProcess(data, *common, "--audience", str(AUDIENCE), log=ctx.log(f"scale-{name}-a"))
    hubs = [first]
    try:
        if database_url is not None:
            hubs.append(HubProcess(data, *common, "--joining", log=ctx.log(f"scale-{name}-b")))
        result: dict[str, Any] = {"processes": len(hubs)}
        result["fan_out"] = _fan_out(ctx, hubs, name)
        published = [_publish_rate(hubs) for _ in range(ctx.runs)]
        result["publish_per_second"] = across_runs([rate for rate, _ in published])
        result["targeted_per_alert"] = published[0][1]
        ackers = [first.take_agent() for _ in range(len(first.info["agents"]) - 1)]
        tokens = [sign_in_token(first.url, *agent) for agent in ackers]
        result["acks_per_second"] = across_runs([_ack_rate(hubs, tokens) for _ in range(ctx.runs)])
        return result
    finally:
        for hub in reversed(hubs):
            hub.stop()


def _fan_out(ctx: BenchContext, hubs: list[HubProcess], name: str) -> dict[str, Any]:
    """STREAMS streams split evenly over the hub processes, one alert at a time published on the
    first: from its issued_at to every stream."""
    token = hubs[0].agent_token()
    streams = STREAMS // 10 if ctx.quick else STREAMS
    ports = {hub.url.rsplit(":", 1)[1]: streams // len(hubs) for hub in hubs}
    readers = open_readers(ports, token, ctx.log(f"scale-{name}-readers"))
    session = requests.Session()
    try:
        opened = [reader.receive(timeout=600) for reader in readers]
        connected = sum(o["connected"] for o in opened)
        rounds = timed_rounds(
            readers,
            connected,
            f"Scale {name}",
            lambda title: hubs[0].publish(session, title=title),
        )
        return {
            "unit": "ms",
            "connected": connected,
            "failed": sum(o["failed"] for o in opened),
            "refused_then_opened": sum(o["refused"] for o in opened),
            "p50": across_runs(rounds.p50s),
            "p99": across_runs(rounds.p99s),
            "all_reached": across_runs(rounds.lasts),
            "missed": rounds.missed,
            "hub_rss_mib": [rss_kib(hub.pid) / 1024 for hub in hubs],
        }
    finally:
        for reader in readers:
            reader.stop()


def _publish_rate(hubs: list[HubProcess]) -> tuple[float, int]:
    """Alerts a second, PUBLISHES of them from PUBLISHERS threads taking the processes in turn,
    and the agents each was written for (every agent: the audience and the signed-in ones)."""
    token = hubs[0].dispatcher_token()
    turns = itertools.cycle(hubs)
    lock = threading.Lock()

    def publish(n: int) -> None:
        with lock:
            hub = next(turns)
        answer = _session().post(
            f"{hub.url}/v1/alerts",
            json={"severity": "critical", "title": f"Rate {n}", "body": "Throughput."},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
            timeout=HTTP_TIMEOUT,
        )
        answer.raise_for_status()
        targeted.add(answer.json()["targeted"])

    targeted: set[int] = set()
    rate = PUBLISHES / _timed(publish, PUBLISHES, PUBLISHERS)
    assert len(targeted) == 1, targeted
    return rate, targeted.pop()


def _ack_rate(hubs: list[HubProcess], tokens: list[str]) -> float:
    """Acks a second, one ack a request as a laptop sends its first, ACKERS at once: every
    signed-in agent acknowledges each of a fresh set of alerts, on the processes in turn."""
    session = requests.Session()
    alerts = [hubs[0].publish(session, title=f"Ack rate {n}")["id"] for n in range(PUBLISHES)]
    jobs = [(alert, token) for alert in alerts for token in tokens]
    turns = itertools.cycle(hubs)
    lock = threading.Lock()

    def acknowledge(n: int) -> None:
        alert, token = jobs[n]
        with lock:
            hub = next(turns)
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        ack = {
            "ack_id": str(uuid.uuid4()),
            "alert_id": alert,
            "action": "acknowledged",
            "acted_at": stamp,
        }
        answer = _session().post(
            f"{hub.url}/v1/acks",
            json={"acks": [ack]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=HTTP_TIMEOUT,
        )
        answer.raise_for_status()
        assert answer.json()["results"][0]["status"] == "accepted", answer.text

    return len(jobs) / _timed(acknowledge, len(jobs), ACKERS)


_sessions = threading.local()


def _session() -> requests.Session:
    # One keep-alive connection per worker thread, as each laptop or tool holds its own.
    session: requests.Session | None = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
    return session


def _timed(call: Callable[[int], None], count: int, workers: int) -> float:
    """Seconds for `count` calls of `call(n)` on `workers` threads."""
    with ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        list(pool.map(call, range(count)))
        return time.perf_counter() - start
