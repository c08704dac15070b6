"""The post-incident survey: two scores and a comment, answered from the keyboard alone.

Arrow keys or digits choose a score (0 or N: did not use the templates), Up and Down move between
the questions, Enter sends, Escape leaves it for later (it stays in `vigil surveys`). The dialog
only emits what the agent chose; it says "Thank you" only when told the answer is saved.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from client.core.surveys import DRILL_LABEL
from client.core.surveys import MAX_COMMENT_CHARS as COMMENT_MAX_CHARS
from client.ui.text import TITLE_SHOWN_MAX, shown

CLARITY_QUESTION = "How clear were the instructions?"
TEMPLATES_QUESTION = "How useful were the templates?"
NOT_USED = 0  # the templates row's "did not use" button id
_DIGITS = {getattr(Qt.Key, f"Key_{n}"): n for n in range(10)}


class ScoreRow(QWidget):
    """One question: buttons 1 to 5, and optionally "Did not use" (id 0)."""

    def __init__(self, question: str, *, not_used: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.question = QLabel(question)
        self.question.setTextFormat(Qt.TextFormat.PlainText)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        self.buttons: list[QRadioButton] = []
        for score in range(1, 6):
            button = QRadioButton(str(score))
            button.setAccessibleName(f"{question} {score} of 5")
            self.group.addButton(button, score)
            self.buttons.append(button)
            row.addWidget(button)
        if not_used:
            button = QRadioButton("Did not use")
            button.setAccessibleName(f"{question} Did not use")
            self.group.addButton(button, NOT_USED)
            self.buttons.append(button)
            row.addWidget(button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.question)
        layout.addLayout(row)

    def value(self) -> int | None:
        """The chosen button's id (1-5, or 0 for "did not use"); None when nothing is chosen."""
        chosen = self.group.checkedId()
        return None if chosen == -1 else chosen

    def choose(self, button_id: int) -> bool:
        """Check and focus the button with this id; False when the row has none."""
        found = [b for b in self.buttons if self.group.id(b) == button_id]
        if not found:
            return False
        button = found[0]
        button.setChecked(True)
        button.setFocus(Qt.FocusReason.OtherFocusReason)
        return True

    def step(self, by: int) -> None:
        """Move the choice left or right, staying within the row."""
        current = self.group.checkedButton()
        index = self.buttons.index(current) if isinstance(current, QRadioButton) else -1
        if index == -1:
            index = 0 if by > 0 else len(self.buttons) - 1
        else:
            index = max(0, min(len(self.buttons) - 1, index + by))
        self.buttons[index].setChecked(True)
        self.buttons[index].setFocus(Qt.FocusReason.OtherFocusReason)

    def focus(self) -> None:
        """Focus the chosen button, or the first one."""
        current = self.group.checkedButton() or self.buttons[0]
        current.setFocus(Qt.FocusReason.OtherFocusReason)

    def clear(self) -> None:
        """No choice."""
        self.group.setExclusive(False)
        for button in self.buttons:
            button.setChecked(False)
        self.group.setExclusive(True)

    def owns(self, widget: QObject | None) -> bool:
        """Whether `widget` is one of this row's buttons."""
        return widget in self.buttons


