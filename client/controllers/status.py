"""What the tray icon, its tooltip and the library's banner say about the app's state.

Every input arrives as an event (sync status, alert stream state, outbox counts, VPN, sign-in,
"Sync now" progress); nothing here polls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QMessageBox

from client.controllers.core_host import CoreHost
from client.core.reminders import AlertAttention
from client.core.settings import Settings
from client.core.status import (
    AppStatus,
    Connection,
    StreamHealth,
    TrayLook,
    stream_health,
    tray_look,
)

if TYPE_CHECKING:
    from client.core.alert_stream import StreamState
    from client.core.vpn import VpnStatus

# By client.core.sync.ConnectionState value (a StrEnum, so its members look these up directly).
_CONNECTIONS: dict[str, Connection] = {
    "online": "online",
    "offline": "offline",
    "auth_needed": "auth_needed",
}


class StatusPresenter(QObject):
    """Recomputes the app's look from the core's state whenever something may have changed.

    Signals:
        look_changed(look): the TrayLook (icon, count, tooltip) to show now.
        offline_changed(offline, cached_at): whether the library is the cached copy, and since.
    """

    look_changed = Signal(object)
    offline_changed = Signal(bool, object)

    def __init__(
        self,
        settings: Settings,
        host: CoreHost,
        attention: AlertAttention,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._host = host
        self._attention = attention
        self._vpn: VpnStatus | None = None
        self._stream: StreamHealth = "starting"
        self._sync_activity: str | None = None
        self.look: TrayLook | None = None
        self.notice: QMessageBox | None = None

    @Slot()
    def refresh(self) -> None:
        """Recompute the look and the offline banner and announce them."""
        core = self._host.core
        connection: Connection = "signed_out"
        user = None
        pending = rejected = unattributed = 0
        held: tuple[tuple[str, int], ...] = ()
        last_synced = None
        backup_hub = None
        hub_addresses = 1
        if core is not None:
            hub_addresses = len(core.hub.route.urls)
            if core.hub.route.on_backup:
                backup_hub = core.hub.current_url
            sync_status = core.sync.status
            pending, rejected = sync_status.pending_acks, sync_status.rejected_acks
            held, unattributed = sync_status.held_acks, sync_status.unattributed_acks
            last_synced = sync_status.last_synced_at
            account = core.auth.account
            if account is not None:
                user = account.username
                connection = _CONNECTIONS[sync_status.state]
        status = AppStatus(
            connection=connection,
            signed_in_user=user,
            vpn_on=self._vpn.on if self._vpn else None,
            vpn_required=bool(self._settings.get("vpn_required")),
            pending_acks=pending,
            rejected_acks=rejected,
            unacked_critical=self._attention.unacked_critical(),
            unanswered_alerts=len(self._attention.waiting()),
            last_synced_at=last_synced,
            stream=self._stream,
            held_acks=held,
            unattributed_acks=unattributed,
            sync_activity=self._sync_activity,
            backup_hub=backup_hub,
            hub_addresses=hub_addresses,
        )
        self.look = tray_look(status, now=datetime.now(UTC))
        self.look_changed.emit(self.look)
        offline = (
            connection == "offline"
            or self._stream == "down"
            or (core is not None and core.auth.account is None)
        )
        self.offline_changed.emit(offline, last_synced)

    @Slot(object)
    def vpn_changed(self, status: VpnStatus) -> None:
        """Take the VPN monitor's latest decision."""
        self._vpn = status
        self.refresh()

    @Slot(object)
    def stream_changed(self, state: StreamState) -> None:
        """Take the alert stream's new state: only a delivering stream counts as live."""
        health = stream_health(state.phase, self._stream)
        if health == self._stream:
            return
        self._stream = health
        self.refresh()

    def stream_restarted(self) -> None:
        """A new core or a new sign-in: the stream has not connected for it yet."""
        self._stream = "starting"

    def sync_activity(self, text: str | None) -> None:
        """What "Sync now" is doing or did, as a tooltip line (None: nothing to say)."""
        self._sync_activity = text
        self.refresh()

    @Slot()
    def show_details(self) -> None:
        """The state in words, one fact a line, in a message box."""
        text = self.look.tooltip.replace(" · ", "\n") if self.look else "Starting…"
        self.notice = QMessageBox(QMessageBox.Icon.Information, "Vigil status", text)
        self.notice.open()
