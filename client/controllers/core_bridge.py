"""Core events, fired on background threads, carried to the UI thread as Qt signals."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from client.core.events import Event

if TYPE_CHECKING:
    from client.core.services import CoreServices


class CoreBridge(QObject):
    """Re-emits the core's events as Qt signals on the UI thread.

    The bridge lives on the UI thread, so every emit from a core thread is delivered queued.

    Signals:
        alert_received: a new Alert from the stream.
        sync_status_changed: a new SyncStatus.
        outbox_changed: new OutboxCounts.
        vpn_changed: a new VpnStatus.
        signed_in: the Account that signed in.
        signed_out: why the sign-in ended, in words.
        warning: something the agent should know, in words.
        alerts_missed: alerts after this seq expired on the hub before this computer got them.
        stream_state_changed: the alert stream's new StreamState.
        acks_changed: the ack_ids (a tuple) whose state the outbox changed.
        alert_changed: (old, new) Alerts: a stored alert's later state (update, resolution,
            retraction).
        answer_received: a HubAnswer: the signed-in user answered an alert on some computer.
        hub_route_changed: a RouteChange: requests now go to another of the hub's addresses.
    """

    alert_received = Signal(object)
    sync_status_changed = Signal(object)
    outbox_changed = Signal(object)
    vpn_changed = Signal(object)
    signed_in = Signal(object)
    signed_out = Signal(str)
    warning = Signal(str)
    alerts_missed = Signal(int)
    stream_state_changed = Signal(object)
    acks_changed = Signal(object)
    alert_changed = Signal(object)
    answer_received = Signal(object)
    hub_route_changed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._links: list[tuple[Event[Any], Callable[[Any], None]]] = []

    def attach(self, core: CoreServices) -> None:
        """Listen to the core's events."""
        self._link(core.alert_stream.alert_received, self.alert_received.emit)
        self._link(core.sync.status_changed, self.sync_status_changed.emit)
        self._link(core.outbox.changed, self.outbox_changed.emit)
        self._link(core.vpn.changed, self.vpn_changed.emit)
        self._link(core.auth.signed_in, self.signed_in.emit)
        self._link(core.auth.signed_out, self.signed_out.emit)
        self._link(core.auth.warning, self.warning.emit)
        self._link(core.alert_stream.gap, self.alerts_missed.emit)
        self._link(core.alert_stream.state_changed, self.stream_state_changed.emit)
        self._link(core.outbox.acks_changed, self.acks_changed.emit)
        self._link(core.alert_stream.alert_changed, self.alert_changed.emit)
        self._link(core.alert_stream.answer_received, self.answer_received.emit)
        self._link(core.hub.route.changed, self.hub_route_changed.emit)
        self._link(core.outbox.damaged, lambda damage: self.warning.emit(damage.message()))
        if core.outbox.damage is not None:
            self.warning.emit(core.outbox.damage.message())

    def detach(self) -> None:
        """Stop listening (before the core is closed)."""
        for event, callback in self._links:
            event.disconnect(callback)
        self._links = []

    def _link(self, event: Event[Any], emit: Callable[[Any], object]) -> None:
        def forward(value: Any) -> None:
            emit(value)

        event.connect(forward)
        self._links.append((event, forward))
