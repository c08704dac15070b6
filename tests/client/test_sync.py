"""SyncEngine against the real hub on 127.0.0.1: signed content reaches the cache, the cache keeps
working while the hub is down, and queued acks arrive exactly once when it is back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from client.core.cache import Cache
from client.core.content_verifier import ContentVerifier
from client.core.errors import AuthRequired, HubOffline
from client.core.hub_client import HubClient
from client.core.outbox import Outbox, OutboxCounts
from client.core.sync import ConnectionState, FixedSession, SyncEngine, SyncStatus
from hub.content_import import import_content
from hub.demo import demo_content_dir
from hub.server import EmbeddedHub
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    auth_headers,
    create_user,
    publish_alert,
    sign_in,
    wait_until,
)


def trust_on_first_use(keys: Any) -> ContentVerifier:
    return ContentVerifier.from_keys_response(keys, None)


@dataclass
class Desk:
    """One agent's client core (real files, real HubClient) and a dispatcher's token."""

    hub: EmbeddedHub
    client: HubClient
    cache: Cache
    outbox: Outbox
    dispatcher_token: str

    def engine(self, **options: Any) -> SyncEngine:
        options.setdefault("verifier_factory", trust_on_first_use)
        options.setdefault("session", FixedSession("agent"))
        return SyncEngine(self.client, self.cache, self.outbox, **options)

    def publish_alert(self, title: str = "Video visits down in the West region") -> str:
        alert_id: str = publish_alert(self.hub.url, self.dispatcher_token, title=title)["id"]
        return alert_id

    def acks_on_hub(self, alert_id: str) -> list[str]:
        response = requests.get(
            f"{self.hub.url}/v1/alerts/{alert_id}/acks",
            headers=auth_headers(self.dispatcher_token),
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 200, response.text
        return [ack["ack_id"] for ack in response.json()["acks"]]

    def upsert_playbook(self, item_id: str, **data: Any) -> None:
        signer = self.hub.app.state.signer
        current = self.hub.store.content.get("playbook", item_id)
        base = current.data if current is not None and current.data else {}
        self.hub.store.content.upsert("playbook", item_id, {**base, **data}, signer)


@pytest.fixture
def desk(hub: EmbeddedHub, tmp_path: Path) -> Iterator[Desk]:
    import_content(hub.store, hub.app.state.signer, demo_content_dir())
    agent_secret = create_user(hub.store, "agent")
    dispatcher_secret = create_user(hub.store, "dispatch", role="dispatcher")
    tokens = sign_in(hub.url, "agent", DEFAULT_PASSWORD, agent_secret)
    dispatcher = sign_in(hub.url, "dispatch", DEFAULT_PASSWORD, dispatcher_secret)
    client = HubClient(hub.url, allow_plain_http=True, connect_timeout=2.0, read_timeout=10.0)
    client.set_access_token(tokens["access_token"])
    cache = Cache.open(tmp_path / "client" / "cache.sqlite3")
    outbox = Outbox.open(tmp_path / "client" / "outbox.sqlite3")
    yield Desk(hub, client, cache, outbox, dispatcher["access_token"])
    client.close()
    cache.close()
    outbox.close()


def hub_item_count(hub: EmbeddedHub) -> tuple[int, int]:
    with hub.store.db.read() as conn:
        rows = dict(
            conn.execute(
                "SELECT kind, count(*) FROM content_items WHERE deleted = 0 GROUP BY kind"
            ).fetchall()
        )
    return rows.get("playbook", 0), rows.get("template", 0)


def test_first_sync_stores_all_hub_content_verified(desk: Desk) -> None:
    caught_up: list[bool] = []
    engine = desk.engine(alert_catch_up=lambda: caught_up.append(True) or [])

    report = engine.sync_now()

    playbooks, templates = hub_item_count(desk.hub)
    assert playbooks > 0 and templates > 0
    assert (report.content.stored, report.content.refused) == (playbooks + templates, ())
    assert len(desk.cache.playbooks()) == playbooks
    assert len(desk.cache.templates()) == templates
    video = desk.cache.playbook("pb-video-visit-outage")
    assert video is not None and video.steps
    assert desk.cache.search("video")[0].kind in ("playbook", "template")
    assert desk.cache.get_state("content_key_ids") == desk.hub.app.state.signer.key_id
    assert caught_up == [True]
    status = engine.status
    assert status.state is ConnectionState.ONLINE
    assert status.last_synced_at is not None


def test_incremental_sync_fetches_only_changes(desk: Desk) -> None:
    pinned = desk.hub.app.state.signer.key_id
    engine = desk.engine(
        verifier_factory=lambda keys: ContentVerifier.from_keys_response(keys, pinned)
    )
    engine.sync_now()
    cursor = desk.cache.content_cursor()

    desk.upsert_playbook("pb-video-visit-outage", title="Video visit outage (revised)")
    desk.hub.store.content.delete("playbook", "pb-phone-outage", desk.hub.app.state.signer)
    report = engine.sync_now()

    assert (report.content.stored, report.content.deleted) == (1, 1)
    assert desk.cache.content_cursor() == (cursor or 0) + 2
    revised = desk.cache.playbook("pb-video-visit-outage")
    assert revised is not None
    assert (revised.title, revised.version) == ("Video visit outage (revised)", 2)
    assert desk.cache.playbook("pb-phone-outage") is None
    assert [hit.id for hit in desk.cache.search("revised")] == ["pb-video-visit-outage"]


def test_tampered_hub_content_is_refused_and_old_copy_kept(desk: Desk) -> None:
    engine = desk.engine()
    engine.sync_now()
    # Someone with access to the hub's database changes a playbook without the signing key.
    with desk.hub.store.db.write() as conn:
        row = conn.execute(
            "SELECT data FROM content_items WHERE kind = 'playbook' AND id = ?",
            ("pb-video-visit-outage",),
        ).fetchone()
        data = json.loads(row[0])
        data["phone_tree"][0]["phone"] = "+1-555-0666"
        conn.execute(
            "UPDATE content_items SET data = ?, version = version + 1, "
            "cursor = (SELECT max(cursor) + 1 FROM content_items) "
            "WHERE kind = 'playbook' AND id = ?",
            (json.dumps(data), "pb-video-visit-outage"),
        )

    report = engine.sync_now()

    assert [(r.kind, r.id) for r in report.content.refused] == [
        ("playbook", "pb-video-visit-outage")
    ]
    kept = desk.cache.playbook("pb-video-visit-outage")
    assert kept is not None
    assert kept.version == 1
    assert "+1-555-0666" not in [entry.phone for entry in kept.phone_tree]
    assert "refused" in engine.status.detail


def test_pinned_key_the_hub_lacks_stops_content_but_not_acks(desk: Desk) -> None:
    engine = desk.engine(
        verifier_factory=lambda keys: ContentVerifier.from_keys_response(keys, "0123456789abcdef")
    )
    alert_id = desk.publish_alert()
    ack = desk.outbox.record(alert_id, "acknowledged", author="agent")

    report = engine.sync_now()

    assert report.content_problem is not None and "IT pinned" in report.content_problem
    assert desk.cache.playbooks() == []
    assert desk.acks_on_hub(alert_id) == [ack.ack_id]
    assert engine.status.state is ConnectionState.ONLINE
    assert "IT pinned" in engine.status.detail


def test_changed_hub_key_is_refused_until_trust_is_reset(
    desk: Desk, start_hub: Callable[..., EmbeddedHub], tmp_path: Path
) -> None:
    desk.engine().sync_now()
    # Another hub, with its own content key, now answers for this client.
    other = start_hub(data_dir=tmp_path / "other-hub")
    other.store.content.upsert(
        "playbook",
        "pb-other",
        {
            "title": "Other hub's playbook",
            "category": "x",
            "severity": "minor",
            "summary": "s",
            "steps": ["one"],
        },
        other.app.state.signer,
    )
    secret = create_user(other.store, "agent")
    client = HubClient(other.url, allow_plain_http=True)
    client.set_access_token(sign_in(other.url, "agent", DEFAULT_PASSWORD, secret)["access_token"])
    engine = SyncEngine(
        client,
        desk.cache,
        desk.outbox,
        verifier_factory=trust_on_first_use,
        session=FixedSession("agent"),
    )
    known = len(desk.cache.playbooks())

    refused = engine.sync_now()

    assert refused.content_problem is not None
    assert "content-signing key has changed" in refused.content_problem
    assert len(desk.cache.playbooks()) == known  # what was trusted still opens
    assert desk.cache.playbook("pb-other") is None

    engine.reset_content_trust()
    engine.sync_now()

    assert [p.id for p in desk.cache.playbooks()] == ["pb-other"]
    client.close()


def test_auth_needed_when_the_hub_wants_a_sign_in(desk: Desk) -> None:
    desk.client.set_access_token(None)
    engine = desk.engine()

    with pytest.raises(AuthRequired):
        engine.sync_now()

    assert engine.status.state is ConnectionState.AUTH_NEEDED


def test_full_resync_after_a_quarantined_cache(desk: Desk, tmp_path: Path) -> None:
    desk.engine().sync_now()
    count = len(desk.cache.playbooks())
    desk.cache.close()
    path = tmp_path / "client" / "cache.sqlite3"
    path.write_bytes(b"\x00garbage" * 1000)

    desk.cache = Cache.open(path)
    assert desk.cache.quarantined is not None
    desk.engine().sync_now()

    assert len(desk.cache.playbooks()) == count


def test_offline_then_back_every_queued_ack_arrives_once(
    desk: Desk, start_hub: Callable[..., EmbeddedHub]
) -> None:
    alert_id = desk.publish_alert()
    statuses: list[SyncStatus] = []
    engine = desk.engine(interval=300.0)
    engine.status_changed.connect(statuses.append)
    engine.start()
    try:
        wait_until(lambda: engine.status.last_synced_at is not None, timeout=15)
        port = desk.hub.port
        desk.hub.stop()

        engine.request_sync()
        wait_until(lambda: engine.status.state is ConnectionState.OFFLINE, timeout=15)
        assert isinstance(statuses[-1], SyncStatus)
        # Working from the cache: the library and search do not need the hub.
        assert desk.cache.playbook("pb-video-visit-outage") is not None
        assert desk.cache.search("video outage")
        recorded = [
            desk.outbox.record(alert_id, "acknowledged", f"note {n}", author="agent")
            for n in range(7)
        ]
        with pytest.raises(HubOffline):
            engine.flush_now()
        assert desk.outbox.counts() == OutboxCounts(7, 0, 0, (("agent", 7),))
        wait_until(lambda: engine.status.pending_acks == 7, timeout=5)

        desk.hub = start_hub(port=port)  # same data dir, same address
        engine.network_changed()
        wait_until(lambda: engine.status.pending_acks == 0, timeout=15)
        wait_until(lambda: engine.status.state is ConnectionState.ONLINE, timeout=15)

        on_hub = desk.acks_on_hub(alert_id)
        assert sorted(on_hub) == sorted(ack.ack_id for ack in recorded)
        assert len(on_hub) == len(set(on_hub)) == 7
        assert desk.outbox.counts() == OutboxCounts(0, 7, 0)
    finally:
        engine.stop()


def test_a_recorded_ack_is_sent_without_waiting_for_the_interval(desk: Desk) -> None:
    alert_id = desk.publish_alert()
    engine = desk.engine(interval=300.0)
    engine.start()
    try:
        wait_until(lambda: engine.status.last_synced_at is not None, timeout=15)
        ack = desk.outbox.record(alert_id, "escalated", "Shift lead called", author="agent")
        wait_until(lambda: desk.outbox.counts().synced == 1, timeout=15)
        assert desk.acks_on_hub(alert_id) == [ack.ack_id]
    finally:
        engine.stop()


def test_rejected_ack_is_kept_and_counted(desk: Desk) -> None:
    engine = desk.engine()
    unknown = desk.outbox.record(
        "00000000-0000-4000-8000-000000000000", "acknowledged", author="agent"
    )

    engine.sync_now()

    (kept,) = desk.outbox.rejected()
    assert (kept.ack_id, kept.error) == (unknown.ack_id, "unknown_alert")
    assert engine.status.rejected_acks == 1


def test_stop_ends_the_background_thread(desk: Desk) -> None:
    engine = desk.engine(interval=300.0)
    engine.start()
    wait_until(lambda: engine.status.last_synced_at is not None, timeout=15)

    engine.stop()

    assert engine._thread is not None and not engine._thread.is_alive()
