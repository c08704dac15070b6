"""Release signing keys and signatures in minisign's formats: create a key pair, sign, verify.

The secret key file is minisign's own (scrypt-derived stream XORed over the key, with a BLAKE2b
checksum that tells a wrong passphrase), so `minisign -S -s` can sign with a key made here and
`python -m installer.signing sign` can sign with a key `minisign -G` made. Signatures are the
prehashed (ED) form by default, as current minisign writes. The passphrase comes from the
VIGIL_SIGNING_PASSPHRASE environment variable (CI) or is asked for on the terminal; it is never a
command-line argument, where other users could see it.

    python -m installer.signing keygen --public-key release.pub --secret-key ~/vigil-release.key
    python -m installer.signing sign --secret-key ~/vigil-release.key dist/*.tar.gz dist/SHA256SUMS
    python -m installer.signing verify --public-key release.pub dist/*.tar.gz dist/SHA256SUMS
"""

from __future__ import annotations

import argparse
import base64
import binascii
import getpass
import hashlib
import os
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client.core import minisign
from client.core.errors import ReleaseSignatureError

PASSPHRASE_VARIABLE = "VIGIL_SIGNING_PASSPHRASE"
SCRYPT = b"Sc"
NO_KDF = b"\x00\x00"
BLAKE2B = b"B2"
SALT_BYTES = 32
# key id (8) + secret key (seed 32 + public key 32) + checksum (32), as minisign lays it out.
KEYNUM_SK_BYTES = 8 + 64 + 32
SECRET_KEY_BYTES = 2 + 2 + 2 + SALT_BYTES + 8 + 8 + KEYNUM_SK_BYTES


class KdfCost(Enum):
    """scrypt cost (libsodium opslimit, memlimit) for a new secret key file."""

    # minisign's own choice: about 1 GiB of memory and a few seconds per use.
    SENSITIVE = (33554432, 1073741824)
    # For throwaway keys in tests and CI only.
    INTERACTIVE = (524288, 16777216)


class SigningError(Exception):
    """A key or signing step failed; the message says what to do."""


