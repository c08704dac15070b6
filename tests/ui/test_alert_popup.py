"""The crisis alert pop-up: literal text, queueing, actions, state lines, on-top, expiry."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QPushButton
from pytestqt.qtbot import QtBot

from client.core.models import Alert
from client.ui.alert_popup import AlertCard, AlertPopup
from client.ui.sound import AlertSound


def make_alert(
    seq: int,
    severity: str = "critical",
    *,
    title: str | None = None,
    body: str = "Patients cannot join video visits.",
    playbook_id: str | None = None,
) -> Alert:
    return Alert(
        id=f"alert-{seq}",
        seq=seq,
        severity=severity,
        title=title or f"Alert {seq}",
        body=body,
        playbook_id=playbook_id,
        template_ids=(),
        requires_ack=True,
        issued_at="2026-11-27T10:42:00Z",
        expires_at=None,
        issued_by="dispatch",
    )


@pytest.fixture
def popup(qtbot: QtBot) -> AlertPopup:
    widget = AlertPopup()
    qtbot.addWidget(widget)
    return widget


def test_html_and_script_in_title_and_body_are_shown_literally(popup: AlertPopup) -> None:
    title = '<b>Outage</b> <img src=x onerror="alert(1)">'
    body = "<script>alert('x')</script>\n<a href='http://evil.example'>click</a> &amp;"
    popup.present(AlertCard(make_alert(1, title=title, body=body)), sound=False)
    assert popup.title_label.textFormat() == Qt.TextFormat.PlainText
    assert popup.title_label.text() == title
    assert popup.body_view.toPlainText() == body
    assert popup.body_view.isReadOnly()


def test_queue_counts_and_moves_with_next_and_previous(qtbot: QtBot, popup: AlertPopup) -> None:
    for seq in (1, 2, 3):
        popup.present(AlertCard(make_alert(seq)), sound=False)
    assert popup.position_label.text() == "1 of 3"
    assert popup.current_alert_id() == "alert-1"
    qtbot.mouseClick(popup.next_button, Qt.MouseButton.LeftButton)
    assert (popup.position_label.text(), popup.title_label.text()) == ("2 of 3", "Alert 2")
    qtbot.mouseClick(popup.previous_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(popup.previous_button, Qt.MouseButton.LeftButton)
    assert popup.position_label.text() == "3 of 3"


def test_a_single_alert_hides_the_queue_buttons(popup: AlertPopup) -> None:
    popup.present(AlertCard(make_alert(1)), sound=False)
    assert popup.position_label.text() == "1 of 1"
    assert not popup.next_button.isVisible()


def test_presenting_a_queued_alert_again_does_not_duplicate_it(popup: AlertPopup) -> None:
    popup.present(AlertCard(make_alert(1)), sound=False)
    popup.present(AlertCard(make_alert(1)), sound=False)
    assert popup.count() == 1


def test_acknowledge_emits_the_intent_with_the_note_and_shows_the_states(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    popup.present(AlertCard(make_alert(1)), sound=False)
    qtbot.keyClicks(popup.note_edit, "Calling patients now")
    with qtbot.waitSignal(popup.ack_requested, timeout=2000) as blocker:
        qtbot.mouseClick(popup.action_buttons["acknowledged"], Qt.MouseButton.LeftButton)
    assert blocker.args == ["alert-1", "acknowledged", "Calling patients now"]
    assert popup.ack_state_label.text() == "Recording…"
    assert not popup.action_buttons["escalated"].isEnabled()

    popup.set_ack_state("alert-1", "recorded")
    assert popup.ack_state_label.text() == "Acknowledged · Recorded, waiting to sync"
    popup.set_ack_state("alert-1", "synced")
    assert popup.ack_state_label.text() == "Acknowledged · Synced"


def test_escalate_and_unable_have_their_own_actions(qtbot: QtBot, popup: AlertPopup) -> None:
    popup.present(AlertCard(make_alert(1)), sound=False)
    popup.present(AlertCard(make_alert(2)), sound=False)
    with qtbot.waitSignal(popup.ack_requested, timeout=2000) as blocker:
        qtbot.mouseClick(popup.action_buttons["escalated"], Qt.MouseButton.LeftButton)
    assert blocker.args == ["alert-1", "escalated", ""]
    popup.show_next()
    with qtbot.waitSignal(popup.ack_requested, timeout=2000) as blocker:
        qtbot.mouseClick(popup.action_buttons["unable"], Qt.MouseButton.LeftButton)
    assert blocker.args == ["alert-2", "unable", ""]


def test_rejected_and_failed_acks_say_why_and_allow_another_try(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    popup.present(AlertCard(make_alert(1)), sound=False)
    qtbot.mouseClick(popup.action_buttons["acknowledged"], Qt.MouseButton.LeftButton)
    popup.set_ack_state("alert-1", "rejected", "unknown_alert")
    assert popup.ack_state_label.text() == "Rejected: unknown_alert"
    assert popup.action_buttons["acknowledged"].isEnabled()
    popup.set_ack_state("alert-1", "failed", "the disk is full")
    assert popup.ack_state_label.text() == "Not recorded: the disk is full"


def test_enter_does_not_acknowledge(qtbot: QtBot, popup: AlertPopup) -> None:
    popup.present(AlertCard(make_alert(1)), sound=False)
    with qtbot.assertNotEmitted(popup.ack_requested):
        qtbot.keyClick(popup.note_edit, Qt.Key.Key_Return)
        qtbot.keyClick(popup.body_view, Qt.Key.Key_Return)


def test_critical_and_major_stay_on_top(popup: AlertPopup) -> None:
    popup.present(AlertCard(make_alert(1, "major")), sound=False)
    assert popup.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    assert popup.isVisible()
    assert popup.property("severity") == "major"


def test_a_minor_alert_alone_does_not_stay_on_top(popup: AlertPopup) -> None:
    popup.present(AlertCard(make_alert(1, "minor")), sound=False)
    assert not popup.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    popup.present(AlertCard(make_alert(2, "critical")), sound=False)
    assert popup.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    assert popup.isVisible()


def test_expired_alert_is_removed_and_the_window_closes_when_empty(popup: AlertPopup) -> None:
    popup.present(AlertCard(make_alert(1)), sound=False)
    popup.present(AlertCard(make_alert(2)), sound=False)
    popup.remove_alert("alert-1")
    assert (popup.position_label.text(), popup.current_alert_id()) == ("1 of 1", "alert-2")
    popup.remove_alert("alert-2")
    assert not popup.isVisible()
    assert popup.count() == 0


def test_closing_keeps_unacknowledged_alerts_and_drops_acted_ones(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    popup.present(AlertCard(make_alert(1)), sound=False)
    popup.present(AlertCard(make_alert(2)), sound=False)
    qtbot.mouseClick(popup.action_buttons["acknowledged"], Qt.MouseButton.LeftButton)
    popup.set_ack_state("alert-1", "recorded")
    qtbot.keyClick(popup.body_view, Qt.Key.Key_Escape)
    assert not popup.isVisible()
    assert popup.alert_ids() == ["alert-2"]


def test_playbook_and_template_intents(qtbot: QtBot, popup: AlertPopup) -> None:
    card = AlertCard(
        make_alert(1, playbook_id="pb-video"),
        playbook_title="Video visit platform outage",
        templates=(("tpl-phone", "Video visit moved to phone"), ("tpl-sms", "<i>SMS</i>")),
    )
    popup.present(card, sound=False)
    assert popup.playbook_label.text() == "Playbook: Video visit platform outage"
    with qtbot.waitSignal(popup.playbook_requested, timeout=2000) as blocker:
        qtbot.mouseClick(popup.playbook_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["pb-video"]
    sms_button = popup.template_buttons["tpl-sms"]
    assert sms_button.accessibleName() == "Copy template <i>SMS</i>"
    with qtbot.waitSignal(popup.template_copy_requested, timeout=2000) as blocker:
        qtbot.mouseClick(sms_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["tpl-sms"]


def test_alert_without_playbook_hides_the_row(popup: AlertPopup) -> None:
    popup.present(AlertCard(make_alert(1)), sound=False)
    assert not popup.playbook_row.isVisible()
    assert not popup.templates_box.isVisible()


def test_issued_time_and_dispatcher_are_shown(popup: AlertPopup) -> None:
    popup.present(AlertCard(make_alert(1)), sound=False)
    assert popup.meta_label.text().startswith("Issued ")
    assert "by dispatch" in popup.meta_label.text()


def test_presenting_plays_the_severity_sound(qtbot: QtBot) -> None:
    sound = AlertSound()
    popup = AlertPopup(sound=sound)
    qtbot.addWidget(popup)
    with qtbot.waitSignal(sound.played, timeout=2000) as blocker:
        popup.present(AlertCard(make_alert(1, "critical")))
    assert blocker.args[0] == "critical"
    sound.enabled = False
    with qtbot.assertNotEmitted(sound.played):
        popup.present(AlertCard(make_alert(2, "major")))


def test_actions_have_accessible_names(popup: AlertPopup) -> None:
    popup.present(AlertCard(make_alert(1)), sound=False)
    names = {button.accessibleName() for button in popup.action_buttons.values()}
    assert names == {
        "Acknowledge critical alert: Alert 1",
        "Escalate critical alert: Alert 1",
        "Unable to respond to critical alert: Alert 1",
    }
    assert popup.note_edit.accessibleName() == "Note for your answer (optional)"


def test_template_rows_are_replaced_not_added_when_the_queue_changes(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    card = AlertCard(make_alert(1), templates=(("tpl-phone", "Video visit moved to phone"),))
    popup.present(card, sound=False)
    popup.present(AlertCard(make_alert(2)), sound=False)

    def visible_copy_buttons() -> int:
        buttons = popup.templates_box.findChildren(QPushButton)
        return sum(1 for button in buttons if button.isVisibleTo(popup))

    # Qt shows rows added to a visible window through queued events: run them all first.
    QApplication.processEvents()
    assert visible_copy_buttons() == 1
