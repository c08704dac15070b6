"""Watching the agent's input for the idle lock: input anywhere in the app resets the idle time.
The decision to lock is the core's (client.core.idle.IdleTimer).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QApplication

from client.core.idle import IdleTimer, shows_while_locked

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
    """Feeds the app's input to an IdleTimer and checks it on a timer.

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
