"""The fallback task: targets of an open critical alert with no receipt in time are marked
unreachable and notified once per channel, also with two hub processes on one data dir.

The channels here record the notices they are given; the real mail and webhook channels are
tested in tests/hub/notifiers/."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from hub.clock import ManualClock
from hub.config import HubSettings
from hub.fallback import FallbackTask
from hub.notifiers import DeliveryOutcome, FallbackNotice
from hub.server import EmbeddedHub
from hub.storage.alerts import NewAck
from hub.storage.audit import AuditQuery
from hub.storage.delivery import NewReceipt
from tests.hub.devices import publish_in_store
from tests.hubtools import create_user, wait_until

SECRET = "smtp-password-hunter2"


class RecordingChannel:
    """A fallback channel that keeps every notice it is asked to send."""

    def __init__(self, name: str, ok: bool = True) -> None:
        self.name = name
        self.ok = ok
        self.sent: list[FallbackNotice] = []
        self._lock = threading.Lock()

    def send(self, notice: FallbackNotice) -> DeliveryOutcome:
        with self._lock:
            self.sent.append(notice)
        return DeliveryOutcome(self.name, self.ok, "queued" if self.ok else "gateway said 503")


class BrokenChannel:
    """A channel that breaks its promise never to raise, with a secret in the message."""

    name = "webhook"

    def send(self, notice: FallbackNotice) -> DeliveryOutcome:
        raise ConnectionError(f"login failed for {SECRET}")


@pytest.fixture
def two_processes(
    manual_clock: ManualClock, hub_settings: HubSettings
) -> Iterator[tuple[EmbeddedHub, EmbeddedHub, RecordingChannel, RecordingChannel]]:
    mail, pager = RecordingChannel("mail"), RecordingChannel("pager", ok=False)
    with ExitStack() as stack:
        first = stack.enter_context(EmbeddedHub(hub_settings, fallback_channels=[mail, pager]))
        second = stack.enter_context(EmbeddedHub(hub_settings, fallback_channels=[mail, pager]))
        yield first, second, mail, pager


def test_each_unreached_target_is_notified_once_per_channel_across_two_processes(
    manual_clock: ManualClock,
    two_processes: tuple[EmbeddedHub, EmbeddedHub, RecordingChannel, RecordingChannel],
) -> None:
    first, second, mail, pager = two_processes
    store = first.store
    for name in ("ana", "bob", "cy", "dan"):
        create_user(store, name, "agent")
    with store.db.write() as conn:
        conn.execute(
            "UPDATE users SET phone = '+1-555-0100', fallback_email = 'cy@pager.example' "
            "WHERE username = 'cy'"
        )
    live = publish_in_store(first, title="Video visits down <b>\u202e")
    drill = publish_in_store(first, drill=True, title="Drill")
    publish_in_store(first, severity="major")
    closed = publish_in_store(first)
    store.alerts.change(closed.id, kind="resolved", text="Fixed", by="dora")
    store.delivery.record_receipts(
        "ana",
        ("dev-a", "Desk PC"),
        [NewReceipt(live.id, round(manual_clock.now() * 1000), None)],
        clock_skew_ms=0,
        sees_all=False,
    )
    store.alerts.record_acks(
        "bob",
        [NewAck("6f1c2a9e-3b8d-4c57-9e21-0d4f5a6b7c8d", live.id, "unable", None, 0)],
        clock_skew_ms=10**15,
    )
    tasks = [hub.fallback for hub in (first, second)]

    assert [task.run_pass() for task in tasks] == [0, 0], "nothing is due before 120 s"
    manual_clock.advance(121)
    with ThreadPoolExecutor(max_workers=20) as pool:
        claimed = list(pool.map(lambda n: tasks[n % 2].run_pass(), range(20)))

    expected = {(live.id, "cy"), (live.id, "dan")} | {
        (drill.id, name) for name in ("ana", "bob", "cy", "dan")
    }
    for channel in (mail, pager):
        sent = [(notice.alert_id, notice.username) for notice in channel.sent]
        assert sorted(sent) == sorted(expected), f"{channel.name} sent twice or missed one"
    assert sum(claimed) == 2 * len(expected)
    cy = next(n for n in mail.sent if n.alert_id == live.id and n.username == "cy")
    assert (cy.title, cy.severity, cy.drill, cy.phone, cy.fallback_email) == (
        "Video visits down <b>\u202e",
        "critical",
        False,
        "+1-555-0100",
        "cy@pager.example",
    )
    assert cy.issued_at == live.issued_at
    assert not hasattr(cy, "body"), "a notice never carries the alert's body"
    assert all(n.drill for n in mail.sent if n.alert_id == drill.id)

    with store.db.read() as conn:
        rows = conn.execute(
            "SELECT channel, ok, sent_at IS NOT NULL, detail FROM fallback_notices"
        ).fetchall()
    assert sorted(set(map(tuple, rows))) == [
        ("mail", 1, 1, "queued"),
        ("pager", 0, 1, "gateway said 503"),
    ]
    assert len(rows) == 2 * len(expected)
    events = store.audit.query(AuditQuery(event="fallback.sent", limit=1000))
    assert len(events) == 2 * len(expected)
    assert {event.outcome for event in events} == {"ok", "failed"}
    assert all(set(event.detail) == {"username", "channel", "drill"} for event in events)
    # A later pass finds nothing left to do.
    assert [task.run_pass() for task in tasks] == [0, 0]


def test_without_channels_targets_are_still_marked_unreachable(
    manual_clock: ManualClock, hub: EmbeddedHub
) -> None:
    create_user(hub.store, "ana", "agent")
    alert = publish_in_store(hub)
    manual_clock.advance(121)

    assert hub.fallback.run_pass() == 1

    delivery = hub.store.delivery.delivery(alert.id)
    assert delivery is not None
    row = delivery.to_wire()["agents"][0]
    assert (row["username"], row["state"]) == ("ana", "silent")
    assert row["unreachable_marked_at"] is not None
    assert [(f["channel"], f["ok"], f["sent_at"]) for f in row["fallback"]] == [
        ("none", False, None)
    ]
    [event] = hub.store.audit.query(AuditQuery(event="fallback.sent"))
    assert (event.subject, event.outcome) == (alert.id, "no_channel")


def test_a_channel_that_raises_is_recorded_failed_without_its_message(
    manual_clock: ManualClock, hub: EmbeddedHub, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("ana", "bob", "cy"):
        create_user(hub.store, name, "agent")
    publish_in_store(hub)
    manual_clock.advance(121)
    mail = RecordingChannel("mail")
    task = FallbackTask(hub.store, [BrokenChannel(), mail], pass_limit=2)

    with caplog.at_level(logging.DEBUG):
        first_pass = task.run_pass()
    second_pass = task.run_pass()

    assert (first_pass, second_pass) == (4, 2), "at most pass_limit targets per pass"
    assert sorted(n.username for n in mail.sent) == ["ana", "bob", "cy"]
    with hub.store.db.read() as conn:
        details = {
            row[0]
            for row in conn.execute("SELECT detail FROM fallback_notices WHERE channel = 'webhook'")
        }
    assert details == {"the channel failed (ConnectionError)"}
    events = hub.store.audit.query(AuditQuery(event="fallback.sent"))
    assert SECRET not in repr(events)
    assert SECRET not in caplog.text


@pytest.mark.slow
def test_the_hub_runs_the_fallback_by_itself(
    manual_clock: ManualClock, hub_settings: HubSettings
) -> None:
    mail = RecordingChannel("mail")
    with EmbeddedHub(hub_settings, fallback_channels=[mail]) as running:
        create_user(running.store, "ana", "agent")
        alert = publish_in_store(running)
        manual_clock.advance(121)
        # The first pass comes 5 s after start, then every 5 s.
        wait_until(lambda: len(mail.sent) > 0, timeout=20)

    assert [(n.alert_id, n.username) for n in mail.sent] == [(alert.id, "ana")]
