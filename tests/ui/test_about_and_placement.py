"""The About window's facts, and windows placed whole on the screen, title bar included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QMargins, QRect, QSize, Qt
from PySide6.QtGui import QAccessible, QGuiApplication
from PySide6.QtWidgets import QLabel, QWidget
from pytestqt.qtbot import QtBot

from client.controllers.about import AboutController
from client.controllers.tasks import TaskRunner
from client.core.about import BUNDLED, about_facts, bundled_licences
from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.settings import Settings
from client.ui.placement import FRAME_ALLOWANCE, bring_forward, fit_on_screen, title_bar_visible
from client.ui.signin import SignInDialog


def test_about_names_the_version_build_policy_hub_and_licences(
    qtbot: QtBot, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"hub_url": "https://vigil-hub.example.org"}), "utf-8")
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    settings = Settings.load(paths, load_policy(policy_file))
    tasks = TaskRunner()
    about = AboutController(settings, tasks)
    about.show()
    qtbot.waitUntil(lambda: about.window is not None and about.window.isVisible(), timeout=10_000)
    window = about.window
    assert window is not None
    qtbot.addWidget(window)
    assert window.facts["Version"] == "0.1.0"
    assert window.facts["IT policy in force"] == str(policy_file)
    assert window.facts["Hub"] == "https://vigil-hub.example.org"
    names = {
        window.licences.topLevelItem(i).text(0).lower().replace("_", "-")
        for i in range(window.licences.topLevelItemCount())
    }
    assert {"pyside6-essentials", "cryptography", "requests", "keyring"} <= names
    licences = [
        window.licences.topLevelItem(i).text(2) for i in range(window.licences.topLevelItemCount())
    ]
    assert all(licences)
    # The facts (a hub address, a path) are shown as plain text, never markup.
    for label in window.fields.values():
        assert isinstance(label, QLabel)
        assert label.textFormat() == Qt.TextFormat.PlainText
    interface = QAccessible.queryAccessibleInterface(window.licences)
    assert interface is not None
    assert interface.text(QAccessible.Text.Name) == "Bundled libraries and their licences"
    window.reject()
    qtbot.waitUntil(lambda: about.window is None, timeout=5000)
    tasks.shutdown()


def test_about_lists_the_backup_hub_addresses_as_plain_text(qtbot: QtBot, tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.json"
    urls = ["https://hub-a.example.org", "https://hub-b.example.org", "https://hub-c.example.org"]
    policy_file.write_text(json.dumps({"hub_urls": urls}), "utf-8")
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    settings = Settings.load(paths, load_policy(policy_file))
    tasks = TaskRunner()
    about = AboutController(settings, tasks)
    about.show()
    qtbot.waitUntil(lambda: about.window is not None and about.window.isVisible(), timeout=10_000)
    window = about.window
    assert window is not None
    qtbot.addWidget(window)
    assert window.facts["Hub"] == (
        "https://hub-a.example.org (backup: https://hub-b.example.org, https://hub-c.example.org)"
    )
    label = window.fields["Hub"]
    assert isinstance(label, QLabel) and label.textFormat() == Qt.TextFormat.PlainText
    window.reject()
    qtbot.waitUntil(lambda: about.window is None, timeout=5000)
    tasks.shutdown()


def test_about_without_a_policy_says_nothing_is_set_by_it() -> None:
    facts = about_facts(None, None)
    assert facts.policy_file == "none (nothing is set by IT)"
    assert facts.hub == "not set yet"
    assert len(bundled_licences()) <= len(BUNDLED)


@pytest.mark.parametrize(
    ("size", "area"),
    [
        (QSize(420, 300), QRect(0, 0, 1280, 800)),
        (QSize(5000, 5000), QRect(0, 0, 1280, 800)),
        (QSize(420, 300), QRect(1280, 0, 1920, 1080)),
        (QSize(1, 1), QRect(0, 28, 1024, 740)),
    ],
)
def test_a_placed_window_and_its_title_bar_are_on_the_screen(size: QSize, area: QRect) -> None:
    rect = fit_on_screen(size, area)
    with_frame = rect.marginsAdded(FRAME_ALLOWANCE)
    assert area.contains(with_frame)
    assert title_bar_visible(with_frame, [area])
    assert not title_bar_visible(QRect(0, -60, 400, 300), [QRect(0, 0, 1280, 800)])
    assert not title_bar_visible(QRect(5000, 0, 400, 300), [QRect(0, 0, 1280, 800)])
    assert fit_on_screen(size, area, QMargins()).width() <= area.width()


def test_the_re_sign_in_dialog_never_lands_at_the_corner(qtbot: QtBot) -> None:
    dialog = SignInDialog()
    qtbot.addWidget(dialog)
    bring_forward(dialog)
    area = QGuiApplication.primaryScreen().availableGeometry()
    assert dialog.geometry().top() >= area.top() + FRAME_ALLOWANCE.top()
    assert dialog.geometry().left() >= area.left() + FRAME_ALLOWANCE.left()
    assert area.contains(dialog.geometry())
    # Moved off-screen (a monitor unplugged), it comes back when asked for.
    dialog.move(area.right() + 2000, area.bottom() + 2000)
    bring_forward(dialog)
    assert area.contains(dialog.geometry())


def test_a_window_asked_for_while_minimized_is_restored(qtbot: QtBot) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    bring_forward(window)
    window.showMinimized()
    qtbot.waitUntil(window.isMinimized, timeout=5000)
    bring_forward(window)
    assert not window.isMinimized()
    assert window.isVisible()
