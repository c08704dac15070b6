"""The tray's look for every connection, VPN, outbox and alert state, and its tooltip in words."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from client.core.status import AppStatus, TrayLook, stream_health, tray_look

NOW = datetime(2026, 11, 27, 10, 50, tzinfo=UTC)
SYNCED = datetime(2026, 11, 27, 10, 42, tzinfo=UTC)


def look(**fields: Any) -> TrayLook:
    defaults: dict[str, Any] = {"connection": "online", "last_synced_at": SYNCED, "stream": "live"}
    return tray_look(AppStatus(**{**defaults, **fields}), now=NOW, tz=UTC)


def test_connected_with_vpn_and_nothing_waiting() -> None:
    result = look(vpn_on=True, signed_in_user="alice")
    assert result == TrayLook(
        icon="connected",
        badge_count=0,
        tooltip="Connected to hub as alice: alerts live · VPN on · Last synced 10:42",
    )


def test_pending_acks_show_a_count_and_say_they_wait() -> None:
    result = look(vpn_on=True, pending_acks=2)
    assert (result.icon, result.badge_count) == ("pending", 2)
    assert result.tooltip == (
        "Connected to hub: alerts live · VPN on · 2 acknowledgements waiting to sync · "
        "Last synced 10:42"
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
    # The waiting acks still show as a count: they wait for this very sign-in.
    assert (result.icon, result.badge_count) == ("signin", 4)
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
    status = AppStatus(connection="online", vpn_on=True, last_synced_at=SYNCED, stream="live")
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


def test_a_lost_stream_is_hub_unreachable_alerts_paused_whatever_the_last_sync_said() -> None:
    result = look(stream="down", vpn_on=True, signed_in_user="alice")
    assert result.icon == "unreachable"
    assert result.tooltip.startswith("Hub unreachable: alerts paused")
    assert "phone tree from the cached library" in result.tooltip
    assert "Connected" not in result.tooltip
    assert "live" not in result.tooltip


def test_unreachable_is_not_vpn_off_and_names_the_vpn_when_it_may_be_the_cause() -> None:
    result = look(stream="down", vpn_on=False)
    assert result.icon == "unreachable"
    assert "Check your network and the VPN" in result.tooltip
    assert "VPN off" in result.tooltip
    live_but_vpn_off = look(stream="live", vpn_on=False)
    assert live_but_vpn_off.icon == "vpn_off"


def test_before_the_stream_first_connects_the_tray_does_not_claim_live() -> None:
    result = look(stream="starting", vpn_on=True)
    assert result.icon == "offline"
    assert "Connecting to the alert stream" in result.tooltip
    assert "alerts live" not in result.tooltip


def test_a_sign_in_needed_outranks_a_lost_stream() -> None:
    assert look(connection="auth_needed", stream="down").icon == "signin"


@pytest.mark.parametrize(
    ("phase", "previous", "health"),
    [
        ("connected", "down", "live"),
        ("disconnected", "live", "down"),
        ("connecting", "down", "down"),
        ("connecting", "live", "live"),
        ("connecting", "starting", "starting"),
        ("auth_needed", "live", "live"),
    ],
)
def test_stream_health_follows_the_phase_and_a_retry_keeps_the_last_word(
    phase: str, previous: Any, health: str
) -> None:
    assert stream_health(phase, previous) == health


@pytest.mark.parametrize("stream", ["live", "down", "starting"])
def test_pending_and_rejected_acks_count_on_every_icon_but_critical(stream: str) -> None:
    result = look(stream=stream, pending_acks=2, rejected_acks=1)
    assert result.badge_count == 3
    assert "2 acknowledgements waiting to sync" in result.tooltip
    assert "1 acknowledgement rejected by the hub" in result.tooltip
    assert look(stream=stream, unacked_critical=1, pending_acks=2).badge_count == 1


def test_acks_held_for_another_user_are_counted_and_named() -> None:
    result = look(signed_in_user="dispatcher", held_acks=(("agent", 2),))
    assert (result.icon, result.badge_count) == ("pending", 2)
    assert "2 acknowledgements by agent wait for agent to sign in" in result.tooltip
    one = look(connection="signed_out", held_acks=(("agent", 1),))
    assert "1 acknowledgement by agent waits for agent to sign in" in one.tooltip


def test_hostile_usernames_in_the_tooltip_are_plain_text_for_the_tray_to_escape() -> None:
    author = "\u202e<b>evil</b>"
    result = look(held_acks=((author, 1),))
    # The tooltip is data: TrayIcon escapes it and strips bidi controls (tests/ui/test_tray.py).
    assert f"by {author} waits" in result.tooltip


def test_sync_now_activity_is_the_last_line() -> None:
    result = look(sync_activity="Synced 10:51: 2 acks sent, 1 new alert")
    assert result.tooltip.endswith("Synced 10:51: 2 acks sent, 1 new alert")


def test_a_backup_hub_address_in_use_is_named_and_the_preferred_is_not() -> None:
    backup = look(backup_hub="https://hub-b.example.org", hub_addresses=2, signed_in_user="alice")
    assert backup.icon == "connected"
    assert backup.tooltip.startswith(
        "Connected (backup hub https://hub-b.example.org) as alice: alerts live"
    )
    preferred = look(hub_addresses=2, signed_in_user="alice")
    assert "backup" not in preferred.tooltip
    assert preferred.tooltip.startswith("Connected to hub as alice: alerts live")


def test_unreachable_on_every_address_says_so_and_never_claims_a_backup_connection() -> None:
    down = look(stream="down", backup_hub="https://hub-b.example.org", hub_addresses=3)
    assert down.icon == "unreachable"
    assert down.tooltip.startswith("Hub unreachable at any of its 3 addresses: alerts paused")
    assert "Connected" not in down.tooltip
    assert look(stream="down").tooltip.startswith("Hub unreachable: alerts paused")
