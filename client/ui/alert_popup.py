"""The crisis alert pop-up: one window holding a queue of alerts ("1 of 3") to act on.

Alert text comes from the hub and is untrusted: every piece is shown as plain text. Enter does
not acknowledge: the window jumps up while the agent may be typing elsewhere, so an action takes
a click, its Alt shortcut, or Space on the focused button.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import (
    QCloseEvent,
    QCursor,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QShortcut,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from client.core.models import Alert
from client.ui.sound import AlertSound
from client.ui.text import BODY_SHOWN_MAX, TITLE_SHOWN_MAX, cut, local_when, parse_timestamp
from client.ui.view_models import AlertCard

AckState = Literal["recording", "recorded", "synced", "rejected", "failed"]
NOTE_MAX_CHARS = 2000
ON_TOP_SEVERITIES = ("critical", "major")
# Template rows shown before the list scrolls: the actions must stay on a 768-pixel-high screen.
TEMPLATE_ROWS_SHOWN = 4
ACTIONS = (
    ("acknowledged", "&Acknowledge", "Acknowledge alert"),
    ("escalated", "&Escalate", "Escalate alert"),
    ("unable", "&Unable to respond", "Unable to respond to alert"),
)
_ACTION_DONE = {"acknowledged": "Acknowledged", "escalated": "Escalated", "unable": "Unable"}
_SEVERITY_HEADING = {
    "critical": "▲ CRITICAL ALERT",
    "major": "◆ MAJOR ALERT",
    "minor": "● Minor alert",
    "info": "○ Information",
}


@dataclass
class _Entry:
    card: AlertCard
    state: AckState | None = None
    action: str | None = None
    reason: str = ""
    note: str = ""

    @property
    def acted(self) -> bool:
        return self.state in ("recording", "recorded", "synced")


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
    """Shows queued alerts one at a time and reports what the agent does with them.

    Signals:
        ack_requested: (alert_id, action, note): action is acknowledged, escalated or unable.
        playbook_requested: the alert's playbook id, to open it in the library.
        template_copy_requested: a template id, to copy its text.
    """

    ack_requested = Signal(str, str, str)
    playbook_requested = Signal(str)
    template_copy_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None, *, sound: AlertSound | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.sound = sound
        self._entries: list[_Entry] = []
        self._index = 0
        self._on_top: bool | None = None
        self.setObjectName("AlertPopup")
        # Without it a plain QWidget ignores the stylesheet's severity border.
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setWindowTitle("Vigil alert")
        self.setAccessibleName("Crisis alert")
        self.setMinimumSize(520, 460)
        self._build()
        self._apply_window_flags(on_top=True)

    def _build(self) -> None:
        self.band = QFrame()
        self.band.setObjectName("SeverityBand")
        self.severity_label = _plain_label()
        self.severity_label.setWordWrap(False)
        self.position_label = _plain_label()
        self.position_label.setWordWrap(False)
        self.position_label.setAccessibleName("Alert position in queue")
        self.previous_button = QPushButton("&Previous")
        self.previous_button.setAccessibleName("Previous alert")
        self.previous_button.clicked.connect(self.show_previous)
        self.next_button = QPushButton("&Next")
        self.next_button.setAccessibleName("Next alert")
        self.next_button.clicked.connect(self.show_next)
        band_row = QHBoxLayout(self.band)
        band_row.addWidget(self.severity_label, 1)
        band_row.addWidget(self.position_label)
        band_row.addWidget(self.previous_button)
        band_row.addWidget(self.next_button)

        self.title_label = _plain_label("AlertTitle")
        self.title_label.setAccessibleName("Alert title")
        # A title with no place to wrap is clipped rather than widening the window off the screen.
        self.title_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
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
        self.templates_scroll.setWidget(self.templates_box)
        self.templates_scroll.setWidgetResizable(True)
        self.templates_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.templates_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.note_edit = QLineEdit()
        self.note_edit.setAccessibleName("Note (optional)")
        self.note_edit.setPlaceholderText("Note (optional)")
        self.note_edit.setMaxLength(NOTE_MAX_CHARS)
        note_label = QLabel("N&ote")
        note_label.setBuddy(self.note_edit)
        note_row = QHBoxLayout()
        note_row.addWidget(note_label)
        note_row.addWidget(self.note_edit, 1)

        self.action_buttons: dict[str, QPushButton] = {}
        action_row = QHBoxLayout()
        for action, text, accessible in ACTIONS:
            button = QPushButton(text)
            button.setAccessibleName(accessible)
            button.setAutoDefault(False)
            button.clicked.connect(lambda _checked=False, a=action: self._act(a))
            if action == "acknowledged":
                button.setObjectName("Primary")
            self.action_buttons[action] = button
            action_row.addWidget(button)
        action_row.addStretch(1)
        self.close_button = QPushButton("&Close")
        self.close_button.setAccessibleName("Close alert window")
        self.close_button.setAutoDefault(False)
        self.close_button.clicked.connect(self.close)
        action_row.addWidget(self.close_button)

        self.ack_state_label = _plain_label("AckState")
        self.ack_state_label.setAccessibleName("Acknowledgement state")

        layout = QVBoxLayout(self)
        layout.addWidget(self.band)
        layout.addWidget(self.title_label)
        layout.addWidget(self.meta_label)
        layout.addWidget(self.body_view, 1)
        layout.addWidget(self.playbook_row)
        layout.addWidget(self.templates_scroll)
        layout.addLayout(note_row)
        layout.addLayout(action_row)
        layout.addWidget(self.ack_state_label)

        QShortcut(QKeySequence("Ctrl+PgDown"), self, self.show_next)
        QShortcut(QKeySequence("Ctrl+PgUp"), self, self.show_previous)

    # Queue

    def count(self) -> int:
        """How many alerts are queued."""
        return len(self._entries)

    def alert_ids(self) -> list[str]:
        """The queued alerts' ids, in queue order."""
        return [entry.card.alert.id for entry in self._entries]

    def current_alert_id(self) -> str | None:
        """The id of the alert on screen, or None when the queue is empty."""
        return self._entries[self._index].card.alert.id if self._entries else None

    def present(self, card: AlertCard, *, sound: bool = True) -> None:
        """Queue an alert (or bring a queued one back), show the window and sound its tone.

        A new alert joins the end of the queue; the one on screen stays unless the window was
        closed, so a click meant for one alert never lands on another.
        """
        was_visible = self.isVisible()
        position = self._position_of(card.alert.id)
        if position is None:
            self._entries.append(_Entry(card=card))
            position = len(self._entries) - 1
        else:
            self._entries[position].card = card
        if not was_visible:
            self._index = position
        self._render()
        self._show_on_cursor_screen(reposition=not was_visible)
        if sound and self.sound is not None:
            self.sound.play(card.alert.severity)

    def remove_alert(self, alert_id: str) -> None:
        """Take an alert out of the queue (expired, or acted on elsewhere); close when empty."""
        position = self._position_of(alert_id)
        if position is None:
            return
        self._store_note()
        del self._entries[position]
        if position < self._index or self._index >= len(self._entries):
            self._index = max(0, self._index - 1)
        if not self._entries:
            self.hide()
            return
        self._render()

    def set_ack_state(self, alert_id: str, state: AckState, reason: str = "") -> None:
        """Show the outcome of the agent's action: recording, recorded, synced, rejected, failed."""
        position = self._position_of(alert_id)
        if position is None:
            return
        entry = self._entries[position]
        entry.state = state
        entry.reason = reason
        if position == self._index:
            self._render()

    def ack_state_text(self, alert_id: str) -> str:
        """The state line shown for an alert ("" when the agent has not acted)."""
        position = self._position_of(alert_id)
        return "" if position is None else _state_text(self._entries[position])

    @Slot()
    def show_next(self) -> None:
        """Show the next queued alert."""
        self._move(1)

    @Slot()
    def show_previous(self) -> None:
        """Show the previous queued alert."""
        self._move(-1)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Esc closes the window, like a dialog."""
        if event.key() == Qt.Key.Key_Escape:
            self.close()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing drops the alerts already acted on; the rest stay queued for their reminder."""
        self._store_note()
        current = self.current_alert_id()
        self._entries = [entry for entry in self._entries if not entry.acted]
        position = self._position_of(current) if current is not None else None
        self._index = position if position is not None else 0
        if self._entries:
            self._render()
        super().closeEvent(event)

    # Rendering

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
        _restyle(self, "severity", alert.severity)
        _restyle(self.band, "severity", alert.severity)
        self.severity_label.setText(_SEVERITY_HEADING.get(alert.severity, alert.severity))
        self.position_label.setText(f"{self._index + 1} of {len(self._entries)}")
        many = len(self._entries) > 1
        self.previous_button.setVisible(many)
        self.next_button.setVisible(many)
        self.setWindowTitle(f"Vigil: {alert.severity} alert")
        self.title_label.setText(cut(alert.title, TITLE_SHOWN_MAX))
        self.meta_label.setText(_meta_text(alert))
        self.body_view.setPlainText(cut(alert.body, BODY_SHOWN_MAX))

        self.playbook_row.setVisible(alert.playbook_id is not None)
        self.playbook_label.setText(
            f"Playbook: {entry.card.playbook_title or 'not in the library yet'}"
        )
        self.playbook_button.setEnabled(entry.card.playbook_title is not None)
        self._render_templates(entry.card)

        self.note_edit.setText(entry.note)
        self.note_edit.setEnabled(not entry.acted)
        for button in self.action_buttons.values():
            button.setEnabled(not entry.acted)
        _restyle(self.ack_state_label, "state", entry.state or "")
        self.ack_state_label.setText(_state_text(entry))
        self.ack_state_label.setVisible(entry.state is not None)

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
            label = _plain_label()
            label.setText(f"Template: {title}")
            button = QPushButton("Copy")
            button.setAccessibleName(f"Copy template {title}")
            button.setAutoDefault(False)
            button.clicked.connect(
                lambda _checked=False, t=template_id: self.template_copy_requested.emit(t)
            )
            layout.addWidget(label, 1)
            layout.addWidget(button)
            self.templates_layout.addWidget(row)
            self.template_buttons[template_id] = button
            heights.append(row.sizeHint().height())
        self.templates_box.setVisible(bool(card.templates))
        self.templates_scroll.setVisible(bool(card.templates))
        shown = heights[:TEMPLATE_ROWS_SHOWN]
        spacing = self.templates_layout.spacing() * max(0, len(shown) - 1)
        self.templates_scroll.setFixedHeight(sum(shown) + spacing)

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

    def _show_on_cursor_screen(self, *, reposition: bool) -> None:
        if reposition:
            screen = QGuiApplication.screenAt(QCursor.pos()) or QGuiApplication.primaryScreen()
            if screen is not None:
                area = screen.availableGeometry()
                size = self.sizeHint().expandedTo(self.minimumSize()).boundedTo(area.size())
                self.resize(size)
                self.move(area.center() - self.rect().center())
        self.show()
        self.raise_()
        self.activateWindow()
        # Focus on the text, not an action, so keys typed for another window act on nothing.
        self.body_view.setFocus()

    @Slot()
    def _open_playbook(self) -> None:
        if self._entries:
            playbook_id = self._entries[self._index].card.alert.playbook_id
            if playbook_id is not None:
                self.playbook_requested.emit(playbook_id)

    def _act(self, action: str) -> None:
        if not self._entries:
            return
        entry = self._entries[self._index]
        if entry.acted:
            return
        entry.note = self.note_edit.text()
        entry.action = action
        entry.state = "recording"
        entry.reason = ""
        self._render()
        self.ack_requested.emit(entry.card.alert.id, action, entry.note.strip())


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


def _meta_text(alert: Alert) -> str:
    now = datetime.now(UTC)
    issued = parse_timestamp(alert.issued_at)
    parts = [f"Issued {local_when(issued, now)}" if issued else "Issued at an unknown time"]
    if alert.issued_by:
        parts[0] += f" by {alert.issued_by}"
    expires = parse_timestamp(alert.expires_at)
    if expires is not None:
        parts.append(f"expires {local_when(expires, now)}")
    return " · ".join(parts)
