"""The hub's Ed25519 content key: made on first start, kept in the data dir, signs every item."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import stat
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = logging.getLogger(__name__)

KEY_FILENAME = "content-signing-key.pem"


class ContentKeyError(Exception):
    """The content key file exists but cannot be used; the hub refuses to start with it."""


class ContentSigner:
    """Signs content items with the hub's Ed25519 key over their RFC 8785 (JCS) encoding."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        raw = private_key.public_key().public_bytes(
            encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
        )
        self.public_key_raw = raw
        self.public_key_b64 = base64.b64encode(raw).decode("ascii")
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"ContentSigner(key_id={self.key_id!r})"

    @classmethod
    def load_or_create(cls, data_dir: Path) -> ContentSigner:
        """Load the key from data_dir, or make and save one (0600, in a 0700 dir) on first start."""
        data_dir = Path(data_dir)
        if not data_dir.exists():
            data_dir.mkdir(mode=0o700, parents=True)
            # mkdir's mode is narrowed by the umask only; set it exactly.
            data_dir.chmod(0o700)
        elif stat.S_IMODE(data_dir.stat().st_mode) & 0o077:
            log.warning("The hub's data dir %s is open to other users; set it to 0700", data_dir)
        path = data_dir / KEY_FILENAME
        try:
            return cls._load(path)
        except FileNotFoundError:
            pass
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        )
        try:
            # O_EXCL: two hubs starting on one data dir at once must not overwrite each other's key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls._load(path)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        signer = cls(key)
        log.info("Made a new content signing key %s in %s", signer.key_id, path)
        return signer

    @classmethod
    def _load(cls, path: Path) -> ContentSigner:
        data = path.read_bytes()
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning(
                "Content key %s was readable by others (mode %o); set it to 0600", path, mode
            )
            os.chmod(path, 0o600)
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ContentKeyError(
                f"The content signing key file {path} is damaged or not an unencrypted "
                "Ed25519 PEM key. Restore it from a backup; deleting it makes a new key that "
                "every client must then pin again."
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ContentKeyError(
                f"The content signing key file {path} holds a {type(key).__name__}, not an "
                "Ed25519 key. Restore the hub's own key file from a backup."
            )
        return cls(key)

    def sign_item(
        self, kind: str, id: str, version: int, deleted: bool, data: dict[str, Any] | None
    ) -> str:
        """Sign one content item; the result is a standard base64 Ed25519 signature."""
        message = signed_bytes(kind, id, version, deleted, data)
        return base64.b64encode(self._private_key.sign(message)).decode("ascii")


def signed_bytes(
    kind: str, id: str, version: int, deleted: bool, data: dict[str, Any] | None
) -> bytes:
    """The exact bytes a content signature covers: JCS of kind, id, version, deleted and data."""
    return rfc8785.dumps(
        {"kind": kind, "id": id, "version": version, "deleted": deleted, "data": data}
    )
