"""The About window's controller: gathers the facts off the UI thread, then shows the window."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot

from client.controllers.tasks import TaskRunner
from client.core.settings import Settings

if TYPE_CHECKING:
    from client.core.about import AboutFacts
    from client.ui.about_window import AboutWindow


class AboutController(QObject):
    """Owns the About window (built when asked for, dropped when closed)."""

    def __init__(
        self, settings: Settings, tasks: TaskRunner, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._tasks = tasks
        self.window: AboutWindow | None = None

    @Slot()
    def show(self) -> None:
        """Open the About window (or bring it forward)."""
        from client.core.about import about_facts
        from client.ui.placement import bring_forward

        if self.window is not None:
            bring_forward(self.window)
            return
        source, hub = self._settings.policy.source, self._settings.get("hub_url")
        backups = self._settings.hub_addresses()[1:]
        if hub and backups:
            # Support asks which addresses a laptop may use: the backups are part of the answer.
            hub = f"{hub} (backup: {', '.join(backups)})"

        def done(facts: AboutFacts | None, error: BaseException | None) -> None:
            if facts is None or self.window is not None:
                return
            from client.ui.about_window import AboutWindow

            window = AboutWindow(facts)
            window.finished.connect(self._on_closed)
            self.window = window
            bring_forward(window)

        # Reading every library's metadata touches the disk: not on the UI thread.
        self._tasks.run(lambda: about_facts(source, hub), done)

    @Slot()
    def _on_closed(self) -> None:
        window, self.window = self.window, None
        if window is not None:
            window.deleteLater()
