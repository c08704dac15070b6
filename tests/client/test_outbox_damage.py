"""A damaged outbox never stops alerts and loses only what cannot be read: real SQLite files with
real pages overwritten, found at open (quick_check) or on any later call, set aside, every
readable ack salvaged into a fresh file and sent once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from client.core.alert_stream import AlertStream
from client.core.cache import Cache
from client.core.content_verifier import ContentVerifier
from client.core.errors import OutboxError
from client.core.hub_client import HubClient
from client.core.outbox import AckResult, AckState, Outbox, OutboxFlusher
from client.core.outbox_salvage import OutboxDamage
from client.core.sync import FixedSession, SyncEngine
from hub.server import EmbeddedHub
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    access_token,
    auth_headers,
    create_user,
    publish_alert,
    sign_in,
)

ALERT = "6f1c1f7e-8f0e-4d57-9a39-0b4b3e1f2a10"
ACKS = 400


def filled_outbox(path: Path) -> tuple[list[str], list[str]]:
    """An outbox with ACKS acks by agent, every third one synced; (pending ids, synced ids)."""
    outbox = Outbox.open(path)
    ids = [
        outbox.record(
            f"alert-{n % 7}", "acknowledged", f"note {n} " + "x" * 200, author="agent"
        ).ack_id
        for n in range(ACKS)
    ]
    synced = ids[::3]
    outbox.apply_results([AckResult(ack_id, "accepted") for ack_id in synced])
    outbox.close()
    return [i for i in ids if i not in set(synced)], synced


def damage_page(path: Path, name: str, which: int = 0) -> int:
    """Overwrite a leaf page of table or index `name` with garbage; returns the page number."""
    with sqlite3.connect(path) as conn:
        try:
            pages = conn.execute(
                "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno",
                (name,),
            ).fetchall()
        except sqlite3.OperationalError:
            pytest.skip("this SQLite has no dbstat table to find the pages of an index")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert len(pages) > which, f"{name} has only {len(pages)} leaf pages"
    pageno: int = pages[which][0]
    with path.open("r+b") as raw:
        raw.seek((pageno - 1) * page_size)
        raw.write(b"\xa5" * page_size)
    return pageno


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "outbox.sqlite3"


def test_a_damaged_index_page_is_found_at_open_and_every_ack_is_salvaged(path: Path) -> None:
    pending, synced = filled_outbox(path)
    damage_page(path, "acks_alert", which=1)

    outbox = Outbox.open(path)

    damage = outbox.damage
    assert isinstance(damage, OutboxDamage)
    assert (damage.salvaged, damage.unreadable) == (ACKS, 0)
    assert damage.set_aside.name.startswith("outbox.sqlite3.damaged-")
    assert damage.set_aside.is_file()
    assert [ack.ack_id for ack in outbox.pending(limit=ACKS, author="agent")] == pending
    counts = outbox.counts()
    assert (counts.pending, counts.synced, counts.rejected) == (len(pending), len(synced), 0)
    assert all(ack.author == "agent" for ack in outbox.for_alert("alert-1"))
    message = damage.message()
    assert "damaged" in message and str(damage.set_aside) in message
    assert "None was lost" in message
    assert "full" not in message and "read-only" not in message
    # The fresh file is whole, and a reopen finds nothing wrong with it.
    outbox.close()
    again = Outbox.open(path)
    assert again.damage is None
    assert again.counts().pending == len(pending)
    again.close()


def test_a_damaged_table_page_loses_only_its_rows_and_says_how_many(path: Path) -> None:
    filled_outbox(path)
    damage_page(path, "acks", which=2)

    outbox = Outbox.open(path)

    damage = outbox.damage
    assert damage is not None
    assert damage.unreadable > 0
    assert damage.salvaged + damage.unreadable == ACKS
    assert f"{damage.unreadable} could not be read" in damage.message()
    counts = outbox.counts()
    assert counts.pending + counts.synced == damage.salvaged
    # Still a working outbox: a new ack is recorded and read back.
    new = outbox.record(ALERT, "escalated", author="agent")
    assert outbox.get(new.ack_id) == new
    outbox.close()


def test_damage_met_while_running_is_salvaged_and_the_call_answered(path: Path) -> None:
    pending, _ = filled_outbox(path)
    damage_page(path, "acks_alert", which=1)
    # A connection opened before the damage: no open-time check stands between it and the page.
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    outbox = Outbox(conn, path)
    seen: list[OutboxDamage] = []
    outbox.damaged.connect(seen.append)

    answers = [outbox.for_alert(f"alert-{n}") for n in range(7)]

    assert sum(len(a) for a in answers) == ACKS
    assert len(seen) == 1 and seen[0].unreadable == 0
    assert outbox.damage == seen[0]
    assert len(outbox.pending(limit=ACKS)) == len(pending)
    outbox.close()


def test_an_error_that_is_not_damage_never_blames_the_disk(path: Path) -> None:
    outbox = Outbox.open(path)
    outbox.close()
    with pytest.raises(OutboxError) as caught:
        outbox.record(ALERT, "acknowledged", author="agent")
    assert "full" not in caught.value.message and "read-only" not in caught.value.message
    assert str(path) in caught.value.message


@pytest.fixture
def agent_hub(hub: EmbeddedHub) -> Iterator[tuple[EmbeddedHub, HubClient, str]]:
    client = HubClient(hub.url, allow_plain_http=True)
    client.set_access_token(access_token(hub.store, hub.url, "agent"))
    secret = create_user(hub.store, "dispatch", "dispatcher")
    dispatcher: str = sign_in(hub.url, "dispatch", DEFAULT_PASSWORD, secret)["access_token"]
    yield hub, client, dispatcher
    client.close()


def test_salvaged_acks_reach_the_hub_once(
    path: Path, agent_hub: tuple[EmbeddedHub, HubClient, str]
) -> None:
    hub, client, dispatcher = agent_hub
    alert_id = publish_alert(hub.url, dispatcher)["id"]
    outbox = Outbox.open(path)
    first = outbox.record(alert_id, "acknowledged", author="agent")
    OutboxFlusher(outbox, client, author="agent").flush()
    second = outbox.record(alert_id, "escalated", author="agent")
    outbox.close()
    # The first ack's "synced" is lost with the damage: the salvage must send it again harmlessly.
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE acks SET state = 'pending' WHERE ack_id = ?", (first.ack_id,))
    damage_page(path, "acks_state")

    salvaged = Outbox.open(path)
    assert salvaged.damage is not None
    report = OutboxFlusher(salvaged, client, author="agent").flush()

    assert (report.synced, report.pending, report.error) == (2, 0, None)
    assert salvaged.get(second.ack_id) is not None
    assert {ack.state for ack in salvaged.for_alert(alert_id)} == {AckState.SYNCED}
    response = requests.get(
        f"{hub.url}/v1/alerts/{alert_id}/acks",
        headers=auth_headers(dispatcher),
        timeout=HTTP_TIMEOUT,
    )
    on_hub = sorted(ack["ack_id"] for ack in response.json()["acks"])
    assert on_hub == sorted([first.ack_id, second.ack_id])  # each once: no duplicate
    salvaged.close()


def test_sync_fetches_alerts_when_the_outbox_cannot_be_used(
    tmp_path: Path, path: Path, agent_hub: tuple[EmbeddedHub, HubClient, str]
) -> None:
    hub, client, dispatcher = agent_hub
    outbox = Outbox.open(path)
    outbox.record(ALERT, "acknowledged", author="agent")
    cache = Cache.open(tmp_path / "cache.sqlite3")
    stream = AlertStream(client, cache)
    engine = SyncEngine(
        client,
        cache,
        outbox,
        verifier_factory=lambda keys: ContentVerifier.from_keys_response(keys, None),
        session=FixedSession("agent"),
        alert_catch_up=stream.catch_up,
    )
    alert_id = publish_alert(hub.url, dispatcher, title="Phones down")["id"]
    outbox.close()  # from here on every outbox call fails

    report = engine.sync_now()

    assert report.alerts == 1
    assert [alert.id for alert in cache.alerts()] == [alert_id]
    assert report.ack_problem is not None and "acknowledgement store" in report.ack_problem
    summary = report.summary(datetime.now(UTC))
    assert summary.startswith("Synced ") and "1 new alert" in summary
    assert report.ack_problem in summary
    cache.close()
