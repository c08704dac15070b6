"""Release signatures interoperate with the real `minisign` tool both ways, and every damaged or
foreign signature is refused with a message that says what is wrong."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from client.core import minisign
from client.core.errors import ReleaseSignatureError
from installer.signing import (
    KdfCost,
    SecretKey,
    SigningError,
    load_secret_key,
    secret_key_file_text,
    sign_bytes,
    sign_file,
    verify_files,
    write_key_pair,
)

MINISIGN = shutil.which("minisign")
needs_minisign = pytest.mark.skipif(
    MINISIGN is None,
    reason="the minisign tool is not installed (scripts/bootstrap installs the Debian package "
    "minisign when run as root)",
)
PASSPHRASE = "correct horse battery staple"


def run_minisign(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    assert MINISIGN is not None
    return subprocess.run(
        [MINISIGN, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def release(tmp_path: Path) -> Path:
    path = tmp_path / "vigil-1.0.0-linux-x86_64.tar.gz"
    path.write_bytes(b"release bytes " * 1000)
    return path


@pytest.fixture
def key_pair(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway passphrase-protected key pair made by our keygen."""
    public, secret = tmp_path / "release.pub", tmp_path / "release.key"
    write_key_pair(public, secret, PASSPHRASE, KdfCost.INTERACTIVE)
    return public, secret


def our_key(secret: Path) -> SecretKey:
    return load_secret_key(secret.read_text(), PASSPHRASE)


@needs_minisign
def test_minisign_accepts_our_prehashed_signature(
    release: Path, key_pair: tuple[Path, Path]
) -> None:
    public, secret = key_pair
    sign_file(our_key(secret), release, trusted_comment="vigil 1.0.0 release")
    result = run_minisign("-V", "-p", str(public), "-m", str(release))
    assert result.returncode == 0, result.stderr
    assert "Trusted comment: vigil 1.0.0 release" in result.stdout


@needs_minisign
def test_minisign_accepts_our_legacy_signature(release: Path, key_pair: tuple[Path, Path]) -> None:
    public, secret = key_pair
    signature = sign_bytes(our_key(secret), release.read_bytes(), trusted_comment="legacy")
    (release.parent / (release.name + ".minisig")).write_text(signature.file_text())
    result = run_minisign("-V", "-p", str(public), "-m", str(release))
    assert result.returncode == 0, result.stderr


