"""Signing in (password, then authenticator code), staying signed in, and signing out.

The access token lives only in memory, on the HubClient. The refresh token lives only in the OS
keyring (TokenVault); when no keyring works, it is held in memory for this run alone and the user
is told they will need to sign in again after a restart.

Every rotation of the refresh token happens inside the profile's lock (ProfileLock), shared with
every other Vigil process of the profile: the keyring is read again once the lock is held (another
process may have rotated the token meanwhile), and the new token is in the keyring before the lock
is released and before its access token is used. So the tray app and any number of `vigil`
commands never present the same refresh token twice, which the hub would treat as theft.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from client.core.errors import (
    AuthRequired,
    BadResponse,
    HubError,
    InvalidCode,
    InvalidCredentials,
    KeyringUnavailable,
)
from client.core.events import Event
from client.core.hub_client import HubClient
from client.core.profile_lock import ProfileLock
from client.core.sign_out_queue import PendingSignOuts
from client.core.token_vault import TokenVault

log = logging.getLogger(__name__)

# Answers to a refresh that mean this sign-in is over for good.
_SIGN_IN_ENDED = frozenset({"refresh_reused", "session_expired", "token_invalid"})


@dataclass(frozen=True)
class MfaChallenge:
    """The first step passed: the hub wants an authenticator code for this MFA token."""

    username: str
    mfa_token: str = field(repr=False)
    expires_in: int
    methods: tuple[str, ...] = ("totp",)


@dataclass(frozen=True)
class Account:
    """Who is signed in. `verified` is False for a sign-in resumed while the hub was unreachable."""

    username: str
    display_name: str
    role: str | None
    roles: tuple[str, ...]
    verified: bool = True

    @classmethod
    def from_json(cls, raw: Any) -> Account:
        """Parse the protocol's user object; BadResponse when it does not match."""
        if not isinstance(raw, dict) or not isinstance(raw.get("username"), str):
            raise BadResponse("The hub sent a user without a username.")
        display_name = raw.get("display_name")
        role = raw.get("role")
        roles = raw.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise BadResponse("The hub sent a user with malformed roles.")
        return cls(
            username=raw["username"],
            display_name=display_name if isinstance(display_name, str) else raw["username"],
            role=role if isinstance(role, str) else None,
            roles=tuple(roles),
        )


@dataclass(frozen=True)
class _TokenPair:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int = 0

    @classmethod
    def from_json(cls, raw: Any) -> _TokenPair:
        if not isinstance(raw, dict):
            raise BadResponse("The hub's sign-in answer is not a JSON object.")
        access, refresh = raw.get("access_token"), raw.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise BadResponse("The hub's sign-in answer has no tokens.")
        expires_in = raw.get("expires_in")
        if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in < 0:
            expires_in = 0
        return cls(access, refresh, expires_in)


