"""The post-incident survey: a dialog driven by keys alone, and the tray app that asks it once
when an alert it showed the agent is resolved, saves the answer before "Thank you" and sends it
to the real hub; the next user on the same computer never sees it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from client.app import VigilApp
from client.core.models import Alert
from client.core.paths import AppPaths
from client.core.policy import Policy
from client.core.settings import Settings
from client.core.surveys import SurveyState
from client.ui.survey_dialog import DRILL_LABEL, SurveyDialog
from hub.server import EmbeddedHub
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    auth_headers,
    create_user,
    next_code,
    publish_alert,
    sign_in,
)

WAIT_MS = 15_000
ALERT_ID = "0b7f2a9e-3c1d-4e5f-8a6b-7c8d9e0f1a2b"


@pytest.fixture
def dialog(qtbot: QtBot) -> SurveyDialog:
    made = SurveyDialog()
    qtbot.addWidget(made)
    return made


def keys(qtbot: QtBot, dialog: SurveyDialog, *pressed: Qt.Key) -> None:
    for key in pressed:
        # The dialog's own focus: another window may be the active one (offscreen, unlocking).
        target = dialog.focusWidget() or dialog
        qtbot.keyClick(target, key)


def test_keys_alone_choose_both_scores_write_a_comment_and_send(
    qtbot: QtBot, dialog: SurveyDialog
) -> None:
    sent: list[tuple[str, int, Any, str]] = []
    later: list[str] = []
    dialog.submitted.connect(lambda *args: sent.append(args))
    dialog.later.connect(later.append)
    dialog.ask(ALERT_ID, "Video visits down", drill=False)
    qtbot.waitUntil(lambda: dialog.isVisible() and QApplication.focusWidget() is not None)

    # Enter before the first question is answered sends nothing and says what is missing.
    keys(qtbot, dialog, Qt.Key.Key_Return)
    assert sent == [] and "How clear" in dialog.status_label.text()
    keys(qtbot, dialog, Qt.Key.Key_4, Qt.Key.Key_Left, Qt.Key.Key_Left, Qt.Key.Key_Right)
    keys(qtbot, dialog, Qt.Key.Key_Down, Qt.Key.Key_Right, Qt.Key.Key_Right, Qt.Key.Key_Down)
    assert QApplication.focusWidget() is dialog.comment
    qtbot.keyClicks(dialog.comment, "Step 3 was unclear, 42 <b>times</b>")
    keys(qtbot, dialog, Qt.Key.Key_Return)

    assert sent == [(ALERT_ID, 3, 2, "Step 3 was unclear, 42 <b>times</b>")]
    assert later == []
    # Nothing says thanks until the answer is saved; a second Enter sends nothing more.
    assert "Thank you" not in dialog.status_label.text()
    keys(qtbot, dialog, Qt.Key.Key_Return)
    assert len(sent) == 1
    dialog.show_saved()
    assert not dialog.isVisible()


def test_did_not_use_templates_is_sent_as_none_and_a_failed_save_keeps_the_choices(
    qtbot: QtBot, dialog: SurveyDialog
) -> None:
    sent: list[tuple[str, int, Any, str]] = []
    dialog.submitted.connect(lambda *args: sent.append(args))
    dialog.ask(ALERT_ID, "Phones down", drill=False)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None)
    keys(qtbot, dialog, Qt.Key.Key_5, Qt.Key.Key_Down, Qt.Key.Key_0, Qt.Key.Key_Return)
    assert sent == [(ALERT_ID, 5, None, "")]

    dialog.show_error("the disk is full")
    assert dialog.isVisible() and "Not saved: the disk is full" in dialog.status_label.text()
    assert (dialog.clarity.value(), dialog.templates.value()) == (5, 0)
    keys(qtbot, dialog, Qt.Key.Key_Return)
    assert len(sent) == 2


def test_escape_leaves_the_survey_for_later_and_sends_nothing(
    qtbot: QtBot, dialog: SurveyDialog
) -> None:
    sent: list[Any] = []
    later: list[str] = []
    dialog.submitted.connect(lambda *args: sent.append(args))
    dialog.later.connect(later.append)
    dialog.ask(ALERT_ID, "Phones down", drill=False)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None)
    keys(qtbot, dialog, Qt.Key.Key_3, Qt.Key.Key_Escape)
    assert (sent, later, dialog.isVisible()) == ([], [ALERT_ID], False)


def test_a_comment_is_held_to_the_limit_and_says_so(qtbot: QtBot, dialog: SurveyDialog) -> None:
    dialog.ask(ALERT_ID, "Phones down", drill=False)
    assert dialog.count_label.text() == "0 of 2000 characters"
    dialog.comment.insert("x" * 2500)
    assert len(dialog.comment.text()) == 2000
    assert "the limit, the rest was not taken" in dialog.count_label.text()


def test_a_hostile_title_is_plain_text_without_bidi_and_a_drill_is_marked(
    qtbot: QtBot, dialog: SurveyDialog
) -> None:
    dialog.ask(ALERT_ID, "<b>Invoice</b>\u202efdp.exe", drill=True)
    assert dialog.title_label.textFormat() == Qt.TextFormat.PlainText
    assert dialog.title_label.text().endswith("<b>Invoice</b>fdp.exe")
    assert dialog.drill_label.isVisible() and dialog.drill_label.text() == DRILL_LABEL
    dialog.ask(ALERT_ID, "Live one", drill=False)
    assert not dialog.drill_label.isVisible()


@pytest.fixture
def make_app(qtbot: QtBot, tmp_path: Path) -> Iterator[Any]:
    made: list[VigilApp] = []
    qt_app = QApplication.instance()
    assert isinstance(qt_app, QApplication)

    def make(hub_url: str) -> VigilApp:
        paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
        settings = Settings.load(paths, Policy())
        settings.set("sounds", False)
        settings.set("hub_url", hub_url)
        app = VigilApp(qt_app, paths, settings, tray_available=False)
        qtbot.addWidget(app.popup)
        qtbot.addWidget(app.library)
        made.append(app)
        app.start()
        return app

    yield make
    for app in made:
        app.quit()
    qt_app.setStyleSheet("")
    qt_app.setQuitOnLastWindowClosed(True)


def sign_in_through_dialog(qtbot: QtBot, app: VigilApp, username: str, secret: str) -> None:
    qtbot.waitUntil(lambda: app.signin is not None and app.signin.isVisible(), timeout=WAIT_MS)
    dialog = app.signin
    assert dialog is not None
    dialog.username_edit.clear()
    qtbot.keyClicks(dialog.username_edit, username)
    qtbot.keyClicks(dialog.password_edit, DEFAULT_PASSWORD)
    qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.step == "code" and not dialog.busy, timeout=WAIT_MS)
    qtbot.keyClicks(dialog.code_edit, next_code(secret))
    qtbot.waitUntil(lambda: app.signin is None, timeout=WAIT_MS)


def settle(qtbot: QtBot, app: VigilApp) -> None:
    """Wait until every disk write asked for so far, and its answer to the UI, is done."""
    done: list[bool] = []
    app.tasks.run_write(lambda: None, lambda _result, _error: done.append(True))
    qtbot.waitUntil(lambda: bool(done), timeout=WAIT_MS)


@pytest.mark.slow
def test_the_app_asks_once_saves_before_thanks_sends_once_and_hides_it_from_the_next_user(
    qtbot: QtBot, hub: EmbeddedHub, make_app: Any
) -> None:
    amira = create_user(hub.store, "amira", "agent")
    bea = create_user(hub.store, "bea", "agent")
    dispatcher_secret = create_user(hub.store, "dora", "dispatcher")
    dispatcher = sign_in(hub.url, "dora", DEFAULT_PASSWORD, dispatcher_secret)["access_token"]
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, "amira", amira)

    published = publish_alert(hub.url, dispatcher, title="Phones down <i>West</i>")
    qtbot.waitUntil(lambda: app.popup.current_alert_id() == published["id"], timeout=WAIT_MS)
    other = publish_alert(hub.url, dispatcher, title="Portal slow", severity="critical")
    qtbot.waitUntil(lambda: other["id"] in app.popup.alert_ids(), timeout=WAIT_MS)
    changes = [
        hub.store.alerts.change(item["id"], kind="resolved", text="Fixed", by="dora")
        for item in (published, other)
    ]
    hub.broker.notify()
    # The desk receives each change as the stream delivers it; one survey at a time.
    alert, later = (Alert.from_json(change.to_wire()) for change in changes)
    app.alert_desk.receive(alert)
    app.alert_desk.receive(later)
    dialog = app.surveys.dialog
    qtbot.waitUntil(lambda: dialog.isVisible() and dialog.alert_id == alert.id, timeout=WAIT_MS)
    assert "Phones down <i>West</i>" in dialog.title_label.text()
    # Locked: the survey leaves the screen, and comes back first after unlocking.
    app.idle_lock.watcher.lock()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)
    app.idle_lock.watcher.unlock()
    qtbot.waitUntil(lambda: dialog.isVisible() and dialog.alert_id == alert.id, timeout=WAIT_MS)

    dialog.activateWindow()
    dialog.clarity.focus()
    keys(qtbot, dialog, Qt.Key.Key_2, Qt.Key.Key_Down, Qt.Key.Key_4, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.alert_id == later.id, timeout=WAIT_MS)
    core = app.core
    assert core is not None and core.surveys is not None
    saved = core.surveys.get(alert.id, "amira")
    assert saved is not None and saved.state in (SurveyState.QUEUED, SurveyState.SENT)
    # The second survey is left for later: it stays offered to amira.
    dialog.clarity.focus()
    keys(qtbot, dialog, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)
    assert [r.alert_id for r in core.surveys.offered("amira")] == [later.id]

    def on_hub() -> list[dict[str, Any]]:
        response = requests.get(
            f"{hub.url}/v1/alerts/{alert.id}/surveys",
            headers=auth_headers(dispatcher),
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 200, response.text
        answers: list[dict[str, Any]] = response.json()["answers"]
        return answers

    qtbot.waitUntil(lambda: len(on_hub()) == 1, timeout=WAIT_MS)
    # The same change arriving again asks nothing more.
    app.alert_desk.receive(replace(alert))
    settle(qtbot, app)
    assert not dialog.isVisible()

    app.sign_in_flow.sign_out()
    qtbot.waitUntil(lambda: core.auth.account is None, timeout=WAIT_MS)
    app.sign_in_flow.show()
    sign_in_through_dialog(qtbot, app, "bea", bea)
    app.alert_desk.receive(alert)
    app.alert_desk.receive(later)
    settle(qtbot, app)
    assert not dialog.isVisible()
    assert core.surveys.offered("bea") == [] and core.surveys.get(later.id, "bea") is None
    assert [r.alert_id for r in core.surveys.offered("amira")] == [later.id]
    assert [(a["username"], a["clarity"], a["templates"]) for a in on_hub()] == [("amira", 2, 4)]
