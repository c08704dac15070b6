"""Alerts are upserted by seq: an update reaches the client (live or at catch-up) as a change of
the alert it already holds, and an old replay never undoes it."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.core.alert_stream import AlertStream, StreamPhase
from client.core.backoff import Backoff
from client.core.cache import MIGRATIONS, Cache
from client.core.hub_client import HubClient
from client.core.models import Alert, AlertUpdate
from hub.alerts_service import publish_alert
from hub.server import EmbeddedHub
from tests.hubtools import create_user, sign_in, wait_until

WAIT = 10.0
ALERT_ID = "6f1c1f7e-8f0e-4d57-9a39-0b4b3e1f2a10"


def alert(seq: int, *, status: str = "open", updates: int = 0, title: str = "Video down") -> Alert:
    return Alert(
        id=ALERT_ID,
        seq=seq,
        severity="critical",
        title=title,
        body="Move visits to phone.",
        playbook_id=None,
        template_ids=(),
        requires_ack=True,
        issued_at="2026-12-03T10:00:00.000Z",
        expires_at=None,
        issued_by="dora",
        status=status,
        updates=tuple(
            AlertUpdate(
                n, "update", "2026-12-03T10:05:00.000Z", "dora", f"news {n}", None, None, (), None
            )
            for n in range(1, updates + 1)
        ),
    )


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    opened = Cache.open(tmp_path / "cache.sqlite3")
    yield opened
    opened.close()


def test_a_higher_seq_replaces_the_stored_alert_and_is_reported_as_changed(cache: Cache) -> None:
    first = cache.store_alerts([alert(3)])
    later = cache.store_alerts([alert(7, updates=1, title="Video down (update)")])

    assert first.new == [alert(3)] and first.changed == []
    assert later.new == []
    assert later.changed == [(alert(3), alert(7, updates=1, title="Video down (update)"))]
    stored = cache.alert(ALERT_ID)
    assert stored is not None and stored.seq == 7 and stored.revision == 1
    assert cache.last_alert_seq() == 7
    assert cache.alert_count() == 1


def test_a_lower_or_equal_seq_never_replaces_an_update(cache: Cache) -> None:
    cache.store_alerts([alert(3)])
    cache.store_alerts([alert(9, status="resolved", updates=2)])

    replay = cache.store_alerts([alert(3), alert(9, title="tampered replay")])

    assert replay.new == [] and replay.changed == []
    stored = cache.alert(ALERT_ID)
    assert stored == alert(9, status="resolved", updates=2)
    # The compatibility wrapper keeps its meaning: only ids never seen before.
    assert cache.add_alerts([alert(12, updates=3)]) == []
    assert cache.alert(ALERT_ID) == alert(12, updates=3)


def test_several_states_in_one_batch_are_applied_in_seq_order(cache: Cache) -> None:
    changes = cache.store_alerts([alert(8, updates=2), alert(2), alert(5, updates=1)])

    assert changes.new == [alert(2)]
    assert changes.changed == [
        (alert(2), alert(5, updates=1)),
        (alert(5, updates=1), alert(8, updates=2)),
    ]
    assert cache.alert(ALERT_ID) == alert(8, updates=2)


def test_forty_parallel_copies_of_one_update_change_the_alert_once(cache: Cache) -> None:
    cache.store_alerts([alert(1)])
    results: list[int] = []
    lock = threading.Lock()

    def store() -> None:
        changes = cache.store_alerts([alert(2, updates=1)])
        with lock:
            results.append(len(changes.changed))

    threads = [threading.Thread(target=store) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT)

    assert sorted(results) == [0] * 39 + [1]
    assert cache.alert(ALERT_ID) == alert(2, updates=1)


@settings(max_examples=30, deadline=None)
@given(
    text=st.sampled_from(["", "\u202eevil", "<b>bold</b><script>x</script>", "x" * 10_000]),
    when=st.sampled_from(["0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"]),
    seq=st.integers(min_value=2, max_value=2**63 - 1),
)
def test_hostile_update_text_and_times_are_stored_as_sent(text: str, when: str, seq: int) -> None:
    hostile = replace(
        alert(seq, title=text),
        updated_at=when,
        next_update_by=when,
        updates=(AlertUpdate(1, "update", when, text, text, None, text, (text,), when),),
    )
    with tempfile.TemporaryDirectory() as folder:
        cache = Cache.open(Path(folder) / "cache.sqlite3")
        try:
            cache.store_alerts([alert(seq - 1)])
            changes = cache.store_alerts([hostile])
            assert changes.changed == [(alert(seq - 1), hostile)]
            assert cache.alert(ALERT_ID) == hostile
            assert cache.last_alert_seq() == seq
        finally:
            cache.close()


def test_a_cache_file_from_before_incidents_is_migrated_and_keeps_its_alerts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cache.sqlite3"
    old = sqlite3.connect(path)
    for migrate in MIGRATIONS[:2]:
        migrate(old)
    v1_alert = {key: value for key, value in alert(4).to_json().items() if key != "updates"}
    old.execute(
        "INSERT INTO alerts (id, seq, data, received_at) VALUES (?, ?, ?, ?)",
        (ALERT_ID, 4, json.dumps(v1_alert), "2026-12-01T00:00:00.000Z"),
    )
    old.execute("PRAGMA user_version = 2")
    old.commit()
    old.close()

    cache = Cache.open(path)
    try:
        assert cache.quarantined is None
        assert cache.alert(ALERT_ID) == alert(4)
        changes = cache.store_alerts([alert(6, updates=1)], receipt_author="alex")
        assert [new.seq for _old, new in changes.changed] == [6]
        assert changes.receipts == 1
    finally:
        cache.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


# Against the real hub


class Seen:
    """What an AlertStream emitted, read under a lock."""

    def __init__(self, stream: AlertStream) -> None:
        self._lock = threading.Lock()
        self.new: list[Alert] = []
        self.changed: list[tuple[Alert, Alert]] = []
        self.connected = threading.Event()
        stream.alert_received.connect(self._on_new)
        stream.alert_changed.connect(self._on_changed)
        stream.state_changed.connect(
            lambda state: self.connected.set() if state.phase is StreamPhase.CONNECTED else None
        )

    def _on_new(self, value: Alert) -> None:
        with self._lock:
            self.new.append(value)

    def _on_changed(self, value: tuple[Alert, Alert]) -> None:
        with self._lock:
            self.changed.append(value)

    def changed_seqs(self) -> list[int]:
        with self._lock:
            return [new.seq for _old, new in self.changed]


@pytest.fixture
def agent_client(hub: EmbeddedHub) -> Iterator[HubClient]:
    secret = create_user(hub.store, "alex", role="agent", password="pw-alex-123456")
    client = HubClient(hub.url, connect_timeout=2.0)
    client.set_access_token(sign_in(hub.url, "alex", "pw-alex-123456", secret)["access_token"])
    yield client
    client.close()


@pytest.fixture
def make_stream() -> Iterator[Callable[..., AlertStream]]:
    streams: list[AlertStream] = []

    def make(client: HubClient, cache: Cache) -> AlertStream:
        stream = AlertStream(
            client,
            cache,
            backoff=Backoff(first=0.05, factor=2.0, cap=0.5, jitter=0.2),
            current_user=lambda: "alex",
        )
        streams.append(stream)
        return stream

    yield make
    for stream in streams:
        stream.stop()


def publish(hub: EmbeddedHub, title: str) -> dict[str, Any]:
    published = publish_alert(
        hub.store, hub.settings, severity="critical", title=title, body=f"{title}: details"
    )
    hub.broker.notify()
    return published


def test_an_update_made_while_the_client_was_offline_arrives_at_catch_up_as_a_change(
    hub: EmbeddedHub, agent_client: HubClient, cache: Cache, make_stream: Any
) -> None:
    stream = make_stream(agent_client, cache)
    seen = Seen(stream)
    published = publish(hub, "Video visits down")
    assert [a.id for a in stream.catch_up()] == [published["id"]]
    before = cache.alert(published["id"])
    assert before is not None and before.revision == 0

    # The client is away: the dispatcher posts an update and then resolves the alert.
    hub.store.alerts.change(published["id"], kind="update", text="Phones work", by="dora")
    hub.store.alerts.change(published["id"], kind="resolved", text="Fixed", by="dora")

    assert stream.catch_up() == []
    after = cache.alert(published["id"])
    assert after is not None
    assert (after.status, after.revision, after.updates[-1].text) == ("resolved", 2, "Fixed")
    assert seen.new == [before]
    assert [(old.seq, new.seq) for old, new in seen.changed] == [(before.seq, after.seq)]

    # An old replay (a stream reconnecting from an earlier Last-Event-ID) never undoes it.
    assert cache.store_alerts([before]).changed == []
    assert cache.alert(published["id"]) == after
    assert len(seen.changed) == 1


def test_a_live_update_reaches_an_open_stream_as_a_change(
    hub: EmbeddedHub, agent_client: HubClient, cache: Cache, make_stream: Any
) -> None:
    stream = make_stream(agent_client, cache)
    seen = Seen(stream)
    stream.start()
    assert seen.connected.wait(WAIT)
    published = publish(hub, "Phone lines down")
    wait_until(lambda: cache.alert(published["id"]) is not None, timeout=WAIT)

    changed = hub.store.alerts.change(
        published["id"], kind="retracted", text="Sent in error", by="dora"
    )
    hub.broker.notify()

    wait_until(lambda: seen.changed_seqs() == [changed.seq], timeout=WAIT)
    stored = cache.alert(published["id"])
    assert stored is not None and stored.status == "retracted"
    assert [a.id for a in seen.new] == [published["id"]]
