"""Checking a hub address, apart from the HTTP client so that settings and policy can validate
one without loading the HTTP stack (which the tray app loads after its icon is up)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit


def is_loopback_host(host: str) -> bool:
    """Whether `host` names this computer (localhost, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_hub_url(url: str, *, allow_plain_http: bool) -> str:
    """Return the hub URL normalised (no trailing slash); ValueError says what is wrong with it."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be a URL such as https://vigil-hub.example.org")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user name or password")
    if parts.query or parts.fragment:
        raise ValueError("must not contain a query (?) or fragment (#)")
    if port == 0:
        raise ValueError("has an invalid port")
    if scheme == "http" and not allow_plain_http and not is_loopback_host(parts.hostname):
        raise ValueError(
            f"uses plain http:// to {parts.hostname}, which is not this computer: use https:// "
            "(IT can allow plain http for test set-ups with the allow_plain_http policy setting)"
        )
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
