"""The idle lock's screen: stands in for the library's content and asks for the password.

Watching for input is client.ui.idle_watcher's job; the decision to lock is the core's
(client.core.idle.IdleTimer).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from client.ui.text import plain_label


class LockScreen(QWidget):
    """Stands in for a window's content while locked: asks for the agent's password.

    Signals:
        unlock_requested(password): check this password (online, or offline in the keyring).
        sign_in_requested: the agent wants the sign-in window (when a password cannot unlock).
    """

    unlock_requested = Signal(str)
    sign_in_requested = Signal()

    HINT = (
        "Locked after a time without activity, to protect patient information. "
        "Enter your password to continue. Critical alerts still pop up."
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("LockScreen")
        self.heading = plain_label("Vigil is locked", name="Heading")
        self.hint = plain_label(self.HINT, name="Hint")
        self.user = plain_label(name="Meta")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setAccessibleName("Password")
        self.password.setPlaceholderText("Password")
        self.password.returnPressed.connect(self._submit)
        self.unlock_button = QPushButton("Unlock")
        self.unlock_button.setObjectName("Primary")
        self.unlock_button.setAccessibleName("Unlock")
        self.unlock_button.clicked.connect(self._submit)
        self.error = plain_label(name="Error")
        self.error.setAccessibleName("Unlock problem")
        self.error.setVisible(False)
        self.sign_in_button = QPushButton("&Sign in again…")
        self.sign_in_button.setObjectName("Primary")
        self.sign_in_button.setAccessibleName("Sign in again to unlock")
        self.sign_in_button.clicked.connect(self.sign_in_requested)
        self.sign_in_button.setVisible(False)

        row = QHBoxLayout()
        row.addWidget(self.password, 1)
        row.addWidget(self.unlock_button)
        box = QWidget()
        box.setFixedWidth(460)
        inner = QVBoxLayout(box)
        inner.addWidget(self.heading)
        inner.addWidget(self.hint)
        inner.addWidget(self.user)
        inner.addLayout(row)
        inner.addWidget(self.error)
        inner.addWidget(self.sign_in_button, 0, Qt.AlignmentFlag.AlignLeft)
        centred = QHBoxLayout()
        centred.addStretch(1)
        centred.addWidget(box)
        centred.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addLayout(centred)
        layout.addStretch(2)
        self.setFocusProxy(self.password)

    def set_user(self, username: str | None) -> None:
        """Say whose password unlocks."""
        self.user.setText(f"Signed in as {username}" if username else "")

    @Slot(bool)
    def set_busy(self, busy: bool) -> None:
        """While the password is being checked, no second submit."""
        self.password.setEnabled(not busy)
        self.unlock_button.setEnabled(not busy)
        self.unlock_button.setText("Checking…" if busy else "Unlock")

    @Slot(str)
    def show_error(self, message: str) -> None:
        """Show why unlocking failed and ask again."""
        self.set_busy(False)
        self.error.setText(message)
        self.error.setVisible(True)
        self.password.selectAll()
        self.password.setFocus()

    @Slot(str)
    def show_sign_in_needed(self, message: str) -> None:
        """A password cannot unlock here: say so once, and offer only the sign-in window."""
        self.set_busy(False)
        self.password.clear()
        # One message, one way forward: the password field would invite a try that cannot work.
        self.password.setEnabled(False)
        self.unlock_button.setEnabled(False)
        self.hint.setText("Locked after a time without activity, to protect patient information.")
        self.error.setText(message)
        self.error.setVisible(True)
        self.sign_in_button.setVisible(True)
        self.sign_in_button.setFocus()

    @Slot()
    def reset(self) -> None:
        """Forget the typed password and any message (on lock and unlock)."""
        self.set_busy(False)
        self.password.clear()
        self.hint.setText(self.HINT)
        self.error.clear()
        self.error.setVisible(False)
        self.sign_in_button.setVisible(False)

    @Slot()
    def _submit(self) -> None:
        password = self.password.text()
        if not password or not self.unlock_button.isEnabled():
            return
        self.error.setVisible(False)
        self.set_busy(True)
        self.unlock_requested.emit(password)
