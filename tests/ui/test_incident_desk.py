"""The alert desk in an incident, through the whole app against a real hub: a drill pops up
marked, an update comes back on screen for an agent who has not answered and only notifies one
who has, resolving or retracting stops the pop-up and its reminders at once, and an answer from
another computer closes the pop-up for good.

The hub's changes are made in its store (as its update, resolve and retract routes do); the new
state reaches the desk the way it does for an agent: over the alert stream, into the cache, then
through the core's events."""

# The app fixtures come from test_app_flow; tests naming them as parameters "redefine" them.
# ruff: noqa: F811

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from client.app import VigilApp
from client.core.models import Alert
from client.ui.text import DRILL_BANNER, RETRACTED_NOTICE
from hub.content_import import import_content
from hub.server import EmbeddedHub
from tests.hub.devices import ack_item, post, sign_in_device
from tests.hubtools import publish_alert
from tests.library_content import DEMO_DIR
from tests.ui.test_agent_flows import history_row
from tests.ui.test_app_flow import (  # noqa: F401  (fixtures)
    WAIT_MS,
    StepClock,
    agent_secret,
    clock,
    dispatcher_token,
    make_app,
    sign_in_through_dialog,
)


def change(hub: EmbeddedHub, alert_id: str, kind: str, text: str, **fields: Any) -> Alert:
    """Change an alert on the hub as its routes do; the new state as the client parses it."""
    stored = hub.store.alerts.change(alert_id, kind=kind, text=text, by="dora", **fields)
    hub.broker.notify()
    return Alert.from_json(stored.to_wire())


def deliver(app: VigilApp, alert: Alert) -> None:
    """Wait until the stream has brought this state of the alert into the cache."""
    core = app.core
    assert core is not None

    def stored() -> bool:
        cached = core.cache.alert(alert.id)
        return cached is not None and cached.seq >= alert.seq

    deadline = time.monotonic() + WAIT_MS / 1000
    while not stored():
        assert time.monotonic() < deadline, f"alert {alert.id} seq {alert.seq} never arrived"
        QApplication.processEvents()
        time.sleep(0.01)


def publish_drill(hub: EmbeddedHub, severity: str = "critical") -> str:
    stored, _new = hub.store.alerts.publish(
        severity=severity,
        title="Drill: video visits down",
        body="Practise moving visits to phone.",
        playbook_id=None,
        template_ids=[],
        requires_ack=True,
        expires_at=None,
        issued_by="dora",
        drill=True,
    )
    hub.broker.notify()
    return stored.id


def on_screen(qtbot: QtBot, app: VigilApp, alert_id: str) -> None:
    qtbot.waitUntil(
        lambda: app.popup.isVisible() and app.popup.current_alert_id() == alert_id,
        timeout=WAIT_MS,
    )


def history_cell(qtbot: QtBot, app: VigilApp, alert_id: str, column: int, text: str) -> None:
    app.library_controller.show_alerts()

    def shows() -> bool:
        row = history_row(app, alert_id)
        item = app.library.alert_list.topLevelItem(row) if row is not None else None
        return item is not None and item.text(column) == text

    qtbot.waitUntil(shows, timeout=WAIT_MS)


def remind_later(app: VigilApp, clock: StepClock) -> None:
    """Move past the reminder interval and let the desk look for reminders now."""
    clock.advance(minutes=10)
    app.alert_desk.check_reminders()


def test_a_drill_from_the_hub_pops_up_marked_and_notifies_marked(
    qtbot: QtBot, hub: EmbeddedHub, make_app: Any, agent_secret: str
) -> None:
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    alert_id = publish_drill(hub)
    on_screen(qtbot, app, alert_id)
    assert app.popup.drill_banner.isVisible()
    assert app.popup.drill_banner.text() == DRILL_BANNER
    assert app.attention.drills_waiting() == 1

    with qtbot.waitSignal(app.alert_desk.notification, timeout=WAIT_MS) as notified:
        publish_drill(hub, "minor")
    assert notified.args[1].startswith(DRILL_BANNER)
    history_cell(qtbot, app, alert_id, 4, "DRILL · Open")


