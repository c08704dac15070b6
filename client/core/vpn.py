"""Whether this device is on the company VPN, and which evidence says so.

Three sources, in this order of precedence (the first that gives an answer decides):
1. The hub's /v1/netcheck, when the hub is reachable and has VPN egress ranges configured
   (`via_vpn` true or false). The hub sees where traffic really comes from, so it is authoritative;
   `via_vpn` null (no ranges configured) or an unreachable hub gives no evidence.
2. The probe host:port from IT policy: a host reachable only through the VPN. Reachable means on,
   unreachable means off, whatever the interfaces say (a VPN adapter can be up without a tunnel).
3. Network interfaces that are up (running), carry a routable address and match the VPN name
   patterns. Link-local addresses do not count: macOS keeps utun adapters up with only a link-local
   IPv6 address for system services, and a disconnected client's adapter often keeps one too.
When none of them can answer (the interfaces cannot even be listed), the state is unknown.

Interfaces are read with psutil, which gives name, up and addresses the same way on Linux, macOS
and Windows (Windows adapters appear under their friendly names, such as "OpenVPN Wintun").
"""

from __future__ import annotations

import fnmatch
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from client.core.errors import HubError
from client.core.events import Event
from client.core.poller import Poller

if TYPE_CHECKING:
    from client.core.hub_client import HubClient

log = logging.getLogger(__name__)

# Matched case-insensitively with fnmatch against interface names (on Windows: friendly names).
DEFAULT_INTERFACE_PATTERNS: tuple[str, ...] = (
    "tun*",
    "tap*",
    "wg*",
    "utun*",
    "ppp*",
    "ipsec*",
    # Cisco AnyConnect / Secure Client
    "cscotun*",
    "Cisco AnyConnect*",
    "Cisco Secure Client*",
    # Palo Alto GlobalProtect
    "gpd*",
    "PANGP*",
    # WireGuard's and OpenVPN's Windows drivers, and clients built on them
    "Wintun*",
    "*Wintun*",
    "WireGuard*",
    "OpenVPN*",
    # Fortinet FortiClient
    "fortissl*",
    "Fortinet*",
    "FortiClient*",
    # Zscaler, NordVPN, and Juniper / Pulse / Ivanti Secure Access
    "Zscaler*",
    "zcctun*",
    "NordLynx*",
    "Juniper*",
    "Pulse Secure*",
    "Ivanti*",
)

PROBE_TIMEOUT = 2.0
DEFAULT_POLL_SECONDS = 30.0
_MAX_POLL_SECONDS = 3600.0

Evidence = Literal["interface", "probe", "hub", "none"]


@dataclass(frozen=True)
class VpnRules:
    """IT's rules for telling the VPN is on: interface name patterns and an optional probe."""

    interface_patterns: tuple[str, ...] = DEFAULT_INTERFACE_PATTERNS
    probe_host: str | None = None
    probe_port: int | None = None
    required: bool = False

    def __post_init__(self) -> None:
        # Typed as a tuple, but built from a policy file: check what really arrived.
        patterns: object = self.interface_patterns
        if (
            isinstance(patterns, str)
            or not isinstance(patterns, list | tuple)
            or not all(isinstance(p, str) and p for p in patterns)
        ):
            raise ValueError("VPN interface patterns must be a list of non-empty names or globs.")
        # Accept any sequence (a policy file gives a list) but keep the rules hashable.
        object.__setattr__(self, "interface_patterns", tuple(patterns))
        if (self.probe_host is None) != (self.probe_port is None):
            raise ValueError("The VPN probe needs both a host and a port, or neither.")
        if self.probe_host is not None and not self.probe_host.strip():
            raise ValueError("The VPN probe host is empty.")
        port = self.probe_port
        if port is not None and (isinstance(port, bool) or not 1 <= port <= 65535):
            raise ValueError(f"The VPN probe port must be between 1 and 65535, got {port!r}.")

    def matches(self, interface_name: str) -> bool:
        """Whether `interface_name` looks like a VPN adapter (case-insensitive glob)."""
        name = interface_name.lower()
        return any(fnmatch.fnmatchcase(name, p.lower()) for p in self.interface_patterns)


@dataclass(frozen=True)
class NetInterface:
    """A network interface as the VPN check sees it."""

    name: str
    up: bool
    addresses: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class VpnStatus:
    """The VPN state (None: unknown), which evidence decided it, and a sentence for the user."""

    on: bool | None
    evidence: Evidence
    detail: str


