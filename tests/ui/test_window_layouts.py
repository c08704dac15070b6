"""Layouts that failed agents at real sizes: the alert history opening scrolled right with
columns cut, and the playbook page's nested scrolling hiding the phone tree's buttons."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QApplication, QPushButton
from pytestqt.qtbot import QtBot

from client.core.cache import Cache
from client.core.models import Alert
from client.ui.library import LibraryWindow
from client.ui.playbook_view import PlaybookView
from client.ui.view_models import AlertHistoryEntry
from tests.library_content import open_cache


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    cache = open_cache(tmp_path / "cache.sqlite3")
    yield cache
    cache.close()


def history(n: int) -> list[AlertHistoryEntry]:
    entries = []
    for seq in range(n):
        title = ("Video visits down in the West region " * 6) if seq % 2 else "W" * 200
        alert = Alert(
            id=f"a{seq}",
            seq=seq,
            severity="critical",
            title=title,
            body="Move visits to phone.",
            playbook_id=None,
            template_ids=(),
            requires_ack=True,
            issued_at="2026-12-03T08:00:00Z",
            expires_at=None,
            issued_by="dispatch",
        )
        entries.append(AlertHistoryEntry(alert, "pending", "acknowledged"))
    return entries


def test_the_alert_history_opens_at_the_left_with_every_column_in_view(qtbot: QtBot) -> None:
    window = LibraryWindow()
    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    window.set_alerts(history(6))
    window.show_alerts()
    window.alert_list.setCurrentItem(window.alert_list.topLevelItem(5))
    QApplication.processEvents()
    tree = window.alert_list
    assert tree.horizontalScrollBar().value() == 0
    assert tree.horizontalScrollBar().maximum() == 0
    header = tree.header()
    for column in range(tree.columnCount()):
        right = header.sectionViewportPosition(column) + header.sectionSize(column)
        assert header.sectionViewportPosition(column) >= 0
        assert right <= tree.viewport().width(), f"column {column} is cut"
    assert header.sectionSize(3) >= tree.fontMetrics().horizontalAdvance("Acknowledged")


def test_the_phone_trees_copy_buttons_are_in_view_without_nested_scrolling(
    qtbot: QtBot, cache: Cache
) -> None:
    playbook = cache.playbook("pb-video-visit-outage")
    assert playbook is not None
    view = PlaybookView()
    qtbot.addWidget(view)
    view.resize(700, 600)
    view.show()
    qtbot.waitExposed(view)
    view.show_playbook(playbook)
    QApplication.processEvents()
    table = view.phone_tree
    buttons = [b for b in table.findChildren(QPushButton) if b.text() == "Copy number"]
    assert buttons
    for table_or_list in (view.phone_tree, view.escalation, view.steps):
        # Each part is as tall as its rows: the page scrolls, the parts inside it do not.
        assert table_or_list.verticalScrollBar().maximum() == 0
        assert table_or_list.horizontalScrollBar().maximum() == 0
    viewport = table.viewport()
    for button in buttons:
        left = button.mapTo(viewport, QPoint(0, 0)).x()
        assert left >= 0
        assert left + button.width() <= viewport.width(), "Copy number is off to the right"