def test_an_update_comes_back_on_screen_for_an_agent_who_has_not_answered(
    qtbot: QtBot, hub: EmbeddedHub, make_app: Any, agent_secret: str, dispatcher_token: str
) -> None:
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    shown: list[str] = []
    app.alert_desk.alert_on_screen.connect(shown.append)
    alert = publish_alert(hub.url, dispatcher_token, severity="major")
    on_screen(qtbot, app, alert["id"])
    assert shown == [alert["id"]]
    qtbot.keyClick(app.popup, Qt.Key.Key_Escape)
    assert not app.popup.isVisible()

    updated = change(
        hub,
        alert["id"],
        "update",
        "East phones are down too.",
        severity="critical",
        links=["https://status.example.org/"],
        next_update_by=time.time() + 1800,
    )
    deliver(app, updated)
    # 40 copies of the same change (replays, catch-up, a second stream): it shows once.
    for _ in range(40):
        app.alert_desk.receive_change(updated)
    on_screen(qtbot, app, alert["id"])
    assert app.popup.update_heading.text().startswith("Update 1 · ")
    assert "severity Major → Critical" in app.popup.update_heading.text()
    assert app.popup.update_text.toPlainText() == "East phones are down too."
    assert app.popup.next_update_label.text().startswith("Next update by ")
    assert len(app.popup.link_buttons) == 1
    # Shown once is what a receipt records: seeing it again adds nothing.
    assert shown == [alert["id"]]
    # Critical now: the reminders count it as critical.
    assert app.attention.unacked_critical() == 1

    # The same change again (stream and catch-up both carry it) changes nothing.
    app.popup.close()
    app.alert_desk.receive_change(updated)
    assert not app.popup.isVisible()


