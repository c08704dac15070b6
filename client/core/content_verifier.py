"""Checks the hub's Ed25519 signature on every content item before the cache may store it.

The signed bytes are the RFC 8785 (JCS) encoding of `{kind, id, version, deleted, data}`. A key's id
is always recomputed from the raw key bytes (first 16 hex digits of its SHA-256): an id the hub
claims is never trusted on its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from client.core.errors import BadResponse, SignatureError

SIGNED_FIELDS = ("kind", "id", "version", "deleted", "data")


def key_id_of(raw_key: bytes) -> str:
    """The protocol's id of a raw Ed25519 public key: first 16 hex digits of its SHA-256."""
    return hashlib.sha256(raw_key).hexdigest()[:16]


def signed_bytes(item: Mapping[str, Any]) -> bytes:
    """The exact bytes the hub signs for one content item (RFC 8785 canonical JSON)."""
    try:
        return rfc8785.dumps({name: item.get(name) for name in SIGNED_FIELDS})
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise SignatureError(
            f"A content item cannot be put in canonical form ({exc}); it was refused."
        ) from exc


def _b64decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise BadResponse(f"The hub sent {what} that is not a base64 string.")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadResponse(f"The hub sent {what} that is not valid base64.") from exc


class ContentVerifier:
    """Verifies content items against a fixed set of trusted Ed25519 keys, indexed by key id."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey], pinned_key_id: str | None) -> None:
        if not keys:
            raise SignatureError("No trusted content-signing key: content cannot be verified.")
        self._keys = dict(keys)
        self.pinned_key_id = pinned_key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of the keys this verifier trusts, sorted."""
        return tuple(sorted(self._keys))

    @classmethod
    def from_keys_response(cls, raw: Any, pinned_key_id: str | None) -> ContentVerifier:
        """Build from the body of GET /v1/keys; with a pinned id, trust only that key.

        Raises BadResponse for a malformed answer and SignatureError when the pinned key is not
        among the hub's keys.
        """
        if not isinstance(raw, dict) or not isinstance(raw.get("content_keys"), list):
            raise BadResponse("The hub's key list (/v1/keys) is not in the expected shape.")
        keys: dict[str, Ed25519PublicKey] = {}
        for entry in raw["content_keys"]:
            if not isinstance(entry, dict):
                raise BadResponse("The hub's key list holds an entry that is not an object.")
            if entry.get("algorithm", "Ed25519") != "Ed25519":
                continue
            raw_key = _b64decode(entry.get("public_key"), "a content key")
            if len(raw_key) != 32:
                raise BadResponse("The hub sent a content key that is not 32 bytes long.")
            key_id = key_id_of(raw_key)
            if entry.get("key_id") != key_id:
                raise BadResponse(
                    f"The hub labels a content key {entry.get('key_id')!r} but its bytes give the "
                    f"id {key_id!r}; the key list was refused."
                )
            keys[key_id] = Ed25519PublicKey.from_public_bytes(raw_key)
        if not keys:
            raise BadResponse("The hub offers no Ed25519 content-signing key.")
        if pinned_key_id is None:
            return cls(keys, None)
        if pinned_key_id not in keys:
            raise SignatureError(
                f"The hub does not offer the content-signing key {pinned_key_id} that IT pinned "
                f"(it offers {', '.join(sorted(keys))}). Content is not updated; tell IT."
            )
        return cls({pinned_key_id: keys[pinned_key_id]}, pinned_key_id)

    def restricted_to(self, key_ids: Iterable[str]) -> ContentVerifier:
        """A verifier that trusts only those of this verifier's keys listed in `key_ids`."""
        wanted = set(key_ids)
        return ContentVerifier(
            {kid: key for kid, key in self._keys.items() if kid in wanted}, self.pinned_key_id
        )

    def with_pin(self, key_id: str) -> ContentVerifier:
        """The same keys, reporting `key_id` as the one pinned (IT's pin or the trusted key)."""
        return ContentVerifier(self._keys, key_id)

    def raw_keys(self) -> dict[str, bytes]:
        """The trusted keys as raw 32-byte Ed25519 public keys, by key id."""
        return {
            kid: key.public_bytes(Encoding.Raw, PublicFormat.Raw) for kid, key in self._keys.items()
        }

    def verify(self, item: Any) -> None:
        """Raise SignatureError (or BadResponse for a malformed item) unless `item` verifies."""
        if not isinstance(item, dict):
            raise BadResponse("The hub sent a content item that is not a JSON object.")
        kind, item_id, version = item.get("kind"), item.get("id"), item.get("version")
        if not isinstance(kind, str) or not isinstance(item_id, str) or not item_id:
            raise BadResponse("The hub sent a content item without a kind or id.")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise BadResponse(f"The hub sent {kind} {item_id!r} with a malformed version.")
        deleted, data = item.get("deleted"), item.get("data")
        if not isinstance(deleted, bool) or (data is None) != deleted:
            raise BadResponse(f"The hub sent {kind} {item_id!r} with malformed deleted/data.")
        if not deleted and not isinstance(data, dict):
            raise BadResponse(f"The hub sent {kind} {item_id!r} whose data is not an object.")
        key_id = item.get("key_id")
        what = f"{kind} {item_id!r} version {version}"
        if not isinstance(key_id, str) or key_id not in self._keys:
            raise SignatureError(
                f"{kind} {item_id!r} is signed with key {key_id!r}, which this computer does not "
                "trust; it was refused."
            )
        signature = _b64decode(item.get("signature"), f"{kind} {item_id!r} with a signature")
        self.check_signature(key_id, signature, signed_bytes(item), what)

    def check_signature(
        self, key_id: str, signature: bytes, message: bytes, what: str = "Content"
    ) -> None:
        """Raise SignatureError unless `signature` is a valid Ed25519 signature of `message` by
        the trusted key `key_id`."""
        key = self._keys.get(key_id)
        if key is None:
            raise SignatureError(
                f"{what} is signed with key {key_id!r}, which this computer does not trust; it "
                "was refused."
            )
        try:
            key.verify(signature, message)
        except InvalidSignature as exc:
            raise SignatureError(
                f"{what} does not match its signature; it was refused and the copy already on "
                "this computer is kept."
            ) from exc