@dataclass(frozen=True)
class SecretKey:
    """A decrypted minisign secret key: the Ed25519 seed and the key id."""

    key_id: bytes
    seed: bytes

    def __repr__(self) -> str:
        return f"SecretKey(key_id={minisign.key_id_text(self.key_id)}, seed=<hidden>)"

    @property
    def public_key(self) -> minisign.PublicKey:
        """The matching public key."""
        raw = (
            Ed25519PrivateKey.from_private_bytes(self.seed)
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
        return minisign.PublicKey(key=raw, key_id=self.key_id)

    @classmethod
    def generate(cls) -> SecretKey:
        """A new random key pair."""
        return cls(key_id=secrets.token_bytes(8), seed=secrets.token_bytes(32))


def _scrypt_params(opslimit: int, memlimit: int) -> tuple[int, int, int]:
    """libsodium's pickparams(): (N, r, p) for crypto_pwhash_scryptsalsa208sha256."""
    opslimit = max(opslimit, 32768)
    r = 8
    if opslimit < memlimit // 32:
        p = 1
        max_n = opslimit // (r * 4)
        n_log2 = 1
        while n_log2 < 63 and (1 << n_log2) <= max_n // 2:
            n_log2 += 1
    else:
        max_n = memlimit // (r * 128)
        n_log2 = 1
        while n_log2 < 63 and (1 << n_log2) <= max_n // 2:
            n_log2 += 1
        max_rp = min((opslimit // 4) // (1 << n_log2), 0x3FFFFFFF)
        p = max_rp // r
    return 1 << n_log2, r, p


def _keystream(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    n, r, p = _scrypt_params(opslimit, memlimit)
    needed = 128 * r * (n + p + 2)
    if needed > 2**31 - 1:
        raise SigningError("The secret key's scrypt cost is larger than this tool can handle.")
    return hashlib.scrypt(
        passphrase.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=needed + 1024 * 1024,
        dklen=KEYNUM_SK_BYTES,
    )


def _checksum(key_id: bytes, secret: bytes) -> bytes:
    return hashlib.blake2b(minisign.KEY_ALGORITHM + key_id + secret, digest_size=32).digest()


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))


def secret_key_file_text(key: SecretKey, passphrase: str, cost: KdfCost = KdfCost.SENSITIVE) -> str:
    """minisign's encrypted secret key file for `key`."""
    if not passphrase:
        raise SigningError("The secret key needs a passphrase; an empty one is not accepted.")
    opslimit, memlimit = cost.value
    salt = secrets.token_bytes(SALT_BYTES)
    secret = key.seed + key.public_key.key
    keynum_sk = key.key_id + secret + _checksum(key.key_id, secret)
    encrypted = _xor(keynum_sk, _keystream(passphrase, salt, opslimit, memlimit))
    raw = (
        minisign.KEY_ALGORITHM
        + SCRYPT
        + BLAKE2B
        + salt
        + opslimit.to_bytes(8, "little")
        + memlimit.to_bytes(8, "little")
        + encrypted
    )
    return (
        f"{minisign.UNTRUSTED_PREFIX}minisign encrypted secret key\n"
        f"{base64.b64encode(raw).decode('ascii')}\n"
    )


def load_secret_key(text: str, passphrase: str | None) -> SecretKey:
    """Decrypt a minisign secret key file (ours or `minisign -G`'s, with or without -W)."""
    lines = [
        line.strip()
        for line in text.strip().splitlines()
        if line.strip() and not line.startswith(minisign.UNTRUSTED_PREFIX)
    ]
    try:
        raw = base64.b64decode(lines[0], validate=True) if len(lines) == 1 else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != SECRET_KEY_BYTES or raw[:2] != minisign.KEY_ALGORITHM or raw[4:6] != BLAKE2B:
        raise SigningError("That file is not a minisign Ed25519 secret key.")
    kdf = raw[2:4]
    salt = raw[6 : 6 + SALT_BYTES]
    limits = raw[6 + SALT_BYTES : 6 + SALT_BYTES + 16]
    keynum_sk = raw[6 + SALT_BYTES + 16 :]
    if kdf == SCRYPT:
        if not passphrase:
            raise SigningError("The secret key is encrypted: give its passphrase.")
        opslimit = int.from_bytes(limits[:8], "little")
        memlimit = int.from_bytes(limits[8:], "little")
        keynum_sk = _xor(keynum_sk, _keystream(passphrase, salt, opslimit, memlimit))
    elif kdf != NO_KDF:
        raise SigningError("The secret key uses a key derivation this tool does not know.")
    key_id, secret, checksum = keynum_sk[:8], keynum_sk[8:72], keynum_sk[72:]
    # minisign -W leaves the checksum of an unencrypted key all zero.
    checked = kdf == SCRYPT or any(checksum)
    if checked and not secrets.compare_digest(checksum, _checksum(key_id, secret)):
        raise SigningError("Wrong passphrase for that secret key (its checksum does not match).")
    key = SecretKey(key_id=key_id, seed=secret[:32])
    if key.public_key.key != secret[32:]:
        raise SigningError("That secret key is damaged: its two halves do not belong together.")
    return key


def sign_bytes(
    key: SecretKey, data: bytes, *, trusted_comment: str, prehashed: bool = True
) -> minisign.Signature:
    """Sign `data` as `minisign -S` does (prehashed ED by default, `-l` legacy Ed otherwise)."""
    message = minisign.prehash(data) if prehashed else data
    return _sign(key, message, trusted_comment, prehashed=prehashed)


def sign_file(key: SecretKey, path: Path, *, trusted_comment: str | None = None) -> Path:
    """Write `path`.minisig (prehashed); the default trusted comment is minisign's."""
    comment = trusted_comment or f"timestamp:{int(time.time())}\tfile:{path.name}\thashed"
    signature = _sign(key, minisign.file_prehash(path), comment, prehashed=True)
    out = path.with_name(path.name + ".minisig")
    out.write_text(signature.file_text(), encoding="utf-8")
    return out


def _sign(
    key: SecretKey, message: bytes, trusted_comment: str, *, prehashed: bool
) -> minisign.Signature:
    if "\n" in trusted_comment or "\r" in trusted_comment:
        raise SigningError("A trusted comment must be a single line.")
    signer = Ed25519PrivateKey.from_private_bytes(key.seed)
    signature = signer.sign(message)
    return minisign.Signature(
        algorithm=minisign.PREHASHED if prehashed else minisign.LEGACY,
        key_id=key.key_id,
        signature=signature,
        trusted_comment=trusted_comment,
        # The global signature binds the trusted comment to this signature.
        global_signature=signer.sign(signature + trusted_comment.encode("utf-8")),
    )


def read_passphrase(*, confirm: bool) -> str:
    """The passphrase from VIGIL_SIGNING_PASSPHRASE, else asked for on the terminal."""
    value = os.environ.get(PASSPHRASE_VARIABLE)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise SigningError(
            f"No passphrase: set {PASSPHRASE_VARIABLE} or run this on a terminal to be asked."
        )
    first = getpass.getpass("Secret key passphrase: ")
    if confirm and getpass.getpass("The same passphrase again: ") != first:
        raise SigningError("The two passphrases differ; nothing was written.")
    return first


def write_key_pair(
    public_path: Path, secret_path: Path, passphrase: str, cost: KdfCost = KdfCost.SENSITIVE
) -> minisign.PublicKey:
    """Create a key pair; the secret key file is readable by its owner only."""
    for path in (public_path, secret_path):
        if path.exists():
            raise SigningError(f"{path} already exists; move it away first (nothing was written).")
    key = SecretKey.generate()
    text = secret_key_file_text(key, passphrase, cost)
    secret_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_text(key.public_key.file_text(), encoding="utf-8")
    return key.public_key


def load_secret_key_file(path: Path) -> SecretKey:
    """Read and decrypt a secret key file, asking for its passphrase when it is encrypted."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SigningError(f"The secret key {path} cannot be read ({exc.strerror}).") from None
    except UnicodeDecodeError:
        raise SigningError(f"{path} is not a minisign secret key.") from None
    passphrase = read_passphrase(confirm=False) if "encrypted" in text.splitlines()[0] else None
    return load_secret_key(text, passphrase)


def verify_files(public_key_path: Path, files: Sequence[Path]) -> list[str]:
    """Check each file against file.minisig; returns their trusted comments."""
    public_key = minisign.PublicKey.parse(public_key_path.read_text(encoding="utf-8"))
    comments = []
    for path in files:
        signature_path = path.with_name(path.name + ".minisig")
        try:
            text = signature_path.read_bytes()
        except FileNotFoundError:
            raise ReleaseSignatureError(
                f"{path.name} has no signature file {signature_path.name}."
            ) from None
        signature = minisign.Signature.parse(text, what=path.name)
        comments.append(minisign.verify_file(public_key, path, signature))
    return comments


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: keygen, sign, verify."""
    parser = argparse.ArgumentParser(
        prog="python -m installer.signing",
        description="Vigil release keys and minisign-format signatures.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser("keygen", help="create a passphrase-protected key pair")
    keygen.add_argument("--public-key", type=Path, required=True)
    keygen.add_argument("--secret-key", type=Path, required=True)
    keygen.add_argument(
        "--kdf",
        choices=[cost.name.lower() for cost in KdfCost],
        default="sensitive",
        help="scrypt cost; 'interactive' is for throwaway test keys only",
    )
    sign = commands.add_parser("sign", help="write FILE.minisig for each FILE")
    sign.add_argument("--secret-key", type=Path, required=True)
    sign.add_argument("files", type=Path, nargs="+")
    verify = commands.add_parser("verify", help="check each FILE against FILE.minisig")
    verify.add_argument("--public-key", type=Path, required=True)
    verify.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            public = write_key_pair(
                args.public_key,
                args.secret_key,
                read_passphrase(confirm=True),
                KdfCost[args.kdf.upper()],
            )
            print(
                f"key {public.id_text}: public key {args.public_key}, secret key {args.secret_key}"
            )
            print(f"public key for the IT policy (update_public_key): {public.to_base64()}")
        elif args.command == "sign":
            key = load_secret_key_file(args.secret_key)
            for path in args.files:
                print(f"signed {path} -> {sign_file(key, path)}")
        else:
            for path, comment in zip(
                args.files, verify_files(args.public_key, args.files), strict=True
            ):
                print(f"{path}: signature OK ({comment})")
    except (SigningError, ReleaseSignatureError) as exc:
        print(f"signing: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"signing: {exc.filename} does not exist", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
