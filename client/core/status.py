"""What the tray shows: one look (icon, badge, tooltip) decided from the app's current state.

Precedence, most urgent first, so one glance tells the agent what needs them:
critical (an unacknowledged critical alert) > signin (no usable sign-in) > vpn_off (the VPN is
known to be off) > offline (working from the cache) > pending (acknowledgements waiting to sync)
> connected. The tooltip always lists every part in words, whatever the icon shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Literal

Connection = Literal["online", "offline", "auth_needed", "signed_out"]
TrayIconName = Literal["connected", "offline", "vpn_off", "signin", "pending", "critical"]

TRAY_ICON_NAMES: tuple[TrayIconName, ...] = (
    "connected",
    "offline",
    "vpn_off",
    "signin",
    "pending",
    "critical",
)


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
    if status.connection in ("auth_needed", "signed_out"):
        return "signin", 0
    if status.vpn_on is False:
        return "vpn_off", 0
    if status.connection == "offline":
        return "offline", status.pending_acks
    if status.pending_acks > 0:
        return "pending", status.pending_acks
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
    if status.connection != "signed_out":
        parts.append(_last_synced_text(status.last_synced_at, now, tz))
    return parts


def _connection_text(status: AppStatus) -> str:
    user = f" as {status.signed_in_user}" if status.signed_in_user else ""
    if status.connection == "online":
        return f"Connected to hub{user}"
    if status.connection == "offline":
        return "Offline: working from the cached library"
    if status.connection == "auth_needed":
        return "Sign-in needed: the hub asked you to sign in again"
    return "Signed out: sign in to receive alerts"


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
