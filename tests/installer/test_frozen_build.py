"""The real build: PyInstaller's one-folder bundle, the tarball, the .deb, checksums and
signatures; the frozen program's self-test; the .deb installed into a temporary root with dpkg.

The build runs once for this module (about 40 s on two cores) and is shared by its tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.core import minisign
from installer.build import BuildResult, build, project_version
from installer.policy import inject
from installer.signing import PASSPHRASE_VARIABLE, KdfCost, verify_files, write_key_pair

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="builds the Linux packages"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed"),
]
PASSPHRASE = "throwaway test passphrase"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BuildResult, Path]]:
    folder = tmp_path_factory.mktemp("release")
    public, secret = folder / "release.pub", folder / "release.key"
    write_key_pair(public, secret, PASSPHRASE, KdfCost.INTERACTIVE)
    policy = folder / "policy.json"
    key_line = minisign.PublicKey.parse(public.read_text()).to_base64()
    policy.write_text(
        json.dumps(
            {
                "hub_url": "https://vigil-hub.example.org",
                "update_public_key": key_line,
                "idle_lock_minutes": 10,
            }
        )
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PASSPHRASE_VARIABLE, PASSPHRASE)
        result = build(folder / "dist", policy_file=policy, update_key=public, sign_key=secret)
    yield result, folder


def named(result: BuildResult, suffix: str) -> Path:
    (path,) = [p for p in result.artifacts if p.name.endswith(suffix)]
    return path


def frozen_env(tmp_path: Path) -> dict[str, str]:
    """A bare environment: nothing from the build's virtualenv can leak into the frozen run."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "QT_QPA_PLATFORM": "offscreen",
        "VIGIL_POLICY": str(tmp_path / "no-policy.json"),
    }


