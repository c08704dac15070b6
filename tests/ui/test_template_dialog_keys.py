"""The fill-in form over the pop-up, by keyboard: Enter moves on and never copies by itself,
Escape closes without copying, and the guard holds a template with blanks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from client.core.cache import Cache
from client.ui.template_dialog import TemplateCopyDialog
from tests.library_content import open_cache

RLO = "\u202e"


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    cache = open_cache(tmp_path / "cache.sqlite3")
    yield cache
    cache.close()


@pytest.fixture
def dialog(qtbot: QtBot, cache: Cache) -> TemplateCopyDialog:
    template = cache.template("tpl-video-outage-phone")
    assert template is not None
    widget = TemplateCopyDialog(template)
    qtbot.addWidget(widget)
    with qtbot.waitActive(widget, timeout=5000):
        widget.show()
    QGuiApplication.clipboard().setText("before")
    return widget


def test_enter_in_each_blank_moves_on_and_never_copies(
    qtbot: QtBot, dialog: TemplateCopyDialog
) -> None:
    fields = list(dialog.view.fields().values())
    assert fields
    fields[0].setFocus()
    with qtbot.assertNotEmitted(dialog.copied):
        for index, field in enumerate(fields):
            qtbot.keyClicks(field, f"value {index}")
            qtbot.keyClick(field, Qt.Key.Key_Return)
            assert not field.hasFocus()
    assert QGuiApplication.clipboard().text() == "before"
    assert dialog.isVisible()


@pytest.mark.parametrize("index", [0, 1, 2])
def test_escape_in_a_blank_closes_without_copying(
    qtbot: QtBot, dialog: TemplateCopyDialog, index: int
) -> None:
    field = list(dialog.view.fields().values())[index]
    with qtbot.assertNotEmitted(dialog.copied):
        qtbot.keyClick(field, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    assert QGuiApplication.clipboard().text() == "before"


def test_copy_by_keyboard_passes_the_guard_then_copies_and_closes(
    qtbot: QtBot, dialog: TemplateCopyDialog
) -> None:
    copy = dialog.view.copy_button
    copy.setFocus()
    qtbot.keyClick(copy, Qt.Key.Key_Return)
    assert copy.text() == "Copy anyway"
    assert QGuiApplication.clipboard().text() == "before"
    with qtbot.waitSignal(dialog.copied, timeout=2000) as blocker:
        qtbot.keyClick(copy, Qt.Key.Key_Space)
    assert blocker.args == ["tpl-video-outage-phone", "Video visit moved to phone"]
    assert "{patient_first_name}" in QGuiApplication.clipboard().text()
    assert not dialog.isVisible()


def test_values_with_bidi_controls_are_copied_without_them(
    qtbot: QtBot, dialog: TemplateCopyDialog
) -> None:
    for field in dialog.view.fields().values():
        # Pasted rather than typed: no key types an override (QTest cannot simulate one).
        field.insert(f"Ana{RLO}xe.fdp")
    with qtbot.waitSignal(dialog.copied, timeout=2000):
        qtbot.mouseClick(dialog.view.copy_button, Qt.MouseButton.LeftButton)
    copied = QGuiApplication.clipboard().text()
    assert RLO not in copied
    assert "Anaxe.fdp" in copied