class SurveyDialog(QDialog):
    """The survey of one resolved alert.

    Signals:
        submitted(alert_id, clarity, templates, comment): templates is an int or None (not
            used), comment a string (empty: none).
        later(alert_id): Escape or close: ask again from the surveys list.
    """

    submitted = Signal(str, int, object, str)
    later = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Vigil: how did it go?")
        self.setMinimumWidth(480)
        self._alert_id: str | None = None
        self._sending = False
        self.drill_label = QLabel(DRILL_LABEL)
        self.drill_label.setTextFormat(Qt.TextFormat.PlainText)
        self.drill_label.setObjectName("drillBanner")
        self.title_label = QLabel()
        self.title_label.setTextFormat(Qt.TextFormat.PlainText)
        self.title_label.setWordWrap(True)
        self.clarity = ScoreRow(CLARITY_QUESTION, not_used=False)
        self.templates = ScoreRow(TEMPLATES_QUESTION, not_used=True)
        comment_label = QLabel("Anything else? (optional)")
        self.comment = QLineEdit()
        self.comment.setMaxLength(COMMENT_MAX_CHARS)
        self.comment.setAccessibleName("Comment, optional")
        comment_label.setBuddy(self.comment)
        self.count_label = QLabel()
        self.comment.textChanged.connect(self._count)
        self._count("")
        self.status_label = QLabel()
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.status_label.setWordWrap(True)
        self.keys_label = QLabel(
            "Arrows or 1-5 choose (0: did not use), Up/Down move, Enter sends, Esc: later"
        )
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self._submit)
        self.later_button = QPushButton("Later")
        self.later_button.clicked.connect(self.reject)
        for button in (self.send_button, self.later_button):
            # Enter means Send wherever the focus is (handled below), never the focused button.
            button.setAutoDefault(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.keys_label, 1)
        buttons.addWidget(self.later_button)
        buttons.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.drill_label)
        layout.addWidget(self.title_label)
        layout.addWidget(self.clarity)
        layout.addWidget(self.templates)
        layout.addWidget(comment_label)
        layout.addWidget(self.comment)
        layout.addWidget(self.count_label)
        layout.addWidget(self.status_label)
        layout.addLayout(buttons)
        for widget in (*self.clarity.buttons, *self.templates.buttons, self.comment):
            widget.installEventFilter(self)

    @property
    def alert_id(self) -> str | None:
        """The alert whose survey is on screen."""
        return self._alert_id

    @property
    def saving(self) -> bool:
        """Whether an answer was sent and its saving is not confirmed or refused yet."""
        return self._sending

    def ask(self, alert_id: str, title: str, *, drill: bool) -> None:
        """Show a fresh survey of this alert, focus on the first question."""
        self._alert_id = alert_id
        self._sending = False
        self.drill_label.setVisible(drill)
        self.title_label.setText(f"The alert is resolved: {shown(title, TITLE_SHOWN_MAX)}")
        self.clarity.clear()
        self.templates.clear()
        self.comment.clear()
        self.status_label.clear()
        self._set_enabled(True)
        self.show()
        self.raise_()
        self.activateWindow()
        self.clarity.focus()

    def show_saved(self) -> None:
        """The answer is on disk: thank the agent and close."""
        self._sending = False
        self.status_label.setText("Thank you. Your answer is saved and will reach the hub.")
        self._alert_id = None
        self.hide()

    def show_error(self, message: str) -> None:
        """The answer was not saved: say why, keep every choice for another try."""
        self._sending = False
        self._set_enabled(True)
        self.status_label.setText(f"Not saved: {message}")
        self.clarity.focus()

    def reject(self) -> None:
        """Escape, Later or the close button: the survey waits in the list."""
        alert_id = self._alert_id
        if self._sending:
            # Its answer is being saved: leaving now would hide whether it was.
            return
        self._alert_id = None
        super().reject()
        if alert_id is not None:
            self.later.emit(alert_id)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter sends wherever the focus is (the buttons included); Escape is "later"."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()
            self._submit()
            return
        super().keyPressEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Keys on the questions and the comment: see the module's docstring."""
        if event.type() != QEvent.Type.KeyPress or not isinstance(event, QKeyEvent):
            return super().eventFilter(watched, event)
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._submit()
            return True
        if key == Qt.Key.Key_Escape:
            self.reject()
            return True
        row = next((r for r in (self.clarity, self.templates) if r.owns(watched)), None)
        if key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            self._move(watched, 1 if key == Qt.Key.Key_Down else -1)
            return True
        if row is None:
            return super().eventFilter(watched, event)
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            row.step(1 if key == Qt.Key.Key_Right else -1)
            return True
        if key in _DIGITS or key == Qt.Key.Key_N:
            row.choose(NOT_USED if key == Qt.Key.Key_N else _DIGITS[key])
            return True
        return super().eventFilter(watched, event)

    def _move(self, watched: QObject, by: int) -> None:
        order = [self.clarity, self.templates, self.comment]
        here = next(
            (
                i
                for i, part in enumerate(order)
                if part is watched or (isinstance(part, ScoreRow) and part.owns(watched))
            ),
            0,
        )
        target = order[max(0, min(len(order) - 1, here + by))]
        if isinstance(target, ScoreRow):
            target.focus()
        else:
            target.setFocus(Qt.FocusReason.OtherFocusReason)

    def _submit(self) -> None:
        if self._alert_id is None or self._sending:
            return
        clarity = self.clarity.value()
        if clarity is None:
            self.status_label.setText(f"Choose an answer to \u201c{CLARITY_QUESTION}\u201d (1-5).")
            self.clarity.focus()
            return
        templates = self.templates.value()
        self._sending = True
        self._set_enabled(False)
        self.status_label.setText("Saving\u2026")
        self.submitted.emit(
            self._alert_id,
            clarity,
            None if templates in (None, NOT_USED) else templates,
            self.comment.text(),
        )

    def _count(self, text: str) -> None:
        # A paste longer than the limit is cut by the field: say so rather than lose it quietly.
        full = len(text) >= COMMENT_MAX_CHARS
        self.count_label.setText(
            f"{len(text)} of {COMMENT_MAX_CHARS} characters"
            + (": the limit, the rest was not taken" if full else "")
        )

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.clarity, self.templates, self.comment, self.send_button):
            widget.setEnabled(enabled)
