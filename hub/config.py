"""The hub's settings: one object, built by the caller and injected into the app."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

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
    lockout_threshold: int = 5
    lockout_window_seconds: int = 900
    lockout_seconds: int = 900
    max_body_bytes: int = 1_000_000
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    openapi: bool = False
    # Six years: HIPAA's retention of security documentation (45 CFR 164.316(b)(2)(i)).
    audit_retention_days: float = 2192

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if not self.audit_retention_days > 0:
            raise ValueError(
                f"audit_retention_days is {self.audit_retention_days!r}; it must be more than 0."
            )
        for cidr in self.vpn_cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(
                    f"VPN range {cidr!r} is not a CIDR network; write it like 10.8.0.0/16."
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
