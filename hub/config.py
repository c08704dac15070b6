"""The hub's settings: one object, built by the caller and injected into the app."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from platformdirs import user_data_dir

from hub.clock import Clock, SystemClock
from hub.connection_limits import ConnectionLimits
from hub.database_url import is_postgres_url, redacted


def default_data_dir() -> Path:
    """The platform's per-user data folder for the hub, used when no --data is given."""
    return Path(user_data_dir("vigil-hub", appauthor=False))


SMTP_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
FALLBACK_AFTER_MIN_SECONDS = 10
FALLBACK_AFTER_MAX_SECONDS = 86400


class FallbackConfigError(ValueError):
    """A fallback channel's configuration the hub must not start with; names the flag."""


@dataclass(frozen=True)
class SmtpCredentials:
    """The mail relay's sign-in; the password never shows in a repr."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class SmtpEndpoint:
    """Where and how to reach the mail relay: `security` is "plain", "starttls" or "tls"."""

    host: str
    port: int
    security: Literal["plain", "starttls", "tls"]


@dataclass(frozen=True)
class FallbackSettings:
    """The channels that reach an agent the alert stream cannot; no URL means no channel."""

    smtp_url: str | None = None
    smtp_from: str | None = None
    smtp_credentials: SmtpCredentials | None = field(default=None, repr=False)
    smtp_ca_file: Path | None = None
    webhook_url: str | None = None
    webhook_secret: bytes | None = field(default=None, repr=False)
    webhook_ca_file: Path | None = None
    fallback_after_seconds: float = 120

    def __post_init__(self) -> None:
        if not (
            FALLBACK_AFTER_MIN_SECONDS <= self.fallback_after_seconds <= FALLBACK_AFTER_MAX_SECONDS
        ):
            raise FallbackConfigError(
                f"--fallback-after-seconds: {self.fallback_after_seconds!r} is out of range; "
                f"use {FALLBACK_AFTER_MIN_SECONDS} to {FALLBACK_AFTER_MAX_SECONDS}."
            )
        if self.smtp_url is None:
            _refuse_without_url(
                "--smtp-url",
                smtp_from=self.smtp_from,
                smtp_credentials_file=self.smtp_credentials,
                smtp_ca_file=self.smtp_ca_file,
            )
        elif self.smtp_endpoint is not None:
            _check_sender(self.smtp_from)
        if self.webhook_url is None:
            _refuse_without_url(
                "--webhook-url",
                webhook_secret_file=self.webhook_secret,
                webhook_ca_file=self.webhook_ca_file,
            )
        else:
            _check_webhook_url(self.webhook_url)
            if not self.webhook_secret:
                # An unsigned notice could be forged by anyone who can reach the receiver.
                raise FallbackConfigError(
                    "--webhook-url needs --webhook-secret-file: every notice is signed."
                )

    @property
    def smtp_endpoint(self) -> SmtpEndpoint | None:
        """The parsed --smtp-url, or None when mail is off; FallbackConfigError if it is bad."""
        if self.smtp_url is None:
            return None
        _check_plain_url(self.smtp_url, "--smtp-url")
        parts = urlsplit(self.smtp_url)
        scheme = parts.scheme.lower()
        if scheme not in SMTP_DEFAULT_PORTS:
            raise FallbackConfigError(
                f"--smtp-url: {_shown(self.smtp_url)} must start with smtp+starttls://, "
                "smtps:// or (to this computer only) smtp://."
            )
        host = _url_host(parts, "--smtp-url", self.smtp_url)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise FallbackConfigError(
                f"--smtp-url: {_shown(self.smtp_url)} must be only scheme://host[:port]."
            )
        port = _url_port(parts, "--smtp-url", self.smtp_url) or SMTP_DEFAULT_PORTS[scheme]
        if scheme == "smtp" and not is_loopback_host(host):
            raise FallbackConfigError(
                f"--smtp-url: plain smtp:// to {host} would send mail unencrypted; "
                "use smtp+starttls:// or smtps:// (plain is for a relay on this computer only)."
            )
        security: Literal["plain", "starttls", "tls"] = (
            "plain" if scheme == "smtp" else "starttls" if scheme == "smtp+starttls" else "tls"
        )
        return SmtpEndpoint(host=host, port=port, security=security)

    @property
    def channel_names(self) -> list[str]:
        """The channels these settings turn on, in the order they are tried."""
        return [
            name for name, url in (("smtp", self.smtp_url), ("webhook", self.webhook_url)) if url
        ]


def is_loopback_host(host: str) -> bool:
    """True for "localhost" and loopback IP addresses; other names are never looked up."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _refuse_without_url(url_flag: str, **values: object) -> None:
    for name, value in values.items():
        if value is not None:
            flag = "--" + name.replace("_", "-")
            raise FallbackConfigError(f"{flag} needs {url_flag} as well.")


def _shown(url: str) -> str:
    # Only the part before any user:password@, so that a secret put in a URL is not echoed.
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return f"{parts.scheme}://…@{parts.netloc.rsplit('@', 1)[1]}"
    return repr(url[:200])


def _url_host(parts: SplitResult, flag: str, url: str) -> str:
    if parts.username is not None or parts.password is not None:
        raise FallbackConfigError(
            f"{flag}: {_shown(url)} holds a user name or password; "
            "put credentials in their file instead, never on the command line."
        )
    if not parts.hostname:
        raise FallbackConfigError(f"{flag}: {_shown(url)} names no host.")
    return parts.hostname


def _url_port(parts: SplitResult, flag: str, url: str) -> int | None:
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise FallbackConfigError(f"{flag}: {_shown(url)} has a port that is not 1 to 65535.")
    return port


