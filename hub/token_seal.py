"""Seal a refresh token's successor pair under a key that only the refresh token itself gives.

The hub stores a refresh token as its SHA-256 only. For the refresh grace window it must be able
to answer the same successor pair again to whoever presents the rotated token, without keeping
usable tokens in its file: the pair is encrypted (AES-256-GCM) with a key derived from the raw
rotated token by HMAC, which cannot be computed from the stored hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_KEY_LABEL = b"vigil refresh successor v1"
_NONCE_BYTES = 12


@dataclass(frozen=True)
class SealedPair:
    """An access/refresh pair as handed out, and when its access token expires."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: float


def seal(presented_token: str, pair: SealedPair) -> bytes:
    """`pair` encrypted for whoever holds `presented_token`."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    plain = json.dumps(
        {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "access_expires_at": pair.access_expires_at,
        }
    ).encode()
    return nonce + AESGCM(_key(presented_token)).encrypt(nonce, plain, None)


def unseal(presented_token: str, sealed: bytes) -> SealedPair | None:
    """The pair sealed for `presented_token`, or None when it was sealed for another token."""
    try:
        plain = AESGCM(_key(presented_token)).decrypt(
            sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], None
        )
    except (InvalidTag, ValueError):
        return None
    raw = json.loads(plain)
    return SealedPair(
        access_token=raw["access_token"],
        refresh_token=raw["refresh_token"],
        access_expires_at=float(raw["access_expires_at"]),
    )


def _key(token: str) -> bytes:
    return hmac.new(token.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()
