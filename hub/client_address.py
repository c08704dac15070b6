"""The address a request came from: the socket peer, or what trusted reverse proxies forwarded.

A forwarded header is believed only hop by hop from the right: each proxy appends the address it
got the request from, so the rightmost entries were written by our own proxies and everything to
the left of the first address that is not a trusted proxy was written by the client itself.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# The peer's address when the server could not tell it (e.g. a Unix socket).
UNKNOWN = "unknown"
# More hops than any real proxy chain has; a longer header is cut, never walked in full.
MAX_HOPS = 16
# RFC 7239: `for=` with an optionally quoted value, e.g. for="[2001:db8::1]:4711".
_FORWARDED_FOR = re.compile(r'(?i)(?:^|;)\s*for\s*=\s*("[^"]*"|[^;,\s]*)')


def source_address(
    peer: str | None,
    header_values: Sequence[str],
    header: str,
    trusted: Sequence[Network],
) -> str:
    """The client's address: the peer, or the nearest forwarded hop that is not a trusted proxy.

    `header_values` are every value of the forwarded header `header` ("x-forwarded-for" or
    "forwarded"); they are read only when the peer itself is a trusted proxy.
    """
    current = _parse(peer or "")
    if current is None:
        return peer or UNKNOWN
    hops = _hops(header_values, header)
    while _is_trusted(current, trusted) and hops:
        previous = _parse(hops.pop())
        if previous is None:
            # Garbage from a trusted hop's left: the last trusted proxy is as far as we can see.
            break
        current = previous
    return str(current)


def _hops(values: Sequence[str], header: str) -> list[str]:
    joined = ",".join(values)
    entries = joined.split(",")[-MAX_HOPS:]
    if header == "forwarded":
        hops = []
        for entry in entries:
            match = _FORWARDED_FOR.search(entry)
            hops.append(_forwarded_node(match.group(1)) if match else "")
        return hops
    return [entry.strip() for entry in entries]


def _forwarded_node(value: str) -> str:
    node = value.strip().strip('"')
    if node.startswith("["):
        # "[2001:db8::1]:4711" → the address inside the brackets.
        return node[1 : node.find("]")] if "]" in node else ""
    if node.count(":") == 1:
        # "192.0.2.60:4711" → without the port.
        return node.split(":", 1)[0]
    return node


def _parse(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            # A zone ("%eth0") is any text the writer chose: one address, whatever its zone.
            return ipaddress.IPv6Address(address.packed)
    return address


def _is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)
