"""Every control an agent can reach with Tab says what it is to a screen reader, in every window,
read through Qt's accessibility interface."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from client.core.about import about_facts
from client.core.paths import AppPaths
from client.core.policy import Policy
from client.core.settings import Settings
from client.ui.about_window import AboutWindow
from client.ui.alert_popup import AlertPopup
from client.ui.library import LibraryWindow
from client.ui.settings_dialog import SettingsDialog
from client.ui.signin import SignInDialog
from client.ui.view_models import AlertCard
from tests.ui.test_alert_burst import BURST


def tab_stops(window: QWidget) -> list[QWidget]:
    return [
        widget
        for widget in window.findChildren(QWidget)
        if widget.isVisibleTo(window)
        and widget.isEnabled()
        and widget.focusPolicy() & Qt.FocusPolicy.TabFocus
        # A spin box's inner editor is read out through the spin box, which has the name.
        and widget.objectName() != "qt_spinbox_lineedit"
    ]


def unnamed(window: QWidget) -> list[str]:
    missing = []
    for widget in tab_stops(window):
        interface = QAccessible.queryAccessibleInterface(widget)
        name = interface.text(QAccessible.Text.Name) if interface is not None else ""
        if not name.strip():
            missing.append(f"{type(widget).__name__} {widget.objectName()!r}")
    return missing


def make_window(kind: str, tmp_path: Path) -> QWidget:
    if kind == "sign-in":
        return SignInDialog()
    if kind == "settings":
        paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
        return SettingsDialog(Settings.load(paths, Policy()))
    if kind == "library":
        return LibraryWindow()
    if kind == "about":
        return AboutWindow(about_facts(None, "https://hub.example.org"))
    popup = AlertPopup(arm_ms=0)
    popup.set_snooze_minutes(10)
    for alert in BURST:
        popup.present(AlertCard(alert, templates=(("t1", "Moved to phone"),)), sound=False)
    return popup


@pytest.mark.parametrize("kind", ["sign-in", "settings", "library", "about", "pop-up"])
def test_every_tab_stop_has_an_accessible_name(qtbot: QtBot, tmp_path: Path, kind: str) -> None:
    window = make_window(kind, tmp_path)
    qtbot.addWidget(window)
    window.show()
    QApplication.processEvents()
    assert tab_stops(window)
    assert unnamed(window) == []
