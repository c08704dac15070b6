"""A small, hand-checkable incident history for the KPI report tests.

Alerts, changes and answers go through the store's own APIs (AlertStore.publish, change,
record_acks). Receipts, stream presence and survey answers are INSERTed directly: their store
classes are written by other parts of the incident work and are not on this branch.

The figures each test expects are worked out by hand in the comments below.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from hub.clock import ManualClock
from hub.storage import Store
from hub.storage.accounts import Role
from hub.storage.alerts import AckAction, NewAck

T0 = 1_800_000_000.0
PERIOD_END = T0 + 10_000


@dataclass(frozen=True)
class Scenario:
    """The ids of the scenario's alerts."""

    everyone: str  # A1: live, every agent, two updates then resolved
    west: str  # A2: live, group West, retracted
    drill: str  # A3: a drill to every agent, answered by all


def add_user(store: Store, username: str, role: Role = "agent") -> None:
    """A user who never signs in: no password hashing, which would slow these tests down."""
    store.accounts.create_user(
        username=username,
        display_name=username.title(),
        role=role,
        password_hash="never used",
        totp_secret="never used",
    )


def publish(store: Store, title: str = "Video visits down", **extra: object) -> str:
    """Publish an alert through the store as the dispatcher dana; its id."""
    alert, _ = store.alerts.publish(
        severity="critical",
        title=title,
        body="Move today's visits to phone.",
        playbook_id=None,
        template_ids=[],
        requires_ack=True,
        expires_at=None,
        issued_by="dana",
        **extra,  # type: ignore[arg-type]
    )
    return alert.id


def answer(store: Store, username: str, alert_id: str, action: AckAction, acted_at: float) -> None:
    """One answer through AlertStore.record_acks, asserting the hub accepted it."""
    ack = NewAck(str(uuid.uuid4()), alert_id, action, None, round(acted_at * 1000))
    [result] = store.alerts.record_acks(username, [ack])
    assert result.status == "accepted", result


def receipt(store: Store, alert_id: str, username: str, device: str, received_at: float) -> None:
    """A delivery receipt of one device (direct INSERT: no receipt store on this branch)."""
    with store.db.write() as conn:
        conn.execute(
            """
            INSERT INTO alert_receipts (alert_id, username, device_id, device_name,
                received_at_ms, shown_at_ms, reported_at_ms)
            VALUES (?, ?, ?, ?, ?, NULL, ?)
            """,
            (alert_id, username, device, device, round(received_at * 1000), 0),
        )


def presence(
    store: Store, username: str, opened: float, last_seen: float, closed: float | None
) -> None:
    """One stream a hub held (direct INSERT: no presence store on this branch)."""
    with store.db.write() as conn:
        conn.execute(
            """
            INSERT INTO stream_presence (username, device_id, device_name, opened_at,
                last_seen_at, closed_at)
            VALUES (?, 'laptop', 'Laptop', ?, ?, ?)
            """,
            (username, opened, last_seen, closed),
        )


def survey(store: Store, alert_id: str, username: str, clarity: int, templates: int | None) -> None:
    """One post-incident survey answer (direct INSERT: no survey store on this branch)."""
    with store.db.write() as conn:
        conn.execute(
            """
            INSERT INTO survey_answers (survey_id, alert_id, username, clarity, templates,
                comment, answered_at_ms, received_at_ms)
            VALUES (?, ?, ?, ?, ?, NULL, 0, 0)
            """,
            (str(uuid.uuid4()), alert_id, username, clarity, templates),
        )


