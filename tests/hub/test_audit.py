"""The audit trail's store: what one event holds, its filters, and the retention purge."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from hub.audit_export import write_csv
from hub.clock import ManualClock
from hub.config import HubSettings
from hub.server import EmbeddedHub
from hub.storage import Store
from hub.storage.audit import AuditQuery
from tests.hubtools import wait_until

DAY = 86400


def test_the_default_retention_is_six_years_and_it_must_be_positive(
    hub_settings: HubSettings,
) -> None:
    assert hub_settings.audit_retention_days == 2192
    assert hub_settings.audit_retention_seconds == 2192 * DAY
    for days in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="audit_retention_days"):
            replace(hub_settings, audit_retention_days=days)


def test_an_event_keeps_its_fields_and_caps_hostile_sizes(
    hub_settings: HubSettings, manual_clock: ManualClock
) -> None:
    store = Store.open(hub_settings.database, manual_clock)
    try:
        store.audit.record(
            "user.created",
            actor="root",
            subject="<b>\u202eadmin</b>",
            source="::1",
            detail={"role": "agent", "count": -1, "none": None, "huge": "x" * 1_000_000},
        )
        store.audit.record_each("ack.recorded", actor="ann", items=[])
        (event,) = store.audit.query(AuditQuery())
    finally:
        store.close()

    assert (event.event, event.actor, event.subject, event.source, event.outcome) == (
        "user.created",
        "root",
        "<b>\u202eadmin</b>",
        "::1",
        "ok",
    )
    assert event.detail == {"role": "agent", "count": -1, "none": None, "huge": "x" * 200}
    assert event.at == manual_clock.now()


def test_filters_match_time_user_in_any_case_and_event_prefixes(
    hub_settings: HubSettings, manual_clock: ManualClock
) -> None:
    store = Store.open(hub_settings.database, manual_clock)
    try:
        start = manual_clock.now()
        store.audit.record("signin.ok", actor="Ann", subject="Ann")
        manual_clock.advance(60)
        store.audit.record("user.disabled", actor="root", subject="ann")
        store.audit.record("user.enabled", actor="root", subject="bob")
        store.audit.record("user_disabled_lookalike", actor="root", subject="bob")

        def events(query: AuditQuery) -> list[str]:
            return [item.event for item in store.audit.query(query)]

        assert events(AuditQuery(user="ANN")) == ["signin.ok", "user.disabled"]
        assert events(AuditQuery(event="user.*")) == ["user.disabled", "user.enabled"]
        assert events(AuditQuery(event="user.disabled")) == ["user.disabled"]
        assert events(AuditQuery(since=start + 1)) == [
            "user.disabled",
            "user.enabled",
            "user_disabled_lookalike",
        ]
        assert events(AuditQuery(until=start + 1)) == ["signin.ok"]
        assert events(AuditQuery(event="%")) == events(AuditQuery(event="_*")) == []
        assert events(AuditQuery(limit=1, after=1)) == ["user.disabled"]
    finally:
        store.close()


def test_events_past_the_retention_period_are_purged_when_the_hub_starts(
    start_hub: Callable[..., EmbeddedHub], hub_settings: HubSettings, manual_clock: ManualClock
) -> None:
    store = Store.open(hub_settings.database, manual_clock)
    try:
        store.audit.record("old.event", actor="root")
        manual_clock.advance(10 * DAY)
        store.audit.record("recent.event", actor="root")
        manual_clock.advance(5 * DAY)
    finally:
        store.close()

    hub = start_hub(audit_retention_days=7)

    def kept() -> list[str]:
        return [item.event for item in hub.store.audit.query(AuditQuery())]

    wait_until(lambda: kept() == ["recent.event"], timeout=10)


@pytest.mark.sqlite_only
def test_an_existing_hub_database_gains_the_trail_and_its_users_stay_enabled(
    hub_settings: HubSettings, manual_clock: ManualClock
) -> None:
    from hub.storage import MIGRATIONS
    from hub.storage.db import SqliteDatabase

    hub_settings.data_dir.mkdir(parents=True)
    before = SqliteDatabase(hub_settings.database_path)
    try:
        before.migrate(MIGRATIONS[:1])
        with before.write() as conn:
            conn.execute(
                """
                INSERT INTO users (username, display_name, role, password_hash, totp_secret,
                                   created_at)
                VALUES ('old-timer', 'Old Timer', 'agent', 'hash', 'secret', 0)
                """
            )
    finally:
        before.close()

    store = Store.open(hub_settings.database, manual_clock)
    try:
        user = store.accounts.user_summary(username="old-timer")
        store.audit.record("user.enabled", actor="root", subject="old-timer")
        assert [item.subject for item in store.audit.query(AuditQuery())] == ["old-timer"]
    finally:
        store.close()
    assert user is not None and user.disabled_at is None


def test_the_csv_export_quotes_a_carriage_return_inside_a_cell(tmp_path: Path) -> None:
    # Rows end in CRLF: with LF endings a lone CR inside a cell went out unquoted, and a reader
    # that treats CR as a line end split the event in two.
    store = Store.open(tmp_path / "hub.sqlite3", ManualClock())
    try:
        store.audit.record(
            "user.created",
            actor="ada",
            subject="line one\rline two",
            source="127.0.0.1",
            outcome="ok",
            detail={},
        )
        out = io.StringIO(newline="")
        write_csv(store.audit.query(AuditQuery()), out)
    finally:
        store.close()
    text = out.getvalue()
    assert text.endswith("\r\n") and text.count("\r\n") == 2
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert [row[4] for row in rows] == ["subject", "line one\rline two"]
