"""minisign's public key and signature files, and verifying them (Ed25519).

The formats are minisign's own, so IT and agents can check releases with the `minisign` tool and
Vigil accepts what `minisign -S` writes:

- public key: an `untrusted comment:` line, then base64 of `Ed` + key id (8 bytes) + key (32);
- signature: an `untrusted comment:` line; base64 of the algorithm (`ED`: Ed25519 over the
  BLAKE2b-512 hash of the file, minisign's default; `Ed`: over the file itself, the legacy form)
  + key id + signature (64); a `trusted comment:` line; base64 of the global signature (64),
  Ed25519 over signature + trusted comment, so the trusted comment cannot be changed either.

The untrusted comment is never looked at. Signing lives in installer/, not in the client.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from client.core.errors import ReleaseSignatureError

KEY_ALGORITHM = b"Ed"
PREHASHED = b"ED"
LEGACY = b"Ed"
KEY_ID_BYTES = 8
UNTRUSTED_PREFIX = "untrusted comment: "
TRUSTED_PREFIX = "trusted comment: "
# minisign's own limit for a trusted comment is 8 KiB; a signature file is far below this.
MAX_SIGNATURE_FILE = 16 * 1024
_CHUNK = 1024 * 1024


def key_id_text(key_id: bytes) -> str:
    """A key id as minisign prints it (the 8 bytes as a little-endian number, in hex)."""
    return key_id[::-1].hex().upper()


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text.strip(), validate=True)


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key; `key_id` is None for a bare key given without minisign's id."""

    key: bytes
    key_id: bytes | None

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """Read a minisign public key file, its base64 line, or a bare 32-byte key in base64."""
        lines = [
            line.strip()
            for line in text.strip().splitlines()
            if line.strip() and not line.startswith(UNTRUSTED_PREFIX)
        ]
        if len(lines) != 1:
            raise ReleaseSignatureError(
                "The release public key is not a minisign public key: expected one line of "
                "base64 (after an optional 'untrusted comment:' line)."
            )
        try:
            raw = _b64decode(lines[0])
        except (binascii.Error, ValueError):
            raise ReleaseSignatureError(
                "The release public key is not valid base64; copy it again from minisign.pub."
            ) from None
        if len(raw) == 32:
            return cls(key=raw, key_id=None)
        if len(raw) != 2 + KEY_ID_BYTES + 32 or raw[:2] != KEY_ALGORITHM:
            raise ReleaseSignatureError(
                "The release public key is not an Ed25519 minisign key (expected 42 bytes "
                f"starting with 'Ed', found {len(raw)} bytes); copy it again from minisign.pub."
            )
        return cls(key=raw[10:], key_id=raw[2:10])

    @property
    def id_text(self) -> str:
        """The key id as minisign prints it, or "(no id)" for a bare key."""
        return key_id_text(self.key_id) if self.key_id is not None else "(no id)"

    def to_base64(self) -> str:
        """The base64 line of minisign.pub (what `minisign -P` takes)."""
        if self.key_id is None:
            raise ValueError("a bare Ed25519 key has no minisign key id")
        return base64.b64encode(KEY_ALGORITHM + self.key_id + self.key).decode("ascii")

    def file_text(self) -> str:
        """The whole minisign.pub file."""
        return f"{UNTRUSTED_PREFIX}minisign public key {self.id_text}\n{self.to_base64()}\n"


