"""SIGKILL of the client at random points of sync and flush, 50 times over the same data folder:
no recorded ack is lost or doubled, and both SQLite files pass `PRAGMA integrity_check` after
every kill (the outbox commits with synchronous=FULL; the cache is never found damaged, so it is
never quarantined).

Each child is a real client core (HubClient, Cache, Outbox, SyncEngine, AlertStream catch-up) in
its own process; before each one the hub gets changed content and a new alert, so every sync has
content pages and alerts to write when the kill lands.
"""

from __future__ import annotations

import os
import random
import sqlite3
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.core.cache import Cache
from client.core.hub_client import HubClient
from client.core.outbox import Outbox
from client.core.sync import FixedSession, SyncEngine
from hub.content_import import import_content
from hub.demo import demo_content_dir
from hub.server import EmbeddedHub
from hub.storage.content import ContentItem
from tests.child_process import ChildProcess
from tests.reliability.bench import Dispatcher, trust_on_first_use
from tests.reliability.exactly_once import assert_exactly_once

KILLS = 50
# From the child's "ready" to the kill: long enough to land anywhere in the first few rounds of
# recording, content sync, flush and alert catch-up.
KILL_AFTER = (0.0, 0.3)
CHANGED_PER_ROUND = 3

# Records a few acks (printing each id only after record() returned), then syncs, over and over.
CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from client.core.alert_stream import AlertStream
    from client.core.cache import Cache
    from client.core.content_verifier import ContentVerifier
    from client.core.hub_client import HubClient
    from client.core.outbox import Outbox
    from client.core.sync import FixedSession, SyncEngine

    data_dir, hub_url, alert_id = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    hub = HubClient(hub_url, allow_plain_http=True)
    hub.set_access_token(sys.stdin.readline().strip())
    cache = Cache.open(data_dir / "cache.sqlite3")
    if cache.quarantined is not None:
        print("quarantined", flush=True)
    outbox = Outbox.open(data_dir / "outbox.sqlite3")
    stream = AlertStream(hub, cache)
    engine = SyncEngine(
        hub,
        cache,
        outbox,
        verifier_factory=lambda keys: ContentVerifier.from_keys_response(keys, None),
        session=FixedSession("agent"),
        alert_catch_up=stream.catch_up,
    )
    print("ready", flush=True)
    for _ in range(1000):
        for _ in range(5):
            ack = outbox.record(alert_id, "acknowledged", author="agent")
            print("recorded", ack.ack_id, flush=True)
        engine.sync_now()
        print("synced", flush=True)
    print("done", flush=True)
    """
)


def integrity(path: Path) -> list[tuple[str]]:
    """PRAGMA integrity_check of a SQLite file, as a fresh process opening it would see it."""
    conn = sqlite3.connect(path)
    try:
        result: list[tuple[str]] = conn.execute("PRAGMA integrity_check").fetchall()
        return result
    finally:
        conn.close()


def hub_playbooks(hub: EmbeddedHub) -> dict[str, ContentItem]:
    """The hub's current playbooks by id."""
    items, _, more = hub.store.content.changes(None, 1000)
    assert not more
    return {item.id: item for item in items if item.kind == "playbook" and not item.deleted}


def change_content(hub: EmbeddedHub, rng: random.Random, round_number: int) -> None:
    """Give a few playbooks a new version, so the next sync has content to write."""
    playbooks = hub_playbooks(hub)
    for item_id in rng.sample(sorted(playbooks), k=min(CHANGED_PER_ROUND, len(playbooks))):
        data = {**(playbooks[item_id].data or {}), "summary": f"Revision {round_number}."}
        hub.store.content.upsert("playbook", item_id, data, hub.app.state.signer)


@pytest.fixture
def demo_hub(shared_hub: EmbeddedHub) -> Iterator[EmbeddedHub]:
    import_content(shared_hub.store, shared_hub.app.state.signer, demo_content_dir())
    yield shared_hub


@pytest.mark.slow
def test_sigkill_at_random_points_of_sync_and_flush_loses_and_doubles_nothing(
    demo_hub: EmbeddedHub,
    dispatcher: Dispatcher,
    agent_access_token: str,
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("VIGIL_CRASH_SEED", str(random.randrange(2**32))))
    rng = random.Random(seed)
    alert_id = dispatcher.publish("Phones down in the East region")
    data_dir = tmp_path / "client-data"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    printed: list[str] = []
    rounds_synced = 0
    context = f"(seed {seed}; replay with VIGIL_CRASH_SEED={seed})"

    for round_number in range(KILLS):
        change_content(demo_hub, rng, round_number)
        dispatcher.publish(f"Round {round_number}")
        child = ChildProcess(script, [str(data_dir), demo_hub.url, alert_id], agent_access_token)
        try:
            assert child.next_line() == "ready", context
            # A random pause is the point here: the kill must land anywhere in the child's work.
            threading.Event().wait(rng.uniform(*KILL_AFTER))
        finally:
            code = child.kill()
            lines = child.remaining_lines()
        assert code == -9, f"round {round_number}: the child ended on its own {context}"
        assert "quarantined" not in lines, f"round {round_number}: the cache was damaged {context}"
        printed += [line.split()[1] for line in lines if line.startswith("recorded ")]
        rounds_synced += "synced" in lines
        for name in ("outbox.sqlite3", "cache.sqlite3"):
            assert integrity(data_dir / name) == [("ok",)], f"{name}, round {round_number}"

    # The last restart, in this process: it must finish what the killed ones left.
    client = HubClient(demo_hub.url, allow_plain_http=True)
    client.set_access_token(agent_access_token)
    cache = Cache.open(data_dir / "cache.sqlite3")
    outbox = Outbox.open(data_dir / "outbox.sqlite3")
    try:
        assert cache.quarantined is None
        SyncEngine(
            client,
            cache,
            outbox,
            verifier_factory=trust_on_first_use,
            session=FixedSession("agent"),
        ).sync_now()
        assert outbox.counts().pending == 0
        recorded = [ack.ack_id for ack in outbox.for_alert(alert_id)]
        assert set(printed) <= set(recorded), f"an ack printed as recorded is gone {context}"
        # A kill between the commit and the print leaves at most one unprinted ack per round.
        assert len(set(recorded) - set(printed)) <= KILLS
        assert_exactly_once("acks (outbox vs hub)", recorded, dispatcher.acks_on_hub(alert_id))
        for item_id, on_hub in hub_playbooks(demo_hub).items():
            cached = cache.playbook(item_id)
            assert cached is not None and cached.version == on_hub.version, f"{item_id} is stale"
    finally:
        client.close()
        cache.close()
        outbox.close()
    print(
        f"crash seed {seed}: {KILLS} kills, {len(printed)} acks printed, "
        f"{len(recorded)} recorded, {rounds_synced} children got through a whole sync"
    )