def test_the_frozen_program_reports_its_version(
    built: tuple[BuildResult, Path], tmp_path: Path
) -> None:
    result, _ = built
    run = subprocess.run(
        [str(result.bundle / "vigil"), "--version"],
        env=frozen_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"vigil {project_version()}"


def test_the_frozen_program_passes_its_self_test(
    built: tuple[BuildResult, Path], tmp_path: Path
) -> None:
    result, _ = built
    run = subprocess.run(
        [str(result.bundle / "vigil"), "--self-test"],
        env=frozen_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for step in ("imports", "cache", "signature", "pop-up"):
        assert f"self-test {step}: ok" in run.stdout
    assert "self-test: passed" in run.stdout


def test_the_bundle_carries_the_resources_but_not_the_hub_or_unused_qt(
    built: tuple[BuildResult, Path],
) -> None:
    result, _ = built
    internal = result.bundle / "_internal"
    for needed in ("resources/vigil.qss", "resources/icons/app-64.png", "resources/sounds"):
        assert (internal / needed).exists(), needed
    assert (internal / "update-key.pub").is_file()
    names = {p.name for p in internal.rglob("*")}
    for left_out in ("fastapi", "uvicorn", "starlette", "pydantic", "argon2", "pyotp", "qrcode"):
        assert left_out not in names, left_out
    assert "demo" not in {p.name for p in (internal / "resources").iterdir()}
    for qt in ("libQt6Network.so.6", "libQt6Qml.so.6", "libQt6Quick.so.6", "libqgtk3.so"):
        assert qt not in names, qt
    assert not [p for p in internal.rglob("*") if p.is_symlink() and not p.exists()]


def test_every_artifact_and_the_checksums_are_signed_and_listed(
    built: tuple[BuildResult, Path],
) -> None:
    result, folder = built
    tarball = named(result, "-linux-x86_64.tar.gz")
    deb = named(result, ".deb")
    sums = named(result, "SHA256SUMS")
    assert tarball.name == f"vigil-{project_version()}-linux-x86_64.tar.gz"
    assert len(verify_files(folder / "release.pub", [tarball, deb, sums])) == 3
    check = subprocess.run(
        ["sha256sum", "--check", "--strict", sums.name],
        cwd=sums.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    with tarfile.open(tarball) as archive:
        members = set(archive.getnames())
    top = f"vigil-{project_version()}"
    assert {f"{top}/vigil", f"{top}/policy.json", f"{top}/_internal"} <= members


def test_the_deb_installs_with_the_expected_layout(
    built: tuple[BuildResult, Path], tmp_path: Path
) -> None:
    result, _folder = built
    deb = named(result, ".deb")
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=120)
    program = root / "opt/vigil/vigil"
    assert program.is_file() and os.access(program, os.X_OK)
    assert os.readlink(root / "usr/bin/vigil") == "/opt/vigil/vigil"
    desktop = (root / "usr/share/applications/vigil.desktop").read_text()
    autostart = (root / "etc/xdg/autostart/vigil.desktop").read_text()
    assert "Exec=/usr/bin/vigil" in desktop and "Exec=/usr/bin/vigil" in autostart
    assert (root / "usr/share/icons/hicolor/64x64/apps/vigil.png").is_file()
    policy = json.loads((root / "etc/vigil/policy.json").read_text())
    assert policy["hub_url"] == "https://vigil-hub.example.org"
    control = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert f"Version: {project_version()}" in control and "Architecture: amd64" in control
    run = subprocess.run(
        [str(program), "--version"], env=frozen_env(tmp_path), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr


def dpkg_root(tmp_path: Path) -> Path:
    root = tmp_path / "system"
    for folder in ("var/lib/dpkg/info", "var/lib/dpkg/updates"):
        (root / folder).mkdir(parents=True)
    (root / "var/lib/dpkg/status").touch()
    return root


def dpkg_install(root: Path, deb: Path) -> None:
    run = subprocess.run(
        ["dpkg", f"--root={root}", "--force-depends", "--force-not-root", "--log=/dev/null",
         "-i", str(deb)],
        capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def next_version(deb: Path, out: Path) -> Path:
    """The same package as a newer version, as the next release would be."""
    tree = out.parent / "next-tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True, timeout=120)
    control = tree / "DEBIAN" / "control"
    control.write_text(control.read_text().replace("Version: ", "Version: 99:", 1))
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Znone", "-b", str(tree), str(out)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return out


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")
def test_an_upgrade_keeps_the_policy_it_changed_on_the_computer(
    built: tuple[BuildResult, Path], tmp_path: Path
) -> None:
    result, _ = built
    deb = named(result, ".deb")
    root = dpkg_root(tmp_path)
    dpkg_install(root, deb)
    status = (root / "var/lib/dpkg/status").read_text()
    assert " /etc/vigil/policy.json " in status and " /etc/xdg/autostart/vigil.desktop " in status
    local = '{"hub_url": "https://hub.it-changed-this.example.org"}\n'
    (root / "etc/vigil/policy.json").write_text(local)

    dpkg_install(root, next_version(deb, tmp_path / "vigil-next.deb"))

    assert (root / "etc/vigil/policy.json").read_text() == local
    assert "Version: 99:" in (root / "var/lib/dpkg/status").read_text()


def test_vigil_policy_puts_a_new_policy_into_both_packages(
    built: tuple[BuildResult, Path], tmp_path: Path
) -> None:
    result, _ = built
    policy = tmp_path / "site-policy.json"
    policy.write_text(json.dumps({"hub_url": "https://hub.site.example.org"}))
    deb = inject(policy, named(result, ".deb"), tmp_path / "site" / "vigil.deb")
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=120)
    assert (root / "etc/vigil/policy.json").read_bytes() == policy.read_bytes()
    tarball = inject(policy, named(result, ".tar.gz"), tmp_path / "site" / "vigil.tar.gz")
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(f"vigil-{project_version()}/policy.json")
        assert member is not None and member.read() == policy.read_bytes()
