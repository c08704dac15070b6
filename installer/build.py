"""Build the client for the platform this runs on: the one-folder bundle, then the packages.

Linux: dist/vigil-<version>-linux-x86_64.tar.gz, dist/vigil_<version>_amd64.deb and
dist/SHA256SUMS; with --sign-key, a .minisig for each. Windows and macOS: the bundle, then the
platform's installer script (installer/windows, installer/macos), which are untested here.

    python -m installer.build [--policy policy.json] [--update-key release.pub]
                              [--sign-key release.key] [--out dist]
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from client.core import minisign
from client.core.errors import ReleaseSignatureError
from client.core.updates import BUILT_IN_KEY_FILE
from installer import deb, signing
from installer.policy import PolicyStepError, check_policy

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "installer" / "vigil.spec"
EMPTY_POLICY = b"{}\n"
_DEB_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}


class BuildError(Exception):
    """A build step failed; the message says which and why."""


@dataclass(frozen=True)
class BuildResult:
    """What one build produced."""

    bundle: Path
    bundle_bytes: int
    artifacts: tuple[Path, ...]
    seconds: float


def project_version() -> str:
    """The version in pyproject.toml (the one source of it)."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def build_bundle(work: Path) -> Path:
    """Run PyInstaller on installer/vigil.spec; returns the one-folder bundle."""
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(work / "dist"),
        "--workpath",
        str(work / "build"),
        str(SPEC),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"PyInstaller failed:\n{result.stderr[-4000:]}")
    bundle = work / "dist" / "vigil"
    if not (bundle / "vigil").is_file() and not (bundle / "vigil.exe").is_file():
        raise BuildError(f"PyInstaller finished but {bundle} holds no vigil program.")
    return bundle


def tree_bytes(folder: Path) -> int:
    """Bytes of every regular file under `folder`."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def make_tarball(bundle: Path, out: Path, version: str, policy: bytes) -> Path:
    """vigil-<version>-linux-<machine>.tar.gz: the bundle in vigil-<version>/, with policy.json."""
    top = f"vigil-{version}"
    path = out / f"{top}-linux-{platform.machine()}.tar.gz"

    def root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(path, "w:gz", compresslevel=6) as archive:
        archive.add(bundle, arcname=top, filter=root_owned)
        info = root_owned(tarfile.TarInfo(f"{top}/policy.json"))
        info.size, info.mode, info.mtime = len(policy), 0o644, int(time.time())
        with tempfile.TemporaryFile() as data:
            data.write(policy)
            data.seek(0)
            archive.addfile(info, data)
    return path


def make_deb(bundle: Path, out: Path, version: str, policy: bytes) -> Path:
    """vigil_<version>_<arch>.deb (see installer/deb.py for its layout)."""
    architecture = _DEB_ARCHITECTURES.get(platform.machine(), platform.machine())
    path = out / f"vigil_{version}_{architecture}.deb"
    with tempfile.TemporaryDirectory(prefix="vigil-deb-") as folder:
        root = Path(folder) / "root"
        deb.stage(
            root,
            bundle=bundle,
            icons=ROOT / "resources" / "icons",
            version=version,
            policy=policy,
            architecture=architecture,
        )
        deb.build_deb(root, path)
    return path


def write_checksums(files: Sequence[Path], out: Path) -> Path:
    """SHA256SUMS in `sha256sum -c` format."""
    lines = []
    for path in files:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
        lines.append(f"{digest.hexdigest()}  {path.name}\n")
    sums = out / "SHA256SUMS"
    sums.write_text("".join(lines), encoding="utf-8")
    return sums


def build(
    out: Path,
    *,
    policy_file: Path | None = None,
    update_key: Path | None = None,
    sign_key: Path | None = None,
    work: Path | None = None,
) -> BuildResult:
    """The whole build; every input is checked before PyInstaller starts."""
    started = time.monotonic()
    policy = check_policy(policy_file) if policy_file else EMPTY_POLICY
    key_text = None
    if update_key is not None:
        key_text = minisign.PublicKey.parse(update_key.read_text(encoding="utf-8")).file_text()
    secret = signing.load_secret_key_file(sign_key) if sign_key else None
    version = project_version()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vigil-build-") as temp:
        bundle = build_bundle(work or Path(temp))
        if key_text is not None:
            (bundle / "_internal" / BUILT_IN_KEY_FILE).write_text(key_text, encoding="utf-8")
        final_bundle = out / "vigil"
        if final_bundle.exists():
            shutil.rmtree(final_bundle)
        shutil.copytree(bundle, final_bundle, symlinks=True)
    artifacts: list[Path] = []
    if sys.platform.startswith("linux"):
        artifacts.append(make_tarball(final_bundle, out, version, policy))
        if shutil.which("dpkg-deb"):
            artifacts.append(make_deb(final_bundle, out, version, policy))
        else:
            print("build: dpkg-deb not found; no .deb was made", file=sys.stderr)
        artifacts.append(write_checksums(artifacts, out))
        if secret is not None:
            artifacts += [signing.sign_file(secret, path) for path in list(artifacts)]
    else:
        script = "installer/windows/vigil.iss" if sys.platform == "win32" else "installer/macos"
        print(f"build: bundle ready in {final_bundle}; make the installer with {script}")
    return BuildResult(
        bundle=final_bundle,
        bundle_bytes=tree_bytes(final_bundle),
        artifacts=tuple(artifacts),
        seconds=time.monotonic() - started,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line for `build`."""
    parser = argparse.ArgumentParser(
        prog="python -m installer.build", description="Build Vigil's bundle and packages."
    )
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--policy", type=Path, help="IT's policy.json to put in the packages")
    parser.add_argument("--update-key", type=Path, help="minisign public key updates must match")
    parser.add_argument("--sign-key", type=Path, help="minisign secret key to sign the artifacts")
    args = parser.parse_args(argv)
    try:
        result = build(
            args.out, policy_file=args.policy, update_key=args.update_key, sign_key=args.sign_key
        )
    except (BuildError, PolicyStepError, ReleaseSignatureError, signing.SigningError) as exc:
        print(f"build: {exc}", file=sys.stderr)
        return 1
    except deb.DebError as exc:
        print(f"build: {exc}", file=sys.stderr)
        return 1
    print(f"bundle {result.bundle}: {result.bundle_bytes / 1e6:.0f} MB")
    for path in result.artifacts:
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"built in {result.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
