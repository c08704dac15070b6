"""The incident model in the store: changes share the publish sequence, audiences fix their
targets at publish, and a viewer reads only what targets them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.clock import ManualClock
from hub.storage import Store
from hub.storage.alerts import AlertClosed, UnknownAlert, Viewer
from tests.hubtools import create_user


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "hub.sqlite3", ManualClock(1_800_000_000.0))
    yield opened
    opened.close()


def _publish(store: Store, **extra: object) -> str:
    alert, _ = store.alerts.publish(
        severity="major",
        title="Video visits down",
        body="Move to phone visits.",
        playbook_id=None,
        template_ids=[],
        requires_ack=True,
        expires_at=None,
        issued_by="dana",
        **extra,  # type: ignore[arg-type]
    )
    return alert.id


def test_each_change_takes_the_next_seq_and_re_serves_the_whole_alert(store: Store) -> None:
    first = _publish(store)
    second = _publish(store)
    updated = store.alerts.change(
        first, kind="update", text="Phone visits only until 10:00", by="dana", severity="critical"
    )
    assert updated.seq == 3
    assert updated.first_seq == 1
    assert updated.severity == "critical"
    assert [change.number for change in updated.changes] == [1]

    page = store.alerts.since(2, 10)
    assert [(alert.id, alert.seq) for alert in page.alerts] == [(first, 3)]
    assert page.last_seq == 3
    # Every kept alert once, in the order of its latest change.
    assert [alert.id for alert in store.alerts.since(None, 10).alerts] == [second, first]
    assert store.alerts.last_seq() == 3

    resolved = store.alerts.change(first, kind="resolved", text="Vendor fixed it", by="dana")
    assert (resolved.status, resolved.seq, resolved.next_update_by) == ("resolved", 4, None)
    wire = resolved.to_wire()
    assert wire["revision"] == 2
    assert [update["kind"] for update in wire["updates"]] == ["update", "resolved"]
    with pytest.raises(AlertClosed):
        store.alerts.change(first, kind="update", text="late", by="dana")
    with pytest.raises(UnknownAlert):
        store.alerts.change(
            "00000000-0000-0000-0000-000000000000", kind="update", text="x", by=None
        )
    # A new alert still comes after every change.
    assert store.alerts.get(_publish(store)).seq == 5  # type: ignore[union-attr]


def test_an_audience_fixes_its_targets_and_hides_the_alert_from_other_agents(store: Store) -> None:
    for name in ("ana", "ben", "cy"):
        create_user(store, name)
    create_user(store, "dana", role="dispatcher")
    store.groups.create("West", "region")
    store.groups.add_members("west", ["ana", "dana"])
    everyone = _publish(store)
    west = _publish(store, audience=["WEST"])
    # Joining after the publish does not make an agent a target.
    store.groups.add_members("West", ["ben"])

    assert store.alerts.targets(everyone) == ["ana", "ben", "cy"]
    assert store.alerts.targets(west) == ["ana"]
    seen_by = {
        name: [a.id for a in store.alerts.since(None, 10, Viewer(name, sees_all=False)).alerts]
        for name in ("ana", "ben", "cy")
    }
    assert seen_by == {"ana": [everyone, west], "ben": [everyone], "cy": [everyone]}
    overseer = Viewer("dana", sees_all=True)
    assert [a.id for a in store.alerts.since(None, 10, overseer).alerts] == [everyone, west]


def test_purge_takes_every_kept_row_of_an_alert(store: Store) -> None:
    create_user(store, "ana")
    alert_id = _publish(store)
    store.alerts.change(alert_id, kind="update", text="news", by="dana")
    clock = store.alerts._clock
    assert isinstance(clock, ManualClock)
    clock.advance(31 * 86_400)
    assert store.alerts.purge_expired(30 * 86_400) == 1
    with store.db.read() as conn:
        for table in ("alert_changes", "alert_targets"):
            assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0
    page = store.alerts.since(1, 10)
    assert page.gap and page.last_seq == 2
