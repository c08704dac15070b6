"""The Debian package's layout, control files and build (dpkg-deb).

Installs the one-folder bundle under /opt/vigil, /usr/bin/vigil (a symbolic link to it), a desktop
entry and icons, an autostart entry for every user in /etc/xdg/autostart, and the IT policy at
/etc/vigil/policy.json. Both files under /etc are conffiles: dpkg never overwrites a copy that
was changed on the computer. No maintainer scripts are needed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

PACKAGE = "vigil"
INSTALL_DIR = "opt/vigil"
POLICY = "etc/vigil/policy.json"
AUTOSTART = "etc/xdg/autostart/vigil.desktop"
DESKTOP = "usr/share/applications/vigil.desktop"
ICON_SIZES = (16, 32, 48, 64, 128, 256)
# What the bundle loads from the system rather than carrying: the graphics drivers' GL and EGL,
# and the X and D-Bus client libraries Qt's desktop plugins open. The C library comes with the
# distribution.
DEPENDS = (
    "libc6 (>= 2.31)",
    "libgl1",
    "libegl1",
    "libfontconfig1",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
    "libdbus-1-3",
    "libxcb-cursor0",
)

DESKTOP_ENTRY = """\
[Desktop Entry]
Type=Application
Name=Vigil
GenericName=Crisis alerts
Comment=Crisis alerts, playbooks and approved patient scripts for support agents
Exec=/usr/bin/vigil
Icon=vigil
Terminal=false
Categories=Network;Office;
StartupNotify=false
"""

# Every user's session starts Vigil. A user's own ~/.config/autostart/vigil.desktop overrides this
# one (XDG autostart specification), e.g. one with Hidden=true turns it off for that user.
AUTOSTART_ENTRY = """\
[Desktop Entry]
Type=Application
Name=Vigil
Comment=Crisis alerts for support agents
Exec=/usr/bin/vigil
Icon=vigil
Terminal=false
X-GNOME-Autostart-enabled=true
"""


class DebError(Exception):
    """dpkg-deb is missing or refused the package; the message says why."""


def stage(
    root: Path, *, bundle: Path, icons: Path, version: str, policy: bytes, architecture: str
) -> None:
    """Lay the package's files out under `root` (which must not exist yet)."""
    shutil.copytree(bundle, root / INSTALL_DIR, symlinks=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/vigil").symlink_to(f"/{INSTALL_DIR}/vigil")
    _write(root / DESKTOP, DESKTOP_ENTRY.encode("utf-8"))
    _write(root / AUTOSTART, AUTOSTART_ENTRY.encode("utf-8"))
    _write(root / POLICY, policy)
    for size in ICON_SIZES:
        source = icons / f"app-{size}.png"
        if source.is_file():
            _write(
                root / f"usr/share/icons/hicolor/{size}x{size}/apps/vigil.png", source.read_bytes()
            )
    control = root / "DEBIAN"
    control.mkdir()
    installed_kib = _tree_size(root) // 1024
    (control / "control").write_text(
        f"Package: {PACKAGE}\n"
        f"Version: {version}\n"
        f"Architecture: {architecture}\n"
        "Maintainer: Vigil release team <vigil@example.org>\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: {', '.join(DEPENDS)}\n"
        "Section: net\n"
        "Priority: optional\n"
        "Description: crisis-alert tray client for remote support agents\n"
        " Vigil sits in the system tray and puts crisis alerts from the hub on top of\n"
        " everything, with the playbook to follow and the approved patient script.\n",
        encoding="utf-8",
    )
    (control / "conffiles").write_text(f"/{POLICY}\n/{AUTOSTART}\n", encoding="utf-8")
    write_md5sums(root)
    _normalise_modes(root)


def write_md5sums(root: Path) -> None:
    """DEBIAN/md5sums for every regular file, as `dpkg --verify` reads it."""
    lines = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] == "DEBIAN" or path.is_symlink() or not path.is_file():
            continue
        lines.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {relative.as_posix()}\n")
    (root / "DEBIAN" / "md5sums").write_text("".join(lines), encoding="utf-8")


def build_deb(root: Path, output: Path) -> Path:
    """Run dpkg-deb on a staged tree; files are owned by root in the package."""
    if shutil.which("dpkg-deb") is None:
        raise DebError("dpkg-deb is needed to build the .deb; install dpkg (Debian, Ubuntu).")
    result = subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z6", "--build", str(root), str(output)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DebError(f"dpkg-deb refused the package: {result.stderr.strip()}")
    return output


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _tree_size(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _normalise_modes(root: Path) -> None:
    # Whatever the umask on the build machine: directories and programs 0755, other files 0644.
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            executable = os.access(path, os.X_OK)
            path.chmod(0o755 if executable else 0o644)
    root.chmod(0o755)
