"""What the tray shows: one look (icon, badge, tooltip) decided from the app's current state.

Precedence, most urgent first, so one glance tells the agent what needs them:
critical (an unacknowledged critical alert) > signin (no usable sign-in) > unreachable (the alert
stream is down: new alerts cannot reach the agent) > vpn_off (the VPN is known to be off) >
offline (working from the cache) > pending (acknowledgements waiting to sync) > connected.

"Connected" needs the alert stream to be delivering: a sync that worked minutes ago says nothing
about whether an alert published now would arrive. Unreachable outranks VPN off because the VPN
state is often only a guess once the hub is gone (its netcheck is the best evidence), while a
dead stream is a fact; the tooltip still says what the VPN looks like.

The badge counts acknowledgements not yet accepted by the hub (waiting, rejected, or waiting for
their author to sign in), except on the critical icon, where it counts the critical alerts.
The tooltip always lists every part in words, whatever the icon shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Literal

Connection = Literal["online", "offline", "auth_needed", "signed_out"]
StreamHealth = Literal["live", "down", "starting"]
"""The alert stream: delivering, lost (alerts paused), or not connected yet since sign-in."""
TrayIconName = Literal[
    "connected", "offline", "vpn_off", "signin", "pending", "critical", "unreachable"
]

TRAY_ICON_NAMES: tuple[TrayIconName, ...] = (
    "connected",
    "offline",
    "vpn_off",
    "signin",
    "pending",
    "critical",
    "unreachable",
)


def stream_health(phase: str, previous: StreamHealth) -> StreamHealth:
    """The stream's health after it entered `phase` (a StreamPhase value).

    A reconnect attempt ("connecting") keeps the health it follows, so the tray does not flicker
    between "paused" and "connecting" while the hub is away.
    """
    if phase == "connected":
        return "live"
    if phase == "disconnected":
        return "down"
    return previous


@dataclass(frozen=True)
class AppStatus:
    """Everything the tray needs to know, gathered by the app from the core services."""

    connection: Connection
    signed_in_user: str | None = None
    vpn_on: bool | None = None
    vpn_required: bool = False
    pending_acks: int = 0
    rejected_acks: int = 0
    unacked_critical: int = 0
    # Alerts of every severity waiting for the agent's answer (criticals included).
    unanswered_alerts: int = 0
    last_synced_at: datetime | None = None
    stream: StreamHealth = "starting"
    held_acks: tuple[tuple[str, int], ...] = ()
    unattributed_acks: int = 0
    sync_activity: str | None = None
    # The hub address in use when it is a backup (IT's hub_urls after the first); None on the
    # preferred address.
    backup_hub: str | None = None
    # How many addresses IT listed for the hub: "unreachable" then means none of them answers.
    hub_addresses: int = 1

    @property
    def waiting_acks(self) -> int:
        """Every acknowledgement not yet accepted by the hub, whoever it waits for."""
        held = sum(n for _, n in self.held_acks)
        return self.pending_acks + self.rejected_acks + held + self.unattributed_acks


@dataclass(frozen=True)
class TrayLook:
    """The tray icon's state name, the number drawn on it (0: none) and its tooltip."""

    icon: TrayIconName
    badge_count: int
    tooltip: str


def tray_look(status: AppStatus, *, now: datetime, tz: tzinfo | None = None) -> TrayLook:
    """Decide the tray's look; `now` and `tz` place "last synced" (local time by default)."""
    icon, badge = _icon_and_badge(status)
    return TrayLook(
        icon=icon, badge_count=badge, tooltip=" · ".join(_tooltip_parts(status, now, tz))
    )


def _icon_and_badge(status: AppStatus) -> tuple[TrayIconName, int]:
    if status.unacked_critical > 0:
        return "critical", status.unacked_critical
    waiting = status.waiting_acks
    if status.connection in ("auth_needed", "signed_out"):
        return "signin", waiting
    if status.stream == "down":
        return "unreachable", waiting
    if status.vpn_on is False:
        return "vpn_off", waiting
    if status.connection == "offline" or status.stream == "starting":
        return "offline", waiting
    if waiting > 0:
        return "pending", waiting
    return "connected", status.unanswered_alerts


def _tooltip_parts(status: AppStatus, now: datetime, tz: tzinfo | None) -> list[str]:
    parts: list[str] = []
    if status.unacked_critical > 0:
        parts.append(_count(status.unacked_critical, "unacknowledged critical alert"))
    others = status.unanswered_alerts - status.unacked_critical
    if others > 0:
        parts.append(_count(others, "other alert", "waiting for your answer"))
    parts.append(_connection_text(status))
    parts.append(_vpn_text(status))
    if status.pending_acks > 0:
        parts.append(_count(status.pending_acks, "acknowledgement", "waiting to sync"))
    if status.rejected_acks > 0:
        parts.append(_count(status.rejected_acks, "acknowledgement", "rejected by the hub"))
    for author, n in status.held_acks:
        parts.append(held_acks_text(author, n))
    if status.unattributed_acks > 0:
        parts.append(
            _count(status.unattributed_acks, "acknowledgement")
            + " from before the upgrade "
            + ("waits" if status.unattributed_acks == 1 else "wait")
            + " for the user who made them (see `vigil acks`)"
        )
    if status.connection != "signed_out":
        parts.append(_last_synced_text(status.last_synced_at, now, tz))
    if status.sync_activity:
        parts.append(status.sync_activity)
    return parts


def held_acks_text(author: str, n: int) -> str:
    """Acks by another user waiting for them, e.g. "2 acknowledgements by agent wait for agent
    to sign in"."""
    verb = "waits" if n == 1 else "wait"
    return f"{_count(n, 'acknowledgement')} by {author} {verb} for {author} to sign in"


def _connection_text(status: AppStatus) -> str:
    user = f" as {status.signed_in_user}" if status.signed_in_user else ""
    if status.connection == "auth_needed":
        return "Sign-in needed: the hub asked you to sign in again"
    if status.connection == "signed_out":
        return "Signed out: sign in to receive alerts"
    if status.stream == "down":
        vpn = " and the VPN" if status.vpn_on is not True else ""
        tried = (
            f" at any of its {status.hub_addresses} addresses" if status.hub_addresses > 1 else ""
        )
        return (
            f"Hub unreachable{tried}: alerts paused, new alerts cannot reach you. Check your "
            f"network{vpn}; call the phone tree from the cached library if something is urgent"
        )
    if status.connection == "offline":
        return "Offline: working from the cached library"
    if status.stream == "starting":
        return f"Connecting to the alert stream{user}"
    if status.backup_hub is not None:
        return f"Connected (backup hub {status.backup_hub}){user}: alerts live"
    return f"Connected to hub{user}: alerts live"


def _vpn_text(status: AppStatus) -> str:
    if status.vpn_on is True:
        return "VPN on"
    if status.vpn_on is False:
        return "VPN off (required by IT policy)" if status.vpn_required else "VPN off"
    return "VPN state unknown"


def _count(n: int, noun: str, tail: str = "") -> str:
    text = f"{n} {noun}{'' if n == 1 else 's'}"
    return f"{text} {tail}" if tail else text


def _last_synced_text(when: datetime | None, now: datetime, tz: tzinfo | None) -> str:
    if when is None:
        return "Not synced yet"
    local = when.astimezone(tz)
    local_now = now.astimezone(tz)
    if local.date() == local_now.date():
        return f"Last synced {local:%H:%M}"
    return f"Last synced {local.day} {local:%b %H:%M}"
