"""The playbook view: checklist toggles reach the cache and come back, escalation and phone tree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from client.core.cache import Cache
from client.core.content import Playbook
from client.ui.playbook_view import PlaybookView
from tests.library_content import open_cache

PLAYBOOK_ID = "pb-video-visit-outage"


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    cache = open_cache(tmp_path / "cache.sqlite3")
    yield cache
    cache.close()


@pytest.fixture
def playbook(cache: Cache) -> Playbook:
    playbook = cache.playbook(PLAYBOOK_ID)
    assert playbook is not None
    return playbook


@pytest.fixture
def view(qtbot: QtBot) -> PlaybookView:
    view = PlaybookView()
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    return view


def _ticked(view: PlaybookView) -> set[int]:
    return {i for i in range(view.steps.count()) if view.step_done(i)}


def test_shows_summary_steps_escalation_and_phone_tree(
    view: PlaybookView, playbook: Playbook
) -> None:
    view.show_playbook(playbook, alert_id="a1", alert_title="Video down West")
    assert view.title.text() == playbook.title
    assert view.summary.text() == playbook.summary
    assert view.steps.count() == len(playbook.steps)
    assert view.steps.item(0).text() == f"1. {playbook.steps[0]}"
    assert view.context.text() == "Checklist progress for the alert: Video down West"
    assert view.progress.text() == f"0 of {len(playbook.steps)} steps done"

    assert view.escalation.rowCount() == len(playbook.escalation_path)
    first = playbook.escalation_path[0]
    assert view.escalation.item(0, 1).text() == first.role
    assert view.escalation.item(0, 3).text() == "at once"
    second = playbook.escalation_path[1]
    assert view.escalation.item(1, 3).text() == f"after {second.after_minutes} min"

    ordered = sorted(playbook.phone_tree, key=lambda e: e.order)
    assert [view.phone_tree.item(r, 1).text() for r in range(view.phone_tree.rowCount())] == [
        e.name for e in ordered
    ]


def test_ticking_steps_is_stored_and_restored_per_alert(
    qtbot: QtBot, view: PlaybookView, playbook: Playbook, cache: Cache, tmp_path: Path
) -> None:
    view.checklist_toggled.connect(cache.set_checklist_step)
    view.show_playbook(
        playbook, alert_id="alert-1", done_steps=cache.checklist("alert-1", PLAYBOOK_ID)
    )

    view.steps.setFocus()
    view.steps.setCurrentRow(1)
    with qtbot.waitSignal(view.checklist_toggled, timeout=2000) as toggled:
        qtbot.keyClick(view.steps, Qt.Key.Key_Space)
    assert toggled.args == ["alert-1", PLAYBOOK_ID, 1, True]
    view.steps.item(3).setCheckState(Qt.CheckState.Checked)
    view.steps.item(3).setCheckState(Qt.CheckState.Unchecked)
    view.steps.item(4).setCheckState(Qt.CheckState.Checked)
    assert view.progress.text() == f"2 of {len(playbook.steps)} steps done"

    # Reopen the cache file: the progress is on disk, and only for that alert.
    cache.close()
    reopened = Cache.open(tmp_path / "cache.sqlite3")
    try:
        emitted: list[object] = []
        view.checklist_toggled.connect(lambda *args: emitted.append(args))
        view.show_playbook(
            playbook, alert_id="alert-1", done_steps=reopened.checklist("alert-1", PLAYBOOK_ID)
        )
        assert _ticked(view) == {1, 4}
        assert emitted == []  # restoring is not ticking
        view.show_playbook(
            playbook, alert_id="alert-2", done_steps=reopened.checklist("alert-2", PLAYBOOK_ID)
        )
        assert _ticked(view) == set()
    finally:
        reopened.close()


def test_outside_an_alert_progress_uses_an_empty_alert_id(
    qtbot: QtBot, view: PlaybookView, playbook: Playbook
) -> None:
    view.show_playbook(playbook)
    assert view.context.text() == "Checklist progress here is not tied to an alert."
    with qtbot.waitSignal(view.checklist_toggled, timeout=2000) as toggled:
        view.steps.item(0).setCheckState(Qt.CheckState.Checked)
    assert toggled.args == ["", PLAYBOOK_ID, 0, True]


def test_copy_number_puts_the_phone_on_the_clipboard(
    qtbot: QtBot, view: PlaybookView, playbook: Playbook
) -> None:
    view.show_playbook(playbook)
    first = sorted(playbook.phone_tree, key=lambda e: e.order)[0]
    button = view.phone_tree.cellWidget(0, 5)
    assert button.accessibleName() == f"Copy the number of {first.name}"
    with qtbot.waitSignal(view.phone_copied, timeout=2000) as copied:
        button.click()
    assert copied.args == [first.name]
    assert QGuiApplication.clipboard().text() == first.phone


def test_linked_templates_open_with_enter(
    qtbot: QtBot, view: PlaybookView, playbook: Playbook, cache: Cache
) -> None:
    linked = [t for t in (cache.template(i) for i in playbook.template_ids) if t is not None]
    assert linked
    view.show_playbook(playbook, linked_templates=linked)
    view.templates.setFocus()
    view.templates.setCurrentRow(0)
    with qtbot.waitSignal(view.template_opened, timeout=2000) as opened:
        qtbot.keyClick(view.templates, Qt.Key.Key_Return)
    assert opened.args == [linked[0].id]


def test_untrusted_text_is_plain(view: PlaybookView, playbook: Playbook) -> None:
    hostile = Playbook.from_data(
        "pb-x",
        1,
        {
            "title": "<h1>Big</h1>",
            "summary": "<a href='x'>click</a>",
            "steps": ["<b>step</b>"],
            "escalation_path": [],
            "phone_tree": [],
        },
    )
    view.show_playbook(hostile)
    assert view.title.textFormat() == Qt.TextFormat.PlainText
    assert view.title.text() == "<h1>Big</h1>"
    assert view.summary.textFormat() == Qt.TextFormat.PlainText
    assert view.steps.item(0).text() == "1. <b>step</b>"
