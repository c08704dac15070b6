"""The content-signing keys this computer trusts, kept outside the disposable cache.

The cache can be deleted, rebuilt or edited by anything running as the user, so the key that
every stored item must verify against lives in its own file in the config dir (mode 0600), next to
the settings. IT's `content_key_id` pin always wins; without it, the first sync trusts only the
key the hub marks current, and a later, different key is refused until the user resets trust.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from client.core.content_verifier import ContentVerifier, key_id_of
from client.core.errors import SignatureError

log = logging.getLogger(__name__)


def _current_key_id(raw: Any, offered: ContentVerifier) -> str:
    """The id of the key the hub marks current; an older hub's single key counts as current."""
    marked = [
        entry.get("key_id")
        for entry in raw["content_keys"]
        if isinstance(entry, dict) and entry.get("current") is True
    ]
    marked = [key_id for key_id in marked if key_id in offered.key_ids]
    if len(marked) == 1:
        return str(marked[0])
    if not marked and len(offered.key_ids) == 1:
        return offered.key_ids[0]
    raise SignatureError(
        "The hub offers several content-signing keys and does not mark exactly one as current, "
        "so none is trusted on first use. Content is not updated; ask IT to pin content_key_id."
    )


class ContentTrust:
    """Trusted content keys (id -> raw Ed25519 key), persisted in `path` or, without one, in
    memory only; `pinned_key_id` is IT's pin from the policy."""

    def __init__(
        self, path: Path | None, pinned_key_id: str | None = None, *, learning: bool = False
    ) -> None:
        self.path = path
        self.pinned_key_id = pinned_key_id
        # Only for a cache opened without a trust store (tests, tools): trust the keys content is
        # applied with, for this process only.
        self.learning = learning
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = self._load() if path is not None else {}
        self._read_verifier: tuple[dict[str, bytes], ContentVerifier] | None = None

    @classmethod
    def in_memory(cls) -> ContentTrust:
        """A store that trusts the keys content is applied with, kept in memory only."""
        return cls(None, learning=True)

    def _load(self) -> dict[str, bytes]:
        assert self.path is not None
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # Trusting nothing is safe: the next sync pins the hub's current key again and the
            # cached items that no longer verify are fetched again.
            log.warning(
                "trusted content keys in %s are unreadable (%s); trusting none", self.path, exc
            )
            return {}
        keys: dict[str, bytes] = {}
        entries = raw.get("content_keys") if isinstance(raw, dict) else None
        for key_id, text in (entries or {}).items():
            try:
                key = base64.b64decode(str(text), validate=True)
            except (binascii.Error, ValueError):
                continue
            # An id is only ever the hash of its key: an edited entry is dropped, not trusted.
            if len(key) == 32 and key_id_of(key) == key_id:
                keys[key_id] = key
        return keys

    def _save(self) -> None:
        if self.path is None:
            return
        text = json.dumps(
            {
                "content_keys": {
                    kid: base64.b64encode(key).decode() for kid, key in self._keys.items()
                }
            },
            indent=2,
            sort_keys=True,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # mkstemp creates the file 0600: the key list is readable by its owner only.
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".content-keys-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of the keys trusted now (only the pinned one when IT pinned a key), sorted."""
        with self._lock:
            return tuple(sorted(self._usable()))

    def _usable(self) -> dict[str, bytes]:
        if self.pinned_key_id is not None:
            key = self._keys.get(self.pinned_key_id)
            return {self.pinned_key_id: key} if key is not None else {}
        return dict(self._keys)

    def read_verifier(self) -> ContentVerifier | None:
        """A verifier for stored content with every trusted key; None when none is trusted yet."""
        with self._lock:
            keys = self._usable()
            cached = self._read_verifier
            if cached is not None and cached[0] == keys:
                # Every read asks: building the key objects each time would cost more than a read.
                return cached[1]
        if not keys:
            return None
        verifier = ContentVerifier(
            {kid: Ed25519PublicKey.from_public_bytes(key) for kid, key in keys.items()},
            self.pinned_key_id,
        )
        with self._lock:
            self._read_verifier = (keys, verifier)
        return verifier

    def choose(self, raw: Any) -> ContentVerifier:
        """Decide which of the keys in a GET /v1/keys answer to trust, remember it, and return a
        verifier with exactly those keys. Raises SignatureError when none may be trusted."""
        offered = ContentVerifier.from_keys_response(raw, self.pinned_key_id)
        offered_keys = offered.raw_keys()
        with self._lock:
            if self.pinned_key_id is not None:
                chosen = self.pinned_key_id
            elif self._keys:
                known = set(self._keys) & set(offered_keys)
                if not known:
                    raise SignatureError(
                        f"The hub's content-signing key has changed (this computer trusts "
                        f"{', '.join(sorted(self._keys))}; the hub now offers "
                        f"{', '.join(sorted(offered_keys))}). Playbooks and templates are not "
                        "updated until IT pins the new key in the policy or you reset content "
                        "trust in Vigil; the copies already here still work."
                    )
                return offered.restricted_to(known).with_pin(min(known))
            else:
                chosen = _current_key_id(raw, offered)
                log.info("trusting the hub's current content key %s on first use", chosen)
            if self._keys != {chosen: offered_keys[chosen]}:
                self._keys = {chosen: offered_keys[chosen]}
                self._save()
        return offered.restricted_to({chosen}).with_pin(chosen)

    def learn(self, verifier: ContentVerifier) -> None:
        """In learning mode, trust the keys of `verifier` from now on (no effect otherwise)."""
        if not self.learning:
            return
        with self._lock:
            self._keys.update(verifier.raw_keys())

    def forget(self) -> None:
        """Trust no key; the next sync trusts the hub's current key again (IT's pin still holds)."""
        with self._lock:
            self._keys = {}
            if self.path is not None:
                self.path.unlink(missing_ok=True)