@dataclass(frozen=True)
class Signature:
    """One minisign signature file, parsed."""

    algorithm: bytes
    key_id: bytes
    signature: bytes
    trusted_comment: str
    global_signature: bytes
    untrusted_comment: str = "signature from minisign secret key"

    @property
    def prehashed(self) -> bool:
        """Whether the file's BLAKE2b-512 hash was signed (the default) instead of the file."""
        return self.algorithm == PREHASHED

    @classmethod
    def parse(cls, text: str | bytes, *, what: str = "the file") -> Signature:
        """Read a .minisig file's text; ReleaseSignatureError says what is wrong with it."""
        if len(text) > MAX_SIGNATURE_FILE:
            raise _malformed(what, f"it is {len(text)} bytes, far more than a signature")
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise _malformed(what, "it is not text") from None
        lines = [line.rstrip("\r") for line in text.split("\n")]
        while lines and not lines[-1]:
            lines.pop()
        if len(lines) != 4:
            raise _malformed(what, f"it has {len(lines)} of its 4 lines")
        untrusted, signature_line, trusted, global_line = lines
        if not untrusted.startswith(UNTRUSTED_PREFIX):
            raise _malformed(what, "the first line is not an 'untrusted comment:'")
        if not trusted.startswith(TRUSTED_PREFIX):
            raise _malformed(what, "the third line is not a 'trusted comment:'")
        try:
            raw = _b64decode(signature_line)
            global_signature = _b64decode(global_line)
        except (binascii.Error, ValueError):
            raise _malformed(what, "a signature line is not valid base64") from None
        if len(raw) != 2 + KEY_ID_BYTES + 64 or raw[:2] not in (PREHASHED, LEGACY):
            raise _malformed(what, "the signature line is not an Ed25519 signature")
        if len(global_signature) != 64:
            raise _malformed(what, "the trusted comment's signature is cut short")
        return cls(
            algorithm=raw[:2],
            key_id=raw[2:10],
            signature=raw[10:],
            trusted_comment=trusted[len(TRUSTED_PREFIX) :],
            global_signature=global_signature,
            untrusted_comment=untrusted[len(UNTRUSTED_PREFIX) :],
        )

    def file_text(self) -> str:
        """The .minisig file."""
        line = base64.b64encode(self.algorithm + self.key_id + self.signature).decode("ascii")
        global_line = base64.b64encode(self.global_signature).decode("ascii")
        return (
            f"{UNTRUSTED_PREFIX}{self.untrusted_comment}\n{line}\n"
            f"{TRUSTED_PREFIX}{self.trusted_comment}\n{global_line}\n"
        )


def prehash(data: bytes) -> bytes:
    """The BLAKE2b-512 hash that a prehashed (ED) signature signs."""
    return hashlib.blake2b(data, digest_size=64).digest()


def file_prehash(path: Path) -> bytes:
    """BLAKE2b-512 of a file, read in chunks so large artifacts need little memory."""
    digest = hashlib.blake2b(digest_size=64)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()


def verify(
    public_key: PublicKey, data: bytes, signature: Signature, *, what: str = "the file"
) -> str:
    """Check `signature` over `data`; returns the trusted comment, else ReleaseSignatureError."""
    message = prehash(data) if signature.prehashed else data
    return _verify_message(public_key, message, signature, what)


def verify_file(
    public_key: PublicKey, path: Path, signature: Signature, *, what: str | None = None
) -> str:
    """Check `signature` over the file at `path`; returns the trusted comment."""
    what = what or path.name
    if signature.prehashed:
        return _verify_message(public_key, file_prehash(path), signature, what)
    return _verify_message(public_key, path.read_bytes(), signature, what)


def _verify_message(public_key: PublicKey, message: bytes, signature: Signature, what: str) -> str:
    if public_key.key_id is not None and signature.key_id != public_key.key_id:
        raise ReleaseSignatureError(
            f"{_capital(what)} was signed with the key {key_id_text(signature.key_id)}, not with "
            f"the trusted release key {public_key.id_text}: it does not come from your release "
            "signer. Do not install it."
        )
    verifier = Ed25519PublicKey.from_public_bytes(public_key.key)
    try:
        verifier.verify(signature.signature, message)
    except InvalidSignature:
        raise ReleaseSignatureError(
            f"{_capital(what)} does not match its signature: it was changed or damaged after it "
            "was signed, or signed by another key. Do not use it; download it again."
        ) from None
    try:
        verifier.verify(
            signature.global_signature,
            signature.signature + signature.trusted_comment.encode("utf-8"),
        )
    except InvalidSignature:
        raise ReleaseSignatureError(
            f"The trusted comment in the signature of {what} was changed after signing. Do not "
            "use it; download it again."
        ) from None
    return signature.trusted_comment


def _malformed(what: str, problem: str) -> ReleaseSignatureError:
    return ReleaseSignatureError(
        f"The signature of {what} is not a complete minisign signature ({problem}). Download "
        "the .minisig file again."
    )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
