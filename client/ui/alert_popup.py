"""The crisis alert pop-up: one window holding every alert waiting for the agent, most severe
first ("1 of 3"), with a compact list of what waits.

Alert text comes from the hub and is untrusted: every piece is shown as plain text, without
bidi controls. Enter does not acknowledge: the window jumps up while the agent may be typing
elsewhere, so an action takes a click, its Alt shortcut, or Space on the focused button. When
the alert on screen changes by itself (a more severe one arrived, or the last one was answered)
the actions wait a moment before they take a press, so a press meant for one alert never lands
on another.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from PySide6.QtCore import Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import (
    QCloseEvent,
    QDesktopServices,
    QKeyEvent,
    QKeySequence,
    QResizeEvent,
    QShortcut,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from client.core.models import Alert
from client.ui.elided_label import ElidedLabel
from client.ui.enter_button import EnterButton
from client.ui.placement import FRAME_ALLOWANCE, bring_forward
from client.ui.sound import AlertSound
from client.ui.text import (
    BODY_SHOWN_MAX,
    DRILL_BANNER,
    LINK_SHOWN_MAX,
    LINKS_SHOWN,
    RETRACTED_NOTICE,
    TITLE_SHOWN_MAX,
    UPDATE_TEXT_SHOWN_MAX,
    ago_text,
    closing_note,
    elide,
    latest_update,
    local_time,
    local_when,
    next_update_text,
    opens_as_link,
    parse_timestamp,
    plain_tooltip,
    shown,
    update_heading,
)
from client.ui.view_models import AlertCard, waiting_order

AckState = Literal["recording", "recorded", "synced", "rejected", "failed"]
NOTE_MAX_CHARS = 2000
ON_TOP_SEVERITIES = ("critical", "major")
# Template rows shown whole before the list scrolls: the actions must stay on a 768-pixel screen.
TEMPLATE_ROWS_SHOWN = 5
# The alert text's box fits its text between these many lines, then scrolls.
BODY_LINES = (2, 8)
# How long the actions ignore presses after the alert on screen changed by itself.
ARM_MS = 600
ACTIONS = (
    ("acknowledged", "&Acknowledge", "Acknowledge", "Alt+A"),
    ("escalated", "&Escalate", "Escalate", "Alt+E"),
    ("unable", "&Unable to respond", "Unable to respond to", "Alt+U"),
)
KEYS_HINT = (
    "Keys: Space or Alt+A acknowledge · Alt+E escalate · Alt+U unable to respond · "
    "Alt+W with a patient · Ctrl+PgDn / Ctrl+PgUp next or previous alert · Esc close"
)
RETRACTED_KEYS_HINT = "Keys: Ctrl+PgDn / Ctrl+PgUp next or previous alert · Esc close"
_ACTION_DONE = {"acknowledged": "Acknowledged", "escalated": "Escalated", "unable": "Unable"}
_SEVERITY_HEADING = {
    "critical": "▲ CRITICAL ALERT",
    "major": "◆ MAJOR ALERT",
    "minor": "● Minor alert",
    "info": "○ Information",
    "retracted": "✕ RETRACTED ALERT",
}
_SEVERITY_SHORT = {
    "critical": "▲ Critical",
    "major": "◆ Major",
    "minor": "● Minor",
    "info": "○ Info",
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Entry:
    card: AlertCard
    first_shown: datetime
    reminders: int = 0
    # False for an alert the agent opened by hand (from the history): closing drops it.
    stays: bool = True
    state: AckState | None = None
    action: str | None = None
    reason: str = ""
    note: str = ""
    # A newer state of the alert (an update) arrived while it was queued.
    updated: bool = False
    # The severity shown before an update changed it (the alert carries only its current one).
    severity_before: str | None = None

    @property
    def acted(self) -> bool:
        return self.state in ("recording", "recorded", "synced")

    def take(self, card: AlertCard) -> None:
        """A newer state of the alert replaces the one queued (an older one is ignored)."""
        if card.alert.seq < self.card.alert.seq:
            return
        if card.alert.seq > self.card.alert.seq:
            self.updated = True
            if card.alert.severity != self.card.alert.severity:
                self.severity_before = self.card.alert.severity
        self.card = card

    @property
    def needs_answer(self) -> bool:
        """Not answered here, and still open (a resolved or retracted alert asks nothing)."""
        return not self.acted and not self.card.alert.is_closed

    @property
    def answer_saved(self) -> bool:
        """The answer is on disk: only then may the screen move on (a save can still fail)."""
        return self.state in ("recorded", "synced")


def severity_words(severity: str) -> str:
    """ "Critical", "Major", ... for screen readers and lists (never a symbol alone)."""
    return severity.capitalize() if severity else "Unknown"


def alert_name(alert: Alert) -> str:
    """What a screen reader says for an alert: drill or retracted first, its severity and its
    actual title."""
    if alert.status == "retracted":
        return f"{RETRACTED_NOTICE}. Retracted {alert.severity} alert"
    name = f"{severity_words(alert.severity)} alert: {shown(alert.title, TITLE_SHOWN_MAX)}"
    if alert.status == "resolved":
        name = f"Resolved. {name}"
    return f"{DRILL_BANNER}. {name}" if alert.drill else name


def waiting_row_text(card: AlertCard, first_shown: datetime, reminders: int, now: datetime) -> str:
    """One row of the waiting list, e.g. "▲ Critical · Video down · 12 min ago · reminder 2,
    first shown 08:00"."""
    alert = card.alert
    parts = ["DRILL"] if alert.drill else []
    parts.append(_SEVERITY_SHORT.get(alert.severity, severity_words(alert.severity)))
    if alert.status == "retracted":
        parts.append("RETRACTED: disregard")
    else:
        parts.append(elide(shown(alert.title, TITLE_SHOWN_MAX), 70))
    if alert.status == "resolved":
        parts.append("resolved")
    issued = parse_timestamp(alert.issued_at)
    parts.append(ago_text(issued, now) if issued is not None else "issued at an unknown time")
    if reminders:
        parts.append(f"reminder {reminders}, first shown {local_time(first_shown)}")
    return " · ".join(parts)


