"""A soak: random network faults from the fault table, one after another, while acks are recorded
and alerts published throughout. It ends with the hub holding exactly the acks recorded, every
alert delivered exactly once, and the client's memory flat.

Bounded: 60 s by default; VIGIL_SOAK_SECONDS sets another length for a manual run, and
VIGIL_SOAK_SEED replays a fault sequence (thread timing still varies from run to run).
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from hub.server import EmbeddedHub
from tests.faultproxy import FaultProxy, Resolver
from tests.hubtools import wait_until
from tests.reliability.bench import AgentDesk, Dispatcher
from tests.reliability.exactly_once import assert_exactly_once
from tests.reliability.faults import FAULTS, end_faults

SOAK_SECONDS = float(os.environ.get("VIGIL_SOAK_SECONDS", "60"))
# Memory is compared from the end of warm-up: by then every code path, connection pool, SQLite
# page cache and the allocator's arenas have been through their first use.
WARM_UP_SECONDS = min(15.0, SOAK_SECONDS / 4)
# RSS is the whole test process (hub, proxy and client together; tracemalloc's own memory is taken
# off), the hub's SQLite page caches fill up over the first minutes and the allocator does not
# give every freed page back, so only growth far beyond that counts. A 60 s run grows about
# 10 MiB; a leaked connection, thread or response per fault or per ack would show well above.
RSS_GROWTH_LIMIT = 40 * 1024 * 1024
# What code under client/ allocated after warm-up and still holds at the end (tracemalloc, by the
# allocating frame): the live SyncStatus, stream state and the like, about 100 KiB; one object
# kept per ack or alert would be over this within a long run.
CLIENT_HELD_LIMIT = 1024 * 1024
PUBLISH_EVERY = (0.1, 0.5)
ACK_EVERY = (0.01, 0.08)
FAULT_LASTS = (0.3, 2.5)
CALM_LASTS = (0.1, 1.0)
SETTLED_WITHIN = 20.0


@dataclass
class SoakFigures:
    """What the soak did, printed at the end."""

    seed: int
    seconds: float
    faults: int = 0
    alerts: int = 0
    acks: int = 0
    rss_warm: int = 0
    rss_end: int = 0
    client_held: int = 0

    def line(self) -> str:
        return (
            f"soak seed {self.seed}: {self.seconds:.0f} s, {self.faults} faults, "
            f"{self.alerts} alerts, {self.acks} acks; RSS {self.rss_warm / 2**20:.1f} MiB after "
            f"warm-up, {self.rss_end / 2**20:.1f} MiB at the end; client code holds "
            f"{self.client_held / 1024:.0f} KiB allocated since warm-up"
        )


class Workload:
    """Publishes alerts and records acks for them on two threads until stopped."""

    def __init__(self, desk: AgentDesk, dispatcher: Dispatcher, seed: int) -> None:
        self.desk = desk
        self.dispatcher = dispatcher
        self.published: list[str] = []
        self.acked: set[str] = set()
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._guard, args=(self._publish, seed), daemon=True),
            threading.Thread(target=self._guard, args=(self._ack, seed + 1), daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(10)
        assert not self.errors, self.errors

    def _guard(self, work: Callable[[random.Random], None], seed: int) -> None:
        try:
            work(random.Random(seed))
        except BaseException as exc:
            self.errors.append(exc)

    def _publish(self, rng: random.Random) -> None:
        for number in range(1_000_000):
            if self.stop.wait(rng.uniform(*PUBLISH_EVERY)):
                return
            alert_id = self.dispatcher.publish(f"Soak alert {number}")
            with self._lock:
                self.published.append(alert_id)

    def _ack(self, rng: random.Random) -> None:
        for _ in range(10_000_000):
            if self.stop.wait(rng.uniform(*ACK_EVERY)):
                return
            with self._lock:
                choices = list(self.published[-20:])
            if choices:
                alert_id = rng.choice(choices)
                self.desk.record_ack(alert_id)
                with self._lock:
                    self.acked.add(alert_id)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    fake = Resolver()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@pytest.fixture
def proxy(shared_hub: EmbeddedHub) -> Iterator[FaultProxy]:
    started = FaultProxy((shared_hub.host, shared_hub.port)).start()
    yield started
    started.stop()


def _client_held_bytes(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> int:
    only_client = [tracemalloc.Filter(True, f"*{os.sep}client{os.sep}*")]
    diff = after.filter_traces(only_client).compare_to(
        before.filter_traces(only_client), "filename"
    )
    return sum(stat.size_diff for stat in diff)


@pytest.mark.slow
def test_soak_random_faults_end_with_exactly_the_recorded_acks_and_flat_memory(
    proxy: FaultProxy,
    resolver: Resolver,
    dispatcher: Dispatcher,
    agent_access_token: str,
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("VIGIL_SOAK_SEED", str(random.randrange(2**32))))
    figures = SoakFigures(seed=seed, seconds=SOAK_SECONDS)
    try:
        _soak(figures, proxy, resolver, dispatcher, agent_access_token, tmp_path)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{figures.line()} (replay: VIGIL_SOAK_SEED={seed})") from exc
    print(figures.line())


def _soak(
    figures: SoakFigures,
    proxy: FaultProxy,
    resolver: Resolver,
    dispatcher: Dispatcher,
    token: str,
    data_dir: Path,
) -> None:
    rng = random.Random(figures.seed)
    process = psutil.Process()
    # By name throughout, so that the DNS fault can be among the random ones.
    desk = AgentDesk(f"http://{resolver.name}:{proxy.port}", token, data_dir)
    workload = Workload(desk, dispatcher, figures.seed)
    tracing = False
    try:
        desk.start()
        wait_until(desk.in_step, timeout=10)
        workload.start()
        started = time.monotonic()
        warm_snapshot: tracemalloc.Snapshot | None = None
        # Bounded by time, and by count as a backstop (every round lasts at least 0.4 s).
        for _ in range(int(SOAK_SECONDS / 0.4) + 1):
            elapsed = time.monotonic() - started
            if elapsed >= SOAK_SECONDS:
                break
            if warm_snapshot is None and elapsed >= WARM_UP_SECONDS:
                figures.rss_warm = process.memory_info().rss
                tracemalloc.start()
                tracing = True
                warm_snapshot = tracemalloc.take_snapshot()
            fault = rng.choice(FAULTS)
            fault.start(proxy, resolver)
            figures.faults += 1
            # Holding the fault for a while is the workload here, not a wait for a condition.
            workload.stop.wait(rng.uniform(*FAULT_LASTS))
            end_faults(proxy, resolver)
            workload.stop.wait(rng.uniform(*CALM_LASTS))
        workload.finish()
        end_faults(proxy, resolver)

        published = list(workload.published)
        wait_until(
            lambda: desk.in_step() and set(published) <= set(desk.deliveries()),
            timeout=SETTLED_WITHIN,
        )
        # Memory first, before the checks below build their own lists.
        assert warm_snapshot is not None
        end_snapshot = tracemalloc.take_snapshot()
        figures.rss_end = process.memory_info().rss - tracemalloc.get_tracemalloc_memory()
        figures.client_held = _client_held_bytes(warm_snapshot, end_snapshot)
        tracemalloc.stop()
        tracing = False

        figures.alerts, figures.acks = len(published), desk.outbox.counts().synced
        recorded = [ack for alert_id in workload.acked for ack in desk.recorded_acks(alert_id)]
        on_hub = [ack for alert_id in workload.acked for ack in dispatcher.acks_on_hub(alert_id)]
        assert_exactly_once("acks (outbox vs hub)", recorded, on_hub)
        assert_exactly_once(
            "alerts (hub vs deliveries)", dispatcher.kept_alert_ids(), desk.delivered_ids()
        )
        assert desk.outbox.counts().rejected == 0
        assert figures.rss_end - figures.rss_warm < RSS_GROWTH_LIMIT, "RSS grew"
        assert figures.client_held < CLIENT_HELD_LIMIT, "client code holds on to memory"
    finally:
        if tracing:
            tracemalloc.stop()
        workload.stop.set()
        end_faults(proxy, resolver)
        desk.close()
