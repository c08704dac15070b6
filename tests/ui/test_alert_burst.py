"""The pop-up under a burst of alerts, read by a screen reader, driven by the keyboard, and fed
hostile text: most severe first, answering moves on, a list of what waits, names that say what
each control does, and text shown as typed but never reversed or clipped mid-letter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible, QGuiApplication
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from client.core.models import Alert
from client.ui.alert_popup import AlertPopup, waiting_row_text
from client.ui.view_models import AlertCard, waiting_order

NOW = datetime(2026, 12, 3, 8, 12, tzinfo=UTC)
RLO = "\u202e"


class Clock:
    """A clock the test moves, so ages and reminder times are checked without waiting."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def make_alert(
    seq: int,
    severity: str,
    *,
    minutes_ago: int = 0,
    title: str | None = None,
    body: str = "Patients cannot join video visits.",
    issued_at: str | None = None,
) -> Alert:
    issued = issued_at or (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return Alert(
        id=f"alert-{seq}",
        seq=seq,
        severity=severity,
        title=title or f"{severity} {seq}",
        body=body,
        playbook_id=None,
        template_ids=(),
        requires_ack=True,
        issued_at=issued,
        expires_at=None,
        issued_by="dispatch",
    )


BURST = [
    make_alert(1, "major", minutes_ago=5),
    make_alert(2, "minor", minutes_ago=4),
    make_alert(3, "critical", minutes_ago=3),
    make_alert(4, "major", minutes_ago=2),
    make_alert(5, "critical", minutes_ago=1),
]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def popup(qtbot: QtBot, clock: Clock) -> AlertPopup:
    widget = AlertPopup(clock=clock, arm_ms=50)
    qtbot.addWidget(widget)
    return widget


def present_burst(popup: AlertPopup) -> None:
    for alert in BURST:
        popup.present(AlertCard(alert), sound=False)


def test_a_burst_opens_on_the_oldest_critical_with_criticals_first(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    present_burst(popup)
    assert popup.current_alert_id() == "alert-3"
    assert popup.position_label.text() == "1 of 5"
    assert popup.alert_ids() == ["alert-3", "alert-5", "alert-1", "alert-4", "alert-2"]
    # What must not happen: a major on screen while criticals wait behind it.
    assert popup.property("severity") == "critical"


def test_a_more_severe_arrival_takes_the_screen_but_the_actions_pause_first(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    popup.present(AlertCard(BURST[0]), sound=False)
    qtbot.waitUntil(popup.actions_armed, timeout=2000)
    assert popup.current_alert_id() == "alert-1"
    popup.present(AlertCard(BURST[2]), sound=False)
    assert popup.current_alert_id() == "alert-3"
    # A press meant for the major alert must not answer the critical that just replaced it.
    with qtbot.assertNotEmitted(popup.ack_requested):
        qtbot.mouseClick(popup.action_buttons["acknowledged"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(popup.actions_armed, timeout=2000)
    with qtbot.waitSignal(popup.ack_requested, timeout=2000) as blocker:
        qtbot.mouseClick(popup.action_buttons["acknowledged"], Qt.MouseButton.LeftButton)
    assert blocker.args[0] == "alert-3"


def test_a_less_severe_arrival_leaves_the_alert_on_screen(qtbot: QtBot, popup: AlertPopup) -> None:
    popup.present(AlertCard(BURST[2]), sound=False)
    popup.present(AlertCard(BURST[1]), sound=False)
    assert popup.current_alert_id() == "alert-3"
    assert popup.actions_armed()


def test_answering_moves_to_the_next_unanswered_and_says_so(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    present_burst(popup)
    qtbot.waitUntil(popup.actions_armed, timeout=2000)
    seen = []
    for turn in range(len(BURST)):
        current = popup.current_alert_id()
        assert current is not None
        seen.append(current)
        qtbot.waitUntil(popup.actions_armed, timeout=2000)
        with qtbot.waitSignal(popup.ack_requested, timeout=2000):
            qtbot.keyClick(popup, Qt.Key.Key_A, Qt.KeyboardModifier.AltModifier)
        title = popup.title_label.full_text()
        popup.set_ack_state(current, "recorded")
        if turn < len(BURST) - 1:
            assert popup.notice_label.text().startswith(f"Acknowledged: {title}.")
            assert popup.current_alert_id() != current
    assert seen == ["alert-3", "alert-5", "alert-1", "alert-4", "alert-2"]
    assert popup.unanswered_ids() == []
    # The last one stays on screen with its state; nothing was answered twice.
    assert popup.ack_state_text("alert-2") == "Acknowledged · Recorded, waiting to sync"


def test_the_waiting_list_shows_age_and_reminders_and_picks_an_alert(
    qtbot: QtBot, popup: AlertPopup, clock: Clock
) -> None:
    present_burst(popup)
    assert popup.waiting_list.isVisible()
    assert popup.waiting_list.count() == 5
    clock.now = NOW + timedelta(minutes=9)
    popup.present(AlertCard(BURST[2]), sound=False, reminder=True)
    popup.present(AlertCard(BURST[2]), sound=False, reminder=True)
    first_row = popup.waiting_list.item(0).text()
    assert first_row.startswith("▲ Critical · critical 3 · 12 min ago · reminder 2, first shown ")
    assert "reminder" not in popup.waiting_list.item(1).text()
    popup.waiting_list.setFocus()
    popup.waiting_list.setCurrentRow(3)
    qtbot.keyClick(popup.waiting_list, Qt.Key.Key_Return)
    assert popup.current_alert_id() == "alert-4"
    assert popup.position_label.text() == "4 of 5"


def test_one_alert_has_no_waiting_list(popup: AlertPopup) -> None:
    popup.present(AlertCard(BURST[0]), sound=False)
    assert not popup.waiting_list.isVisible()


@pytest.mark.parametrize(
    ("issued_at", "expected"),
    [
        ("0001-01-01T00:00:00Z", "days ago"),
        ("9999-12-31T23:59:59Z", "just now"),
        ("", "issued at an unknown time"),
        ("not a time", "issued at an unknown time"),
    ],
)
def test_ages_of_hostile_times_are_words_not_errors(issued_at: str, expected: str) -> None:
    alert = make_alert(1, "critical", issued_at=issued_at or " ")
    alert = Alert(**{**alert.__dict__, "issued_at": issued_at})
    assert expected in waiting_row_text(AlertCard(alert), NOW, 0, NOW)
    waiting_order(alert)  # sorts without raising


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["critical", "major", "minor", "info"]),
            st.integers(min_value=0, max_value=10_000),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_the_queue_is_always_most_severe_first(qapp: QApplication, items: list[object]) -> None:
    popup = AlertPopup(arm_ms=0)
    try:
        for seq, (severity, minutes) in enumerate(items):  # type: ignore[misc]
            popup.present(AlertCard(make_alert(seq, severity, minutes_ago=minutes)), sound=False)
        ranks = [waiting_order(e.card.alert) for e in popup._entries]
        assert ranks == sorted(ranks)
        assert popup.current_alert_id() == popup.alert_ids()[0]
    finally:
        popup.close()
        popup.deleteLater()


# Screen readers and the keyboard


def accessible_name(widget: QWidget) -> str:
    interface = QAccessible.queryAccessibleInterface(widget)
    assert interface is not None
    return interface.text(QAccessible.Text.Name)


def test_screen_readers_hear_the_title_and_severity_not_a_placeholder(
    popup: AlertPopup,
) -> None:
    popup.present(AlertCard(make_alert(1, "critical", title="Video visits down (West)")))
    expected = "Critical alert: Video visits down (West)"
    assert accessible_name(popup.title_label) == expected
    assert accessible_name(popup) == expected
    assert accessible_name(popup.action_buttons["acknowledged"]) == (
        "Acknowledge critical alert: Video visits down (West)"
    )
    assert "Alert title" not in {accessible_name(popup.title_label), accessible_name(popup)}


def test_every_tab_stop_has_a_name_and_the_order_follows_the_screen(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    card = AlertCard(
        make_alert(1, "critical"),
        templates=(("tpl-a", "Video visit moved to phone"), ("tpl-b", "SMS")),
    )
    with qtbot.waitActive(popup, timeout=5000):
        popup.present(card, sound=False)
    popup.present(AlertCard(make_alert(2, "major")), sound=False)
    popup.previous_button.setFocus()
    stops: list[QWidget] = []
    for _ in range(30):
        widget = QApplication.focusWidget()
        assert widget is not None
        if widget in stops:
            break
        stops.append(widget)
        qtbot.keyClick(widget, Qt.Key.Key_Tab)
    names = [accessible_name(widget) for widget in stops]
    assert all(names), f"unnamed tab stop in {names}"
    assert popup.templates_scroll not in stops
    copy = names.index("Copy template Video visit moved to phone")
    assert copy < names.index("Note for your answer (optional)")
    assert copy < names.index("Acknowledge critical alert: critical 1")
    assert names.index("Waiting alerts") < names.index("Details of the Critical alert: critical 1")


def test_the_keys_are_shown_on_screen(popup: AlertPopup) -> None:
    popup.present(AlertCard(make_alert(1, "critical")), sound=False)
    assert "Space or Alt+A" in popup.keys_label.text()
    assert popup.keys_label.isVisible()
    assert "Alt+A" in popup.action_buttons["acknowledged"].toolTip()


def test_the_focus_ring_on_the_primary_button_differs_from_its_fill(qtbot: QtBot) -> None:
    from client.ui import resources

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    app.setStyleSheet(resources.stylesheet())
    try:
        popup = AlertPopup(arm_ms=0)
        qtbot.addWidget(popup)
        with qtbot.waitActive(popup, timeout=5000):
            popup.present(AlertCard(make_alert(1, "critical")), sound=False)
        button = popup.action_buttons["acknowledged"]
        unfocused = button.grab().toImage()
        button.setFocus()
        qtbot.waitUntil(button.hasFocus, timeout=2000)
        focused = button.grab().toImage()
        # The ring's colour at the border is far from the blue fill it sits on.
        edge = focused.pixelColor(1, focused.height() // 2)
        fill = unfocused.pixelColor(unfocused.width() // 2, 3)
        distance = sum(
            abs(a - b)
            for a, b in zip(
                (edge.red(), edge.green(), edge.blue()),
                (fill.red(), fill.green(), fill.blue()),
                strict=True,
            )
        )
        assert distance > 200
    finally:
        app.setStyleSheet("")


# Hostile text


def test_a_bidi_override_never_reverses_the_title_or_body(popup: AlertPopup) -> None:
    title = f"Open invoice{RLO}fdp.exe"
    popup.present(AlertCard(make_alert(1, "critical", title=title, body=f"See {RLO}fdp.exe")))
    assert RLO not in popup.title_label.text()
    assert RLO not in popup.title_label.full_text()
    assert RLO not in popup.body_view.toPlainText()
    assert RLO not in popup.waiting_list.item(0).text() if popup.waiting_list.count() else True
    assert "fdp.exe" in popup.title_label.text()
    assert RLO not in accessible_name(popup)


def test_a_long_title_without_spaces_ends_in_an_ellipsis_with_the_whole_on_hover(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    title = "W" * 200
    popup.present(AlertCard(make_alert(1, "critical", title=title)), sound=False)
    popup.resize(600, 700)
    qtbot.waitUntil(lambda: popup.title_label.width() <= 600, timeout=2000)
    label = popup.title_label
    assert label.is_elided()
    shown_text = label.text()
    assert shown_text.endswith("…")
    assert "W" * 200 not in shown_text.replace("\n", "")
    assert title in label.toolTip()
    # Each line fits the label: nothing is clipped mid-letter.
    metrics = label.fontMetrics()
    for line in shown_text.split("\n"):
        assert metrics.horizontalAdvance(line) <= label.contentsRect().width()


def test_the_body_box_fits_its_text_and_five_template_rows_show_whole(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    templates = tuple((f"tpl-{n}", f"Template number {n}") for n in range(5))
    card = AlertCard(
        make_alert(1, "critical", body="Two short lines.\nThat is all."), templates=templates
    )
    with qtbot.waitActive(popup, timeout=5000):
        popup.present(card, sound=False)
    line = popup.body_view.fontMetrics().lineSpacing()
    assert popup.body_view.height() < 6 * line
    viewport = popup.templates_scroll.viewport()

    def all_rows_whole() -> bool:
        QApplication.processEvents()
        for button in popup.template_buttons.values():
            top_left = button.mapTo(viewport, button.rect().topLeft())
            bottom = top_left.y() + button.height()
            if top_left.y() < 0 or bottom > viewport.height():
                return False
        return True

    qtbot.waitUntil(all_rows_whole, timeout=3000)
    screen = QGuiApplication.primaryScreen().availableGeometry()
    assert popup.frameGeometry().height() <= max(screen.height(), 768)


def test_an_alert_opened_by_hand_leaves_when_the_window_closes(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    popup.present(AlertCard(BURST[2]), sound=False)
    popup.present(AlertCard(BURST[1]), sound=False, stays=False)
    popup.show_alert("alert-2")
    assert popup.current_alert_id() == "alert-2"
    qtbot.keyClick(popup.body_view, Qt.Key.Key_Escape)
    # The critical still waits for its reminder; the minor opened from the history is gone.
    assert popup.alert_ids() == ["alert-3"]
    # Presented again by its reminder, an alert opened by hand stays.
    popup.present(AlertCard(BURST[1]), sound=False, stays=False)
    popup.present(AlertCard(BURST[1]), sound=False, reminder=True)
    popup.close()
    assert "alert-2" in popup.alert_ids()


def test_an_answer_still_being_saved_keeps_its_alert_on_screen_until_the_save_fails(
    popup: AlertPopup,
) -> None:
    popup.present(AlertCard(make_alert(2, "critical", minutes_ago=1)), sound=False)
    popup.set_ack_state("alert-2", "recording")
    # Another critical alert arrives (a catch-up, a reminder) while the save is under way.
    popup.present(AlertCard(make_alert(1, "critical", minutes_ago=5)), sound=False)

    assert popup.current_alert_id() == "alert-2"
    popup.set_ack_state("alert-2", "failed", "disk full")
    assert popup.current_alert_id() == "alert-2"
    assert popup.ack_state_text("alert-2").startswith("Not recorded")
