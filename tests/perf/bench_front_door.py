"""16. Failover behind the front door: two hub processes on one PostgreSQL database behind
Debian's nginx, 200 laptops streaming over TLS, one process SIGKILLed while an alert's
acknowledgements are on their way (tests/deploy/process_failover.py, the failover test's run);
how soon each stream it held is live again, and what was missed, doubled or lost."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.deploy.front_door import NGINX
from tests.deploy.process_failover import FLEET, FailoverRun, run_failover
from tests.perf.context import BenchContext
from tests.perf.stats import across_runs, percentile
from tests.postgres import PostgresCluster, server_binaries


def front_door_failover(ctx: BenchContext) -> dict[str, Any]:
    """ctx.runs failovers, each on a fresh database; reconnect times in ms and the errors."""
    binaries = server_binaries()
    if NGINX is None or binaries is None:
        return {"skipped": "nginx or PostgreSQL's server is not installed"}
    # Durable (fsync and synchronous commits on), as in production.
    cluster = PostgresCluster(binaries, durable=True).start()
    try:
        runs = [
            run_failover(ctx.fresh_dir("front-door"), cluster.new_database())
            for _ in range(ctx.runs)
        ]
    finally:
        cluster.stop()
    back = [_reconnects_ms(run) for run in runs]
    return {
        "laptops": FLEET,
        "broken": [len(times) for times in back],
        "p50": across_runs([percentile(times, 0.5) for times in back]),
        "p99": across_runs([percentile(times, 0.99) for times in back]),
        "max": across_runs([max(times) for times in back]),
        "never_back": sum(_never_back(run) for run in runs),
        "alerts_missed": sum(_alerts_missed(run) for run in runs),
        "alerts_doubled": sum(_alerts_doubled(run) for run in runs),
        "acks_lost": sum(_acks_lost(run) for run in runs),
        "acks_doubled": sum(_acks_doubled(run) for run in runs),
    }


def _reconnects_ms(run: FailoverRun) -> list[float]:
    return [s * 1000 for s in run.reconnect_seconds().values() if s is not None]


def _never_back(run: FailoverRun) -> int:
    return sum(1 for s in run.reconnect_seconds().values() if s is None)


def _alerts_missed(run: FailoverRun) -> int:
    return sum(len(set(run.expected) - set(c.alert_ids)) for c in run.clients)


def _alerts_doubled(run: FailoverRun) -> int:
    return sum(len(c.alert_ids) - len(set(c.alert_ids)) for c in run.clients)


def _stored_ack_ids(run: FailoverRun) -> Counter[tuple[str, str]]:
    return Counter((a["username"], a["ack_id"]) for acks in run.stored.values() for a in acks)


def _acks_lost(run: FailoverRun) -> int:
    stored = _stored_ack_ids(run)
    return sum(
        1
        for c in run.clients
        for ack_id in c.ack_ids.values()
        if (c.username, ack_id) not in stored
    )


def _acks_doubled(run: FailoverRun) -> int:
    return sum(count - 1 for count in _stored_ack_ids(run).values() if count > 1)