def _plain_label(name: str = "") -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    if name:
        label.setObjectName(name)
    return label


def _restyle(widget: QWidget, name: str, value: str) -> None:
    widget.setProperty(name, value)
    # A dynamic property only re-applies the stylesheet after an unpolish/polish.
    widget.style().unpolish(widget)
    widget.style().polish(widget)


class AlertPopup(QWidget):
    """Shows waiting alerts one at a time, most severe first, and reports what the agent does.

    Signals:
        ack_requested: (alert_id, action, note): action is acknowledged, escalated or unable.
        playbook_requested: the alert's playbook id, to open it in the library.
        template_copy_requested: a template id, to fill in and copy.
        snooze_requested: an alert id: "with a patient", remind later (never for critical).
        link_opened: an https link of an update the agent clicked (handed to the desktop).
        alert_displayed: an alert id, each time that alert is the one on the visible window.
    """

    ack_requested = Signal(str, str, str)
    link_opened = Signal(str)
    alert_displayed = Signal(str)
    playbook_requested = Signal(str)
    template_copy_requested = Signal(str)
    snooze_requested = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        sound: AlertSound | None = None,
        clock: Callable[[], datetime] = _utc_now,
        arm_ms: int = ARM_MS,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.sound = sound
        self._clock = clock
        self._entries: list[_Entry] = []
        self._index = 0
        self._on_top: bool | None = None
        self._armed = True
        self._snooze_minutes = 0
        self._critical_fullscreen = False
        self._arm_timer = QTimer(self)
        self._arm_timer.setSingleShot(True)
        self._arm_timer.setInterval(arm_ms)
        self._arm_timer.timeout.connect(self._arm)
        self.setObjectName("AlertPopup")
        # Without it a plain QWidget ignores the stylesheet's severity border.
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setWindowTitle("Vigil alert")
        self.setAccessibleName("Crisis alert")
        self.setMinimumSize(560, 460)
        self._build()
        self._apply_window_flags(on_top=True)

    def _build(self) -> None:
        self.band = QFrame()
        self.band.setObjectName("SeverityBand")
        self.severity_label = _plain_label()
        self.severity_label.setWordWrap(False)
        self.position_label = _plain_label()
        self.position_label.setWordWrap(False)
        self.previous_button = QPushButton("Pre&vious")
        self.previous_button.setAccessibleName("Previous alert")
        self.previous_button.setToolTip("Previous alert (Ctrl+PgUp)")
        self.previous_button.setAutoDefault(False)
        self.previous_button.clicked.connect(self.show_previous)
        self.next_button = QPushButton("&Next")
        self.next_button.setAccessibleName("Next alert")
        self.next_button.setToolTip("Next alert (Ctrl+PgDn)")
        self.next_button.setAutoDefault(False)
        self.next_button.clicked.connect(self.show_next)
        self.updated_badge = _plain_label("UpdatedBadge")
        self.updated_badge.setWordWrap(False)
        self.updated_badge.setText("UPDATED")
        self.updated_badge.setAccessibleName("Updated since it first reached you")
        self.updated_badge.hide()
        band_row = QHBoxLayout(self.band)
        band_row.addWidget(self.severity_label, 1)
        band_row.addWidget(self.updated_badge)
        band_row.addWidget(self.position_label)
        band_row.addWidget(self.previous_button)
        band_row.addWidget(self.next_button)

        self.waiting_list = QListWidget()
        self.waiting_list.setObjectName("WaitingAlerts")
        self.waiting_list.setAccessibleName("Waiting alerts")
        self.waiting_list.setAccessibleDescription(
            "Every alert waiting for you, most severe first; Enter shows the selected one"
        )
        self.waiting_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.waiting_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.waiting_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.waiting_list.itemActivated.connect(self._on_waiting_activated)
        self.waiting_list.itemClicked.connect(self._on_waiting_activated)

        # Words, not only colour: the banner's text says it is a drill.
        self.drill_banner = _plain_label("DrillBanner")
        self.drill_banner.setText(DRILL_BANNER)
        self.drill_banner.setAccessibleName(DRILL_BANNER)
        self.drill_banner.hide()
        self.closed_notice = _plain_label("ClosedNotice")
        self.closed_notice.setAccessibleName("Alert closed")
        self.closed_notice.hide()
        self.next_update_label = _plain_label("NextUpdate")
        self.next_update_label.setAccessibleName("When the next update is due")
        self.next_update_label.hide()

        self.update_box = QFrame()
        self.update_box.setObjectName("UpdateBox")
        self.update_heading = _plain_label("UpdateHeading")
        self.update_heading.setAccessibleName("Latest update")
        self.update_text = QPlainTextEdit()
        self.update_text.setReadOnly(True)
        self.update_text.setTabChangesFocus(True)
        self.update_text.setAccessibleName("Text of the latest update")
        self.update_text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.links_box = QWidget()
        self.links_layout = QVBoxLayout(self.links_box)
        self.links_layout.setContentsMargins(0, 0, 0, 0)
        self.link_buttons: list[QPushButton] = []
        update_layout = QVBoxLayout(self.update_box)
        update_layout.addWidget(self.update_heading)
        update_layout.addWidget(self.update_text)
        update_layout.addWidget(self.links_box)
        self.update_box.hide()

        self.notice_label = _plain_label("Notice")
        self.notice_label.setAccessibleName("Notice")
        self.notice_label.hide()

        self.title_label = ElidedLabel(max_lines=3)
        self.title_label.setObjectName("AlertTitle")
        self.title_label.setAccessibleName("Alert title")
        self.meta_label = _plain_label("Meta")
        self.meta_label.setAccessibleName("When the alert was issued")
        self.body_view = QPlainTextEdit()
        self.body_view.setReadOnly(True)
        self.body_view.setAccessibleName("Alert details")
        self.body_view.setTabChangesFocus(True)
        self.body_view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        self.playbook_row = QWidget()
        self.playbook_label = _plain_label()
        self.playbook_button = QPushButton("Open &playbook")
        self.playbook_button.setAccessibleName("Open playbook")
        self.playbook_button.setAutoDefault(False)
        self.playbook_button.clicked.connect(self._open_playbook)
        playbook_layout = QHBoxLayout(self.playbook_row)
        playbook_layout.setContentsMargins(0, 0, 0, 0)
        playbook_layout.addWidget(self.playbook_label, 1)
        playbook_layout.addWidget(self.playbook_button)

        self.templates_box = QWidget()
        self.templates_layout = QVBoxLayout(self.templates_box)
        self.templates_layout.setContentsMargins(0, 0, 0, 0)
        self.template_buttons: dict[str, QPushButton] = {}
        self.templates_box.setObjectName("AlertTemplateRows")
        self.templates_scroll = QScrollArea()
        self.templates_scroll.setObjectName("AlertTemplates")
        self.templates_scroll.setAccessibleName("Templates for this alert")
        # The area itself is no stop for Tab: its Copy buttons are.
        self.templates_scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.templates_scroll.setWidget(self.templates_box)
        self.templates_scroll.setWidgetResizable(True)
        self.templates_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.templates_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.note_edit = QLineEdit()
        self.note_edit.setAccessibleName("Note for your answer (optional)")
        self.note_edit.setPlaceholderText("Note (optional)")
        self.note_edit.setMaxLength(NOTE_MAX_CHARS)
        note_label = QLabel("N&ote")
        note_label.setBuddy(self.note_edit)
        self.note_row = QWidget()
        note_row = QHBoxLayout(self.note_row)
        note_row.setContentsMargins(0, 0, 0, 0)
        note_row.addWidget(note_label)
        note_row.addWidget(self.note_edit, 1)

        self.action_buttons: dict[str, QPushButton] = {}
        self.actions_row = QWidget()
        action_row = QHBoxLayout(self.actions_row)
        action_row.setContentsMargins(0, 0, 0, 0)
        for action, text, _verb, keys in ACTIONS:
            button = QPushButton(text)
            button.setAutoDefault(False)
            button.setToolTip(f"{text.replace('&', '')} ({keys}, or Space when focused)")
            button.clicked.connect(lambda _checked=False, a=action: self._act(a))
            if action == "acknowledged":
                button.setObjectName("Primary")
            self.action_buttons[action] = button
            action_row.addWidget(button)
        self.snooze_button = QPushButton()
        self.snooze_button.setAutoDefault(False)
        self.snooze_button.clicked.connect(self._snooze)
        self.snooze_button.setVisible(False)
        action_row.addWidget(self.snooze_button)
        self.close_button = QPushButton("&Close")
        self.close_button.setAccessibleName("Close alert window (alerts not answered come back)")
        self.close_button.setToolTip("Close (Esc); alerts not answered come back")
        self.close_button.setAutoDefault(False)
        self.close_button.clicked.connect(self.close)
        # Close stays when the actions hide (a retracted alert asks for nothing).
        bottom_row = QHBoxLayout()
        bottom_row.addWidget(self.actions_row)
        bottom_row.addStretch(1)
        bottom_row.addWidget(self.close_button)

        self.ack_state_label = _plain_label("AckState")
        self.ack_state_label.setAccessibleName("Acknowledgement state")
        self.keys_label = _plain_label("Hint")
        self.keys_label.setText(KEYS_HINT)
        self.keys_label.setAccessibleName("Keyboard keys")

        layout = QVBoxLayout(self)
        layout.addWidget(self.band)
        layout.addWidget(self.drill_banner)
        layout.addWidget(self.waiting_list)
        layout.addWidget(self.notice_label)
        layout.addWidget(self.closed_notice)
        layout.addWidget(self.title_label)
        layout.addWidget(self.meta_label)
        layout.addWidget(self.next_update_label)
        layout.addWidget(self.update_box)
        layout.addWidget(self.body_view)
        layout.addWidget(self.playbook_row)
        layout.addWidget(self.templates_scroll)
        layout.addWidget(self.note_row)
        layout.addLayout(bottom_row)
        layout.addWidget(self.ack_state_label)
        layout.addWidget(self.keys_label)
        # Room the window has beyond what its parts need goes below them, never into the band.
        layout.addStretch(1)

        QShortcut(QKeySequence("Ctrl+PgDown"), self, self.show_next)
        QShortcut(QKeySequence("Ctrl+PgUp"), self, self.show_previous)

    # Queue

    def count(self) -> int:
        """How many alerts are queued."""
        return len(self._entries)

    def alert_ids(self) -> list[str]:
        """The queued alerts' ids, in queue order (most severe first, then oldest)."""
        return [entry.card.alert.id for entry in self._entries]

    def current_alert_id(self) -> str | None:
        """The id of the alert on screen, or None when the queue is empty."""
        return self._entries[self._index].card.alert.id if self._entries else None

    def unanswered_ids(self) -> list[str]:
        """The queued alerts the agent has not answered yet, in queue order."""
        return [entry.card.alert.id for entry in self._entries if entry.needs_answer]

    def actions_armed(self) -> bool:
        """Whether the actions take a press now (not just after the alert on screen changed)."""
        return self._armed

    def present(
        self, card: AlertCard, *, sound: bool = True, reminder: bool = False, stays: bool = True
    ) -> None:
        """Queue an alert (or bring a queued one back), show the window and sound its tone.

        The window opens on the most severe unanswered alert. While it is up, a new alert more
        severe than the one on screen takes its place (the actions pause briefly); otherwise
        the one on screen stays. `stays` False: opened by hand, it leaves when the window closes.
        """
        was_visible = self.isVisible()
        current = self._entries[self._index] if self._entries else None
        position = self._position_of(card.alert.id)
        if position is None:
            self._entries.append(_Entry(card=card, first_shown=self._clock(), stays=stays))
        else:
            entry = self._entries[position]
            entry.take(card)
            entry.stays = entry.stays or stays
            if reminder:
                entry.reminders += 1
        self._store_note()
        self._sort()
        best = self._first_unanswered()
        if not was_visible or current is None:
            self._index = best if best is not None else self._index_of_id(card.alert.id)
        elif current.state == "recording":
            # The agent's answer is still being saved: they must see whether it was, so nothing
            # takes the screen until it is on disk (then the next alert follows) or failed.
            self._index = self._entries.index(current)
        elif best is not None and (
            current.answer_saved
            or waiting_order(self._entries[best].card.alert) < waiting_order(current.card.alert)
        ):
            if self._entries[best] is not current:
                self._index = best
                self._disarm()
            else:
                self._index = self._entries.index(current)
        else:
            self._index = self._entries.index(current)
        self._render()
        self._show_in_front(reposition=not was_visible)
        if sound and self.sound is not None:
            self.sound.play(card.alert.severity)

    def refresh_card(self, card: AlertCard) -> bool:
        """A newer state of a queued alert, shown in place without raising the window or taking
        focus (the agent already answered it, or it was retracted); False when not queued."""
        position = self._position_of(card.alert.id)
        if position is None:
            return False
        entry = self._entries[position]
        entry.take(card)
        current = self._entries[self._index]
        self._store_note()
        self._sort()
        self._index = self._entries.index(current)
        if self._index == self._entries.index(entry) and card.alert.is_closed:
            # The answers change under the agent's pointer: a press waits a moment.
            self._disarm()
        self._render()
        return True

    def is_updated(self, alert_id: str) -> bool:
        """Whether a newer state of the queued alert arrived after it was first queued."""
        position = self._position_of(alert_id)
        return position is not None and self._entries[position].updated

    def refresh_times(self) -> None:
        """Say again when the next update is due (it turns overdue as time passes)."""
        if self._entries:
            self._render_next_update(self._entries[self._index].card.alert)

    def remove_alert(self, alert_id: str) -> None:
        """Take an alert out of the queue (expired, or acted on elsewhere); close when empty."""
        position = self._position_of(alert_id)
        if position is None:
            return
        self._store_note()
        current = self._entries[self._index]
        del self._entries[position]
        if not self._entries:
            self._index = 0
            self.hide()
            return
        if current.card.alert.id == alert_id:
            best = self._first_unanswered()
            self._index = best if best is not None else 0
            self._disarm()
        else:
            self._index = self._entries.index(current)
        self._render()

    def set_ack_state(self, alert_id: str, state: AckState, reason: str = "") -> None:
        """Show the outcome of the agent's action: recording, recorded, synced, rejected, failed.

        Once the answer to the alert on screen is on disk, the next unanswered alert follows.
        """
        position = self._position_of(alert_id)
        if position is None:
            return
        entry = self._entries[position]
        entry.state = state
        entry.reason = reason
        if position != self._index:
            self._render_waiting_list()
            return
        best = self._first_unanswered()
        if state in ("recorded", "synced") and best is not None:
            done = _ACTION_DONE.get(entry.action or "", "Answered")
            title = elide(shown(entry.card.alert.title, TITLE_SHOWN_MAX), 60)
            self.show_notice(f"{done}: {title}. Showing the next alert waiting for you.")
            self._store_note()
            self._index = best
            self._disarm()
        self._render()

    def ack_state_text(self, alert_id: str) -> str:
        """The state line shown for an alert ("" when the agent has not acted)."""
        position = self._position_of(alert_id)
        return "" if position is None else _state_text(self._entries[position])

    def set_snooze_minutes(self, minutes: int) -> None:
        """IT's "with a patient" delay for non-critical alerts (0: not offered)."""
        self._snooze_minutes = max(0, minutes)
        if self._entries:
            self._render_actions(self._entries[self._index])

    def set_critical_fullscreen(self, fullscreen: bool) -> None:
        """IT's choice: a critical alert on screen takes the whole screen."""
        self._critical_fullscreen = fullscreen
        if self._entries and self.isVisible():
            self._apply_fullscreen()

    def show_notice(self, text: str) -> None:
        """A line confirming what just happened ("Copied: Video visit moved to phone")."""
        self.notice_label.setText(text)
        self.notice_label.setVisible(bool(text))

    @Slot()
    def show_next(self) -> None:
        """Show the next queued alert."""
        self._move(1)

    @Slot()
    def show_previous(self) -> None:
        """Show the previous queued alert."""
        self._move(-1)

    def show_alert(self, alert_id: str) -> None:
        """Show a queued alert (the agent picked it in the waiting list)."""
        position = self._position_of(alert_id)
        if position is None or position == self._index:
            return
        self._store_note()
        self._index = position
        self._render()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """A new width wraps the alert's text anew: its box follows."""
        super().resizeEvent(event)
        if self._entries:
            before = self.body_view.height()
            self._fit_body()
            if self.body_view.height() != before and self.isVisible():
                # The window manager applies sizes later: fit the window once this settles.
                QTimer.singleShot(0, self._fit_window)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Esc closes the window, like a dialog."""
        if event.key() == Qt.Key.Key_Escape:
            self.close()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing drops the alerts already acted on, and those opened by hand; the rest stay
        queued for their reminder."""
        self._store_note()
        self._entries = [entry for entry in self._entries if entry.stays and entry.needs_answer]
        self._index = 0
        self.show_notice("")
        if self._entries:
            self._render()
        super().closeEvent(event)

    # Rendering

    def _sort(self) -> None:
        self._entries.sort(key=lambda entry: waiting_order(entry.card.alert))

    def _first_unanswered(self) -> int | None:
        for position, entry in enumerate(self._entries):
            if entry.needs_answer:
                return position
        return None

    def _index_of_id(self, alert_id: str) -> int:
        position = self._position_of(alert_id)
        return position if position is not None else 0

    def _disarm(self) -> None:
        self._armed = False
        self._arm_timer.start()

    @Slot()
    def _arm(self) -> None:
        self._armed = True
        if self._entries:
            self._render_actions(self._entries[self._index])

    def _move(self, step: int) -> None:
        if len(self._entries) < 2:
            return
        self._store_note()
        self._index = (self._index + step) % len(self._entries)
        self._render()

    def _position_of(self, alert_id: str) -> int | None:
        for position, entry in enumerate(self._entries):
            if entry.card.alert.id == alert_id:
                return position
        return None

    def _store_note(self) -> None:
        if self._entries and 0 <= self._index < len(self._entries):
            self._entries[self._index].note = self.note_edit.text()

    def _render(self) -> None:
        entry = self._entries[self._index]
        alert = entry.card.alert
        self._apply_window_flags(
            on_top=any(e.card.alert.severity in ON_TOP_SEVERITIES for e in self._entries)
        )
        # A retracted alert drops its severity's colour: it asks for nothing any more.
        look = "retracted" if alert.status == "retracted" else alert.severity
        _restyle(self, "severity", look)
        _restyle(self.band, "severity", look)
        name = alert_name(alert)
        self.setAccessibleName(name)
        self.severity_label.setText(_SEVERITY_HEADING.get(look, alert.severity))
        self.severity_label.setAccessibleName(f"{severity_words(alert.severity)} alert")
        total = len(self._entries)
        self.position_label.setText(f"{self._index + 1} of {total}")
        waiting = len(self.unanswered_ids())
        self.position_label.setAccessibleName(
            f"Alert {self._index + 1} of {total}, {waiting} not answered"
        )
        many = total > 1
        self.previous_button.setVisible(many)
        self.next_button.setVisible(many)
        self.setWindowTitle(_window_title(alert))
        self.drill_banner.setVisible(alert.drill)
        self.updated_badge.setVisible(entry.updated and alert.status != "retracted")
        self._render_closed(alert)
        self._render_next_update(alert)
        self._render_update(alert, entry.severity_before)
        self.title_label.set_full_text(shown(alert.title, TITLE_SHOWN_MAX))
        self.title_label.setAccessibleName(name)
        self.meta_label.setText(_meta_text(alert, self._clock()))
        self.body_view.setPlainText(shown(alert.body, BODY_SHOWN_MAX))
        self.body_view.setAccessibleName(f"Details of the {name}")
        self._fit_body()

        self.playbook_row.setVisible(alert.playbook_id is not None)
        playbook_title = entry.card.playbook_title
        self.playbook_label.setText(
            f"Playbook: {shown(playbook_title, TITLE_SHOWN_MAX)}"
            if playbook_title
            else "Playbook: not in the library yet"
        )
        self.playbook_button.setEnabled(playbook_title is not None)
        self.playbook_button.setAccessibleName(
            f"Open playbook: {shown(playbook_title, TITLE_SHOWN_MAX)}"
            if playbook_title
            else "Open playbook (not in the library yet)"
        )
        self._render_templates(entry.card)

        self.note_edit.setText(entry.note)
        self._render_actions(entry)
        # A retraction replaces the alert's content: nothing of it stays to be acted on.
        retracted = alert.status == "retracted"
        for part in (self.title_label, self.meta_label, self.body_view, self.note_row):
            part.setVisible(not retracted)
        self.actions_row.setVisible(not retracted)
        if retracted:
            self.playbook_row.hide()
            self.templates_scroll.hide()
        self.keys_label.setText(RETRACTED_KEYS_HINT if retracted else KEYS_HINT)
        _restyle(self.ack_state_label, "state", entry.state or "")
        self.ack_state_label.setText(_state_text(entry))
        self.ack_state_label.setVisible(entry.state is not None)
        self._render_waiting_list()
        self._set_tab_order()
        if self.isVisible():
            self._fit_window()
            self._apply_fullscreen()
            self.alert_displayed.emit(alert.id)

    def _render_closed(self, alert: Alert) -> None:
        note = shown(closing_note(alert), UPDATE_TEXT_SHOWN_MAX)
        if alert.status == "retracted":
            text = RETRACTED_NOTICE + (f"\n{note}" if note else "")
        elif alert.status == "resolved":
            text = "RESOLVED" + (f": {note}" if note else "")
        else:
            text = ""
        _restyle(self.closed_notice, "status", alert.status)
        self.closed_notice.setText(text)
        self.closed_notice.setAccessibleName(text.replace("\n", ". ") or "Alert closed")
        self.closed_notice.setVisible(bool(text))

    def _render_next_update(self, alert: Alert) -> None:
        text = next_update_text(alert, self._clock())
        _restyle(self.next_update_label, "overdue", "true" if "overdue" in text else "false")
        self.next_update_label.setText(text)
        self.next_update_label.setAccessibleName(text or "When the next update is due")
        self.next_update_label.setVisible(bool(text))

    def _render_update(self, alert: Alert, severity_before: str | None) -> None:
        update = latest_update(alert)
        while (item := self.links_layout.takeAt(0)) is not None:
            widget = item.widget()
            if widget is not None:
                widget.hide()
                widget.deleteLater()
        self.link_buttons = []
        if update is None or update.kind != "update" or alert.status == "retracted":
            self.update_box.hide()
            return
        heading = update_heading(alert, update, self._clock(), severity_before)
        self.update_heading.setText(heading)
        self.update_heading.setAccessibleName(heading)
        self.update_text.setPlainText(shown(update.text, UPDATE_TEXT_SHOWN_MAX))
        self.update_text.setAccessibleName(f"Text of {heading.split(' · ')[0]}")
        line = self.update_text.fontMetrics().lineSpacing()
        self.update_text.setFixedHeight(4 * line + 2 * self.update_text.frameWidth() + 12)
        for number, url in enumerate(update.links[:LINKS_SHOWN], start=1):
            self.links_layout.addWidget(self._link_row(number, url))
        self.links_box.setVisible(bool(update.links))
        self.update_box.show()

    def _link_row(self, number: int, url: str) -> QWidget:
        text = shown(url, LINK_SHOWN_MAX)
        if not opens_as_link(url):
            # Shown so the agent knows it was sent, never opened: only https links open.
            label = ElidedLabel(max_lines=1)
            label.set_full_text(f"Link {number} not opened (only https links open): {text}")
            label.show()
            return label
        # "&" in a button's text marks a shortcut key: doubled, it is shown as written.
        button = EnterButton(f"Open link {number}: {elide(text, 70)}".replace("&", "&&"))
        button.setObjectName("LinkButton")
        button.setAutoDefault(False)
        button.setToolTip(plain_tooltip(text))
        button.setAccessibleName(f"Open link {number} in the browser: {elide(text, 200)}")
        button.clicked.connect(lambda _checked=False, u=url: self.open_link(u))
        button.show()
        self.link_buttons.append(button)
        return button

    def open_link(self, url: str) -> bool:
        """Hand an update's link to the desktop's browser: https only; False when refused."""
        parsed = QUrl(url, QUrl.ParsingMode.StrictMode)
        if not opens_as_link(url) or not parsed.isValid() or parsed.scheme() != "https":
            return False
        QDesktopServices.openUrl(parsed)
        self.link_opened.emit(url)
        return True

    def _fit_window(self) -> None:
        # As high as this alert needs (within the screen), so nothing is cut and nothing is
        # left empty when the next alert is shorter or longer; grown, it moves up rather than
        # off the bottom of the screen.
        layout, screen = self.layout(), self.screen()
        if layout is None or screen is None or self.isFullScreen() or self.isMaximized():
            return
        area = screen.availableGeometry()
        frame = self.frameGeometry()
        known = frame.height() > self.height()
        frame_top = frame.top() if known else self.y() - FRAME_ALLOWANCE.top()
        extra = frame.height() - self.height() if known else FRAME_ALLOWANCE.top() + 8
        layout.activate()
        # Wrapped lines need the height for this width, not for the layout's preferred one.
        needed = (
            layout.totalHeightForWidth(self.width())
            if layout.hasHeightForWidth()
            else layout.sizeHint().height()
        )
        height = min(max(needed, self.minimumHeight()), area.height() - extra)
        if height != self.height():
            self.resize(self.width(), height)
        top = max(min(frame_top, area.bottom() + 1 - extra - height), area.top())
        if top != frame_top:
            self.move(frame.left() if known else self.x(), top)

    def _render_actions(self, entry: _Entry) -> None:
        self.note_edit.setEnabled(not entry.acted)
        title = shown(entry.card.alert.title, TITLE_SHOWN_MAX)
        severity = entry.card.alert.severity
        for action, _text, verb, _keys in ACTIONS:
            button = self.action_buttons[action]
            button.setEnabled(not entry.acted and self._armed)
            button.setAccessibleName(f"{verb} {severity} alert: {title}")
        # Never for a critical alert: it must not wait for anyone.
        offer = self._snooze_minutes > 0 and severity != "critical" and not entry.acted
        self.snooze_button.setVisible(offer)
        self.snooze_button.setEnabled(offer and self._armed)
        self.snooze_button.setText(f"&With a patient: remind me in {self._snooze_minutes} min")
        self.snooze_button.setAccessibleName(
            f"With a patient: remind me of the {severity} alert {title} "
            f"in {self._snooze_minutes} minutes"
        )
        self.snooze_button.setToolTip(f"Alt+W: remind me in {self._snooze_minutes} min")

    def _render_waiting_list(self) -> None:
        now = self._clock()
        self.waiting_list.blockSignals(True)
        self.waiting_list.clear()
        for entry in self._entries:
            text = waiting_row_text(entry.card, entry.first_shown, entry.reminders, now)
            if entry.acted:
                text += " · " + _ACTION_DONE.get(entry.action or "", "answered").lower()
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, entry.card.alert.id)
            item.setToolTip(text)
            self.waiting_list.addItem(item)
        self.waiting_list.setCurrentRow(self._index)
        self.waiting_list.blockSignals(False)
        rows = min(len(self._entries), 4)
        row_height = max(self.waiting_list.sizeHintForRow(0), self.fontMetrics().lineSpacing())
        self.waiting_list.setFixedHeight(rows * row_height + 2 * self.waiting_list.frameWidth() + 4)
        self.waiting_list.setVisible(len(self._entries) > 1)

    def _fit_body(self) -> None:
        # The box is as high as its text (within BODY_LINES), so it is never mostly empty
        # while the templates below it are cut off. A separate document measures in pixels
        # (the box's own layout counts lines).
        width = self.body_view.viewport().width() if self.isVisible() else self.width() - 60
        measure = QTextDocument()
        measure.setDefaultFont(self.body_view.font())
        measure.setDocumentMargin(self.body_view.document().documentMargin())
        measure.setPlainText(self.body_view.toPlainText())
        measure.setTextWidth(max(width, 200))
        line = self.body_view.fontMetrics().lineSpacing()
        low, high = BODY_LINES
        text_height = min(max(int(measure.size().height()), low * line), high * line)
        chrome = 2 * self.body_view.frameWidth() + 12
        self.body_view.setFixedHeight(text_height + chrome)

    def _render_templates(self, card: AlertCard) -> None:
        while (item := self.templates_layout.takeAt(0)) is not None:
            widget = item.widget()
            if widget is not None:
                # Deletion waits for the event loop; hidden now, it never shows beside the new rows.
                widget.hide()
                widget.deleteLater()
        self.template_buttons = {}
        heights: list[int] = []
        for template_id, title in card.templates:
            row = QWidget()
            layout = QHBoxLayout(row)
            layout.setContentsMargins(0, 0, 0, 0)
            # One line each, elided with the whole title on hover: every row the same height.
            label = ElidedLabel(max_lines=1)
            label.set_full_text(f"Template: {shown(title, TITLE_SHOWN_MAX)}")
            button = QPushButton("Copy…")
            button.setAccessibleName(f"Copy template {shown(title, TITLE_SHOWN_MAX)}")
            button.setToolTip("Fill in the template's blanks, then copy it")
            button.setAutoDefault(False)
            button.clicked.connect(
                lambda _checked=False, t=template_id: self.template_copy_requested.emit(t)
            )
            layout.addWidget(label, 1)
            layout.addWidget(button)
            self.templates_layout.addWidget(row)
            # Shown now rather than from a queued event, so Tab and a reader meet it at once.
            row.show()
            self.template_buttons[template_id] = button
            # Measured with the stylesheet applied and fixed, so the rows shown are shown whole.
            row.ensurePolished()
            row.setFixedHeight(row.sizeHint().height())
            heights.append(row.height())
        self.templates_layout.addStretch(1)
        self.templates_box.setVisible(bool(card.templates))
        self.templates_scroll.setVisible(bool(card.templates))
        # Whole rows only: more than TEMPLATE_ROWS_SHOWN scroll, none is ever cut in half.
        rows = heights[:TEMPLATE_ROWS_SHOWN]
        spacing = self.templates_layout.spacing() * max(0, len(rows) - 1)
        self.templates_scroll.setFixedHeight(sum(rows) + spacing)

    def _set_tab_order(self) -> None:
        # Top to bottom as on screen: what waits, the alert, its playbook and templates, then
        # the note and the answers.
        chain: list[QWidget] = [self.previous_button, self.next_button, self.waiting_list]
        chain += [self.update_text, *self.link_buttons]
        chain += [self.body_view, self.playbook_button, *self.template_buttons.values()]
        chain += [self.note_edit, *self.action_buttons.values(), self.snooze_button]
        chain.append(self.close_button)
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)

    def _apply_window_flags(self, *, on_top: bool) -> None:
        if on_top == self._on_top:
            return
        self._on_top = on_top
        visible = self.isVisible()
        flags = Qt.WindowType.Window | Qt.WindowType.WindowTitleHint
        flags |= Qt.WindowType.WindowCloseButtonHint
        if on_top:
            flags |= Qt.WindowType.WindowStaysOnTopHint
        # Changing window flags hides the window; show it again when it was up.
        self.setWindowFlags(flags)
        if visible:
            self.show()

    def _show_in_front(self, *, reposition: bool) -> None:
        if reposition:
            # A fresh placement each time the window opens: on the pointer's screen, whole.
            self.setProperty("vigilPlaced", False)
        bring_forward(self)
        if self._entries:
            self.alert_displayed.emit(self._entries[self._index].card.alert.id)
        # Now that the window has its real width, the text's box and the window fit again.
        self._fit_body()
        self._fit_window()
        self._apply_fullscreen()
        # Focus on the text, not an action, so keys typed for another window act on nothing.
        if self.body_view.isVisible():
            self.body_view.setFocus()
        else:
            self.close_button.setFocus()

    def _apply_fullscreen(self) -> None:
        critical = self._entries[self._index].card.alert.severity == "critical"
        if self._critical_fullscreen and critical and not self.isFullScreen():
            self.showFullScreen()
        elif self.isFullScreen() and not (self._critical_fullscreen and critical):
            self.showNormal()

    @Slot()
    def _snooze(self) -> None:
        if not self._entries or not self._armed:
            return
        entry = self._entries[self._index]
        if entry.card.alert.severity != "critical" and not entry.acted:
            self.snooze_requested.emit(entry.card.alert.id)

    @Slot(QListWidgetItem)
    def _on_waiting_activated(self, item: QListWidgetItem) -> None:
        self.show_alert(str(item.data(Qt.ItemDataRole.UserRole)))

    @Slot()
    def _open_playbook(self) -> None:
        if self._entries:
            playbook_id = self._entries[self._index].card.alert.playbook_id
            if playbook_id is not None:
                self.playbook_requested.emit(playbook_id)

    def _act(self, action: str) -> None:
        if not self._entries or not self._armed:
            return
        entry = self._entries[self._index]
        if entry.acted or entry.card.alert.status == "retracted":
            return
        entry.note = self.note_edit.text()
        entry.action = action
        entry.state = "recording"
        entry.reason = ""
        self.show_notice("")
        self._render()
        self.ack_requested.emit(entry.card.alert.id, action, entry.note.strip())


