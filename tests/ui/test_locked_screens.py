"""Screens while Vigil is locked, and IT's pins: the lock screen's one message when only a sign-in
can unlock, settings read-only while locked, pinned items marked, and Enter and Escape in every
field of the settings dialog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.settings import Settings
from client.ui.idle_lock import LockScreen
from client.ui.settings_dialog import PINNED_SUFFIX, READ_ONLY_NOTE, SettingsDialog


def make_settings(tmp_path: Path, policy: dict[str, object] | None = None) -> Settings:
    policy_file = tmp_path / "policy.json"
    if policy is not None:
        policy_file.write_text(json.dumps(policy), encoding="utf-8")
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    return Settings.load(paths, load_policy(policy_file))


@pytest.fixture
def dialog(qtbot: QtBot, tmp_path: Path) -> SettingsDialog:
    widget = SettingsDialog(make_settings(tmp_path, {"idle_lock_minutes": 10}))
    qtbot.addWidget(widget)
    with qtbot.waitActive(widget, timeout=5000):
        widget.show()
    return widget


def test_when_only_a_sign_in_can_unlock_the_screen_says_one_thing_and_offers_it(
    qtbot: QtBot,
) -> None:
    screen = LockScreen()
    qtbot.addWidget(screen)
    screen.show()
    qtbot.keyClicks(screen.password, "half typed")
    screen.show_sign_in_needed("This computer cannot check your password yet: sign in again.")
    # What must not happen: "enter your password" next to "sign in again" with the field live.
    assert "Enter your password" not in screen.hint.text()
    assert not screen.password.isEnabled()
    assert screen.password.text() == ""
    assert not screen.unlock_button.isEnabled()
    assert screen.error.text().startswith("This computer cannot check")
    with qtbot.assertNotEmitted(screen.unlock_requested):
        qtbot.keyClick(screen.password, Qt.Key.Key_Return)
    with qtbot.waitSignal(screen.sign_in_requested, timeout=2000):
        qtbot.keyClick(screen.sign_in_button, Qt.Key.Key_Space)
    screen.reset()
    assert screen.password.isEnabled()
    assert "Enter your password" in screen.hint.text()
    assert not screen.sign_in_button.isVisibleTo(screen)


def test_settings_are_read_only_while_locked_lock_timeout_included(
    qtbot: QtBot, tmp_path: Path
) -> None:
    dialog = SettingsDialog(make_settings(tmp_path))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.set_read_only(True)
    assert dialog.read_only_note.text() == READ_ONLY_NOTE
    assert dialog.read_only_note.isVisible()
    assert not dialog.idle_minutes.isEnabled()
    assert not any(box.isEnabled() for box in dialog.checkboxes.values())
    with qtbot.assertNotEmitted(dialog.changes_submitted):
        dialog.idle_minutes.setValue(400)
        qtbot.keyClick(dialog, Qt.Key.Key_Return)
    dialog.set_read_only(False)
    assert dialog.idle_minutes.isEnabled()
    assert dialog.checkboxes["sounds"].isEnabled()


def test_pinned_items_say_so_and_the_hint_keeps_its_capitals(dialog: SettingsDialog) -> None:
    assert dialog.idle_minutes.property("pinned")
    assert not dialog.idle_minutes.isEnabled()
    assert "IT department" in dialog.locked_hint.text()
    assert "it department" not in dialog.locked_hint.text()
    assert PINNED_SUFFIX.strip() in dialog.locked_hint.text()
    dialog.set_read_only(True)
    dialog.set_read_only(False)
    # Unlocking never makes a pinned item editable.
    assert not dialog.idle_minutes.isEnabled()


def settings_fields(dialog: SettingsDialog) -> list[QWidget]:
    return [*dialog.checkboxes.values(), dialog.hub_url, dialog.idle_minutes]


@pytest.mark.parametrize("index", range(5))
def test_escape_in_any_settings_field_closes_without_saving(
    qtbot: QtBot, dialog: SettingsDialog, index: int
) -> None:
    field = settings_fields(dialog)[index]
    with qtbot.assertNotEmitted(dialog.changes_submitted):
        qtbot.keyClick(field, Qt.Key.Key_Escape)
    assert not dialog.isVisible()


@pytest.mark.parametrize("index", range(5))
def test_enter_in_any_settings_field_saves_only_real_changes(
    qtbot: QtBot, dialog: SettingsDialog, index: int
) -> None:
    sounds = dialog.checkboxes["sounds"]
    sounds.setChecked(not sounds.isChecked())
    field = settings_fields(dialog)[index]
    with qtbot.waitSignal(dialog.changes_submitted, timeout=2000) as blocker:
        qtbot.keyClick(field, Qt.Key.Key_Return)
    assert blocker.args == [{"sounds": sounds.isChecked()}]
    assert not dialog.isVisible()
