"""The tray app's composition root: builds the controllers, starts them in a fixed order (the
tray icon first), wires them to each other and to the core, and stops them in reverse order.

Windows only render and emit intents; every decision lives in client/core (status, reminders),
each part of the app's behaviour in one controller (client/controllers), and every blocking call
(HTTP, SQLite, keyring) runs on the TaskRunner's workers. Windows and the heavy libraries behind
the core load when first needed, after the icon is in the tray.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtWidgets import QApplication, QMessageBox, QSystemTrayIcon

import client.pyside_source_check  # noqa: F401  (before any other module of the app loads)
from client.controllers.about import AboutController
from client.controllers.alert_desk import REMINDER_TICK_MS, AlertDesk
from client.controllers.core_bridge import CoreBridge
from client.controllers.core_host import CoreHost, build_core_services
from client.controllers.idle_lock import IdleLock
from client.controllers.library import LibraryController
from client.controllers.readiness import ReadinessWatch
from client.controllers.settings import SettingsController
from client.controllers.sign_in import SignInFlow
from client.controllers.status import StatusPresenter
from client.controllers.surveys import SurveyPrompter
from client.controllers.tasks import TaskRunner
from client.controllers.updates import UpdateWatch
from client.core.errors import VigilError
from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.reminders import AlertAttention
from client.core.settings import Settings
from client.ui import resources
from client.ui.tray import READINESS_UNKNOWN, TrayIcon

if TYPE_CHECKING:
    from client.controllers.core_host import CoreFactory
    from client.core.auth import Account
    from client.core.services import CoreServices
    from client.core.sync import SyncReport
    from client.ui.alert_popup import AlertPopup
    from client.ui.library import LibraryWindow
    from client.ui.settings_dialog import SettingsDialog
    from client.ui.signin import SignInDialog

log = logging.getLogger("vigil.app")

NO_TRAY_NOTICE = "No system tray found; Vigil opens its window instead."
# Names a file that start-up milestones are appended to, for the start-up benchmark.
STARTUP_MARKS_ENV = "VIGIL_PERF_MARKS"
MISSED_ALERTS_WARNING = (
    "Some alerts sent while this computer was away are no longer kept by the hub. "
    "Ask your dispatcher whether anything still needs you."
)


def startup_mark(name: str) -> None:
    """Append `name` and the monotonic clock (seconds) to $VIGIL_PERF_MARKS when it is set."""
    path = os.environ.get(STARTUP_MARKS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as marks:
            marks.write(f"{name} {time.monotonic():.6f}\n")


class VigilApp(QObject):
    """The running tray app: the tray icon, the controllers behind it and their wiring."""

    def __init__(
        self,
        qt_app: QApplication,
        paths: AppPaths,
        settings: Settings,
        *,
        tray_available: bool | None = None,
        attention: AlertAttention | None = None,
        core_factory: CoreFactory = build_core_services,
        reminder_tick_ms: int = REMINDER_TICK_MS,
    ) -> None:
        super().__init__()
        self._qt_app = qt_app
        self.paths = paths
        self.settings = settings
        if tray_available is None:
            tray_available = QSystemTrayIcon.isSystemTrayAvailable()
        self.tray: TrayIcon | None = TrayIcon(self) if tray_available else None
        self.notice: QMessageBox | None = None
        self._closing = False
        self._syncing = False
        self.tasks = TaskRunner(self)
        self.bridge = CoreBridge(self)
        self.core_host = CoreHost(paths, settings, self.tasks, self.bridge, core_factory, self)
        self.attention = attention or AlertAttention(
            notify_lesser=bool(settings.get("minor_alert_notifications"))
        )
        self.idle_lock = IdleLock(settings, self.tasks, self)
        self.sign_in_flow = SignInFlow(
            settings, self.tasks, self.core_host, lambda: self.idle_lock.unlocker, self
        )
        self.alert_desk = AlertDesk(
            settings,
            self.tasks,
            self.core_host,
            self.attention,
            self.idle_lock.may_pop_up,
            reminder_tick_ms=reminder_tick_ms,
            parent=self,
        )
        self.surveys = SurveyPrompter(self.tasks, self.core_host, self)
        self.alert_desk.surveys = self.surveys
        self.library_controller = LibraryController(self.tasks, self.core_host, self)
        self.settings_controller = SettingsController(settings, self.tasks, self)
        self.about = AboutController(settings, self.tasks, self)
        self.status = StatusPresenter(settings, self.core_host, self.attention, self)
        self.updates = UpdateWatch(settings, paths, self.tasks, self)
        self.readiness = ReadinessWatch(self.tasks, self.core_host, parent=self)
        self._link_callbacks()
        self._link_readiness()

    # The core and the windows, as the agent meets them

    @property
    def core(self) -> CoreServices | None:
        """The running core services (None until built, or after they failed)."""
        return self.core_host.core

    @property
    def popup(self) -> AlertPopup:
        """The alert pop-up (built on first use)."""
        return self.alert_desk.popup

    @property
    def library(self) -> LibraryWindow:
        """The library window (built on first use)."""
        return self.library_controller.window

    @property
    def signin(self) -> SignInDialog | None:
        """The sign-in dialog while it is open."""
        return self.sign_in_flow.dialog

    @property
    def settings_dialog(self) -> SettingsDialog | None:
        """The settings dialog while it is open."""
        return self.settings_controller.dialog

    # Start-up and shutdown

    def start(self) -> None:
        """Start everything in a fixed order, logging each step; the tray icon comes first."""
        log.info("start 1/4: tray icon")
        if self.tray is not None:
            self._qt_app.setQuitOnLastWindowClosed(False)
            self.tray.set_signed_in(False)
            # The icon first: a tray entry shown without one flashes empty on some desktops.
            self.status.refresh()
            self.tray.show()
            startup_mark("tray_shown")
            self.tray.add_shortcuts()
        log.info("start 2/4: look (stylesheet, icons)")
        self._qt_app.setStyleSheet(resources.stylesheet())
        self._qt_app.setWindowIcon(resources.app_icon())
        if self.tray is None:
            log.warning("no system tray: showing the library window instead")
            self._qt_app.setQuitOnLastWindowClosed(True)
            self.library_controller.show()
            self.notice = QMessageBox(
                QMessageBox.Icon.Information, "Vigil", NO_TRAY_NOTICE, parent=self.library
            )
            self.notice.open()
        self.status.refresh()
        log.info("start 3/4: alert reminders, idle lock, update checks")
        self.alert_desk.start()
        self.idle_lock.start()
        self.updates.start()
        self.readiness.start()
        log.info("start 4/4: core services and sign-in")
        if self.settings.get("hub_url"):
            self.core_host.build(then=self.sign_in_flow.resume)
        else:
            self.sign_in_flow.show()

    @Slot()
    def quit(self) -> None:
        """Stop in reverse order: reminders, queued work (writes finish), core, then Qt."""
        if self._closing:
            return
        self._closing = True
        log.info("stopping: update checks, idle lock, reminders, workers, core services")
        self.sign_in_flow.shut_down()
        self.updates.stop()
        self.readiness.stop()
        self.idle_lock.stop()
        self.alert_desk.stop()
        self.tasks.shutdown()
        self.core_host.shut_down()
        if self.tray is not None:
            self.tray.hide()
        self.library_controller.hide()
        self._qt_app.quit()

    @Slot()
    def sync_now(self) -> None:
        """Sync now, showing that it runs and then what it did (or why it failed) in words."""
        core = self.core
        if core is None:
            self._warn("Vigil is still starting; try again in a moment.")
            return
        if self._syncing:
            return
        self._syncing = True
        self.status.sync_activity("Syncing now…")

        def done(report: SyncReport | None, error: BaseException | None) -> None:
            self._syncing = False
            now = datetime.now(UTC)
            if report is not None:
                text = report.summary(now)
            else:
                reason = error.message if isinstance(error, VigilError) else str(error)
                text = f"Sync failed {now.astimezone():%H:%M}: {reason}"
            self.status.sync_activity(text)
            if error is not None:
                self._warn(text)
            else:
                self._tell(text)

        self.tasks.run(core.sync.sync_now, done)

    def _record_shown(self, alert_id: str) -> None:
        core = self.core_host.core
        if core is not None:
            self.tasks.run_write(lambda: core.receipts.mark_shown(alert_id))

    def _record_opened(self, alert_id: str, kind: str, item_id: str, version: int) -> None:
        core = self.core_host.core
        if core is not None:
            self.tasks.run_write(
                lambda: core.opened_content.opened(alert_id, kind, item_id, version)
            )

    def _link_callbacks(self) -> None:
        bridge, host, status = self.bridge, self.core_host, self.status
        alerts, library = self.alert_desk, self.library_controller
        sign_in, idle = self.sign_in_flow, self.idle_lock

        host.started.connect(self._on_core_started)
        host.failed.connect(sign_in.core_failed)
        bridge.alert_received.connect(alerts.receive)
        bridge.alert_changed.connect(lambda change: alerts.receive_change(change[1]))
        bridge.answer_received.connect(
            lambda answer: alerts.answer_from_hub(
                answer.alert_id, answer.device_id or "", answer.device_name or ""
            )
        )
        bridge.sync_status_changed.connect(status.refresh)
        bridge.sync_status_changed.connect(library.reload)
        bridge.outbox_changed.connect(alerts.outbox_changed)
        bridge.acks_changed.connect(alerts.acks_changed)
        bridge.vpn_changed.connect(status.vpn_changed)
        bridge.vpn_changed.connect(library.vpn_changed)
        bridge.signed_in.connect(self._on_signed_in)
        bridge.signed_out.connect(self._on_signed_out)
        bridge.signed_in.connect(lambda _account: self.surveys.user_changed())
        bridge.signed_out.connect(lambda _reason: self.surveys.user_changed())
        bridge.warning.connect(self._warn)
        bridge.alerts_missed.connect(lambda _seq: self._warn(MISSED_ALERTS_WARNING))
        bridge.stream_state_changed.connect(status.stream_changed)
        bridge.hub_route_changed.connect(status.refresh)

        status.look_changed.connect(library.show_look)
        status.offline_changed.connect(library.show_offline)

        alerts.status_changed.connect(status.refresh)
        alerts.history_changed.connect(library.reload)
        alerts.notification.connect(self._notify)
        alerts.playbook_requested.connect(
            lambda playbook_id, alert_id: library.open_playbook(playbook_id, alert_id or None)
        )
        library.alert_opened.connect(alerts.open_alert)
        alerts.alert_on_screen.connect(self._record_shown)
        alerts.content_opened.connect(self._record_opened)
        library.content_opened.connect(self._record_opened)
        alerts.answered_elsewhere_seen.connect(library.mark_answered_elsewhere)

        library.sync_requested.connect(self.sync_now)
        library.unlock_requested.connect(idle.check_password)
        idle.unlock_refused.connect(library.show_unlock_error)
        idle.sign_in_needed_because.connect(library.show_sign_in_needed)
        idle.sign_in_needed.connect(sign_in.show)
        library.sign_in_requested.connect(sign_in.show)
        library.about_requested.connect(self.about.show)
        idle.locked_changed.connect(self.settings_controller.set_locked)
        idle.locked_changed.connect(library.set_locked)
        idle.locked_changed.connect(alerts.set_locked)
        idle.locked_changed.connect(self.surveys.set_locked)

        sign_in.offline_chosen.connect(library.show)
        self.settings_controller.applied.connect(self._on_settings_applied)
        self.updates.update_ready.connect(self._warn)

        if self.tray is not None:
            tray = self.tray
            status.look_changed.connect(tray.show_look)
            tray.open_library_requested.connect(library.show)
            tray.alerts_requested.connect(library.show_alerts)
            tray.sync_requested.connect(self.sync_now)
            tray.status_requested.connect(status.show_details)
            tray.settings_requested.connect(self.settings_controller.show)
            tray.about_requested.connect(self.about.show)
            tray.sign_out_requested.connect(sign_in.sign_out)
            tray.sign_in_requested.connect(sign_in.show)
            tray.quit_requested.connect(self.quit)
            tray.notification_clicked.connect(library.show_alerts)
            alerts.status_changed.connect(
                lambda: tray.set_drills_waiting(self.attention.drills_waiting())
            )

    def _link_readiness(self) -> None:
        readiness = self.readiness
        self.bridge.signed_in.connect(readiness.signed_in)
        self.bridge.stream_state_changed.connect(readiness.stream_changed)
        self.bridge.sync_status_changed.connect(readiness.sync_changed)
        if self.tray is not None:
            tray = self.tray
            tray.readiness_requested.connect(readiness.run_now)
            readiness.outcome_changed.connect(
                lambda outcome: tray.show_readiness(outcome.report.summary())
            )
            self.bridge.signed_out.connect(lambda _reason: tray.show_readiness(READINESS_UNKNOWN))

    @Slot()
    def _on_core_started(self) -> None:
        self.alert_desk.load_waiting()
        self.library_controller.reload()
        self.status.refresh()

    @Slot(object)
    def _on_signed_in(self, account: Account) -> None:
        log.info("signed in as %s%s", account.username, "" if account.verified else " (offline)")
        if self.tray is not None:
            self.tray.set_signed_in(True)
        self.library_controller.set_user(account.username)
        self.idle_lock.signed_in()
        self.status.refresh()

    @Slot(str)
    def _on_signed_out(self, reason: str) -> None:
        if self.tray is not None:
            self.tray.set_signed_in(False)
        self.status.stream_restarted()
        self.status.refresh()
        self.sign_in_flow.signed_out(reason)

    @Slot()
    def _on_settings_applied(self) -> None:
        self.alert_desk.apply_settings(self.settings)
        self.idle_lock.apply_settings(self.settings)
        self.status.refresh()

    @Slot(str, str, str)
    def _notify(self, severity: str, title: str, text: str) -> None:
        # Without a tray, the library's status line is the only place left to say it.
        if self.tray is not None:
            self.tray.notify(severity, title, text)
        else:
            self.library_controller.set_status(f"New {severity} alert: {title}")

    @Slot(str)
    def _warn(self, text: str) -> None:
        log.warning("%s", text)
        self._tell(text)

    def _tell(self, text: str) -> None:
        if self.tray is not None:
            self.tray.notify("info", "Vigil", text)
        else:
            self.library_controller.set_status(text)


def _has_display() -> bool:
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the tray app until the agent quits; returns the exit status."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not _has_display():
        print(
            "vigil: no graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set), so the "
            "tray app cannot start. Use the command line instead: vigil status, vigil login, "
            "vigil sync, vigil search TEXT.",
            file=sys.stderr,
        )
        return 2
    qt_app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    qt_app.setApplicationName("Vigil")
    qt_app.setDesktopFileName("vigil")
    paths = AppPaths.default()
    try:
        settings = Settings.load(paths, load_policy())
    except VigilError as exc:
        print(f"vigil: {exc.message}", file=sys.stderr)
        QMessageBox.critical(None, "Vigil cannot start", exc.message)
        return 2
    app = VigilApp(qt_app, paths, settings)
    # Ctrl+C in a terminal quits cleanly; the timer lets Python see the signal during Qt's loop.
    signal.signal(signal.SIGINT, lambda *_args: app.quit())
    wake = QTimer()
    wake.start(500)
    wake.timeout.connect(lambda: None)
    app.start()
    QTimer.singleShot(0, lambda: startup_mark("event_loop"))
    return qt_app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
