"""Notices when this computer's network changes (Wi-Fi back, VPN up, cable plugged in), so sync
and the alert stream retry at once instead of waiting out their backoff."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from client.core.events import Event
from client.core.poller import Poller
from client.core.vpn import NetInterface, system_interfaces

log = logging.getLogger(__name__)

DEFAULT_POLL_SECONDS = 2.0

Fingerprint = frozenset[tuple[str, str]]


def fingerprint(interfaces: Iterable[NetInterface]) -> Fingerprint:
    """The usable (interface, address) pairs: what changes when the network does."""
    return frozenset(
        (interface.name, address)
        for interface in interfaces
        if interface.up
        for address in interface.addresses
    )


class NetworkWatcher:
    """Polls the interfaces (cheap: no traffic) and reports when their usable addresses change.

    Events: `changed` (the new fingerprint), never for the first look.
    """

    def __init__(
        self,
        *,
        interfaces: Callable[[], Iterable[NetInterface]] = system_interfaces,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        self.changed: Event[Fingerprint] = Event("NetworkWatcher.changed")
        self._interfaces = interfaces
        self._last: Fingerprint | None = None
        self._poller = Poller("network-watcher", poll_seconds, self.check)

    def check(self) -> bool:
        """Look now; emits `changed` and returns True when the network differs from last time."""
        try:
            now = fingerprint(self._interfaces())
        except OSError as exc:
            log.warning("Could not list network interfaces: %s", exc)
            return False
        previous, self._last = self._last, now
        if previous is None or previous == now:
            return False
        self.changed.emit(now)
        return True

    def start(self) -> None:
        """Poll in a background thread until `stop`."""
        self._poller.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; waits at most `timeout` seconds for the thread."""
        self._poller.stop(timeout)
