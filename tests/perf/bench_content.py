"""7. Search over 10,000 playbooks and templates (core query, and keystroke to results in the
library window) and 8. initial and incremental sync of those items: time and bytes."""

from __future__ import annotations

import random
import time
from typing import Any

from client.core.content_verifier import ContentVerifier
from client.core.sync import FixedSession, SyncEngine
from tests.perf.content_gen import REGIONS, SERVICES
from tests.perf.context import BenchContext
from tests.perf.core_client import open_stores, signed_in_hub
from tests.perf.procs import AppDriver, HubProcess
from tests.perf.proxy import LoopbackProxy
from tests.perf.stats import across_runs, distribution

ITEMS = 10_000
CHANGED = 10
QUERIES = 300
TYPED = ("video outage west", "pharmacy refill", "crisis 988", "ehr downtime paper", "breach")
WORDS = (
    "outage", "video", "phone", "patient", "crisis", "downtime", "refill", "portal", "callback",
    "escalate", "shift lead", "nurse", "988", "breach", "schedule", "reference number", "sms",
)  # fmt: skip


def _trust_on_first_use(keys: Any) -> ContentVerifier:
    return ContentVerifier.from_keys_response(keys, None)


def _queries(rng: random.Random) -> list[str]:
    """What agents type: one to three words, sometimes a region or service, sometimes a prefix."""
    queries = []
    for _ in range(QUERIES):
        words = rng.sample(WORDS, rng.randint(1, 2))
        if rng.random() < 0.4:
            words.append(rng.choice(REGIONS).lower())
        if rng.random() < 0.3:
            words.append(rng.choice(SERVICES).split()[0])
        text = " ".join(words)
        if rng.random() < 0.5:
            text = text[: rng.randint(max(2, len(text) - 4), len(text))]
        queries.append(text)
    return queries


def sync_and_search(ctx: BenchContext) -> dict[str, Any]:
    """Initial sync of 10,000 items and an incremental one of 10 changes (through a counting
    proxy), core search timings on the synced cache, then keystroke to results in the window."""
    items = 1_000 if ctx.quick else ITEMS
    hub = HubProcess(ctx.fresh_dir("hub"), "--generated", str(items), log=ctx.log("content-hub"))
    proxy = LoopbackProxy(int(hub.url.rsplit(":", 1)[1]))
    initial_s, initial_bytes, incr_s, incr_bytes = [], [], [], []
    query_p50, query_p99 = [], []
    queries = _queries(random.Random(11))
    try:
        for run in range(ctx.runs):
            client, _auth = signed_in_hub(proxy.url, *hub.take_agent())
            cache, outbox = open_stores(ctx.fresh_dir("content-client"))
            engine = SyncEngine(
                client,
                cache,
                outbox,
                verifier_factory=_trust_on_first_use,
                session=FixedSession("agent"),
            )
            try:
                proxy.reset_counts()
                start = time.monotonic()
                report = engine.sync_now()
                initial_s.append(time.monotonic() - start)
                initial_bytes.append(proxy.bytes_down + proxy.bytes_up)
                assert report.content.stored == items, report
                revised = hub.child.ask(f"revise {CHANGED}")
                assert revised == {"revised": CHANGED}, revised
                proxy.reset_counts()
                start = time.monotonic()
                report = engine.sync_now()
                incr_s.append(time.monotonic() - start)
                incr_bytes.append(proxy.bytes_down + proxy.bytes_up)
                assert report.content.stored == CHANGED, report
                durations = []
                for text in queries:
                    began = time.perf_counter()
                    cache.search(text)
                    durations.append((time.perf_counter() - began) * 1000)
                dist = distribution(durations)
                query_p50.append(dist["p50"])
                query_p99.append(dist["p99"])
            finally:
                client.close()
                cache.close()
                outbox.close()
            del run
        keystrokes = _keystrokes(ctx, hub)
    finally:
        proxy.down()
        hub.stop()
    incremental = across_runs(incr_bytes)
    initial = across_runs(initial_bytes)
    return {
        "sync": {
            "items": items,
            "changed": CHANGED,
            "initial_seconds": across_runs(initial_s),
            "initial_bytes": initial,
            "incremental_seconds": across_runs(incr_s),
            "incremental_bytes": incremental,
            "incremental_share_of_initial": incremental["median"] / initial["median"],
            "changed_share_of_items": CHANGED / items,
        },
        "search": {
            "unit": "ms",
            "items": items,
            "queries_per_run": len(queries),
            "query_p50": across_runs(query_p50),
            "query_p99": across_runs(query_p99),
            "keystroke_to_results": keystrokes,
        },
    }


def _keystrokes(ctx: BenchContext, hub: HubProcess) -> dict[str, Any]:
    """The library window (offscreen) on the same 10,000 items: ms from each key to results."""
    app = AppDriver(
        hub,
        ctx.fresh_dir("search-app"),
        env={"QT_QPA_PLATFORM": "offscreen"},
        log=ctx.log("search-app"),
    )
    p50, p99 = [], []
    try:
        app.wait_ready(timeout=900)
        app.ask({"cmd": "open_library"})
        for _ in range(ctx.runs):
            latencies: list[float] = []
            for text in TYPED:
                latencies += app.ask({"cmd": "type", "text": text}, timeout=120)["ms"]
            dist = distribution(latencies)
            p50.append(dist["p50"])
            p99.append(dist["p99"])
    finally:
        app.stop()
    return {"p50": across_runs(p50), "p99": across_runs(p99)}
