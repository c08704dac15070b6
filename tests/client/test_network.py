"""NetworkWatcher: a change of this computer's usable addresses is noticed and reported once."""

from __future__ import annotations

from client.core.network import NetworkWatcher
from client.core.vpn import NetInterface

WIFI = NetInterface("wlan0", up=True, addresses=("192.0.2.10",))
WIFI_NEW_ADDRESS = NetInterface("wlan0", up=True, addresses=("192.0.2.77",))
WIFI_DOWN = NetInterface("wlan0", up=False, addresses=("192.0.2.10",))
LOOPBACK = NetInterface("lo", up=True, addresses=("127.0.0.1",))


def watcher_over(snapshots: list[list[NetInterface]]) -> tuple[NetworkWatcher, list[object]]:
    """A watcher that sees the given interface lists one per check, and the events it emits."""
    remaining = iter(snapshots)
    watcher = NetworkWatcher(interfaces=lambda: next(remaining))
    seen: list[object] = []
    watcher.changed.connect(seen.append)
    return watcher, seen


def test_the_first_look_is_not_a_change() -> None:
    watcher, seen = watcher_over([[LOOPBACK, WIFI]])
    assert watcher.check() is False
    assert seen == []


def test_an_unchanged_network_stays_quiet() -> None:
    watcher, seen = watcher_over([[LOOPBACK, WIFI], [WIFI, LOOPBACK]])
    watcher.check()
    assert watcher.check() is False
    assert seen == []


def test_wifi_dropping_coming_back_and_a_new_address_are_each_a_change() -> None:
    watcher, seen = watcher_over(
        [[LOOPBACK, WIFI], [LOOPBACK, WIFI_DOWN], [LOOPBACK, WIFI], [LOOPBACK, WIFI_NEW_ADDRESS]]
    )
    watcher.check()
    assert [watcher.check(), watcher.check(), watcher.check()] == [True, True, True]
    assert len(seen) == 3


def test_unreadable_interfaces_are_not_reported_as_a_change() -> None:
    def unreadable() -> list[NetInterface]:
        raise OSError("permission denied")

    watcher = NetworkWatcher(interfaces=unreadable)
    seen: list[object] = []
    watcher.changed.connect(seen.append)
    assert watcher.check() is False
    assert seen == []
