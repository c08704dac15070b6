"""Sign-outs made while the hub was out of reach, revoked on the hub at the next contact.

Signing out offline forgets the tokens on this computer at once, but the sign-in stays alive on
the hub until its shift ends, so a copied refresh token would still work. The refresh token is
therefore kept in the keyring (its own service, never in a file) until the hub has revoked it:
at the next contact it is exchanged once and the fresh access token signs the whole family out.
"""

from __future__ import annotations

import logging
from typing import Any

from client.core.errors import AuthRequired, HubError, KeyringUnavailable
from client.core.hub_client import HubClient
from client.core.token_vault import TokenVault

log = logging.getLogger(__name__)

SERVICE = "vigil-sign-out"


class PendingSignOuts:
    """Refresh tokens of sign-outs the hub has not heard of yet, one per username."""

    def __init__(self, hub: HubClient, vault: TokenVault) -> None:
        self._hub = hub
        self._vault = vault

    @classmethod
    def for_hub(cls, hub: HubClient) -> PendingSignOuts:
        """The queue for this hub, in the OS keyring."""
        return cls(hub, TokenVault(hub.base_url, service=SERVICE))

    def add(self, username: str, refresh_token: str) -> bool:
        """Remember a sign-out to send; False when the keyring cannot keep it."""
        try:
            self._vault.store(username, refresh_token)
        except KeyringUnavailable as exc:
            log.warning("an offline sign-out cannot be queued: %s", exc.message)
            return False
        return True

    def waiting(self, username: str) -> bool:
        """Whether a sign-out of `username` still waits for the hub."""
        try:
            return self._vault.load(username) is not None
        except KeyringUnavailable:
            return False

    def flush(self, username: str) -> bool:
        """Revoke the queued sign-in of `username` on the hub; True when nothing waits any more."""
        try:
            token = self._vault.load(username)
        except KeyringUnavailable:
            return False
        if token is None:
            return True
        try:
            raw: Any = self._hub.post_json("/v1/auth/refresh", {"refresh_token": token}, auth=False)
            access = raw.get("access_token") if isinstance(raw, dict) else None
            if isinstance(access, str):
                self._hub.post_json("/v1/auth/logout", None, auth=False, bearer=access)
        except AuthRequired:
            # Expired, revoked or already reused: the hub no longer honours it either way.
            log.info("the queued sign-out of %s was already ended on the hub", username)
        except HubError as exc:
            log.info("queued sign-out of %s not sent yet: %s", username, type(exc).__name__)
            return False
        try:
            self._vault.delete(username)
        except KeyringUnavailable as exc:
            log.warning("a sent sign-out could not be removed from the queue: %s", exc.message)
        log.info("the hub revoked the sign-in of %s signed out offline", username)
        return True
