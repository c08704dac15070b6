"""The tray's look for every connection, VPN, outbox and alert state, and its tooltip in words."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from client.core.status import AppStatus, TrayLook, tray_look

NOW = datetime(2026, 11, 27, 10, 50, tzinfo=UTC)
SYNCED = datetime(2026, 11, 27, 10, 42, tzinfo=UTC)


def look(**fields: Any) -> TrayLook:
    defaults: dict[str, Any] = {"connection": "online", "last_synced_at": SYNCED}
    return tray_look(AppStatus(**{**defaults, **fields}), now=NOW, tz=UTC)


def test_connected_with_vpn_and_nothing_waiting() -> None:
    result = look(vpn_on=True, signed_in_user="alice")
    assert result == TrayLook(
        icon="connected",
        badge_count=0,
        tooltip="Connected to hub as alice · VPN on · Last synced 10:42",
    )


def test_pending_acks_show_a_count_and_say_they_wait() -> None:
    result = look(vpn_on=True, pending_acks=2)
    assert (result.icon, result.badge_count) == ("pending", 2)
    assert result.tooltip == (
        "Connected to hub · VPN on · 2 acknowledgements waiting to sync · Last synced 10:42"
    )


def test_one_pending_ack_is_singular() -> None:
    assert "1 acknowledgement waiting to sync" in look(pending_acks=1).tooltip


def test_offline_says_it_works_from_the_cache_and_counts_waiting_acks() -> None:
    result = look(connection="offline", vpn_on=True, pending_acks=3)
    assert (result.icon, result.badge_count) == ("offline", 3)
    assert result.tooltip.startswith("Offline: working from the cached library · VPN on")
    assert "3 acknowledgements waiting to sync" in result.tooltip


def test_vpn_off_beats_offline_and_says_when_it_is_required() -> None:
    result = look(connection="offline", vpn_on=False, vpn_required=True)
    assert result.icon == "vpn_off"
    assert "VPN off (required by IT policy)" in result.tooltip
    assert "VPN off ·" in look(vpn_on=False).tooltip
    assert look(vpn_on=False).icon == "vpn_off"


def test_unknown_vpn_state_does_not_change_the_icon() -> None:
    result = look(vpn_on=None)
    assert result.icon == "connected"
    assert "VPN state unknown" in result.tooltip


@pytest.mark.parametrize("connection", ["auth_needed", "signed_out"])
def test_signin_needed_beats_vpn_off_and_pending(connection: str) -> None:
    result = look(connection=connection, vpn_on=False, pending_acks=4)
    assert (result.icon, result.badge_count) == ("signin", 0)
    assert "sign in" in result.tooltip.lower()


def test_signed_out_does_not_claim_a_sync_time() -> None:
    assert "synced" not in look(connection="signed_out").tooltip.lower()


def test_unacknowledged_critical_beats_everything_and_comes_first_in_words() -> None:
    result = look(connection="auth_needed", vpn_on=False, pending_acks=1, unacked_critical=2)
    assert (result.icon, result.badge_count) == ("critical", 2)
    assert result.tooltip.startswith("2 unacknowledged critical alerts · ")


def test_rejected_acks_are_mentioned() -> None:
    assert "1 acknowledgement rejected by the hub" in look(rejected_acks=1).tooltip


def test_never_synced_and_synced_on_another_day() -> None:
    assert look(last_synced_at=None).tooltip.endswith("Not synced yet")
    yesterday = SYNCED - timedelta(days=1)
    assert look(last_synced_at=yesterday).tooltip.endswith("Last synced 26 Nov 10:42")


def test_last_synced_is_shown_in_local_time() -> None:
    status = AppStatus(connection="online", vpn_on=True, last_synced_at=SYNCED)
    berlin_winter = timezone(timedelta(hours=1))
    assert tray_look(status, now=NOW, tz=berlin_winter).tooltip.endswith("Last synced 11:42")


def test_unanswered_alerts_of_every_severity_are_counted_with_criticals_distinct() -> None:
    quiet = look(unanswered_alerts=3)
    assert (quiet.icon, quiet.badge_count) == ("connected", 3)
    assert "3 other alerts waiting for your answer" in quiet.tooltip
    mixed = look(unacked_critical=2, unanswered_alerts=5)
    assert (mixed.icon, mixed.badge_count) == ("critical", 2)
    assert "2 unacknowledged critical alerts" in mixed.tooltip
    assert "3 other alerts waiting for your answer" in mixed.tooltip
    assert "other alert" not in look(unacked_critical=1, unanswered_alerts=1).tooltip