def _check_sender(sender: str | None) -> None:
    if not sender:
        raise FallbackConfigError("--smtp-url needs --smtp-from ADDRESS, the notices' sender.")
    if (
        not sender.isascii()
        or not sender.isprintable()
        or " " in sender
        or sender.count("@") != 1
        or sender.startswith("@")
        or sender.endswith("@")
    ):
        raise FallbackConfigError(
            f"--smtp-from: {sender[:200]!r} is not a plain address like vigil@example.org."
        )


def _check_plain_url(url: str, flag: str) -> None:
    if not url.isascii() or not url.isprintable() or " " in url:
        raise FallbackConfigError(
            f"{flag}: {url[:200]!r} holds spaces, controls or non-ASCII characters; "
            "percent-encode them (and write an international host name in its xn-- form)."
        )


def _check_webhook_url(url: str) -> None:
    _check_plain_url(url, "--webhook-url")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise FallbackConfigError(f"--webhook-url: {_shown(url)} must start with https://.")
    host = _url_host(parts, "--webhook-url", url)
    _url_port(parts, "--webhook-url", url)
    if scheme == "http" and not is_loopback_host(host):
        raise FallbackConfigError(
            f"--webhook-url: plain http:// to {host} would send notices unencrypted; use https://."
        )


@dataclass
class HubSettings:
    """Everything that tunes a hub; times are seconds unless the name says otherwise."""

    data_dir: Path
    retention_days: float = 30
    session_hours: float = 12
    access_token_seconds: int = 900
    mfa_token_seconds: int = 300
    heartbeat_seconds: float = 15
    vpn_cidrs: list[str] = field(default_factory=list)
    clock: Clock = field(default_factory=SystemClock)
    # Lockout per (account, source address): 5 failures within 15 minutes lock for 15 minutes.
    lockout_threshold: int = 5
    lockout_window_seconds: int = 900
    lockout_seconds: int = 900
    # Account-wide lockout, from any address (NIST SP 800-63B allows at most 100 failures).
    account_lockout_threshold: int = 100
    account_lockout_window_seconds: int = 86400
    max_body_bytes: int = 1_000_000
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    openapi: bool = False
    # Six years: HIPAA's retention of security documentation (45 CFR 164.316(b)(2)(i)).
    audit_retention_days: float = 2192
    # Sign-in throttles, checked before any password hash is computed: token buckets of `burst`
    # attempts refilled at `per_minute`; a successful attempt gives its token back.
    signin_address_burst: int = 20
    signin_address_per_minute: float = 30
    signin_username_burst: int = 10
    signin_username_per_minute: float = 10
    signin_total_burst: int = 20
    signin_total_per_minute: float = 600
    # A throttled attempt is answered after a pause of half to all of this, which costs the hub
    # nothing and slows a guessing script's loop down.
    signin_refusal_delay_seconds: float = 4
    # Password hashing (argon2id, 64 MiB each) on its own few threads; beyond the queue a sign-in
    # is answered 503 at once instead of waiting.
    hash_workers: int = 2
    hash_queue: int = 8
    # Reverse proxies whose forwarded header names the client (none: the socket peer is it).
    trusted_proxies: list[str] = field(default_factory=list)
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    # A rotated refresh token presented again this soon gets the same successor pair back (a lost
    # answer), as long as that successor was never used; later, it revokes the family.
    refresh_grace_seconds: float = 60
    # Mail and webhook channels for agents the alert stream cannot reach (default: none).
    fallback: FallbackSettings = field(default_factory=FallbackSettings)
    # A postgresql:// URL: the hub's state lives there instead of in data_dir's SQLite file, and
    # any number of hub processes may share it (data_dir still holds the signing key).
    database_url: str | None = None
    # A dispatcher console session left this long without a page load or form post ends (the
    # absolute limit is the sign-in's own, session_hours); open live views do not count.
    console_idle_seconds: float = 900

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.database_url is not None and not is_postgres_url(self.database_url):
            raise ValueError(
                f"--database {redacted(self.database_url)!r} is not a postgresql:// URL; leave it "
                "out to keep the hub's state in the data folder's SQLite file."
            )
        if not self.audit_retention_days > 0:
            raise ValueError(
                f"audit_retention_days is {self.audit_retention_days!r}; it must be more than 0."
            )
        for name, cidrs in (("VPN range", self.vpn_cidrs), ("Trusted proxy", self.trusted_proxies)):
            for cidr in cidrs:
                try:
                    ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    raise ValueError(
                        f"{name} {cidr!r} is not a CIDR network; write it like 10.8.0.0/16."
                    ) from None

    @property
    def database_path(self) -> Path:
        """The SQLite file that holds all of the hub's state."""
        return self.data_dir / "hub.sqlite3"

    @property
    def database(self) -> Path | str:
        """Where the hub's state lives: the PostgreSQL URL if one is set, else the SQLite file."""
        return self.database_url if self.database_url is not None else self.database_path

    @property
    def session_seconds(self) -> float:
        """Absolute lifetime of a token family (one sign-in)."""
        return self.session_hours * 3600

    @property
    def retention_seconds(self) -> float:
        """How long alerts and their acknowledgements are kept."""
        return self.retention_days * 86400

    @property
    def audit_retention_seconds(self) -> float:
        """How long audit events are kept."""
        return self.audit_retention_days * 86400

    @property
    def vpn_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The VPN egress ranges, parsed."""
        return [ipaddress.ip_network(cidr, strict=False) for cidr in self.vpn_cidrs]

    @property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The trusted reverse proxies' ranges, parsed."""
        return [ipaddress.ip_network(cidr, strict=False) for cidr in self.trusted_proxies]