@needs_minisign
@pytest.mark.parametrize("legacy", [False, True], ids=["prehashed", "legacy"])
def test_we_accept_signatures_made_by_minisign_with_our_encrypted_key(
    release: Path, key_pair: tuple[Path, Path], legacy: bool
) -> None:
    """minisign decrypts our secret key file (same scrypt and checksum) and signs with it."""
    public, secret = key_pair
    flags = ["-l"] if legacy else []
    result = run_minisign(
        "-S", *flags, "-s", str(secret), "-t", "made by minisign", "-m", str(release),
        stdin=PASSPHRASE + "\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert verify_files(public, [release]) == ["made by minisign"]


@needs_minisign
def test_a_minisign_generated_key_signs_with_our_tool_and_verifies_with_minisign(
    tmp_path: Path, release: Path
) -> None:
    public, secret = tmp_path / "mk.pub", tmp_path / "mk.key"
    # -W: no passphrase, so the test does not pay minisign's 1 GiB scrypt cost.
    result = run_minisign("-G", "-W", "-p", str(public), "-s", str(secret))
    assert result.returncode == 0, result.stderr
    sign_file(load_secret_key(secret.read_text(), None), release)
    assert run_minisign("-V", "-p", str(public), "-m", str(release)).returncode == 0
    assert len(verify_files(public, [release])) == 1


def test_a_flipped_byte_in_the_artifact_is_refused(
    release: Path, key_pair: tuple[Path, Path]
) -> None:
    public, secret = key_pair
    sign_file(our_key(secret), release)
    data = bytearray(release.read_bytes())
    data[len(data) // 2] ^= 0x01
    release.write_bytes(bytes(data))
    with pytest.raises(ReleaseSignatureError, match="does not match its signature"):
        verify_files(public, [release])
    if MINISIGN is not None:
        assert run_minisign("-V", "-p", str(public), "-m", str(release)).returncode != 0


def test_a_signature_by_another_key_is_refused(release: Path, key_pair: tuple[Path, Path]) -> None:
    public, _secret = key_pair
    other = SecretKey.generate()
    sign_file(other, release)
    with pytest.raises(ReleaseSignatureError) as caught:
        verify_files(public, [release])
    expected = minisign.PublicKey.parse(public.read_text()).id_text
    assert f"signed with the key {other.public_key.id_text}" in caught.value.message
    assert f"not with the trusted release key {expected}" in caught.value.message


CUTS = {
    "empty": lambda lines: "",
    "inside the signature line": lambda lines: lines[0] + lines[1][:60],
    "after two lines": lambda lines: "".join(lines[:2]),
    "inside the global signature": lambda lines: "".join(lines[:3]) + lines[3][:40],
}


@pytest.mark.parametrize("cut", CUTS.values(), ids=CUTS.keys())
def test_a_truncated_signature_file_is_refused(
    release: Path, key_pair: tuple[Path, Path], cut: Callable[[list[str]], str]
) -> None:
    public, secret = key_pair
    signature_path = sign_file(our_key(secret), release)
    signature_path.write_text(cut(signature_path.read_text().splitlines(keepends=True)))
    with pytest.raises(ReleaseSignatureError, match="not a complete minisign signature"):
        verify_files(public, [release])


def test_a_missing_signature_file_is_refused(release: Path, key_pair: tuple[Path, Path]) -> None:
    with pytest.raises(ReleaseSignatureError, match="has no signature file"):
        verify_files(key_pair[0], [release])


def test_the_untrusted_comment_may_change_but_the_trusted_one_may_not(
    release: Path, key_pair: tuple[Path, Path]
) -> None:
    public, secret = key_pair
    signature_path = sign_file(our_key(secret), release, trusted_comment="vigil 1.0.0")
    lines = signature_path.read_text().splitlines(keepends=True)

    signature_path.write_text("untrusted comment: edited by a mirror\n" + "".join(lines[1:]))
    assert verify_files(public, [release]) == ["vigil 1.0.0"]

    lines[2] = "trusted comment: vigil 9.9.9\n"
    signature_path.write_text("".join(lines))
    with pytest.raises(ReleaseSignatureError, match=r"trusted comment .* was changed"):
        verify_files(public, [release])
    if MINISIGN is not None:
        assert run_minisign("-V", "-p", str(public), "-m", str(release)).returncode != 0


def test_a_wrong_passphrase_is_told_apart_from_a_damaged_key(key_pair: tuple[Path, Path]) -> None:
    _public, secret = key_pair
    with pytest.raises(SigningError, match="Wrong passphrase"):
        load_secret_key(secret.read_text(), "not the passphrase")
    with pytest.raises(SigningError, match="not a minisign Ed25519 secret key"):
        load_secret_key(secret.read_text()[:-20], PASSPHRASE)


def test_an_empty_passphrase_is_not_accepted() -> None:
    with pytest.raises(SigningError, match="needs a passphrase"):
        secret_key_file_text(SecretKey.generate(), "", KdfCost.INTERACTIVE)


def test_the_secret_key_file_is_private_and_keygen_never_overwrites(
    key_pair: tuple[Path, Path],
) -> None:
    public, secret = key_pair
    assert secret.stat().st_mode & 0o077 == 0
    assert PASSPHRASE not in secret.read_text()
    with pytest.raises(SigningError, match="already exists"):
        write_key_pair(public, secret, PASSPHRASE, KdfCost.INTERACTIVE)


def test_the_policy_may_hold_the_minisign_key_line_or_a_bare_key(
    release: Path, key_pair: tuple[Path, Path]
) -> None:
    _public, secret = key_pair
    key = our_key(secret)
    sign_file(key, release)
    signature = minisign.Signature.parse((release.parent / (release.name + ".minisig")).read_text())
    from_line = minisign.PublicKey.parse(key.public_key.to_base64())
    bare = minisign.PublicKey.parse(base64.b64encode(key.public_key.key).decode())
    assert bare.key_id is None
    for public_key in (from_line, bare):
        minisign.verify_file(public_key, release, signature)