def _window_title(alert: Alert) -> str:
    if alert.status == "retracted":
        return "Vigil: RETRACTED alert"
    drill = "DRILL " if alert.drill else ""
    resolved = "resolved " if alert.status == "resolved" else ""
    return f"Vigil: {drill}{resolved}{alert.severity} alert"


def _state_text(entry: _Entry) -> str:
    done = _ACTION_DONE.get(entry.action or "", "")
    if entry.state == "recording":
        return "Recording…"
    if entry.state == "recorded":
        return f"{done} · Recorded, waiting to sync"
    if entry.state == "synced":
        return f"{done} · Synced"
    if entry.state == "rejected":
        return f"Rejected: {entry.reason}"
    if entry.state == "failed":
        return f"Not recorded: {entry.reason}"
    return ""


def _meta_text(alert: Alert, now: datetime) -> str:
    issued = parse_timestamp(alert.issued_at)
    parts = [
        f"Issued {local_when(issued, now)} ({ago_text(issued, now)})"
        if issued
        else "Issued at an unknown time"
    ]
    if alert.issued_by:
        parts[0] += f" by {shown(alert.issued_by, 100)}"
    expires = parse_timestamp(alert.expires_at)
    if expires is not None:
        parts.append(f"expires {local_when(expires, now)}")
    return " · ".join(parts)
