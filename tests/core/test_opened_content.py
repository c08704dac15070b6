"""Governance: the playbook and template versions an agent opened for an alert are kept per user
and sent with that user's answer to it as `opened`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.core.cache import Cache
from client.core.hub_client import HubClient
from client.core.opened import MAX_OPENED_PER_ACK, OpenedContent, OpenedItem
from client.core.outbox import _SCHEMA, AckState, Outbox, OutboxFlusher
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, create_user, publish_alert, sign_in

ALERT_ID = "6f1c1f7e-8f0e-4d57-9a39-0b4b3e1f2a10"


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    opened = Cache.open(tmp_path / "cache.sqlite3")
    yield opened
    opened.close()


def open_outbox(path: Path, log: OpenedContent) -> Outbox:
    return Outbox.open(path, opened_lookup=log.for_alert)


def test_an_ack_carries_what_its_author_opened_for_that_alert(cache: Cache, tmp_path: Path) -> None:
    user: list[str | None] = ["alex"]
    log = OpenedContent(cache, lambda: user[0])
    assert log.opened(ALERT_ID, "playbook", "pb-video", 3)
    assert log.opened(ALERT_ID, "template", "tpl-sms", 1)
    assert log.opened(ALERT_ID, "playbook", "pb-video", 3), "a second look is harmless"
    assert log.opened("another-alert", "template", "tpl-other", 2)
    user[0] = "blair"
    assert log.opened(ALERT_ID, "template", "tpl-blair", 7)
    user[0] = None
    assert not log.opened(ALERT_ID, "template", "tpl-nobody", 1)

    outbox = open_outbox(tmp_path / "outbox.sqlite3", log)
    try:
        ack = outbox.record(ALERT_ID, "acknowledged", author="alex")
        expected = (OpenedItem("playbook", "pb-video", 3), OpenedItem("template", "tpl-sms", 1))
        assert ack.opened == expected
        assert ack.to_json()["opened"] == [
            {"kind": "playbook", "id": "pb-video", "version": 3},
            {"kind": "template", "id": "tpl-sms", "version": 1},
        ]
        # Fixed at record time: opening more later never changes what a resend carries.
        user[0] = "alex"
        log.opened(ALERT_ID, "template", "tpl-later", 1)
        [pending] = outbox.pending(author="alex")
        assert pending.opened == expected
        nothing = outbox.record("another-alert-2", "unable", author="alex")
        assert "opened" not in nothing.to_json(), "an ack with nothing opened stays as in v1"
    finally:
        outbox.close()
    reopened = open_outbox(tmp_path / "outbox.sqlite3", log)
    try:
        assert reopened.pending(author="alex")[0].opened == expected
    finally:
        reopened.close()


@pytest.mark.parametrize(
    ("kind", "item_id", "version"),
    [
        ("script", "pb", 1),
        ("playbook", "", 1),
        ("playbook", "x" * 201, 1),
        ("playbook", "pb", 0),
        ("playbook", "pb", -1),
        ("playbook", "pb", True),
    ],
)
def test_what_the_hub_would_refuse_is_refused_by_name_and_nothing_is_kept(
    cache: Cache, kind: str, item_id: str, version: Any
) -> None:
    log = OpenedContent(cache, lambda: "alex")
    with pytest.raises(ValueError, match=r"opened (kind|id|version)"):
        log.opened(ALERT_ID, kind, item_id, version)
    assert log.for_alert(ALERT_ID, "alex") == ()


def test_hostile_ids_are_kept_as_text_and_at_most_fifty_go_with_an_ack(
    cache: Cache, tmp_path: Path
) -> None:
    log = OpenedContent(cache, lambda: "alex")
    hostile = ["\u202etpl", "<script>x</script>", "x" * 200]
    for item_id in hostile:
        log.opened(ALERT_ID, "template", item_id, 2**62)
    for n in range(60):
        log.opened(ALERT_ID, "playbook", f"pb-{n}", 1)
    outbox = open_outbox(tmp_path / "outbox.sqlite3", log)
    try:
        ack = outbox.record(ALERT_ID, "escalated", author="alex")
    finally:
        outbox.close()
    assert len(ack.opened) == MAX_OPENED_PER_ACK
    assert [item.id for item in ack.opened[:3]] == hostile


def test_an_outbox_from_before_opened_content_is_migrated_with_its_acks(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    old = sqlite3.connect(path)
    for script in _SCHEMA[:2]:
        old.executescript(script)
    old.execute(
        "INSERT INTO acks (ack_id, alert_id, action, acted_at, state, author) "
        "VALUES ('a1', ?, 'acknowledged', '2026-12-03T10:00:00.000Z', 'pending', 'alex')",
        (ALERT_ID,),
    )
    old.execute("PRAGMA user_version = 2")
    old.commit()
    old.close()

    outbox = Outbox.open(path)
    try:
        [ack] = outbox.pending(author="alex")
        assert (ack.ack_id, ack.state, ack.opened) == ("a1", AckState.PENDING, ())
        assert "opened" not in ack.to_json()
    finally:
        outbox.close()


def test_the_hub_takes_an_ack_with_what_was_opened(
    hub: EmbeddedHub, cache: Cache, tmp_path: Path
) -> None:
    agent = sign_in(hub.url, "alex", DEFAULT_PASSWORD, create_user(hub.store, "alex"))
    dispatcher = sign_in(
        hub.url, "dora", DEFAULT_PASSWORD, create_user(hub.store, "dora", "dispatcher")
    )
    alert_id = publish_alert(hub.url, dispatcher["access_token"])["id"]
    log = OpenedContent(cache, lambda: "alex")
    log.opened(alert_id, "playbook", "pb-video-visit-outage", 1)
    outbox = open_outbox(tmp_path / "outbox.sqlite3", log)
    client = HubClient(hub.url, allow_plain_http=True)
    client.set_access_token(agent["access_token"])
    try:
        ack = outbox.record(alert_id, "acknowledged", author="alex")
        report = OutboxFlusher(outbox, client, author="alex").flush()
        stored = outbox.get(ack.ack_id)
        assert stored is not None
        # Accepted, whether the hub keeps `opened` or refused the list (a hub from before it):
        # the answer itself is never lost for the record of what was opened.
        assert (report.synced, report.rejected, stored.state) == (1, 0, AckState.SYNCED)
        assert stored.opened != ()
        assert stored.opened == (OpenedItem("playbook", "pb-video-visit-outage", 1),)
    finally:
        outbox.close()
        client.close()
