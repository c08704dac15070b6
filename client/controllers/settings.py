"""The settings dialog's controller: applies and saves the agent's changes, and keeps the
start-at-login entry in step with them."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QMessageBox

from client.controllers.tasks import TaskRunner, log_failure
from client.core.errors import SettingsError, VigilError
from client.core.settings import Settings

if TYPE_CHECKING:
    from client.ui.settings_dialog import SettingsDialog

log = logging.getLogger(__name__)


def set_autostart(enabled: bool) -> None:
    """Write (or remove) the platform's entry that starts Vigil at login."""
    from client.core.autostart import autostart_for_platform

    entry = autostart_for_platform()
    if not enabled:
        entry.disable()
        return
    frozen = getattr(sys, "frozen", False)
    entry.enable([sys.executable] if frozen else [sys.executable, "-m", "client.app"])


class SettingsController(QObject):
    """Owns the settings dialog (built when opened) and applies what the agent changed.

    Signals:
        applied: new settings took effect; the other parts should read them again.
    """

    applied = Signal()

    def __init__(
        self, settings: Settings, tasks: TaskRunner, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._tasks = tasks
        self.dialog: SettingsDialog | None = None
        self.notice: QMessageBox | None = None
        self._locked = False

    @Slot()
    def show(self) -> None:
        """Open the settings dialog (or bring it forward)."""
        if self.dialog is None:
            # Imported when first opened, not before the tray icon shows.
            from client.ui.settings_dialog import SettingsDialog

            dialog = SettingsDialog(self._settings)
            dialog.set_read_only(self._locked)
            dialog.changes_submitted.connect(self._apply)
            dialog.finished.connect(self._on_closed)
            self.dialog = dialog
        from client.ui.placement import bring_forward

        bring_forward(self.dialog)

    @Slot(bool)
    def set_locked(self, locked: bool) -> None:
        """While Vigil is locked, settings (the lock timeout too) are shown read-only."""
        self._locked = locked
        if self.dialog is not None:
            self.dialog.set_read_only(locked)

    @Slot()
    def _on_closed(self) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is not None:
            dialog.deleteLater()

    @Slot(dict)
    def _apply(self, changes: dict[str, Any]) -> None:
        problems = []
        for name, value in changes.items():
            try:
                self._settings.set(name, value)
            except SettingsError as exc:
                problems.append(exc.message)
        self.applied.emit()
        self._tasks.run_write(self._settings.save, log_failure)
        if "start_at_login" in changes:
            enabled = bool(self._settings.get("start_at_login"))
            self._tasks.run_write(lambda: set_autostart(enabled), self._on_autostart_done)
        if problems:
            self._show_notice("Some settings were not changed", "\n".join(problems))

    def _on_autostart_done(self, _result: object, error: BaseException | None) -> None:
        if error is not None:
            message = error.message if isinstance(error, VigilError) else str(error)
            self._show_notice("Start at login was not changed", message)

    def _show_notice(self, title: str, text: str) -> None:
        self.notice = QMessageBox(QMessageBox.Icon.Warning, title, text)
        self.notice.open()