class Authenticator:
    """Two-step sign-in, silent resume from the keyring, token refresh, and sign-out.

    Events: `signed_in` (the Account), `signed_out` (the reason, in words), `warning` (in words).
    """

    def __init__(
        self,
        hub: HubClient,
        vault: TokenVault,
        *,
        device_id: str,
        device_name: str,
        profile_lock: ProfileLock | None = None,
    ) -> None:
        self.signed_in: Event[Account] = Event("auth.signed_in")
        self.signed_out: Event[str] = Event("auth.signed_out")
        self.warning: Event[str] = Event("auth.warning")
        self._hub = hub
        self._vault = vault
        self._device_id = device_id
        self._device_name = device_name
        self._lock = threading.Lock()
        self._profile_lock = profile_lock
        # Held while the signed-in user changes, and by steady_session: an ack is only ever sent
        # with its author's session, never with one that took its place mid-request.
        self._session = threading.RLock()
        self._account: Account | None = None
        # Only set when the keyring failed: the refresh token then lives for this run alone.
        self._memory_refresh_token: str | None = None
        # Where a sign-out that could not reach the hub waits for the next contact.
        self.offline_sign_outs: PendingSignOuts | None = None
        hub.refresher = self._refresh

    @property
    def account(self) -> Account | None:
        """The signed-in account, or None."""
        with self._lock:
            return self._account

    def current_username(self) -> str | None:
        """The signed-in username, or None."""
        account = self.account
        return account.username if account is not None else None

    @contextmanager
    def steady_session(self) -> Iterator[str | None]:
        """The signed-in username (None: nobody), kept signed in for the block."""
        with self._session:
            account = self.account
            yield account.username if account is not None else None

    def begin(self, username: str, password: str) -> MfaChallenge:
        """Check username and password; the hub then wants an authenticator code."""
        username = username.strip()
        if not username or not password:
            raise InvalidCredentials("Enter your username and password.", "invalid_credentials")
        raw = self._hub.post_json(
            "/v1/auth/login",
            {
                "username": username,
                "password": password,
                "device_id": self._device_id,
                "device_name": self._device_name,
            },
            auth=False,
        )
        if not isinstance(raw, dict) or not isinstance(raw.get("mfa_token"), str):
            raise BadResponse("The hub's answer to the password step has no MFA token.")
        expires_in = raw.get("expires_in")
        methods = raw.get("methods") or ["totp"]
        return MfaChallenge(
            username=username,
            mfa_token=raw["mfa_token"],
            expires_in=expires_in if isinstance(expires_in, int) else 300,
            methods=tuple(m for m in methods if isinstance(m, str)),
        )

    def complete(self, challenge: MfaChallenge, code: str) -> Account:
        """Send the authenticator code; on success the account is signed in."""
        code = re.sub(r"\s", "", code)
        if not re.fullmatch(r"\d{6}", code):
            raise InvalidCode(
                "Enter the 6-digit code your authenticator app shows for Vigil.", "invalid_code"
            )
        raw = self._hub.post_json(
            "/v1/auth/mfa", {"mfa_token": challenge.mfa_token, "code": code}, auth=False
        )
        pair = _TokenPair.from_json(raw)
        account = Account.from_json(raw.get("user"))
        with self._session:
            with self._lock:
                self._account = account
                self._memory_refresh_token = None
            with self._profile_locked():
                self._keep_tokens(account.username, pair)
            self._hub.set_access_token(pair.access_token)
        log.info("signed in as %s", account.username)
        self.signed_in.emit(account)
        return account

    def resume(self, username: str) -> Account | None:
        """Sign in silently with the keyring's refresh token; None when there is none (or dead).

        When the hub cannot be reached the account is resumed unverified: the saved token is
        exchanged on the first call that reaches the hub.
        """
        if self._vault.load(username) is None:
            return None
        provisional = Account(username, username, None, (), verified=False)
        with self._session, self._lock:
            self._account = provisional
            self._memory_refresh_token = None
        try:
            # A saved access token with time left spares a rotation (see TokenVault); a stale or
            # revoked one is answered 401, and the hub client then refreshes in the lock.
            self._hub.set_access_token(self._saved_access_token(username) or self._refresh())
            account = Account.from_json(self._hub.get_json("/v1/me"))
        except AuthRequired:
            with self._lock:
                self._account = None
            return None
        except HubError as exc:
            # Offline (or the hub is failing): work from the cache and verify on reconnect.
            log.info("resumed %s unverified: %s", username, type(exc).__name__)
            account = provisional
        with self._lock:
            self._account = account
        self.signed_in.emit(account)
        return account

    def sign_out(self) -> None:
        """Revoke this sign-in on the hub (best effort when offline) and forget its tokens."""
        account = self.account
        if account is None:
            return
        try:
            self._hub.post_json("/v1/auth/logout", None)
        except HubError as exc:
            # Offline or already revoked: the local tokens are forgotten all the same.
            log.info("logout call failed (%s); forgetting tokens locally", type(exc).__name__)
            if not isinstance(exc, AuthRequired):
                self._queue_sign_out(account.username)
        with self._session:
            if self.account is None:
                # The hub had already ended this sign-in and listeners were told why.
                return
            self._forget(account.username)
        self.signed_out.emit("You signed out.")

    def _queue_sign_out(self, username: str) -> None:
        """Keep the refresh token for the hub to revoke at the next contact."""
        with self._lock:
            token = self._memory_refresh_token
        try:
            token = token or self._vault.load(username)
        except KeyringUnavailable:
            token = None
        if token is not None and self.offline_sign_outs is not None:
            self.offline_sign_outs.add(username, token)

    def _refresh(self) -> str:
        """HubClient's refresher: a fresh access token, or AuthRequired when the sign-in ended."""
        account = self.account
        if account is None:
            raise AuthRequired("Sign in to Vigil to continue.", "auth_required")
        with self._profile_locked():
            # Read inside the lock: another process may have rotated the token while this one
            # waited, and the one it read before is then already spent.
            with self._lock:
                token = self._memory_refresh_token
            if token is None:
                try:
                    token = self._vault.load(account.username)
                except KeyringUnavailable as exc:
                    raise AuthRequired(
                        f"Your sign-in could not be renewed: {exc.message}", "keyring_unavailable"
                    ) from None
            if token is None:
                self._end(account.username, "Your saved sign-in is gone. Sign in again.")
                raise AuthRequired("Sign in to Vigil to continue.", "auth_required")
            return self._exchange(account.username, token).access_token

    def _profile_locked(self) -> AbstractContextManager[None]:
        return self._profile_lock.held() if self._profile_lock is not None else nullcontext()

    def _exchange(self, username: str, refresh_token: str) -> _TokenPair:
        """Rotate the refresh token (inside the profile lock); the new one is in the vault
        before the new access token is handed out."""
        try:
            raw = self._hub.post_json(
                "/v1/auth/refresh", {"refresh_token": refresh_token}, auth=False
            )
        except AuthRequired as exc:
            if exc.code in _SIGN_IN_ENDED:
                self._end(username, exc.message)
            raise AuthRequired(exc.message, exc.code) from None
        pair = _TokenPair.from_json(raw)
        self._keep_tokens(username, pair)
        return pair

    def _saved_access_token(self, username: str) -> str | None:
        try:
            return self._vault.load_access(username)
        except KeyringUnavailable:
            return None

    def _keep_tokens(self, username: str, pair: _TokenPair) -> None:
        """The refresh token first (losing it ends the sign-in), then the access token."""
        self._keep_refresh_token(username, pair.refresh_token)
        with self._lock:
            in_memory = self._memory_refresh_token is not None
        if in_memory or pair.expires_in <= 0:
            return
        try:
            self._vault.store_access(username, pair.access_token, pair.expires_in)
        except KeyringUnavailable as exc:
            # Only a shortcut for the next start: without it that start refreshes instead.
            log.info("access token not saved: %s", exc.message)

    def _keep_refresh_token(self, username: str, refresh_token: str) -> None:
        with self._lock:
            in_memory = self._memory_refresh_token is not None
        if not in_memory:
            try:
                self._vault.store(username, refresh_token)
                return
            except KeyringUnavailable as exc:
                reason = exc.message
            self._forget_saved(username)
            self.warning.emit(
                f"Your sign-in can't be saved: {reason} You will need to sign in again after "
                "Vigil restarts."
            )
        with self._lock:
            self._memory_refresh_token = refresh_token

    def _end(self, username: str, reason: str) -> None:
        """The hub ended this sign-in: forget it and tell listeners why."""
        self._forget(username)
        log.info("sign-in of %s ended", username)
        self.signed_out.emit(reason)

    def _forget(self, username: str) -> None:
        self._hub.set_access_token(None)
        with self._lock:
            self._account = None
            self._memory_refresh_token = None
        self._forget_saved(username)

    def _forget_saved(self, username: str) -> None:
        # A stale token left in the keyring would later be presented as a replay and revoke
        # the user's live sign-in, so removing it matters even when saving the new one failed.
        try:
            self._vault.delete(username)
        except KeyringUnavailable as exc:
            log.warning("could not remove the saved sign-in: %s", exc.message)
