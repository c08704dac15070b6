"""The shift-readiness self-test in the tray app: run at sign-in (once the alert stream is up and
the first sync is done, or after a bounded wait), every hour and on request, off the UI thread;
reported to the hub, and a report the hub could not take is sent at the next contact."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QSystemTrayIcon

from client.controllers.core_host import CoreHost
from client.controllers.tasks import TaskRunner, log_failure
from client.ui import resources

if TYPE_CHECKING:
    from client.core.alert_stream import StreamState
    from client.core.readiness import DesktopAbilities, ReadinessOutcome, ReadinessReporter
    from client.core.services import CoreServices
    from client.core.sync import SyncStatus

log = logging.getLogger(__name__)

HOURLY_MS = 60 * 60 * 1000
# After a sign-in the check waits for the alert stream to connect and the first sync to finish,
# but never longer than this: a stream that cannot connect is exactly what it must report.
AFTER_SIGN_IN_WAIT_MS = 30_000
_ASOUND_CARDS = Path("/proc/asound/cards")


def desktop_abilities() -> DesktopAbilities:
    """What this desktop reports through Qt and the system: tray, notifications, sound."""
    from client.core.readiness import DesktopAbilities
    from client.ui.sound import find_player

    tone = resources.sound_file("critical")
    return DesktopAbilities(
        tray_available=QSystemTrayIcon.isSystemTrayAvailable(),
        supports_messages=QSystemTrayIcon.supportsMessages(),
        audio_output=_audio_output(find_player() is not None),
        tone_readable=tone is not None and os.access(tone, os.R_OK),
    )


def _audio_output(player_found: bool) -> bool | None:
    # Vigil plays its tone through the platform's player (PySide6-Essentials has no
    # QtMultimedia): on Linux the kernel lists the sound cards; elsewhere nothing cheap can tell.
    if not sys.platform.startswith("linux"):
        return None
    try:
        cards = _ASOUND_CARDS.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None if player_found else False
    return bool(cards.strip()) and "no soundcards" not in cards


class ReadinessWatch(QObject):
    """Runs the self-test and announces each outcome; one run at a time.

    Signals:
        outcome_changed(outcome): a ReadinessOutcome (the report, and whether the hub has it).
    """

    outcome_changed = Signal(object)

    def __init__(
        self,
        tasks: TaskRunner,
        host: CoreHost,
        *,
        desktop: Callable[[], DesktopAbilities] = desktop_abilities,
        interval_ms: int = HOURLY_MS,
        after_sign_in_ms: int = AFTER_SIGN_IN_WAIT_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._tasks = tasks
        self._host = host
        self._desktop = desktop
        self._hourly = QTimer(self)
        self._hourly.setInterval(interval_ms)
        self._hourly.timeout.connect(self.run_now)
        self._after_sign_in = QTimer(self)
        self._after_sign_in.setSingleShot(True)
        self._after_sign_in.setInterval(after_sign_in_ms)
        self._after_sign_in.timeout.connect(self.run_now)
        self._running = False
        self._again = False
        self._stopped = False
        self._stream_live = False
        self._synced = False
        self._reporter: ReadinessReporter | None = None
        self._reporter_core: CoreServices | None = None
        self.outcome: ReadinessOutcome | None = None

    def start(self) -> None:
        """Run every interval from now on (the first run comes with the sign-in)."""
        self._hourly.start()

    def stop(self) -> None:
        """No more runs or reports: the app is quitting and its task runner goes next."""
        self._stopped = True
        self._hourly.stop()
        self._after_sign_in.stop()

    @Slot(object)
    def signed_in(self, _account: object) -> None:
        """Run once the alert stream is up and a sync is done, or when the wait runs out."""
        self._stream_live = self._synced = False
        if not self._stopped:
            self._after_sign_in.start()

    @Slot(object)
    def stream_changed(self, state: StreamState) -> None:
        """A stream that connected after a sign-in may end the wait."""
        if state.phase == "connected":
            self._stream_live = True
            self._end_sign_in_wait()

    @Slot(object)
    def sync_changed(self, status: SyncStatus) -> None:
        """The hub answered a sync: it may end the sign-in wait, and a report the hub could not
        take before goes now."""
        if status.state != "online":
            return
        self._synced = True
        self._end_sign_in_wait()
        reporter = self._reporter
        if not self._stopped and reporter is not None and reporter.unsent is not None:
            self._tasks.run(reporter.flush, log_failure)

    def _end_sign_in_wait(self) -> None:
        if self._after_sign_in.isActive() and self._stream_live and self._synced:
            self.run_now()

    @Slot()
    def run_now(self) -> None:
        """Run the self-test (again, after the one under way) and announce the outcome."""
        self._after_sign_in.stop()
        core = self._host.core
        account = core.auth.account if core is not None else None
        if self._stopped or core is None or account is None:
            return
        if self._running:
            self._again = True
            return
        from client.core.readiness import run_readiness

        self._running = True
        reporter = self._reporter_for(core)
        desktop = self._desktop()
        username = account.username

        def work() -> ReadinessOutcome:
            return run_readiness(core, reporter, desktop, username=username, stream_runs_here=True)

        self._tasks.run(work, self._done)

    def _reporter_for(self, core: CoreServices) -> ReadinessReporter:
        from client.core.readiness import ReadinessReporter

        if self._reporter is None or self._reporter_core is not core:
            self._reporter = ReadinessReporter(core.hub)
            self._reporter_core = core
        return self._reporter

    def _done(self, outcome: ReadinessOutcome | None, error: BaseException | None) -> None:
        self._running = False
        if error is not None or outcome is None:
            log.warning("The readiness check could not run: %s", error)
        else:
            self.outcome = outcome
            self.outcome_changed.emit(outcome)
        if self._again:
            self._again = False
            self.run_now()
