"""The settings dialog over real Settings and a real IT policy file: locked items are disabled,
and only the agent's changes are emitted."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.settings import Settings
from client.ui.settings_dialog import LOCKED_NOTE, SettingsDialog


def _settings(tmp_path: Path, policy: dict[str, object] | None = None) -> Settings:
    policy_file = tmp_path / "policy.json"
    if policy is not None:
        policy_file.write_text(json.dumps(policy), encoding="utf-8")
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    return Settings.load(paths, load_policy(policy_file))


def test_it_locked_items_are_shown_disabled(qtbot: QtBot, tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        {
            "hub_url": "https://vigil-hub.example.org",
            "vpn": {"required": True},
            "idle_lock_minutes": 10,
        },
    )
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)

    assert dialog.hub_url.text() == "https://vigil-hub.example.org"
    assert dialog.vpn_required.isChecked()
    assert dialog.idle_minutes.value() == 10
    for widget in (dialog.hub_url, dialog.vpn_required, dialog.idle_minutes):
        assert not widget.isEnabled()
        assert widget.toolTip() == LOCKED_NOTE
        assert widget.accessibleDescription() == LOCKED_NOTE
    assert dialog.locked_hint.isVisibleTo(dialog)
    assert dialog.checkboxes["sounds"].isEnabled()
    assert dialog.changes() == {}


def test_changed_preferences_are_emitted_on_ok(qtbot: QtBot, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    assert dialog.checkboxes["sounds"].isChecked() == settings.get("sounds")
    assert not dialog.locked_hint.isVisibleTo(dialog)

    dialog.checkboxes["sounds"].setChecked(not settings.get("sounds"))
    dialog.checkboxes["start_at_login"].click()
    dialog.checkboxes["start_at_login"].click()  # back where it was: not a change
    dialog.idle_minutes.setValue(30)

    with qtbot.waitSignal(dialog.changes_submitted, timeout=2000) as submitted:
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert submitted.args == [{"sounds": not settings.get("sounds"), "idle_lock_minutes": 30}]
    assert dialog.result() == dialog.DialogCode.Accepted

    # What the dialog emits is exactly what Settings accepts.
    for name, value in submitted.args[0].items():
        settings.set(name, value)
    assert settings.get("idle_lock_minutes") == 30


def test_cancel_emits_nothing(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = SettingsDialog(_settings(tmp_path))
    qtbot.addWidget(dialog)
    emitted: list[dict[str, object]] = []
    dialog.changes_submitted.connect(emitted.append)
    dialog.checkboxes["sounds"].click()
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert emitted == []
    assert dialog.result() == dialog.DialogCode.Rejected


def test_every_preference_is_named_and_reachable_by_tab(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = SettingsDialog(_settings(tmp_path))
    qtbot.addWidget(dialog)
    for box in dialog.checkboxes.values():
        assert box.accessibleName()
        assert box.focusPolicy() & Qt.FocusPolicy.TabFocus
