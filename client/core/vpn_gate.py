"""What the IT policy's VPN rule allows right now: the library, sign-in and sync, or only alerts.

The rule is `off` (nothing depends on the VPN), `warn` (the tray says the VPN is off) or `block`:
off the VPN, the library and template copying are closed and sign-in and content sync wait, while
the alert stream, acknowledgements and token refresh keep working so critical alerts still pop up
and can be acknowledged. An unknown VPN state counts as off in block mode: the rule exists because
IT does not want the library read off the VPN, and "cannot tell" is not "on".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from client.core.errors import HubOffline
from client.core.vpn import VpnStatus


class VpnMode(StrEnum):
    """The policy's VPN rule."""

    OFF = "off"
    WARN = "warn"
    BLOCK = "block"


# Hub paths that must work off the VPN even in block mode: alerts, acks, keeping the sign-in
# alive (the stream needs fresh tokens), signing out, and the readiness report (a dispatcher must
# learn that an agent is off the VPN).
ALWAYS_ALLOWED = (
    "/v1/alerts",
    "/v1/acks",
    "/v1/readiness",
    "/v1/auth/refresh",
    "/v1/auth/logout",
    "/v1/netcheck",
    "/healthz",
)

BANNER = (
    "The library is closed because this computer is not on the company VPN, and your IT policy "
    "requires it. Connect to the VPN and it opens again by itself. Critical alerts still pop up "
    "and can be acknowledged."
)
UNKNOWN_BANNER = (
    "The library is closed because Vigil cannot tell whether this computer is on the company "
    "VPN, and your IT policy requires it. Connect to the VPN; if you are connected, tell IT. "
    "Critical alerts still pop up and can be acknowledged."
)


class VpnRequired(HubOffline):
    """A request that the policy's block mode holds back until the VPN is on."""


@dataclass(frozen=True)
class VpnGate:
    """The decision: whether the library (and copying), and sign-in and sync, are open; `banner`
    says why not and what to do (None when open)."""

    library_open: bool
    hub_open: bool
    banner: str | None = None

    def check_request(self, path: str) -> None:
        """Raise VpnRequired for a hub request this gate holds back."""
        if self.hub_open or path.startswith(ALWAYS_ALLOWED):
            return
        raise VpnRequired(
            "Waiting for the company VPN: your IT policy allows signing in and syncing only on "
            "the VPN. Connect to it and Vigil continues by itself."
        )


OPEN = VpnGate(library_open=True, hub_open=True)


def vpn_gate(mode: VpnMode, status: VpnStatus | None) -> VpnGate:
    """The gate for the policy's mode and the VPN state (None: not checked yet)."""
    if mode is not VpnMode.BLOCK:
        return OPEN
    if status is not None and status.on is True:
        return OPEN
    unknown = status is None or status.on is None
    return VpnGate(library_open=False, hub_open=False, banner=UNKNOWN_BANNER if unknown else BANNER)