def system_interfaces() -> list[NetInterface]:
    """This computer's interfaces with their IPv4/IPv6 addresses; raises OSError if unreadable."""
    # Imported on first use (a monitor thread): settings import this module before the tray is up.
    import psutil

    stats = psutil.net_if_stats()
    addresses = psutil.net_if_addrs()
    interfaces = []
    for name, entries in addresses.items():
        stat = stats.get(name)
        ips = tuple(
            entry.address for entry in entries if entry.family in (socket.AF_INET, socket.AF_INET6)
        )
        # psutil's isup means running (up with a carrier): a tun adapter with no VPN process
        # attached is administratively up but not running, and does not count.
        interfaces.append(NetInterface(name, up=stat is not None and stat.isup, addresses=ips))
    return interfaces


def tcp_probe(host: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection to host:port succeeds within `timeout` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _is_routable(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return not (ip.is_link_local or ip.is_unspecified or ip.is_loopback)


class VpnMonitor:
    """Decides the VPN state from the hub, the probe and the interfaces; reports changes.

    Events: `changed` (VpnStatus) when the state differs from the last one, including the first.
    """

    def __init__(
        self,
        rules: VpnRules,
        *,
        hub: HubClient | None = None,
        interfaces: Callable[[], Iterable[NetInterface]] = system_interfaces,
        probe: Callable[[str, int, float], bool] = tcp_probe,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        if not 0 < poll_seconds <= _MAX_POLL_SECONDS:
            raise ValueError(
                f"The VPN poll interval must be above 0 and at most {_MAX_POLL_SECONDS:.0f} s."
            )
        self.rules = rules
        self.changed: Event[VpnStatus] = Event("VpnMonitor.changed")
        self._hub = hub
        self._interfaces = interfaces
        self._probe = probe
        self._status: VpnStatus | None = None
        # Reentrant: a listener of `changed` may call check() without deadlocking.
        self._lock = threading.RLock()
        self._poller = Poller("vpn-monitor", poll_seconds, self.check)

    @property
    def status(self) -> VpnStatus | None:
        """The last decided state, or None before the first check."""
        return self._status

    def check(self) -> VpnStatus:
        """Decide the state now (may block for the hub call and the probe); emits on a change."""
        status = self._from_hub() or self._from_probe() or self._from_interfaces()
        with self._lock:
            if status != self._status:
                self._status = status
                self.changed.emit(status)
        return status

    def start(self) -> None:
        """Check now and then every poll interval, in a background thread."""
        self._poller.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; waits at most `timeout` seconds (plus one probe) for the thread."""
        self._poller.stop(timeout)

    def _from_hub(self) -> VpnStatus | None:
        if self._hub is None:
            return None
        try:
            answer = self._hub.get_json("/v1/netcheck", auth=False)
        except HubError as exc:
            log.debug("No VPN evidence from the hub: %s", type(exc).__name__)
            return None
        via_vpn = answer.get("via_vpn") if isinstance(answer, dict) else None
        if via_vpn is None:
            return None
        if not isinstance(via_vpn, bool):
            log.warning("The hub's netcheck answer has a malformed via_vpn; ignoring it")
            return None
        client_ip = answer.get("client_ip")
        seen = f" at {client_ip}" if isinstance(client_ip, str) else ""
        if via_vpn:
            return VpnStatus(True, "hub", f"The hub sees this device{seen} through the VPN.")
        return VpnStatus(False, "hub", f"The hub sees this device{seen} outside the VPN.")

    def _from_probe(self) -> VpnStatus | None:
        host, port = self.rules.probe_host, self.rules.probe_port
        if host is None or port is None:
            return None
        target = f"{host}:{port}"
        if self._probe(host, port, PROBE_TIMEOUT):
            return VpnStatus(True, "probe", f"{target}, reachable only through the VPN, answers.")
        return VpnStatus(
            False, "probe", f"{target}, reachable only through the VPN, does not answer."
        )

    def _from_interfaces(self) -> VpnStatus:
        try:
            interfaces = list(self._interfaces())
        except OSError as exc:
            log.warning("Could not list network interfaces: %s", exc)
            return VpnStatus(
                None, "none", "The VPN state is unknown: network interfaces could not be read."
            )
        for interface in sorted(interfaces, key=lambda i: i.name):
            if not interface.up or not self.rules.matches(interface.name):
                continue
            routable = [a for a in interface.addresses if _is_routable(a)]
            if routable:
                return VpnStatus(
                    True,
                    "interface",
                    f"VPN adapter {interface.name} is up with address {routable[0]}.",
                )
        return VpnStatus(False, "interface", "No VPN adapter is up with an address.")
