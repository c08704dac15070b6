"""5. Acknowledgement sync (10,000 acks queued offline, then the network returns) against one
request per ack, and 6. recording an ack (the durable write before the UI confirms)."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import requests

from client.core.content_verifier import ContentVerifier
from client.core.outbox import Outbox, OutboxFlusher
from client.core.sync import FixedSession, SyncEngine
from tests.perf.context import BenchContext
from tests.perf.core_client import open_stores, signed_in_hub
from tests.perf.procs import HubProcess, wait_for
from tests.perf.proxy import LoopbackProxy
from tests.perf.stats import across_runs, distribution

QUEUED_ACKS = 10_000
SINGLE_ACKS = 1_000
ALERTS = 50
ACTIONS = ("acknowledged", "escalated", "unable")
SYNC_TIMEOUT = 600.0


def _trust_on_first_use(keys: Any) -> ContentVerifier:
    return ContentVerifier.from_keys_response(keys, None)


def ack_sync_and_record(ctx: BenchContext) -> dict[str, Any]:
    """Each run: a fresh outbox, 10,000 acks recorded with the hub unreachable, then the
    network returns and the sync engine is told so; timed until the hub accepted every one."""
    hub = HubProcess(ctx.fresh_dir("hub"), log=ctx.log("acks-hub"))
    session = requests.Session()
    alert_ids = [hub.publish(session, title=f"Ack alert {n}")["id"] for n in range(ALERTS)]
    queued = 1_000 if ctx.quick else QUEUED_ACKS
    clear_seconds, rates, record_p50, record_p99 = [], [], [], []
    single_rates = []
    try:
        for _ in range(ctx.runs):
            proxy = LoopbackProxy(int(hub.url.rsplit(":", 1)[1]))
            client, _auth = signed_in_hub(proxy.url, *hub.take_agent())
            cache, outbox = open_stores(ctx.fresh_dir("acks-client"))
            engine = SyncEngine(
                client,
                cache,
                outbox,
                verifier_factory=_trust_on_first_use,
                session=FixedSession("agent"),
            )
            try:
                engine.sync_now()
                proxy.down()
                engine.start()
                durations = []
                for n in range(queued):
                    start = time.perf_counter()
                    outbox.record(
                        alert_ids[n % ALERTS], ACTIONS[n % 3], f"note {n}", author="agent"
                    )
                    durations.append((time.perf_counter() - start) * 1000)
                dist = distribution(durations)
                record_p50.append(dist["p50"])
                record_p99.append(dist["p99"])
                assert outbox.counts().pending == queued
                proxy.up()
                back = time.monotonic()
                engine.network_changed()
                wait_for(partial(_drained, outbox), SYNC_TIMEOUT, "the backlog")
                took = time.monotonic() - back
                assert outbox.counts().synced == queued
                clear_seconds.append(took)
                rates.append(queued / took)
            finally:
                engine.stop()
                client.close()
                cache.close()
                outbox.close()
                proxy.down()
            single_rates.append(_one_request_per_ack(ctx, hub, alert_ids))
    finally:
        hub.stop()
    single = across_runs(single_rates)
    return {
        "sync": {
            "acks": queued,
            "seconds_to_clear": across_runs(clear_seconds),
            "acks_per_second": across_runs(rates),
            "one_request_per_ack": {
                "acks_per_second": single,
                "measured_on": SINGLE_ACKS,
                "projected_seconds_for_backlog": queued / single["median"],
            },
            "speedup_vs_one_request_per_ack": across_runs(rates)["median"] / single["median"],
        },
        "record": {
            "unit": "ms",
            "samples_per_run": queued,
            "p50": across_runs(record_p50),
            "p99": across_runs(record_p99),
        },
    }


def _drained(outbox: Outbox) -> bool:
    return outbox.counts().pending == 0


def _one_request_per_ack(ctx: BenchContext, hub: HubProcess, alert_ids: list[str]) -> float:
    """Acks per second when each ack is its own POST (the floor that batching improves on)."""
    client, _auth = signed_in_hub(hub.url, *hub.take_agent())
    cache, outbox = open_stores(ctx.fresh_dir("acks-single"))
    try:
        for n in range(SINGLE_ACKS):
            outbox.record(alert_ids[n % ALERTS], ACTIONS[n % 3], f"note {n}", author="agent")
        start = time.monotonic()
        report = OutboxFlusher(outbox, client, author="agent", batch_size=1).flush()
        took = time.monotonic() - start
        assert report.pending == 0 and report.error is None, report
        return SINGLE_ACKS / took
    finally:
        client.close()
        cache.close()
        outbox.close()
