"""Checking a hub address, apart from the HTTP client so that settings and policy can validate
one without loading the HTTP stack (which the tray app loads after its icon is up)."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

# IT lists a preferred address and a few backups; more than this is a mistake in the policy (and
# every extra address is one more wait for an agent whose network is down).
MAX_HUB_URLS = 8
# A hub address is a host name (at most 253 characters) and a short path; far longer is no address.
_MAX_URL_CHARS = 2048
# How much of a refused value an error message repeats.
_SHOWN_CHARS = 80
# "scheme://user:password@" at the start of an address; the password may hold any character but
# "/", which would end the authority.
_CREDENTIALS = re.compile(r"^(\s*[A-Za-z][A-Za-z0-9+.-]*://)[^/]*@")


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
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in url.strip()):
        # A right-to-left override or a zero-width character makes an address read as another.
        raise ValueError("contains control or invisible formatting characters")
    if len(url.strip()) > _MAX_URL_CHARS:
        raise ValueError(f"is longer than {_MAX_URL_CHARS} characters")
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
    if len(parts.hostname) > 253 or any(len(label) > 63 for label in parts.hostname.split(".")):
        raise ValueError("has a host name longer than DNS allows")
    if port == 0:
        raise ValueError("has an invalid port")
    if scheme == "http" and not allow_plain_http and not is_loopback_host(parts.hostname):
        raise ValueError(
            f"uses plain http:// to {parts.hostname}, which is not this computer: use https:// "
            "(IT can allow plain http for test set-ups with the allow_plain_http policy setting)"
        )
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def check_hub_urls(urls: object, *, allow_plain_http: bool) -> tuple[str, ...]:
    """Return IT's list of hub addresses normalised, preferred first; ValueError names the entry
    that is wrong (1-based) and why."""
    if isinstance(urls, str) or not isinstance(urls, Sequence):
        raise ValueError('must be a list of hub addresses, e.g. ["https://hub-a.example.org"]')
    if not urls:
        raise ValueError("must list at least one hub address")
    if len(urls) > MAX_HUB_URLS:
        raise ValueError(f"lists {len(urls)} addresses; at most {MAX_HUB_URLS} are allowed")
    checked: list[str] = []
    seen: dict[tuple[str, str, int | None, str], int] = {}
    for number, url in enumerate(urls, start=1):
        if not isinstance(url, str):
            raise ValueError(f"entry {number} must be a URL such as https://vigil-hub.example.org")
        try:
            normal = check_hub_url(url, allow_plain_http=allow_plain_http)
        except ValueError as exc:
            raise ValueError(f"entry {number} ({shown(without_credentials(url))}) {exc}") from None
        key = same_address_key(normal)
        if key in seen:
            raise ValueError(
                f"entry {number} ({shown(url)}) is the same address as entry {seen[key]}"
            )
        seen[key] = number
        checked.append(normal)
    return tuple(checked)


def same_address_key(url: str) -> tuple[str, str, int | None, str]:
    """What makes two checked hub URLs the same address: scheme, host (any case), port (the
    scheme's default spelled out or not) and path."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def without_credentials(url: str) -> str:
    """`url` with any user name and password before its host replaced by "…", for messages: an
    address refused for holding a password must not repeat it in the error (or the log)."""
    return _CREDENTIALS.sub(r"\1…@", url)


def shown(value: str) -> str:
    """`value` quoted for an error message: invisible characters escaped, and cut short."""
    text = repr(value[:_SHOWN_CHARS])
    return text if len(value) <= _SHOWN_CHARS else text + "…"
