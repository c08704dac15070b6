"""Unlocking without the hub: the agent's password against a salted, slow verifier in the keyring.

The verifier is scrypt (n=2**15, r=8, p=1, 16-byte random salt, 32-byte key) stored as
"scrypt$n$r$p$salt$key" (base64) under the keyring service "vigil-unlock", never on disk.
The password itself is never stored, logged or kept.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from client.core.errors import KeyringUnavailable

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

log = logging.getLogger(__name__)

T = TypeVar("T")

SERVICE = "vigil-unlock"
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
# scrypt needs 128 * n * r bytes (32 MiB here); OpenSSL's default ceiling is exactly that, too low.
_MAXMEM = 64 * 1024 * 1024


@dataclass(frozen=True)
class _Verifier:
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def encode(self) -> str:
        salt = base64.b64encode(self.salt).decode("ascii")
        key = base64.b64encode(self.key).decode("ascii")
        return f"scrypt${self.n}${self.r}${self.p}${salt}${key}"

    @classmethod
    def decode(cls, text: str) -> _Verifier | None:
        parts = text.split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            return None
        try:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt = base64.b64decode(parts[4], validate=True)
            key = base64.b64decode(parts[5], validate=True)
        except (ValueError, binascii.Error):
            return None
        # Refuse parameters that would make checking cheap (or absurdly expensive).
        if not (2**14 <= n <= 2**20 and 1 <= r <= 16 and 1 <= p <= 4 and len(key) == KEY_BYTES):
            return None
        return cls(n, r, p, salt, key)


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=KEY_BYTES
    )


class OfflineUnlock:
    """Enrols and checks the agent's password for unlocking while the hub is unreachable."""

    def __init__(self, *, backend: KeyringBackend | None = None, service: str = SERVICE) -> None:
        self._backend = backend
        self._service = service

    def enroll(self, username: str, password: str) -> None:
        """Store a fresh verifier for `username` (after a successful online sign-in)."""
        salt = os.urandom(SALT_BYTES)
        key = _derive(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        verifier = _Verifier(SCRYPT_N, SCRYPT_R, SCRYPT_P, salt, key)
        self._call(lambda kr: kr.set_password(self._service, username, verifier.encode()))

    def is_enrolled(self, username: str) -> bool:
        """Whether `username` can unlock offline on this computer."""
        return self._load(username) is not None

    def verify(self, username: str, password: str) -> bool:
        """Whether `password` is the one enrolled for `username` (False when none is enrolled)."""
        verifier = self._load(username)
        if verifier is None:
            return False
        candidate = _derive(password, verifier.salt, verifier.n, verifier.r, verifier.p)
        return hmac.compare_digest(candidate, verifier.key)

    def forget(self, username: str) -> None:
        """Remove `username`'s verifier (at sign-out); nothing happens when there is none."""

        def delete(kr: KeyringBackend) -> None:
            import keyring.errors

            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                kr.delete_password(self._service, username)

        self._call(delete)

    def _load(self, username: str) -> _Verifier | None:
        stored = self._call(lambda kr: kr.get_password(self._service, username))
        if stored is None:
            return None
        verifier = _Verifier.decode(stored)
        if verifier is None:
            log.warning("the offline unlock verifier for %s is malformed; ignoring it", username)
        return verifier

    def _call(self, action: Callable[[KeyringBackend], T]) -> T:
        # Imported on first use, off the UI thread: the app builds this object before its tray
        # icon is up, and loading keyring would delay the icon.
        import keyring
        import keyring.errors

        try:
            backend = self._backend or keyring.get_keyring()
            return action(backend)
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailable(
                "Vigil cannot use the system keyring to unlock without the hub "
                f"({type(exc).__name__}). Unlock it (or install a Secret Service such as "
                "GNOME Keyring or KWallet) and try again; while the hub is reachable you can "
                "unlock with your password online."
            ) from None
