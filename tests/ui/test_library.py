"""The library window: search as you type over a real cache, safe snippets, keyboard use,
the offline banner, the alert history and the lock screen."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from client.core.cache import Cache
from client.core.models import Alert
from client.ui.library import HTML_ROLE, ID_ROLE, AlertHistoryEntry, LibraryWindow
from tests.library_content import open_cache

HOSTILE = {
    "title": "<script>alert(1)</script> Zebra & <b>bold</b>",
    "category": "Test",
    "severity": "minor",
    "summary": "A zebra crossing <img src=x onerror=alert(2)> summary",
    "steps": ["Look for the zebra"],
    "escalation_path": [],
    "phone_tree": [],
    "template_ids": [],
    "tags": [],
}


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    cache = open_cache(tmp_path / "cache.sqlite3", [("playbook", "pb-hostile", HOSTILE)])
    yield cache
    cache.close()


@pytest.fixture
def window(qtbot: QtBot, cache: Cache) -> LibraryWindow:
    """The window wired to the real cache the way app.py wires it (synchronously here)."""
    window = LibraryWindow()
    qtbot.addWidget(window)
    window.set_playbooks(cache.playbooks())
    window.set_templates(cache.templates())
    window.search_requested.connect(lambda text: window.show_results(cache.search(text), text))
    window.show()
    qtbot.waitExposed(window)
    return window


def _rows(window: LibraryWindow) -> list[str]:
    model = window.results_model
    return [str(model.index(r, 0).data(ID_ROLE)) for r in range(model.rowCount())]


def test_search_waits_for_typing_to_pause_then_searches_once(
    qtbot: QtBot, window: LibraryWindow
) -> None:
    requested: list[str] = []
    window.search_requested.connect(requested.append)

    qtbot.keyClicks(window.search_field, "video")
    assert requested == []  # nothing while typing

    with qtbot.waitSignal(window.search_requested, timeout=2000) as signal:
        pass
    assert signal.args == ["video"]
    assert requested == ["video"]
    assert window.pages.currentWidget() is window._results_page
    assert "tpl-video-outage-sms" in _rows(window)
    assert "pb-video-visit-outage" in _rows(window)


def test_results_show_escaped_highlighted_snippets(qtbot: QtBot, window: LibraryWindow) -> None:
    qtbot.keyClicks(window.search_field, "zebra")
    qtbot.waitUntil(lambda: _rows(window) == ["pb-hostile"], timeout=2000)

    html = str(window.results_model.index(0, 0).data(HTML_ROLE))
    assert "<script>" not in html and "<img" not in html
    # The best-matching column here is the title itself, so the snippet repeats it, marked.
    assert html == (
        "<b>&lt;script&gt;alert(1)&lt;/script&gt; Zebra &amp; &lt;b&gt;bold&lt;/b&gt;</b>"
        " <small>(Playbook)</small><br>"
        "&lt;script&gt;alert(1)&lt;/script&gt; <b>Zebra</b> &amp; &lt;b&gt;bold&lt;/b&gt;"
    )
    assert window.no_results.text() == "1 match"
    # The delegate paints it without trouble.
    assert not window.results.grab().isNull()


def test_no_matches_says_so(qtbot: QtBot, window: LibraryWindow) -> None:
    qtbot.keyClicks(window.search_field, "qwertyuiop")
    qtbot.waitUntil(lambda: window.no_results.text() == "No matches in the library", timeout=2000)
    assert _rows(window) == []


def test_stale_results_are_ignored(window: LibraryWindow, cache: Cache) -> None:
    window.search_field.setText("zebra")
    window.show_results(cache.search("video"), "video")
    assert _rows(window) == []


def test_keyboard_ctrl_f_arrows_enter_and_esc(qtbot: QtBot, window: LibraryWindow) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    window.playbook_list.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.search_field.hasFocus()

    qtbot.keyClicks(window.search_field, "video")
    qtbot.waitUntil(lambda: len(_rows(window)) > 2, timeout=2000)
    rows = _rows(window)

    qtbot.keyClick(window.search_field, Qt.Key.Key_Down)
    assert window.results.hasFocus()
    assert window.results.currentIndex().row() == 0
    qtbot.keyClick(window.results, Qt.Key.Key_Down)
    assert window.results.currentIndex().row() == 1

    signal = window.template_opened if rows[1].startswith("tpl-") else window.playbook_opened
    with qtbot.waitSignal(signal, timeout=2000) as opened:
        qtbot.keyClick(window.results, Qt.Key.Key_Return)
    assert opened.args == [rows[1]]

    window.results.setFocus()
    qtbot.keyClick(window.results, Qt.Key.Key_Escape)
    assert window.search_field.text() == ""
    assert window.search_field.hasFocus()
    assert window.pages.currentWidget() is window.tabs


def test_enter_in_the_search_field_opens_the_top_result(
    qtbot: QtBot, window: LibraryWindow
) -> None:
    qtbot.keyClicks(window.search_field, "zebra")
    qtbot.waitUntil(lambda: _rows(window) == ["pb-hostile"], timeout=2000)
    with qtbot.waitSignal(window.playbook_opened, timeout=2000) as opened:
        qtbot.keyClick(window.search_field, Qt.Key.Key_Return)
    assert opened.args == ["pb-hostile"]


def test_opening_a_playbook_shows_it_with_plain_text(window: LibraryWindow, cache: Cache) -> None:
    playbook = cache.playbook("pb-hostile")
    assert playbook is not None
    window.show_playbook(playbook)
    assert window.tabs.currentIndex() == 0
    assert window.playbook_list.currentItem().data(ID_ROLE) == "pb-hostile"
    assert window.playbook_view.title.text() == HOSTILE["title"]
    assert window.playbook_view.title.textFormat() == Qt.TextFormat.PlainText


def test_selecting_a_playbook_in_the_list_asks_to_open_it(
    qtbot: QtBot, window: LibraryWindow
) -> None:
    with qtbot.waitSignal(window.playbook_opened, timeout=2000) as opened:
        window.playbook_list.setCurrentRow(0)
    assert opened.args == [window.playbook_list.item(0).data(ID_ROLE)]


def test_offline_banner_says_when_the_library_was_cached(window: LibraryWindow) -> None:
    assert not window.offline_banner.isVisible()
    cached = datetime.now().astimezone().replace(hour=10, minute=42, second=0, microsecond=0)
    window.set_offline(cached)
    assert window.offline_banner.isVisible()
    assert window.offline_banner.text() == "Offline: showing the library as cached at 10:42"
    yesterday = cached - timedelta(days=1)
    window.set_offline(yesterday)
    assert window.offline_banner.text() == (
        f"Offline: showing the library as cached at {yesterday.day} {yesterday:%b} 10:42"
    )
    window.set_online()
    assert not window.offline_banner.isVisible()


def _alert(n: int, title: str, **extra: object) -> Alert:
    raw = {
        "id": f"00000000-0000-4000-8000-00000000000{n}",
        "seq": n,
        "severity": "critical",
        "title": title,
        "body": "<b>not bold</b> & <script>x()</script>",
        "playbook_id": "pb-video-visit-outage",
        "template_ids": [],
        "requires_ack": True,
        "issued_at": "2026-11-27T10:42:00Z",
        "expires_at": None,
        "issued_by": "dispatch",
        **extra,
    }
    return Alert.from_json(raw)


def test_alert_history_shows_each_answer_state(qtbot: QtBot, window: LibraryWindow) -> None:
    entries = [
        AlertHistoryEntry(_alert(1, "<i>Video down</i>")),
        AlertHistoryEntry(_alert(2, "Pending"), "pending", "acknowledged"),
        AlertHistoryEntry(_alert(3, "Synced"), "synced", "escalated"),
        AlertHistoryEntry(_alert(4, "Rejected"), "rejected", "unable", "unknown_alert"),
    ]
    window.set_alerts(entries, now=datetime(2026, 11, 27, 12, 0, tzinfo=UTC))
    window.show_alerts()
    answers = [window.alert_list.topLevelItem(i).text(3) for i in range(4)]
    assert answers == [
        "Not answered yet",
        "Acknowledged · waiting to sync",
        "Escalated · synced",
        "Unable to respond · rejected by the hub: unknown_alert",
    ]

    window.alert_list.setCurrentItem(window.alert_list.topLevelItem(0))
    assert window.alert_title.text() == "<i>Video down</i>"
    assert window.alert_title.textFormat() == Qt.TextFormat.PlainText
    assert window.alert_body.text() == "<b>not bold</b> & <script>x()</script>"
    assert window.alert_body.textFormat() == Qt.TextFormat.PlainText

    with qtbot.waitSignal(window.alert_opened, timeout=2000) as opened:
        qtbot.keyClick(window.alert_list, Qt.Key.Key_Return)
    assert opened.args == [entries[0].alert.id]
    with qtbot.waitSignal(window.alert_playbook_opened, timeout=2000) as opened:
        window.alert_playbook_button.click()
    assert opened.args == [entries[0].alert.id, "pb-video-visit-outage"]


def test_sync_now_button_and_status_line(qtbot: QtBot, window: LibraryWindow) -> None:
    with qtbot.waitSignal(window.sync_requested, timeout=2000):
        window.sync_button.click()
    window.set_status("Last synced 10:42")
    assert window.status_line.text() == "Last synced 10:42"


def test_lock_hides_the_library_behind_the_unlock_prompt(window: LibraryWindow) -> None:
    window.set_locked(True)
    assert window.lock_screen.isVisible()
    assert not window.tabs.isVisible()
    assert not window.search_field.isVisible()
    assert not window.statusBar().isVisible()
    window.focus_search()
    assert not window.search_field.hasFocus()
    window.set_locked(False)
    assert window.tabs.isVisible()
    assert not window.lock_screen.isVisible()
