"""The tokens' only home on disk: the OS keyring (Secret Service, KWallet, Keychain, Credential
Manager) through `keyring`. Vigil never writes a token to a file of its own.

Beside the refresh token, the current access token is kept with its expiry, so that each `vigil`
command and each app start within its 15 minutes uses it instead of rotating the refresh token:
every rotation is a moment when a crash (after the hub answered, before the keyring write) would
lose the sign-in, and the fewer there are, the fewer such moments.
"""

from __future__ import annotations

import logging
import sys
import time

import keyring
import keyring.backend
import keyring.errors

from client.core.errors import KeyringUnavailable

log = logging.getLogger(__name__)

SERVICE = "vigil"
# An access token this close to its expiry is not worth using: refresh instead.
ACCESS_MARGIN_SECONDS = 60.0


def _install_hint() -> str:
    if sys.platform == "win32":
        return "Check that Windows Credential Manager is available for your account."
    if sys.platform == "darwin":
        return "Check that your login keychain is available and unlocked (Keychain Access)."
    return (
        "Install and unlock GNOME Keyring or KWallet (any Secret Service keyring), "
        "then start Vigil again."
    )


def _unavailable(exc: BaseException) -> KeyringUnavailable:
    if isinstance(exc, keyring.errors.NoKeyringError):
        return KeyringUnavailable(f"No system keyring found. {_install_hint()}")
    if isinstance(exc, keyring.errors.KeyringLocked):
        return KeyringUnavailable(
            "The system keyring is locked. Unlock it (your desktop's keyring or password app "
            "asks for your login password) and try again."
        )
    if isinstance(exc, keyring.errors.InitError):
        return KeyringUnavailable(f"The system keyring could not be started. {_install_hint()}")
    return KeyringUnavailable(
        f"The system keyring did not work ({type(exc).__name__}). {_install_hint()}"
    )


class TokenVault:
    """Stores one refresh token per (hub, username) in the OS keyring."""

    def __init__(
        self,
        hub_url: str,
        *,
        backend: keyring.backend.KeyringBackend | None = None,
        service: str = SERVICE,
    ) -> None:
        self.hub_url = hub_url
        self._backend = backend
        self._service = service

    def __repr__(self) -> str:
        return f"TokenVault({self.hub_url!r})"

    def store(self, username: str, refresh_token: str) -> None:
        """Save (or replace) the refresh token for `username`; KeyringUnavailable on failure."""
        try:
            self._keyring().set_password(self._service, self._entry(username), refresh_token)
        except Exception as exc:
            raise self._failed("save", exc) from None

    def load(self, username: str) -> str | None:
        """The saved refresh token for `username`, or None when there is none."""
        try:
            token = self._keyring().get_password(self._service, self._entry(username))
        except Exception as exc:
            raise self._failed("read", exc) from None
        return token if isinstance(token, str) and token else None

    def delete(self, username: str) -> None:
        """Remove the saved tokens for `username` (nothing saved is fine)."""
        for entry in (self._access_entry(username), self._entry(username)):
            try:
                self._keyring().delete_password(self._service, entry)
            except keyring.errors.PasswordDeleteError:
                continue
            except Exception as exc:
                raise self._failed("delete", exc) from None

    def store_access(self, username: str, access_token: str, expires_in: float) -> None:
        """Save the access token for `username`, valid `expires_in` seconds from now."""
        expires_at = time.time() + expires_in
        try:
            self._keyring().set_password(
                self._service, self._access_entry(username), f"{expires_at:.0f} {access_token}"
            )
        except Exception as exc:
            raise self._failed("save", exc) from None

    def load_access(self, username: str) -> str | None:
        """The saved access token for `username` while it has a minute left, else None."""
        try:
            saved = self._keyring().get_password(self._service, self._access_entry(username))
        except Exception as exc:
            raise self._failed("read", exc) from None
        if not isinstance(saved, str):
            return None
        expires_at, _, token = saved.partition(" ")
        try:
            usable = float(expires_at) - time.time() > ACCESS_MARGIN_SECONDS
        except ValueError:
            return None
        return token if usable and token else None

    def _entry(self, username: str) -> str:
        return f"{self.hub_url}|{username}"

    def _access_entry(self, username: str) -> str:
        return f"{self.hub_url}|{username}|access"

    def _keyring(self) -> keyring.backend.KeyringBackend:
        if self._backend is None:
            self._backend = keyring.get_keyring()
        return self._backend

    def _failed(self, what: str, exc: Exception) -> KeyringUnavailable:
        # Only the type: a backend's message could echo what it was asked to store.
        log.warning("keyring %s failed: %s", what, type(exc).__name__)
        return _unavailable(exc)
