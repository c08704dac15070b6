"""A push button that Enter and Return press too, for windows that are not dialogs (there a
plain QPushButton takes only Space)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QPushButton


class EnterButton(QPushButton):
    """A QPushButton pressed by Space, Enter or Return while it has the focus."""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter and Return click the button, as Space does."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers():
            self.animateClick()
            event.accept()
            return
        super().keyPressEvent(event)