def test_an_update_after_the_answer_notifies_without_taking_the_screen(
    qtbot: QtBot,
    hub: EmbeddedHub,
    make_app: Any,
    agent_secret: str,
    dispatcher_token: str,
    clock: StepClock,
) -> None:
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    alert = publish_alert(hub.url, dispatcher_token)
    on_screen(qtbot, app, alert["id"])
    qtbot.waitUntil(app.popup.actions_armed, timeout=WAIT_MS)
    qtbot.mouseClick(app.popup.action_buttons["acknowledged"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: app.popup.ack_state_text(alert["id"]) == "Acknowledged · Synced", timeout=WAIT_MS
    )
    app.popup.close()

    updated = change(hub, alert["id"], "update", "Use the backup line.")
    with qtbot.waitSignal(app.alert_desk.notification, timeout=WAIT_MS) as notified:
        deliver(app, updated)
    assert notified.args[1].startswith("Updated: ")
    assert notified.args[2] == "Use the backup line."
    # What must not happen: the pop-up back on screen, or a reminder for an answered alert.
    assert not app.popup.isVisible()
    remind_later(app, clock)
    assert not app.popup.isVisible()
    history_cell(qtbot, app, alert["id"], 4, "Open · Update 1 · Updated")


def test_resolving_stops_the_pop_up_and_its_reminders_at_once(
    qtbot: QtBot,
    hub: EmbeddedHub,
    make_app: Any,
    agent_secret: str,
    dispatcher_token: str,
    clock: StepClock,
) -> None:
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    alert = publish_alert(hub.url, dispatcher_token)
    on_screen(qtbot, app, alert["id"])

    deliver(app, change(hub, alert["id"], "resolved", "Video is back."))
    qtbot.waitUntil(lambda: not app.popup.isVisible(), timeout=1000)
    assert app.attention.waiting() == []
    remind_later(app, clock)
    assert not app.popup.isVisible()

    history_cell(qtbot, app, alert["id"], 4, "Resolved")
    row = history_row(app, alert["id"])
    assert row is not None
    app.library.alert_list.setCurrentItem(app.library.alert_list.topLevelItem(row))
    assert app.library.alert_closed.text() == "RESOLVED: Video is back."


def test_a_retraction_replaces_the_alert_on_screen_and_stops_its_reminders(
    qtbot: QtBot,
    hub: EmbeddedHub,
    make_app: Any,
    agent_secret: str,
    dispatcher_token: str,
    clock: StepClock,
) -> None:
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    alert = publish_alert(hub.url, dispatcher_token, title="Close the West clinic")
    on_screen(qtbot, app, alert["id"])

    deliver(app, change(hub, alert["id"], "retracted", "Wrong region."))
    qtbot.waitUntil(lambda: app.popup.closed_notice.isVisible(), timeout=1000)
    assert app.popup.closed_notice.text() == f"{RETRACTED_NOTICE}\nWrong region."
    assert not app.popup.title_label.isVisible()
    assert not app.popup.actions_row.isVisible()
    assert app.attention.waiting() == []

    app.popup.close()
    remind_later(app, clock)
    assert not app.popup.isVisible()
    history_cell(qtbot, app, alert["id"], 2, RETRACTED_NOTICE)


def test_an_answer_from_another_computer_closes_the_pop_up_for_good(
    qtbot: QtBot,
    hub: EmbeddedHub,
    make_app: Any,
    agent_secret: str,
    dispatcher_token: str,
    clock: StepClock,
) -> None:
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    alert = publish_alert(hub.url, dispatcher_token)
    on_screen(qtbot, app, alert["id"])

    app.alert_desk.answered_elsewhere(alert["id"], "Front desk PC")
    qtbot.waitUntil(lambda: not app.popup.isVisible(), timeout=1000)
    remind_later(app, clock)
    assert not app.popup.isVisible()
    # An update to it later only notifies: it was answered.
    with qtbot.waitSignal(app.alert_desk.notification, timeout=WAIT_MS):
        deliver(app, change(hub, alert["id"], "update", "More news."))
    assert not app.popup.isVisible()
    history_cell(qtbot, app, alert["id"], 3, "Answered on Front desk PC")


def test_an_answer_on_another_computer_reaches_this_one_over_the_hub_within_a_second(
    qtbot: QtBot, hub: EmbeddedHub, make_app: Any, agent_secret: str, dispatcher_token: str
) -> None:
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    alert = publish_alert(hub.url, dispatcher_token)
    on_screen(qtbot, app, alert["id"])
    # The same agent on the front-desk PC: signed in there, answering there.
    elsewhere = sign_in_device(hub, "amira", agent_secret, "front-desk-pc", "Front desk PC")
    answer = post(hub, "/v1/acks", elsewhere, {"acks": [ack_item(alert["id"], hub)]})
    assert answer.json()["results"][0]["status"] == "accepted", answer.text

    qtbot.waitUntil(lambda: not app.popup.isVisible(), timeout=1000)
    history_cell(qtbot, app, alert["id"], 3, "Answered on Front desk PC")
    core = app.core
    assert core is not None
    # Nothing was sent from here: this computer's outbox never answered for the agent.
    assert core.outbox.for_alert(alert["id"]) == []


def test_the_playbook_and_template_versions_opened_for_an_alert_are_reported(
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
    template = core.cache.template("tpl-video-outage-phone")
    playbook = core.cache.playbook("pb-video-visit-outage")
    assert template is not None and playbook is not None
    alert = publish_alert(
        hub.url,
        dispatcher_token,
        playbook_id="pb-video-visit-outage",
        template_ids=["tpl-video-outage-phone"],
    )
    qtbot.waitUntil(lambda: "tpl-video-outage-phone" in app.popup.template_buttons, timeout=WAIT_MS)
    with qtbot.waitSignal(app.alert_desk.content_opened, timeout=WAIT_MS) as opened:
        qtbot.mouseClick(
            app.popup.template_buttons["tpl-video-outage-phone"], Qt.MouseButton.LeftButton
        )
    assert opened.args == [alert["id"], "template", template.id, template.version]
    with qtbot.waitSignal(app.library_controller.content_opened, timeout=WAIT_MS) as opened:
        qtbot.waitUntil(app.popup.playbook_button.isEnabled, timeout=WAIT_MS)
        qtbot.mouseClick(app.popup.playbook_button, Qt.MouseButton.LeftButton)
    assert opened.args == [alert["id"], "playbook", playbook.id, playbook.version]


def test_an_answer_the_hub_reports_from_this_computer_is_not_taken_for_another_one(
    qtbot: QtBot, hub: EmbeddedHub, make_app: Any, agent_secret: str, dispatcher_token: str
) -> None:
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    alert = publish_alert(hub.url, dispatcher_token)
    on_screen(qtbot, app, alert["id"])
    this_device = str(app.settings.get("device_id"))

    app.alert_desk.answer_from_hub(alert["id"], this_device, "This laptop")
    # What must not happen: this computer's own answer read as one from elsewhere.
    assert app.popup.isVisible()
    assert app.alert_desk.answered_on(alert["id"]) is None

    app.alert_desk.answer_from_hub(alert["id"], "other-device", "")
    qtbot.waitUntil(lambda: not app.popup.isVisible(), timeout=1000)
    assert app.alert_desk.answered_on(alert["id"]) == "another computer"
