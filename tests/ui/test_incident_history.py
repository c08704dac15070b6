"""The alert history and the tray in an incident: drill, status, updates and where the agent
answered, in words; a retraction replaces what the alert said, with the original one toggle away;
the history builder marks an update that came after the agent's answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from client.controllers.library import history_entry
from client.core.outbox import AckRecord, AckState
from client.core.status import TrayLook
from client.ui import tray as tray_module
from client.ui.library import LibraryWindow, incident_status_text
from client.ui.text import DRILL_BANNER, RETRACTED_NOTICE
from client.ui.tray import TrayIcon
from client.ui.view_models import AlertHistoryEntry
from tests.ui.incidents import HOSTILE, NOW, RLO, changed, incident, stamp

COLUMNS = {"title": 2, "answer": 3, "status": 4}


@pytest.fixture
def window(qtbot: QtBot) -> LibraryWindow:
    widget = LibraryWindow()
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def select(window: LibraryWindow, row: int) -> None:
    window.show_alerts()
    item = window.alert_list.topLevelItem(row)
    assert item is not None
    window.alert_list.setCurrentItem(item)


def cell(window: LibraryWindow, row: int, column: str) -> str:
    item = window.alert_list.topLevelItem(row)
    assert item is not None
    return item.text(COLUMNS[column])


def test_the_list_says_drill_status_and_updates_in_words(window: LibraryWindow) -> None:
    live = incident(1)
    drill = changed(incident(2, drill=True))
    resolved = changed(incident(3), "resolved", "Video is back.")
    entries = [
        AlertHistoryEntry(live),
        AlertHistoryEntry(drill),
        AlertHistoryEntry(resolved, "synced", "acknowledged"),
    ]
    window.set_alerts(entries, now=NOW)
    assert cell(window, 0, "status") == "Open"
    assert cell(window, 1, "status") == "DRILL · Open · Update 1"
    assert cell(window, 2, "status") == "Resolved"
    # What must not happen: a live alert marked as a drill.
    assert "DRILL" not in cell(window, 0, "status")

    select(window, 1)
    assert window.alert_drill.isVisible()
    assert window.alert_drill.text() == DRILL_BANNER
    assert window.alert_title.accessibleName().startswith(DRILL_BANNER)
    assert "Update 1 · " in window.alert_updates.text()
    assert window.alert_body.text().startswith("Original alert: ")

    select(window, 2)
    assert not window.alert_drill.isVisible()
    assert window.alert_closed.text() == "RESOLVED: Video is back."
    assert window.alert_title.text() == resolved.title


def test_a_retracted_alert_is_replaced_by_the_notice_and_the_original_is_one_toggle_away(
    qtbot: QtBot, window: LibraryWindow
) -> None:
    first = incident(1, title="Close the West clinic", body="Send everyone home.")
    retracted = changed(changed(first, text="Also the East."), "retracted", "Wrong clinic.")
    window.set_alerts([AlertHistoryEntry(retracted)], now=NOW)
    assert cell(window, 0, "title") == RETRACTED_NOTICE
    assert cell(window, 0, "status") == "RETRACTED · Update 1"
    select(window, 0)
    assert window.alert_closed.text() == f"{RETRACTED_NOTICE}\nWrong clinic."
    assert window.alert_title.text() == RETRACTED_NOTICE
    # What must not happen: what the alert said, or a way to answer it, in view.
    assert not window.alert_body.isVisible()
    assert not window.alert_updates.isVisible()
    assert not window.alert_answer_button.isVisible()
    assert "West" not in window.alert_title.accessibleName()

    button = window.alert_original_button
    assert button.isVisible() and button.accessibleName()
    button.setFocus()
    qtbot.waitUntil(button.hasFocus, timeout=2000)
    qtbot.keyClick(button, Qt.Key.Key_Return)
    qtbot.waitUntil(button.isChecked, timeout=2000)
    # Everything is kept: the original text and its update are there when asked for.
    assert window.alert_title.text() == "Close the West clinic"
    assert "Send everyone home." in window.alert_body.text()
    assert "Also the East." in window.alert_updates.text()
    assert window.alert_closed.isVisible()
    qtbot.keyClick(button, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not button.isChecked(), timeout=2000)
    assert window.alert_title.text() == RETRACTED_NOTICE

    # A reload (another alert arrived) never shows the original by itself.
    button.setChecked(True)
    window.set_alerts([AlertHistoryEntry(incident(9)), AlertHistoryEntry(retracted)], now=NOW)
    select(window, 1)
    select(window, 0)
    select(window, 1)
    assert window.alert_title.text() == RETRACTED_NOTICE


def test_answered_on_another_computer_and_updated_since(window: LibraryWindow) -> None:
    alert = incident(1)
    entries = [
        AlertHistoryEntry(alert, answered_on=f"Front desk {RLO}PC"),
        AlertHistoryEntry(
            changed(incident(2)), "synced", "acknowledged", updated_since_answer=True
        ),
    ]
    window.set_alerts(entries, now=NOW)
    assert cell(window, 0, "answer") == "Answered on Front desk PC"
    assert cell(window, 1, "status") == "Open · Update 1 · Updated"


def test_the_history_builder_marks_only_updates_after_the_answer() -> None:
    first = incident(1)
    update = changed(first, at=NOW)

    def ack(minutes: int) -> AckRecord:
        acted = stamp(NOW + timedelta(minutes=minutes))
        return AckRecord("ack", first.id, "acknowledged", None, acted, AckState.SYNCED)

    assert history_entry(update, [ack(-1)]).updated_since_answer
    assert not history_entry(update, [ack(+1)]).updated_since_answer
    assert not history_entry(update, []).updated_since_answer
    assert not history_entry(first, [ack(-1)]).updated_since_answer
    # A closed alert asks for nothing more: no "Updated" on it.
    resolved = changed(update, "resolved", "done")
    entry = history_entry(resolved, [ack(-1)])
    assert "Updated" not in incident_status_text(entry)
    assert history_entry(first, [], "Laptop").answered_on == "Laptop"


@pytest.mark.parametrize("text", [HOSTILE, "y" * 5000, ""])
def test_hostile_update_and_note_text_is_plain(window: LibraryWindow, text: str) -> None:
    alert = changed(changed(incident(1), text=text, by=text), "resolved", text)
    window.set_alerts([AlertHistoryEntry(alert)], now=NOW)
    select(window, 0)
    for label in (window.alert_updates, window.alert_closed):
        assert label.textFormat() == Qt.TextFormat.PlainText
        assert RLO not in label.text()
    if text == HOSTILE:
        assert "<b>bold</b>" in window.alert_updates.text()


@pytest.mark.parametrize("year", [1, 9999])
def test_dates_at_the_ends_of_the_calendar(window: LibraryWindow, year: int) -> None:
    edge = datetime(year, 6, 1, tzinfo=UTC)
    alert = changed(incident(1, next_update_by=edge), at=edge, next_update_by=edge)
    window.set_alerts([AlertHistoryEntry(alert)], now=NOW)
    select(window, 0)
    assert "Update 1" in window.alert_updates.text()
    assert window.alert_next_update.text()


def test_the_tray_tooltip_names_waiting_drills_in_words(qtbot: QtBot) -> None:
    tray = TrayIcon()
    tray.show_look(TrayLook(icon="connected", badge_count=0, tooltip="Connected"))
    assert "DRILL" not in tray.tooltip()
    tray.set_drills_waiting(1)
    assert tray.tooltip() == f"<qt>Vigil · Connected · {DRILL_BANNER} (1 drill alert waiting)</qt>"
    tray.set_drills_waiting(2)
    assert "(2 drill alerts waiting)" in tray.tooltip()
    tray.set_drills_waiting(0)
    assert "DRILL" not in tray.tooltip()
    # The tray keeps its own copy of the words (it loads before the rest): the same words.
    assert tray_module.DRILL_WORDS == DRILL_BANNER
    QApplication.processEvents()


def test_tab_from_the_history_list_reaches_show_original(
    qtbot: QtBot, window: LibraryWindow
) -> None:
    retracted = changed(incident(1), "retracted", "In error.")
    window.set_alerts([AlertHistoryEntry(retracted)], now=NOW)
    select(window, 0)
    window.activateWindow()
    window.alert_list.setFocus()
    qtbot.waitUntil(window.alert_list.hasFocus, timeout=2000)
    for _ in range(6):
        if window.alert_original_button.hasFocus():
            break
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    assert window.alert_original_button.hasFocus()
