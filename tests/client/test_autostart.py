"""Start at login on Linux: the XDG autostart desktop entry, under XDG_CONFIG_HOME."""

import configparser
import shlex
from pathlib import Path

import pytest

from client.core.autostart import XdgAutostart, autostart_for_platform, desktop_exec
from client.core.errors import AutostartError


def _read_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def test_enable_writes_desktop_entry_under_xdg_config_home(tmp_path: Path) -> None:
    config = tmp_path / "config"
    autostart = autostart_for_platform(
        "linux",
        home=tmp_path / "home",
        environ={"XDG_CONFIG_HOME": str(config), "XDG_CONFIG_DIRS": str(tmp_path / "etc-xdg")},
    )
    assert not autostart.is_enabled()

    autostart.enable(["/opt/vigil/bin/vigil-tray", "--minimized"])

    path = config / "autostart" / "vigil.desktop"
    assert autostart.is_enabled()
    entry = _read_entry(path)
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Vigil"
    assert entry["Exec"] == "/opt/vigil/bin/vigil-tray --minimized"
    assert not (tmp_path / "home").exists()


def test_disable_hides_the_entry_and_is_idempotent(tmp_path: Path) -> None:
    autostart = autostart_for_platform(
        "linux", environ={"XDG_CONFIG_HOME": str(tmp_path), "XDG_CONFIG_DIRS": "/nonexistent"}
    )
    autostart.enable(["vigil"])
    autostart.disable()
    assert _read_entry(tmp_path / "autostart" / "vigil.desktop")["Hidden"] == "true"
    assert not autostart.is_enabled()
    autostart.disable()
    assert not autostart.is_enabled()


def test_turning_it_off_hides_the_entry_it_installed_for_every_user(tmp_path: Path) -> None:
    system = tmp_path / "etc-xdg" / "autostart"
    system.mkdir(parents=True)
    (system / "vigil.desktop").write_text("[Desktop Entry]\nType=Application\nExec=vigil\n")
    autostart = autostart_for_platform(
        "linux",
        environ={"XDG_CONFIG_HOME": str(tmp_path / "user"), "XDG_CONFIG_DIRS": str(system.parent)},
    )
    assert autostart.is_enabled()

    autostart.disable()

    assert not autostart.is_enabled()
    assert _read_entry(tmp_path / "user" / "autostart" / "vigil.desktop")["Hidden"] == "true"
    assert (system / "vigil.desktop").is_file()
    autostart.enable(["vigil"])
    assert autostart.is_enabled()


def test_without_xdg_config_home_uses_home_dot_config(tmp_path: Path) -> None:
    for environ in ({}, {"XDG_CONFIG_HOME": "relative/ignored"}):
        autostart = autostart_for_platform("linux", home=tmp_path, environ=environ)
        autostart.enable(["vigil"])
        assert (tmp_path / ".config" / "autostart" / "vigil.desktop").is_file()


def test_enable_twice_replaces_the_command(tmp_path: Path) -> None:
    autostart = XdgAutostart(tmp_path)
    autostart.enable(["old"])
    autostart.enable(["new"])
    assert _read_entry(tmp_path / "vigil.desktop")["Exec"] == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["vigil.desktop"]


def test_exec_quotes_spaces_and_special_characters() -> None:
    command = ["/home/a b/venv/bin/python", "-m", "client.app", "100%", 'say "$hi"']
    value = desktop_exec(command)
    assert value == ('"/home/a b/venv/bin/python" -m client.app 100%% "say \\\\"\\\\$hi\\\\""')
    # Undo the string-value escape; then quotes and backslashes unquote the way a POSIX shell does.
    plain = ["/a b/python", 'say "hi"', "back\\slash"]
    unescaped = desktop_exec(plain).replace("\\\\", "\\")
    assert shlex.split(unescaped) == plain


def test_bad_command_is_a_clear_error(tmp_path: Path) -> None:
    autostart = XdgAutostart(tmp_path)
    with pytest.raises(AutostartError, match="no command"):
        autostart.enable([])
    with pytest.raises(AutostartError, match="line break"):
        autostart.enable(["vigil\n[Other Section]"])
    assert not autostart.is_enabled()


def test_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    # A file where the folder should be fails the same way for every user, root included.
    (tmp_path / "config").write_text("not a folder")
    with pytest.raises(AutostartError, match="could not write"):
        XdgAutostart(tmp_path / "config" / "autostart").enable(["vigil"])
