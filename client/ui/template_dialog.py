"""A template's fill-in form over the alert pop-up: the library's own view, so copying from an
alert passes the same blanks and the same "Copy anyway" guard."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QDialog, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from client.core.content import Template
from client.ui.template_view import TemplateView
from client.ui.text import TITLE_SHOWN_MAX, shown


class TemplateCopyDialog(QDialog):
    """Fill in one template and copy it; closes once the text is on the clipboard.

    Signals:
        copied(template_id, title): the filled text was put on the clipboard.
    """

    copied = Signal(str, str)

    def __init__(self, template: Template, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title = shown(template.title, TITLE_SHOWN_MAX)
        self.setWindowTitle(f"Copy template: {self._title}")
        self.setAccessibleName(f"Fill in and copy template: {self._title}")
        self.setMinimumSize(520, 420)
        self.view = TemplateView()
        self.view.show_template(template)
        self.view.copied.connect(self._on_copied)
        self.close_button = QPushButton("&Close without copying")
        self.close_button.setAccessibleName("Close without copying")
        self.close_button.clicked.connect(self.reject)
        for button in self.findChildren(QPushButton):
            # Enter in a blank moves on to the next one; only a deliberate press copies.
            button.setAutoDefault(False)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addLayout(row)
        first = next(iter(self.view.fields().values()), None)
        (first or self.view.copy_button).setFocus()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter presses a focused button, otherwise moves to the next field; Esc closes."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()
            focused = self.focusWidget()
            if isinstance(focused, QPushButton) and focused.isEnabled():
                focused.click()
            else:
                self.focusNextChild()
            return
        super().keyPressEvent(event)

    @Slot(str)
    def _on_copied(self, template_id: str) -> None:
        self.copied.emit(template_id, self._title)
        self.accept()
