"""Each target's first receipt and first answer, kept on its alert_targets row by the database's
triggers: right whatever order, number, device or concurrency the receipts and answers come in,
never touched by a non-target, and filled in by the migration from the rows a hub already held."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.clock import ManualClock, SystemClock, rfc3339
from hub.config import HubSettings
from hub.reports import build_report
from hub.server import EmbeddedHub
from hub.storage import MIGRATIONS, Store, reports
from hub.storage.db import SqliteDatabase
from tests.hub.devices import get, post, publish_in_store, sign_in_device
from tests.hub.report_scenario import PERIOD_END, T0, add_user, answer, fill, publish, receipt
from tests.hubtools import access_token, create_user

PARALLEL = 40
_CODES = {"acknowledged": 0, "escalated": 1, "unable": 2}


@dataclass
class World:
    """One hub for this module: sign-ins cost a password hash each, so they are made once."""

    hub: EmbeddedHub
    dispatcher: str
    ana_laptop: str
    ana_phone: str
    ben: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = Path(tmp_path_factory.mktemp("firsts")) / "hub-data"
    hub = EmbeddedHub(HubSettings(data_dir=data, clock=SystemClock())).start()
    try:
        dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
        secret = create_user(hub.store, "ana", "agent")
        ana_laptop = sign_in_device(hub, "ana", secret, "dev-laptop", "Laptop")
        ana_phone = sign_in_device(hub, "ana", secret, "dev-phone", "Phone")
        ben = access_token(hub.store, hub.url, "ben", "agent")
        yield World(hub, dispatcher, ana_laptop, ana_phone, ben)
    finally:
        hub.stop()


def _firsts(store: Store, alert_id: str) -> dict[str, tuple[Any, Any]]:
    with store.db.read() as conn:
        rows = conn.execute(
            "SELECT username, first_received_ms, first_answer FROM alert_targets "
            "WHERE alert_id = ? ORDER BY username",
            (alert_id,),
        ).fetchall()
    return {str(row[0]): (row[1], row[2]) for row in rows}


def _from_raw_rows(store: Store, alert_id: str, username: str) -> tuple[Any, Any]:
    """The firsts as the report looked them up before the triggers kept them."""
    with store.db.read() as conn:
        received = conn.execute(
            "SELECT MIN(received_at_ms) FROM alert_receipts WHERE alert_id = ? AND username = ?",
            (alert_id, username),
        ).fetchone()[0]
        packed = conn.execute(
            "SELECT MIN(acted_at_ms * 4 + CASE action WHEN 'acknowledged' THEN 0 "
            "WHEN 'escalated' THEN 1 ELSE 2 END) FROM alert_acks "
            "WHERE alert_id = ? AND username = ?",
            (alert_id, username),
        ).fetchone()[0]
    return received, packed


def _receipts(hub: EmbeddedHub, token: str, alert_id: str, *times: float) -> None:
    items = [{"alert_id": alert_id, "received_at": rfc3339(at)} for at in times]
    response = post(hub, "/v1/receipts", token, {"receipts": items})
    assert response.status_code == 200, response.text
    assert {result["status"] for result in response.json()["results"]} == {"accepted"}


def _acks(hub: EmbeddedHub, token: str, alert_id: str, *answers: tuple[str, float]) -> None:
    items = [
        {"ack_id": str(uuid.uuid4()), "alert_id": alert_id, "action": action, "acted_at": at}
        for action, at in ((action, rfc3339(at)) for action, at in answers)
    ]
    response = post(hub, "/v1/acks", token, {"acks": items})
    assert response.status_code == 200, response.text
    assert {result["status"] for result in response.json()["results"]} == {"accepted"}


def _ms(at: float) -> int:
    return round(at * 1000)


def test_firsts_stay_the_earliest_whatever_order_device_copy_or_concurrency(
    world: World,
) -> None:
    hub = world.hub
    alert = publish_in_store(hub)
    issued = alert.issued_at
    # Someone who became an agent after the publish sees the alert but was never its target.
    outsider = access_token(hub.store, hub.url, "late", "agent")

    # ana: her laptop reports late first, her phone earlier, the laptop again later (must not
    # raise the first), then earlier still (the receipt's upsert lowers it: the UPDATE trigger).
    _receipts(hub, world.ana_laptop, alert.id, issued + 30)
    _receipts(hub, world.ana_phone, alert.id, issued + 12)
    _receipts(hub, world.ana_laptop, alert.id, issued + 40, issued + 40)
    _receipts(hub, world.ana_laptop, alert.id, issued + 7.5)
    # Her answers arrive out of order: escalated at 50 s, then unable at 20 s from her phone,
    # then acknowledged at 90 s; the first is the unable at 20 s.
    _acks(hub, world.ana_laptop, alert.id, ("escalated", issued + 50))
    _acks(hub, world.ana_phone, alert.id, ("unable", issued + 20))
    _acks(hub, world.ana_laptop, alert.id, ("acknowledged", issued + 90))

    # ben: 40 receipts and 40 answers at once, at shuffled times from 100 s down to 61 s.
    offsets = list(range(61, 61 + PARALLEL))
    random.Random(4).shuffle(offsets)
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        work = [pool.submit(_receipts, hub, world.ben, alert.id, issued + o) for o in offsets]
        work += [
            pool.submit(_acks, hub, world.ben, alert.id, ("acknowledged", issued + o))
            for o in offsets
        ]
        for done in work:
            done.result()

    # The outsider's receipt and answer, earliest of all, belong to no target.
    _receipts(hub, outsider, alert.id, issued + 1)
    _acks(hub, outsider, alert.id, ("acknowledged", issued + 1))

    firsts = _firsts(hub.store, alert.id)
    assert firsts == {
        "ana": (_ms(issued + 7.5), _ms(issued + 20) * 4 + _CODES["unable"]),
        "ben": (_ms(issued + 61), _ms(issued + 61) * 4 + _CODES["acknowledged"]),
    }
    # What the triggers keep is what the raw rows say; the outsider got no target row.
    for name in ("ana", "ben"):
        assert firsts[name] == _from_raw_rows(hub.store, alert.id, name)
    assert "late" not in firsts

    response = get(
        hub,
        "/v1/reports/kpis",
        world.dispatcher,
        since=rfc3339(issued - 1),
        until=rfc3339(issued + 1),
    )
    assert response.status_code == 200, response.text
    [row] = response.json()["alerts"]
    assert (row["targeted"], row["delivered"], row["answered"]) == (2, 2, 2)
    # Earliest receipts 7.5 and 61 s; first answers 20 s (unable) and 61 s (acknowledged).
    assert row["first_delivery_seconds"] == 7.5
    assert (row["acknowledged"], row["escalated"], row["unable"]) == (1, 0, 1)
    assert (row["ack_median_seconds"], row["ack_p90_seconds"]) == (20.0, 61.0)
    # Neither the outsider's 1 s nor ana's later answers count.
    assert row["delivered_within_1m_share"] == 0.5


def test_years_1_and_9999_and_a_username_in_another_case_keep_their_firsts(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    store = Store.open(tmp_path / "hub.sqlite3", clock)
    try:
        add_user(store, "ana")
        add_user(store, "ben")
        alert_id = publish(store)
        year_9999_ms = 253_402_300_799_999
        year_1_ms = -62_135_596_800_000
        # Receipts inserted straight into the table, as another tool might: the triggers keep
        # the firsts whoever writes, and whatever the case of the username.
        receipt(store, alert_id, "ana", "d1", year_9999_ms / 1000)
        receipt(store, alert_id, "ANA", "d2", year_1_ms / 1000)
        receipt(store, alert_id, "ben", "d1", year_9999_ms / 1000)
        with store.db.write() as conn:
            conn.execute(
                "INSERT INTO alert_acks (ack_id, alert_id, username, action, acted_at_ms, "
                "received_at_ms) VALUES (?, ?, 'Ben', 'unable', ?, 0), (?, ?, 'ben', "
                "'escalated', ?, 0)",
                (str(uuid.uuid4()), alert_id, year_9999_ms, str(uuid.uuid4()), alert_id, year_1_ms),
            )
        assert _firsts(store, alert_id) == {
            "ana": (year_1_ms, None),
            "ben": (year_9999_ms, year_1_ms * 4 + _CODES["escalated"]),
        }
        [row] = build_report(
            store, since=T0, until=T0 + 1, drill=False, group=None, now=T0 + 1
        ).to_wire()["alerts"]
    finally:
        store.close()
    # A receipt at year 1 counts as delivered at once; one at year 9999 is delivered, late.
    assert (row["delivered"], row["first_delivery_seconds"], row["delivered_within_1m_share"]) == (
        2,
        0.0,
        0.5,
    )
    # ben's first answer is the escalation stamped year 1: taken apart again, floored at 0.
    assert (row["answered"], row["escalated"], row["unable"], row["ack_median_seconds"]) == (
        1,
        1,
        0,
        0.0,
    )


def _anonymous(report: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    """The report with each alert id replaced by its position, so two databases compare."""
    text = json.dumps(report)
    for number, alert_id in enumerate(ids):
        text = text.replace(alert_id, f"alert-{number}")
    anonymous: dict[str, Any] = json.loads(text)
    return anonymous


def _scenario_report(store: Store) -> dict[str, Any]:
    wire: dict[str, Any] = build_report(
        store, since=T0, until=PERIOD_END, drill=False, group=None, now=PERIOD_END
    ).to_wire()
    return wire


@pytest.mark.sqlite_only
def test_a_database_migrated_with_its_answers_and_receipts_reports_the_same_figures(
    tmp_path: Path,
) -> None:
    # The scenario written by a hub of the previous schema, then opened by this one.
    old_path = tmp_path / "old.sqlite3"
    old_db = SqliteDatabase(old_path)
    old_db.migrate(MIGRATIONS[: MIGRATIONS.index(reports.FIRSTS_SCHEMA)])
    clock = ManualClock(T0)
    old_scenario = fill(Store(old_db, clock), clock)
    with old_db.read() as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(alert_targets)")}
    assert "first_answer" not in columns
    old_db.close()
    migrated = Store.open(old_path, ManualClock(PERIOD_END))
    # The same scenario written by this hub, with the triggers keeping the firsts as it goes.
    clock = ManualClock(T0)
    fresh = Store.open(tmp_path / "fresh.sqlite3", clock)
    try:
        fresh_scenario = fill(fresh, clock)
        migrated_report = _scenario_report(migrated)
        fresh_report = _scenario_report(fresh)
        with migrated.db.read() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        for name in ("ana", "ben", "cy", "dee", "old", "dana"):
            assert _firsts(migrated, old_scenario.everyone).get(name) == _firsts(
                fresh, fresh_scenario.everyone
            ).get(name)
    finally:
        migrated.close()
        fresh.close()

    assert version == len(MIGRATIONS)
    old_ids = [old_scenario.everyone, old_scenario.west, old_scenario.drill]
    new_ids = [fresh_scenario.everyone, fresh_scenario.west, fresh_scenario.drill]
    assert _anonymous(migrated_report, old_ids) == _anonymous(fresh_report, new_ids)
    # And both are the hand-worked figures (tests/hub/test_reports.py), not equally wrong.
    totals = migrated_report["totals"]
    assert (totals["targeted"], totals["delivered"], totals["answered"]) == (7, 5, 3)
    assert (totals["ack_median_seconds"], totals["ack_p90_seconds"]) == (40.0, 100.0)
    assert (totals["acknowledged"], totals["escalated"], totals["unable"]) == (1, 1, 1)
    assert totals["first_delivery_seconds"] == 0.0


def test_a_second_answer_never_replaces_the_first_and_nothing_else_changes(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    store = Store.open(tmp_path / "hub.sqlite3", clock)
    try:
        add_user(store, "ana")
        alert_id = publish(store)
        clock.advance(100)
        answer(store, "ana", alert_id, "escalated", T0 + 10)
        before = _firsts(store, alert_id)
        answer(store, "ana", alert_id, "acknowledged", T0 + 30)
        receipt(store, alert_id, "ana", "d1", T0 + 5)
        after = _firsts(store, alert_id)
    finally:
        store.close()
    assert before == {"ana": (None, _ms(T0 + 10) * 4 + _CODES["escalated"])}
    assert after == {"ana": (_ms(T0 + 5), _ms(T0 + 10) * 4 + _CODES["escalated"])}
