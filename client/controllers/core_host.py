"""Builds the core services off the UI thread, holds them while they run and closes them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from client.controllers.core_bridge import CoreBridge
from client.controllers.tasks import TaskRunner
from client.core.paths import AppPaths
from client.core.settings import Settings

if TYPE_CHECKING:
    from client.core.services import CoreServices

    CoreFactory = Callable[[AppPaths, Settings], CoreServices]

log = logging.getLogger(__name__)


def build_core_services(paths: AppPaths, settings: Settings) -> CoreServices:
    """CoreServices.build, importing the core (HTTP stack, SQLite layer, keyring) on first use.

    The app calls it on a worker thread once the tray icon is up, so those imports never delay
    the icon.
    """
    from client.core.services import CoreServices

    return CoreServices.build(paths, settings)


class CoreHost(QObject):
    """The running core services, or None while they are being built or after they failed.

    Signals:
        started: the core services were built and started (`core` is set).
        failed(error): they could not be built; the error says why.
    """

    started = Signal()
    failed = Signal(object)

    def __init__(
        self,
        paths: AppPaths,
        settings: Settings,
        tasks: TaskRunner,
        bridge: CoreBridge,
        factory: CoreFactory = build_core_services,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._paths = paths
        self._settings = settings
        self._tasks = tasks
        self._bridge = bridge
        self._factory = factory
        self.core: CoreServices | None = None
        # Whether a library from an earlier sign-in is on disk (signing in offline may use it).
        self.library_cached = False
        self._closed = False

    def build(self, *, then: Callable[[], None] | None = None) -> None:
        """Build and start the core on the disk writer, then call `then` on the UI thread."""

        def build() -> tuple[CoreServices, bool]:
            core = self._factory(self._paths, self._settings)
            if self._closed:
                # The app quit while this was being built, so nothing will start or close it.
                core.close()
            return core, core.cache.content_cursor() is not None

        def done(result: tuple[CoreServices, bool] | None, error: BaseException | None) -> None:
            if error is not None or result is None:
                log.error("core services could not start: %s", error)
                self.failed.emit(error)
                return
            if self._start(*result) and then is not None:
                then()

        self._tasks.run_write(build, done)

    def close(self) -> None:
        """Stop listening to the core and close it (a later build starts a new one)."""
        core, self.core = self.core, None
        if core is not None:
            self._bridge.detach()
            core.close()

    def shut_down(self) -> None:
        """Close the core for good: a build still in flight closes what it built."""
        self._closed = True
        self.close()

    def _start(self, core: CoreServices, library_cached: bool) -> bool:
        if self._closed:
            core.close()
            return False
        self.core = core
        self.library_cached = library_cached
        self._bridge.attach(core)
        core.start()
        log.info("core services started for %s", core.hub.base_url)
        self.started.emit()
        if core.cache.quarantined is not None:
            self._bridge.warning.emit(
                "Vigil's local library was damaged, so it was set aside (kept at "
                f"{core.cache.quarantined} for IT) and is being downloaded again from the hub. "
                "Acknowledgements are stored apart and were not affected."
            )
        return True
