"""Start at login: the platform's own autostart entry for Vigil, written and removed on request.

Linux and other XDG desktops: $XDG_CONFIG_HOME/autostart/vigil.desktop. Windows: a value under
HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run. macOS: a LaunchAgent plist in
~/Library/LaunchAgents, loaded by launchd at the next login.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from client.core.errors import AutostartError

APP_NAME = "Vigil"
LAUNCH_AGENT_LABEL = "org.vigil.tray"
WINDOWS_RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"


class Autostart(Protocol):
    """An autostart entry that runs `command` when the user signs in."""

    def enable(self, command: Sequence[str]) -> None:
        """Create or update the entry."""

    def disable(self) -> None:
        """Remove the entry; nothing happens when there is none."""

    def is_enabled(self) -> bool:
        """Whether the entry exists."""


def autostart_for_platform(
    platform: str = sys.platform,
    *,
    home: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Autostart:
    """The autostart entry for `platform` (sys.platform style), in `home` / `environ`'s folders."""
    home = home or Path.home()
    environ = os.environ if environ is None else environ
    if platform == "win32":
        return WindowsRunKey()
    if platform == "darwin":
        return LaunchAgent(home / "Library" / "LaunchAgents")
    config_home = environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    base = Path(config_home) if os.path.isabs(config_home) else home / ".config"
    config_dirs = [
        Path(d) for d in environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":") if os.path.isabs(d)
    ]
    return XdgAutostart(base / "autostart", [d / "autostart" for d in config_dirs])


class XdgAutostart:
    """A desktop entry in the user's XDG autostart folder.

    IT's package may also install a system-wide entry (/etc/xdg/autostart/vigil.desktop). The
    XDG autostart spec lets a user's entry of the same name with Hidden=true switch that one
    off, so "off" writes such an entry rather than deleting the file.
    """

    def __init__(self, folder: Path, system_folders: Sequence[Path] = ()) -> None:
        self.path = folder / "vigil.desktop"
        self.system_paths = [system / "vigil.desktop" for system in system_folders]

    def enable(self, command: Sequence[str]) -> None:
        """Write vigil.desktop running `command`."""
        entry = (
            "[Desktop Entry]\n"
            "Type=Application\n"
            f"Name={APP_NAME}\n"
            "Comment=Crisis alerts for support agents\n"
            f"Exec={desktop_exec(command)}\n"
            "Terminal=false\n"
            "X-GNOME-Autostart-enabled=true\n"
        )
        _write_atomically(self.path, entry.encode("utf-8"))

    def disable(self) -> None:
        """Write a hidden vigil.desktop, which also hides a system-wide entry."""
        entry = f"[Desktop Entry]\nType=Application\nName={APP_NAME}\nHidden=true\n"
        _write_atomically(self.path, entry.encode("utf-8"))

    def is_enabled(self) -> bool:
        """Whether Vigil starts at login: the user's entry decides, else a system-wide one."""
        if self.path.is_file():
            return not _is_hidden(self.path)
        return any(path.is_file() and not _is_hidden(path) for path in self.system_paths)


def _is_hidden(entry: Path) -> bool:
    try:
        lines = entry.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return False
    return any(line.strip().replace(" ", "").lower() == "hidden=true" for line in lines)


class LaunchAgent:
    """A per-user launchd agent plist (macOS). Not exercised by the test suite on Linux."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"{LAUNCH_AGENT_LABEL}.plist"

    def enable(self, command: Sequence[str]) -> None:
        """Write the plist that runs `command` at load (login)."""
        plist = {
            "Label": LAUNCH_AGENT_LABEL,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "ProcessType": "Interactive",
        }
        _write_atomically(self.path, plistlib.dumps(plist))

    def disable(self) -> None:
        """Remove the plist."""
        _remove(self.path)

    def is_enabled(self) -> bool:
        """Whether the plist exists."""
        return self.path.is_file()


class WindowsRunKey:
    """A value under the current user's Run key (Windows). Not exercised by the test suite."""

    def enable(self, command: Sequence[str]) -> None:
        """Set the Run value to `command`, quoted the way Windows parses command lines."""
        if sys.platform == "win32":
            import winreg

            try:
                with winreg.CreateKey(winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY) as key:
                    value = subprocess.list2cmdline(command)
                    winreg.SetValueEx(key, APP_NAME, 0, winreg.REG_SZ, value)
            except OSError as exc:
                raise AutostartError(
                    f"Vigil could not add itself to Windows start-up ({exc.strerror}). "
                    "Ask IT to check your registry permissions."
                ) from None
        else:
            raise AutostartError("The Windows start-up entry can only be set on Windows.")

    def disable(self) -> None:
        """Delete the Run value."""
        if sys.platform == "win32":
            import winreg

            try:
                with winreg.OpenKey(
                    winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY, 0, winreg.KEY_SET_VALUE
                ) as key:
                    winreg.DeleteValue(key, APP_NAME)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise AutostartError(
                    f"Vigil could not remove itself from Windows start-up ({exc.strerror})."
                ) from None
        else:
            raise AutostartError("The Windows start-up entry can only be removed on Windows.")

    def is_enabled(self) -> bool:
        """Whether the Run value exists."""
        if sys.platform == "win32":
            import winreg

            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, WINDOWS_RUN_KEY) as key:
                    winreg.QueryValueEx(key, APP_NAME)
            except OSError:
                return False
            return True
        return False


_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def desktop_exec(command: Sequence[str]) -> str:
    """`command` as a desktop entry Exec value (quoting and escaping per the XDG spec)."""
    if not command:
        raise AutostartError("There is no command to start Vigil with.")
    return " ".join(_exec_arg(arg) for arg in command)


def _exec_arg(arg: str) -> str:
    if "\n" in arg or "\r" in arg:
        raise AutostartError("The command to start Vigil contains a line break.")
    # Field codes start with %, so a literal one is doubled.
    arg = arg.replace("%", "%%")
    if arg and not (_EXEC_RESERVED & set(arg)):
        return arg
    quoted = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    # The string-value escape rule applies on top of the quoting rule: backslashes double again.
    return '"' + quoted.replace("\\", "\\\\") + '"'


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise AutostartError(
            f"Vigil could not write its start-at-login entry {path} ({exc.strerror})."
        ) from None


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise AutostartError(
            f"Vigil could not remove its start-at-login entry {path} ({exc.strerror})."
        ) from None
