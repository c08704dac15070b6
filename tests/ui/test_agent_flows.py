"""Agent flows through the whole app against a real hub: a minor alert answered from the history,
copying a template from the pop-up through its fill-in form, and windows asked for while
minimized."""

# The app fixtures come from test_app_flow; tests naming them as parameters "redefine" them.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from client.app import VigilApp
from hub.content_import import import_content
from hub.server import EmbeddedHub
from tests.hubtools import publish_alert
from tests.library_content import DEMO_DIR
from tests.ui.test_app_flow import (  # noqa: F401  (fixtures)
    WAIT_MS,
    agent_secret,
    clock,
    dispatcher_token,
    make_app,
    sign_in_through_dialog,
)


def history_row(app: VigilApp, alert_id: str) -> int | None:
    alert_list = app.library.alert_list
    for row in range(alert_list.topLevelItemCount()):
        item = alert_list.topLevelItem(row)
        if item is not None and item.data(0, Qt.ItemDataRole.UserRole) == alert_id:
            return row
    return None


def test_a_minor_alert_is_answered_from_the_history_with_enter(
    qtbot: QtBot, hub: EmbeddedHub, make_app: Any, agent_secret: str, dispatcher_token: str
) -> None:
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    alert = publish_alert(hub.url, dispatcher_token, severity="minor", title="Portal slow")
    qtbot.waitUntil(lambda: history_row(app, alert["id"]) is not None, timeout=WAIT_MS)
    assert alert["id"] not in app.popup.alert_ids()

    app.library_controller.show_alerts()
    alert_list = app.library.alert_list
    row = history_row(app, alert["id"])
    assert row is not None
    alert_list.setCurrentItem(alert_list.topLevelItem(row))
    qtbot.keyClick(alert_list, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: app.popup.current_alert_id() == alert["id"], timeout=WAIT_MS)
    assert app.popup.isVisible()
    # A minor alert answered by choice does not take over the screen.
    assert not app.popup.windowFlags() & Qt.WindowType.WindowStaysOnTopHint

    qtbot.waitUntil(app.popup.actions_armed, timeout=WAIT_MS)
    qtbot.mouseClick(app.popup.action_buttons["acknowledged"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: app.popup.ack_state_text(alert["id"]) == "Acknowledged · Synced", timeout=WAIT_MS
    )
    core = app.core
    assert core is not None
    assert [r.action for r in core.outbox.for_alert(alert["id"])] == ["acknowledged"]


def test_copy_in_the_pop_up_asks_for_the_blanks_and_confirms(
    qtbot: QtBot, hub: EmbeddedHub, make_app: Any, agent_secret: str, dispatcher_token: str
) -> None:
    import_content(hub.store, hub.app.state.signer, DEMO_DIR)
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    core = app.core
    assert core is not None
    qtbot.waitUntil(
        lambda: core.cache.template("tpl-video-outage-phone") is not None, timeout=WAIT_MS
    )
    alert = publish_alert(
        hub.url,
        dispatcher_token,
        playbook_id="pb-video-visit-outage",
        template_ids=["tpl-video-outage-phone"],
    )
    qtbot.waitUntil(lambda: "tpl-video-outage-phone" in app.popup.template_buttons, timeout=WAIT_MS)
    assert app.popup.current_alert_id() == alert["id"]
    clipboard = QGuiApplication.clipboard()
    clipboard.setText("before")

    qtbot.mouseClick(
        app.popup.template_buttons["tpl-video-outage-phone"], Qt.MouseButton.LeftButton
    )
    qtbot.waitUntil(lambda: app.alert_desk.copy_dialog is not None, timeout=WAIT_MS)
    dialog = app.alert_desk.copy_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=WAIT_MS)
    # What must not happen: the raw template, placeholders and all, on the clipboard.
    assert clipboard.text() == "before"

    view = dialog.view
    qtbot.mouseClick(view.copy_button, Qt.MouseButton.LeftButton)
    assert clipboard.text() == "before"
    assert view.copy_button.text() == "Copy anyway"
    assert "{patient_first_name}" in view.warning.text()

    for name, edit in view.fields().items():
        qtbot.keyClicks(edit, f"<{name}>")
    with qtbot.waitSignal(dialog.copied, timeout=WAIT_MS):
        qtbot.mouseClick(view.copy_button, Qt.MouseButton.LeftButton)
    copied = clipboard.text()
    assert "{" not in copied
    assert "<patient_first_name>" in copied
    assert app.popup.notice_label.text() == "Copied: Video visit moved to phone"
    qtbot.waitUntil(lambda: app.alert_desk.copy_dialog is None, timeout=WAIT_MS)


def test_open_library_and_open_playbook_restore_a_minimized_library(
    qtbot: QtBot, hub: EmbeddedHub, make_app: Any, agent_secret: str, dispatcher_token: str
) -> None:
    import_content(hub.store, hub.app.state.signer, DEMO_DIR)
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    core = app.core
    assert core is not None
    qtbot.waitUntil(
        lambda: core.cache.playbook("pb-video-visit-outage") is not None, timeout=WAIT_MS
    )
    app.library_controller.show()
    app.library.showMinimized()
    qtbot.waitUntil(app.library.isMinimized, timeout=WAIT_MS)
    app.library_controller.show()
    qtbot.waitUntil(lambda: not app.library.isMinimized(), timeout=WAIT_MS)

    app.library.showMinimized()
    qtbot.waitUntil(app.library.isMinimized, timeout=WAIT_MS)
    app.library_controller.open_playbook("pb-video-visit-outage")
    qtbot.waitUntil(lambda: not app.library.isMinimized(), timeout=WAIT_MS)
    assert app.library.playbook_view.playbook_id == "pb-video-visit-outage"
    assert app.library.isVisible()