def fill(store: Store, clock: ManualClock) -> Scenario:
    """The history; the clock must start at T0 and ends at PERIOD_END."""
    assert clock.now() == T0
    for name in ("ana", "ben", "cy", "dee"):
        add_user(store, name)
    add_user(store, "dana", role="dispatcher")
    add_user(store, "old")
    store.groups.create("West", "region")
    store.groups.create("East", "region")
    store.groups.add_members("West", ["ana", "ben"])
    store.groups.add_members("East", ["cy", "dee"])

    # A1 at T0 to every agent: ana, ben, cy, dee and old, who is disabled right after (still a
    # target of A1, but no longer an agent whose reachability counts).
    everyone = publish(store)
    store.accounts.disable_user(username="old")
    # First receipts: ana 3 s (her second device 5 s), ben 90 s, cy's clock 10 s behind
    # (floored to 0), old 200 s, dee none. Delivered 4 of 5; within a minute: ana, cy (0.4).
    receipt(store, everyone, "ana", "d2", T0 + 5)
    receipt(store, everyone, "ana", "d1", T0 + 3)
    receipt(store, everyone, "ben", "d1", T0 + 90)
    receipt(store, everyone, "cy", "d1", T0 - 10)
    receipt(store, everyone, "old", "d1", T0 + 200)
    clock.advance(120)
    # First answers: ana acknowledged at 20 s (her escalation at 50 s is a second answer),
    # cy unable at 40 s, ben escalated at 100 s; dee and old never answer. The dispatcher's
    # answer is not a target's. Times sorted [20, 40, 100]: median (rank 2) 40, p90 (rank 3) 100.
    answer(store, "ana", everyone, "acknowledged", T0 + 20)
    answer(store, "ana", everyone, "escalated", T0 + 50)
    answer(store, "ben", everyone, "escalated", T0 + 100)
    answer(store, "cy", everyone, "unable", T0 + 40)
    answer(store, "dana", everyone, "acknowledged", T0 + 1)
    # Updates at 600 s and 1,500 s: intervals 600 and 900 (mean 750, max 900); resolved at 3,600.
    clock.advance(480)
    store.alerts.change(everyone, kind="update", text="Phone visits only", by="dana")
    clock.advance(900)
    store.alerts.change(everyone, kind="update", text="Vendor engaged", by="dana")
    clock.advance(2100)
    store.alerts.change(everyone, kind="resolved", text="Fixed", by="dana")
    survey(store, everyone, "ana", 4, 5)
    survey(store, everyone, "ben", 2, None)

    # A2 at T0+7,200 to West (ana, ben), retracted 100 s later; ana received it at 30 s.
    clock.advance(3600)
    west = publish(store, title="West phones down", audience=["West"])
    receipt(store, west, "ana", "d1", T0 + 7230)
    clock.advance(100)
    store.alerts.change(west, kind="retracted", text="Wrong region", by="dana")

    # A3, a drill at T0+8,000, answered by all four at once: never in the live figures.
    clock.advance(700)
    drill = publish(store, title="DRILL: phones", drill=True)
    for name in ("ana", "ben", "cy", "dee"):
        receipt(store, drill, name, "d1", T0 + 8001)
    clock.advance(10)
    for name in ("ana", "ben", "cy", "dee"):
        answer(store, name, drill, "acknowledged", T0 + 8005)

    # Streams over [T0, T0+10,000]: ana two overlapping devices [0, 5,000] and [4,000, 6,000]
    # = 6,000 s (0.6); ben [-1,000, 1,000] clipped to 1,000 s (0.1); cy open since 9,000 and
    # seen 10 s ago, so live to now: 1,000 s (0.1); dee open since 2,000 but last seen at
    # 2,500: 500 s (0.05). Mean 0.2125, lowest 0.05; West 0.35 / 0.1, East 0.075 / 0.05.
    presence(store, "ana", T0, T0 + 5000, T0 + 5000)
    presence(store, "ana", T0 + 4000, T0 + 6000, T0 + 6000)
    presence(store, "ben", T0 - 1000, T0 + 1000, T0 + 1000)
    presence(store, "cy", T0 + 9000, T0 + 9990, None)
    presence(store, "dee", T0 + 2000, T0 + 2500, None)
    presence(store, "dana", T0, T0 + 9990, None)
    clock.advance(PERIOD_END - clock.now())
    return Scenario(everyone=everyone, west=west, drill=drill)
