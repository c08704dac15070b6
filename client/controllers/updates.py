"""Looking for a signed update once at start and then daily, entirely off the UI thread."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from client.controllers.tasks import TaskRunner
from client.core.errors import VigilError
from client.core.paths import AppPaths
from client.core.settings import Settings

if TYPE_CHECKING:
    from client.core.updates import UpdateReady

log = logging.getLogger(__name__)

CHECK_INTERVAL_MS = 24 * 60 * 60 * 1000


class UpdateWatch(QObject):
    """Checks the hub for a signed update on a timer.

    Signals:
        update_ready(text): a verified update was downloaded; what to tell the agent.
    """

    update_ready = Signal(str)

    def __init__(
        self, settings: Settings, paths: AppPaths, tasks: TaskRunner, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._paths = paths
        self._tasks = tasks
        self._timer = QTimer(self)
        self._timer.setInterval(CHECK_INTERVAL_MS)
        self._timer.timeout.connect(self.check)

    def start(self) -> None:
        """Check now, then every day."""
        self._timer.start()
        self.check()

    def stop(self) -> None:
        """Stop checking."""
        self._timer.stop()

    @Slot()
    def check(self) -> None:
        """Look for a signed update on a worker; `update_ready` when one is downloaded."""
        settings, paths = self._settings, self._paths

        def check() -> UpdateReady | None:
            # The update module brings the HTTP stack and signature checks: loaded here, on a
            # worker, so they never delay the tray icon.
            from client.core.updates import UpdateChecker

            try:
                checker = UpdateChecker.from_settings(settings, paths)
            except VigilError as exc:
                log.warning("update checks are off: %s", exc.message)
                return None
            return checker.check() if checker is not None else None

        def done(ready: UpdateReady | None, error: BaseException | None) -> None:
            if error is not None:
                log.warning("update check: %s", getattr(error, "message", error))
            elif ready is not None:
                urgency = " IT requires it." if ready.required else ""
                self.update_ready.emit(f"An update is ready: Vigil {ready.version}.{urgency}")

        self._tasks.run(check, done)
