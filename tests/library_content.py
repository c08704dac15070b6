"""Shared test code for the library UI: a real cache file filled with really signed content."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from client.core.cache import Cache
from client.core.content_verifier import ContentVerifier

DEMO_DIR = Path(__file__).resolve().parents[1] / "resources" / "demo"


class ContentSigner:
    """Signs content items the way the protocol says the hub does, with a key made here."""

    def __init__(self) -> None:
        self._private = Ed25519PrivateKey.generate()
        raw = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]
        self._public_b64 = base64.b64encode(raw).decode()

    def keys_response(self) -> dict[str, Any]:
        """This signer's key as GET /v1/keys lists it."""
        return {
            "content_keys": [
                {"key_id": self.key_id, "public_key": self._public_b64, "current": True}
            ]
        }

    def verifier(self) -> ContentVerifier:
        """A verifier pinned to this signer's key, as the client builds it from /v1/keys."""
        return ContentVerifier.from_keys_response(self.keys_response(), self.key_id)

    def item(
        self, kind: str, item_id: str, data: dict[str, Any], version: int = 1
    ) -> dict[str, Any]:
        """One signed content item."""
        item: dict[str, Any] = {
            "kind": kind,
            "id": item_id,
            "version": version,
            "deleted": False,
            "data": data,
        }
        signature = base64.b64encode(self._private.sign(rfc8785.dumps(item))).decode()
        return {**item, "signature": signature, "key_id": self.key_id}


def demo_items(signer: ContentSigner) -> list[dict[str, Any]]:
    """Every demo playbook and template, signed."""
    items = []
    for kind, folder in (("playbook", "playbooks"), ("template", "templates")):
        for path in sorted((DEMO_DIR / folder).glob("*.json")):
            raw = json.loads(path.read_text(encoding="utf-8"))
            items.append(signer.item(kind, raw["id"], raw["data"]))
    return items


def open_cache(path: Path, extra: Sequence[tuple[str, str, dict[str, Any]]] = ()) -> Cache:
    """A real cache file holding the demo content plus `extra` (kind, id, data) items."""
    signer = ContentSigner()
    cache = Cache.open(path)
    items = demo_items(signer) + [signer.item(kind, i, data) for kind, i, data in extra]
    report = cache.apply_content(items, signer.verifier())
    assert not report.refused, report.refused
    return cache
