"""VpnMonitor: the VPN state from the hub's netcheck, the probe host and the interfaces."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator

import pytest

from client.core.hub_client import HubClient
from client.core.vpn import (
    DEFAULT_INTERFACE_PATTERNS,
    NetInterface,
    VpnMonitor,
    VpnRules,
    VpnStatus,
    system_interfaces,
    tcp_probe,
)
from hub.server import EmbeddedHub
from tests.hubtools import wait_until

ETH = NetInterface("eth0", up=True, addresses=("192.168.1.20", "fe80::1%eth0"))
TUN_UP = NetInterface("tun0", up=True, addresses=("10.8.0.6",))
PROBE_RULES = VpnRules(probe_host="intranet.example.org", probe_port=443)


def listing(*interfaces: NetInterface) -> Callable[[], list[NetInterface]]:
    return lambda: list(interfaces)


def answering(result: bool, calls: list[tuple[str, int]] | None = None) -> Callable[..., bool]:
    def probe(host: str, port: int, timeout: float) -> bool:
        if calls is not None:
            calls.append((host, port))
        return result

    return probe


def decide(rules: VpnRules, *interfaces: NetInterface, probe: bool | None = None) -> VpnStatus:
    if probe is None:
        return VpnMonitor(rules, interfaces=listing(*interfaces)).check()
    return VpnMonitor(rules, interfaces=listing(*interfaces), probe=answering(probe)).check()


def test_an_up_vpn_adapter_with_an_address_means_on() -> None:
    status = decide(VpnRules(), ETH, TUN_UP)
    assert status.on is True
    assert status.evidence == "interface"
    assert "tun0" in status.detail and "10.8.0.6" in status.detail


def test_only_ordinary_adapters_means_off() -> None:
    status = decide(VpnRules(), ETH, NetInterface("lo", True, ("127.0.0.1",)))
    assert status == VpnStatus(False, "interface", status.detail)
    assert status.detail


@pytest.mark.parametrize(
    "adapter",
    [
        NetInterface("tun0", up=False, addresses=("10.8.0.6",)),
        NetInterface("tun0", up=True, addresses=()),
        # macOS keeps utun adapters up for system services with only a link-local address.
        NetInterface("utun3", up=True, addresses=("fe80::ce81:b1c:bd2c:69e%utun3",)),
        NetInterface("wg0", up=True, addresses=("169.254.10.1",)),
    ],
    ids=["down", "no-address", "link-local-v6", "link-local-v4"],
)
def test_a_vpn_adapter_that_is_down_or_has_no_routable_address_does_not_count(
    adapter: NetInterface,
) -> None:
    assert decide(VpnRules(), ETH, adapter).on is False


@pytest.mark.parametrize(
    "name",
    [
        "tun0",
        "TAP1",
        "wg0",
        "utun4",
        "ppp0",
        "ipsec0",
        "cscotun0",
        "Cisco AnyConnect Secure Mobility Client Connection",
        "gpd0",
        "PANGP Virtual Ethernet Adapter",
        "OpenVPN Wintun",
        "fortissl",
        "Fortinet SSL VPN Virtual Ethernet Adapter",
        "Zscaler Network Adapter",
        "OpenVPN Data Channel Offload",
        "nordlynx",
    ],
)
def test_default_patterns_recognise_common_vpn_adapters_case_insensitively(name: str) -> None:
    status = decide(VpnRules(), ETH, NetInterface(name, up=True, addresses=("10.9.0.2",)))
    assert status.on is True, name


def test_it_policy_patterns_replace_the_defaults() -> None:
    rules = VpnRules(interface_patterns=("corp-vpn*",))
    assert decide(rules, NetInterface("CORP-VPN-1", True, ("10.1.0.5",))).on is True
    assert decide(rules, TUN_UP).on is False


def test_a_reachable_probe_host_means_on_even_without_a_vpn_adapter() -> None:
    calls: list[tuple[str, int]] = []
    monitor = VpnMonitor(PROBE_RULES, interfaces=listing(ETH), probe=answering(True, calls))
    status = monitor.check()
    assert (status.on, status.evidence) == (True, "probe")
    assert calls == [("intranet.example.org", 443)]
    assert "intranet.example.org:443" in status.detail


def test_an_unreachable_probe_host_means_off_even_with_a_vpn_adapter_up() -> None:
    status = decide(PROBE_RULES, ETH, TUN_UP, probe=False)
    assert (status.on, status.evidence) == (False, "probe")


def test_unreadable_interfaces_and_nothing_else_means_unknown() -> None:
    def broken() -> list[NetInterface]:
        raise OSError("permission denied")

    status = VpnMonitor(VpnRules(), interfaces=broken).check()
    assert (status.on, status.evidence) == (None, "none")


def test_changed_fires_on_the_first_check_and_then_only_on_changes() -> None:
    current = [ETH]
    seen: list[VpnStatus] = []
    monitor = VpnMonitor(VpnRules(), interfaces=lambda: list(current))
    monitor.changed.connect(seen.append)
    monitor.check()
    monitor.check()
    current.append(TUN_UP)
    monitor.check()
    monitor.check()
    current.remove(TUN_UP)
    monitor.check()
    assert [status.on for status in seen] == [False, True, False]
    assert monitor.status == seen[-1]


def test_start_polls_in_the_background_until_stopped() -> None:
    current = [ETH]
    turned_on = threading.Event()
    monitor = VpnMonitor(VpnRules(), interfaces=lambda: list(current), poll_seconds=0.05)
    monitor.changed.connect(lambda status: turned_on.set() if status.on else None)
    monitor.start()
    try:
        current.append(TUN_UP)
        assert turned_on.wait(5), "the monitor did not notice the VPN adapter coming up"
    finally:
        monitor.stop()
    assert monitor.status is not None and monitor.status.on is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"probe_host": "intranet.example.org"}, "both a host and a port"),
        ({"probe_host": "intranet.example.org", "probe_port": 70000}, "between 1 and 65535"),
        ({"probe_host": " ", "probe_port": 443}, "probe host is empty"),
        ({"interface_patterns": "tun*"}, "list of non-empty names"),
        ({"interface_patterns": ["tun*", ""]}, "list of non-empty names"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VpnRules(**kwargs)  # type: ignore[arg-type]


def test_default_rules_cover_the_generic_and_vendor_adapters() -> None:
    assert {"tun*", "tap*", "wg*", "utun*", "ppp*", "ipsec*"} <= set(DEFAULT_INTERFACE_PATTERNS)
    assert VpnRules().required is False


# The probe itself, against real loopback sockets.


def test_tcp_probe_is_true_for_a_listening_port_and_false_for_a_closed_one() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert tcp_probe("127.0.0.1", port, 2.0) is True
    assert tcp_probe("127.0.0.1", port, 2.0) is False


# The hub's netcheck, from a real hub on 127.0.0.1.


def test_the_hub_saying_via_vpn_decides_over_probe_and_interfaces(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    hub = start_hub(vpn_cidrs=["127.0.0.0/8"])
    client = HubClient(hub.url)
    try:
        monitor = VpnMonitor(
            PROBE_RULES, hub=client, interfaces=listing(ETH), probe=answering(False)
        )
        status = monitor.check()
    finally:
        client.close()
    assert (status.on, status.evidence) == (True, "hub")
    assert "127.0.0.1" in status.detail


def test_the_hub_saying_outside_the_vpn_decides_over_a_vpn_adapter(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    hub = start_hub(vpn_cidrs=["10.8.0.0/16"])
    client = HubClient(hub.url)
    try:
        status = VpnMonitor(VpnRules(), hub=client, interfaces=listing(TUN_UP)).check()
    finally:
        client.close()
    assert (status.on, status.evidence) == (False, "hub")


def test_a_hub_without_vpn_ranges_gives_no_evidence_and_the_interfaces_decide(
    hub: EmbeddedHub,
) -> None:
    client = HubClient(hub.url)
    try:
        status = VpnMonitor(VpnRules(), hub=client, interfaces=listing(ETH, TUN_UP)).check()
    finally:
        client.close()
    assert (status.on, status.evidence) == (True, "interface")


def test_an_unreachable_hub_gives_no_evidence_and_the_probe_decides() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        closed_port = server.getsockname()[1]
    client = HubClient(f"http://127.0.0.1:{closed_port}", connect_timeout=2.0)
    try:
        monitor = VpnMonitor(
            PROBE_RULES, hub=client, interfaces=listing(ETH), probe=answering(True)
        )
        status = monitor.check()
    finally:
        client.close()
    assert (status.on, status.evidence) == (True, "probe")


# A real tun interface, where the machine allows creating one.

TUN_NAME = "vigiltest0"
# Never used as a traffic target: it only gives the interface an address.
TUN_ADDRESS = "10.254.254.1"
_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)


def _tun_unavailable_reason() -> str | None:
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating a tun interface needs root"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun does not exist on this machine"
    return None


@pytest.fixture
def tun_interface() -> Iterator[Callable[[], int]]:
    """Creates vigiltest0 (up, with an address); yields `attach`, which opens it like a VPN does."""
    reason = _tun_unavailable_reason()
    if reason:
        pytest.skip(f"no real tun interface: {reason}")
    _ip("link", "del", TUN_NAME)
    created = _ip("tuntap", "add", "dev", TUN_NAME, "mode", "tun")
    if created.returncode != 0:
        pytest.skip(f"no real tun interface: ip tuntap add failed: {created.stderr.strip()}")
    fds: list[int] = []

    def attach() -> int:
        fd = os.open("/dev/net/tun", os.O_RDWR)
        fds.append(fd)
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", TUN_NAME.encode(), _IFF_TUN | _IFF_NO_PI))
        return fd

    try:
        for args in (
            ("link", "set", TUN_NAME, "up"),
            ("addr", "add", f"{TUN_ADDRESS}/32", "dev", TUN_NAME),
        ):
            result = _ip(*args)
            assert result.returncode == 0, result.stderr
        yield attach
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        _ip("link", "del", TUN_NAME)


def test_a_real_tun_interface_counts_only_while_a_vpn_process_holds_it(
    tun_interface: Callable[[], int],
) -> None:
    seen: list[VpnStatus] = []
    monitor = VpnMonitor(VpnRules(interface_patterns=("vigiltest*",)), interfaces=system_interfaces)
    monitor.changed.connect(seen.append)
    # Up and addressed but with no process attached: no tunnel carries traffic yet.
    assert monitor.check().on is False
    fd = tun_interface()
    # The kernel reports the carrier change a moment later (link watch), so poll for it.
    wait_until(lambda: monitor.check().on is True)
    status = monitor.check()
    assert status.evidence == "interface"
    assert TUN_NAME in status.detail and TUN_ADDRESS in status.detail
    os.close(fd)
    wait_until(lambda: monitor.check().on is False)
    assert [s.on for s in seen] == [False, True, False]
