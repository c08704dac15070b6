"""The hub's settings: one object, built by the caller and injected into the app."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir

from hub.clock import Clock, SystemClock
from hub.connection_limits import ConnectionLimits


def default_data_dir() -> Path:
    """The platform's per-user data folder for the hub, used when no --data is given."""
    return Path(user_data_dir("vigil-hub", appauthor=False))


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

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
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
