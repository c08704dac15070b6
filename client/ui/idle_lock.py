"""The idle lock in the UI: input anywhere in the app resets the idle time; a lock screen asks
for the password. The decision to lock is the core's (client.core.idle.IdleTimer).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from client.core.idle import IdleTimer, shows_while_locked
from client.ui.text import plain_label

_INPUT_EVENTS = frozenset(
    {
        QEvent.Type.KeyPress,
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
        QEvent.Type.TouchBegin,
        QEvent.Type.TabletPress,
    }
)


class IdleWatcher(QObject):
    """Feeds the app's input to an IdleTimer and checks it on a timer; app.py reads the lock state.

    Signals:
        locked_changed(locked): the app locked (True) or was unlocked (False).
    """

    locked_changed = Signal(bool)

    def __init__(
        self, timer: IdleTimer, *, check_interval_ms: int = 5000, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._timer = timer
        self._tick = QTimer(self)
        self._tick.setInterval(check_interval_ms)
        self._tick.timeout.connect(self.check)
        # The core event fires on the thread that locks; a Qt signal carries it to the UI safely.
        timer.locked_changed.connect(self.locked_changed.emit)

    @property
    def is_locked(self) -> bool:
        """Whether the library and alert details are hidden now."""
        return self._timer.locked

    def pops_up_while_locked(self, severity: str) -> bool:
        """Whether an alert of `severity` may still pop up now (always, unless locked)."""
        return not self._timer.locked or shows_while_locked(severity)

    def start(self) -> None:
        """Watch input across the whole application and start checking."""
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
        self._timer.note_input()
        self._tick.start()

    def stop(self) -> None:
        """Stop watching."""
        self._tick.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Note any user input; never consumes the event."""
        if event.type() in _INPUT_EVENTS:
            self._timer.note_input()
        return False

    @Slot()
    def check(self) -> None:
        """Lock when the idle time has run out."""
        self._timer.check()

    @Slot()
    def lock(self) -> None:
        """Lock now."""
        self._timer.lock()

    @Slot()
    def unlock(self) -> None:
        """Unlock (after the password was checked)."""
        self._timer.unlock()


class LockScreen(QWidget):
    """Stands in for a window's content while locked: asks for the agent's password.

    Signals:
        unlock_requested(password): check this password (online, or offline in the keyring).
    """

    unlock_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("LockScreen")
        self.heading = plain_label("Vigil is locked", name="Heading")
        self.hint = plain_label(
            "Locked after a time without activity, to protect patient information. "
            "Enter your password to continue. Critical alerts still pop up.",
            name="Hint",
        )
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

    @Slot()
    def reset(self) -> None:
        """Forget the typed password and any message (on lock and unlock)."""
        self.set_busy(False)
        self.password.clear()
        self.error.clear()
        self.error.setVisible(False)

    @Slot()
    def _submit(self) -> None:
        password = self.password.text()
        if not password or not self.unlock_button.isEnabled():
            return
        self.error.setVisible(False)
        self.set_busy(True)
        self.unlock_requested.emit(password)
