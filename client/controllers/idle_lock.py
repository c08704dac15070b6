"""The idle lock (HIPAA automatic log-off): locking after the policy's idle minutes, and
unlocking with the agent's password, checked offline against the keyring's slow verifier."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QGuiApplication

from client.controllers.sign_in import sign_in_problem
from client.controllers.tasks import TaskRunner
from client.core.idle import IdleTimer, desktop_idle_source
from client.core.settings import Settings
from client.ui.idle_watcher import IdleWatcher

if TYPE_CHECKING:
    from client.core.offline_unlock import OfflineUnlock

log = logging.getLogger(__name__)

# Qt platforms with no desktop of their own: a display's idle time says nothing about the agent.
_HEADLESS_PLATFORMS = ("offscreen", "minimal")


class IdleLock(QObject):
    """Watches for input, locks when idle, and checks the password that unlocks.

    Signals:
        locked_changed(locked): the app locked (True) or was unlocked (False).
        unlock_refused(message): the password did not unlock; why, in words.
        sign_in_needed: unlocking needs a full sign-in (no offline check on this computer yet).
        sign_in_needed_because(message): the same, with the words the lock screen shows.
    """

    locked_changed = Signal(bool)
    unlock_refused = Signal(str)
    sign_in_needed = Signal()
    sign_in_needed_because = Signal(str)

    def __init__(
        self, settings: Settings, tasks: TaskRunner, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._tasks = tasks
        self.timer = IdleTimer(settings.get("idle_lock_minutes"))
        self.watcher = IdleWatcher(self.timer, parent=self)
        self._unlocker: OfflineUnlock | None = None
        self.watcher.locked_changed.connect(self._on_locked_changed)

    @property
    def unlocker(self) -> OfflineUnlock:
        """The keyring's slow check of the agent's password (made on first use, UI thread)."""
        if self._unlocker is None:
            # Its hashing modules load after the tray icon is up, not before.
            from client.core.offline_unlock import OfflineUnlock

            self._unlocker = OfflineUnlock()
        return self._unlocker

    def start(self) -> None:
        """Start watching the agent's input, and the whole desktop's where the platform says.

        The desktop's idleness counts, not only Vigil's windows': typing in the EHR all morning
        is not idle. Found here, after the tray icon is up (it loads system libraries).
        """
        if QGuiApplication.platformName() not in _HEADLESS_PLATFORMS:
            self.timer.set_desktop_idle(desktop_idle_source())
        self.watcher.start()

    def stop(self) -> None:
        """Stop watching."""
        self.watcher.stop()

    def may_pop_up(self, severity: str) -> bool:
        """Whether an alert of `severity` may pop up now (always, unless locked)."""
        return self.watcher.pops_up_while_locked(severity)

    def apply_settings(self, settings: Settings) -> None:
        """Take a new idle time from the settings."""
        self.timer.set_idle_minutes(settings.get("idle_lock_minutes"))

    @Slot()
    def signed_in(self) -> None:
        """Signing in again proves who the agent is, as the unlock prompt would."""
        if self.timer.locked:
            self.watcher.unlock()

    @Slot(str)
    def check_password(self, password: str) -> None:
        """Unlock when `password` is the last user's (checked off the UI thread)."""
        username = self._settings.get("last_username")
        if not username:
            self._need_sign_in("Sign in to unlock Vigil.")
            return

        unlocker = self.unlocker

        def check() -> tuple[bool, bool]:
            return unlocker.verify(username, password), unlocker.is_enrolled(username)

        def done(result: tuple[bool, bool] | None, error: BaseException | None) -> None:
            matched, enrolled = result if result is not None else (False, False)
            if matched:
                self.watcher.unlock()
            elif error is not None:
                self.unlock_refused.emit(sign_in_problem(error))
            elif not enrolled:
                self._need_sign_in(
                    "This computer cannot check your password yet: sign in again in the "
                    "sign-in window, with your password and authenticator code."
                )
            else:
                self.unlock_refused.emit("That password is not right. Try again.")

        self._tasks.run(check, done)

    def _need_sign_in(self, message: str) -> None:
        self.sign_in_needed_because.emit(message)
        self.sign_in_needed.emit()

    @Slot(bool)
    def _on_locked_changed(self, locked: bool) -> None:
        log.info("idle lock %s", "on" if locked else "off")
        self.locked_changed.emit(locked)
