"""The tray app's composition root: builds the core, starts it in a fixed order, carries core
events to the UI thread and turns what the agent asks for into core calls.

Windows only render and emit intents; every decision lives in client/core (status, reminders)
and every blocking call (HTTP, SQLite, keyring) runs on the TaskRunner's workers.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox, QSystemTrayIcon

from client.core.autostart import autostart_for_platform
from client.core.content import Playbook, Template
from client.core.errors import HubOffline, LockedOut, SettingsError, VigilError
from client.core.events import Event
from client.core.idle import IdleTimer
from client.core.models import Alert
from client.core.offline_unlock import OfflineUnlock
from client.core.outbox import AckRecord, AckState
from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.reminders import AlertAttention
from client.core.settings import Settings
from client.core.status import AppStatus, Connection, tray_look
from client.core.updates import CHECK_INTERVAL_SECONDS, UpdateChecker, UpdateReady
from client.ui import resources
from client.ui.alert_popup import AlertCard, AlertPopup
from client.ui.idle_lock import IdleWatcher
from client.ui.library import AlertHistoryEntry, LibraryWindow
from client.ui.settings_dialog import SettingsDialog
from client.ui.signin import SignInDialog
from client.ui.sound import AlertSound
from client.ui.tasks import TaskRunner
from client.ui.tray import TrayIcon

if TYPE_CHECKING:
    from client.core.auth import Account, MfaChallenge
    from client.core.services import CoreServices
    from client.core.vpn import VpnStatus

    CoreFactory = Callable[[AppPaths, Settings], CoreServices]

log = logging.getLogger("vigil.app")

NO_TRAY_NOTICE = "No system tray found; Vigil opens its window instead."
REMINDER_TICK_MS = 1000
# Names a file that start-up milestones are appended to, for the start-up benchmark.
STARTUP_MARKS_ENV = "VIGIL_PERF_MARKS"

# By client.core.sync.ConnectionState value (a StrEnum, so its members look these up directly).
_CONNECTIONS: dict[str, Connection] = {
    "online": "online",
    "offline": "offline",
    "auth_needed": "auth_needed",
}


def build_core_services(paths: AppPaths, settings: Settings) -> CoreServices:
    """CoreServices.build, importing the core (HTTP stack, SQLite layer, keyring) on first use.

    The app calls it on a worker thread once the tray icon is up, so those imports never delay
    the icon.
    """
    from client.core.services import CoreServices

    return CoreServices.build(paths, settings)


def _history_entry(alert: Alert, acks: Sequence[AckRecord]) -> AlertHistoryEntry:
    """An alert for the library's history, with the state of the agent's latest answer."""
    if not acks:
        return AlertHistoryEntry(alert)
    last = acks[-1]
    if last.state == AckState.PENDING:
        return AlertHistoryEntry(alert, "pending", last.action)
    if last.state == AckState.SYNCED:
        return AlertHistoryEntry(alert, "synced", last.action)
    return AlertHistoryEntry(alert, "rejected", last.action, last.detail or last.error or "")


def startup_mark(name: str) -> None:
    """Append `name` and the monotonic clock (seconds) to $VIGIL_PERF_MARKS when it is set."""
    path = os.environ.get(STARTUP_MARKS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as marks:
            marks.write(f"{name} {time.monotonic():.6f}\n")


def sign_in_problem(error: BaseException) -> str:
    """A failed sign-in step in words for the dialog."""
    if isinstance(error, LockedOut):
        minutes = max(1, math.ceil(error.retry_after / 60))
        return f"Locked out: try again in {minutes} min"
    if isinstance(error, VigilError):
        return error.message
    return "Signing in failed unexpectedly. Try again; the log has the details."


class CoreBridge(QObject):
    """Core events, fired on background threads, re-emitted as Qt signals on the UI thread.

    The bridge lives on the UI thread, so every emit from a core thread is delivered queued.

    Signals:
        alert_received: a new Alert from the stream.
        sync_status_changed: a new SyncStatus.
        outbox_changed: new OutboxCounts.
        vpn_changed: a new VpnStatus.
        signed_in: the Account that signed in.
        signed_out: why the sign-in ended, in words.
        warning: something the agent should know, in words.
        alerts_missed: alerts after this seq expired on the hub before this computer got them.
    """

    alert_received = Signal(object)
    sync_status_changed = Signal(object)
    outbox_changed = Signal(object)
    vpn_changed = Signal(object)
    signed_in = Signal(object)
    signed_out = Signal(str)
    warning = Signal(str)
    alerts_missed = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._links: list[tuple[Event[Any], Callable[[Any], None]]] = []

    def attach(self, core: CoreServices) -> None:
        """Listen to the core's events."""
        self._link(core.alert_stream.alert_received, self.alert_received.emit)
        self._link(core.sync.status_changed, self.sync_status_changed.emit)
        self._link(core.outbox.changed, self.outbox_changed.emit)
        self._link(core.vpn.changed, self.vpn_changed.emit)
        self._link(core.auth.signed_in, self.signed_in.emit)
        self._link(core.auth.signed_out, self.signed_out.emit)
        self._link(core.auth.warning, self.warning.emit)
        self._link(core.alert_stream.gap, self.alerts_missed.emit)

    def detach(self) -> None:
        """Stop listening (before the core is closed)."""
        for event, callback in self._links:
            event.disconnect(callback)
        self._links = []

    def _link(self, event: Event[Any], emit: Callable[[Any], object]) -> None:
        def forward(value: Any) -> None:
            emit(value)

        event.connect(forward)
        self._links.append((event, forward))


class VigilApp(QObject):
    """The running tray app: its windows, the core behind them, and the wiring between them.

    Signals:
        ack_state_shown: (alert_id, state) each time the pop-up shows an acknowledgement state.
        core_ready: the core services were built and started.
    """

    ack_state_shown = Signal(str, str)
    core_ready = Signal()

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
        self._core_factory = core_factory
        if tray_available is None:
            tray_available = QSystemTrayIcon.isSystemTrayAvailable()
        self.core: CoreServices | None = None
        self.tasks = TaskRunner(self)
        self.bridge = CoreBridge(self)
        self.attention = attention or AlertAttention(
            notify_lesser=bool(settings.get("minor_alert_notifications"))
        )
        self.sound = AlertSound(self, enabled=bool(settings.get("sounds")))
        self.popup = AlertPopup(sound=self.sound)
        self.library = LibraryWindow()
        self.tray: TrayIcon | None = TrayIcon(self) if tray_available else None
        self.signin: SignInDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.idle = IdleTimer(settings.get("idle_lock_minutes"))
        self.idle_watcher = IdleWatcher(self.idle, parent=self)
        self.unlocker = OfflineUnlock()
        self.notice: QMessageBox | None = None
        self._challenge: MfaChallenge | None = None
        self._library_cached = False
        self._cards: dict[str, AlertCard] = {}
        self._acks: dict[str, str] = {}  # ack_id -> alert_id, until synced or rejected
        self._vpn: VpnStatus | None = None
        self._closing = False
        self._reminders = QTimer(self)
        self._reminders.setInterval(reminder_tick_ms)
        self._reminders.timeout.connect(self.check_reminders)
        self._update_timer = QTimer(self)
        self._update_timer.setInterval(CHECK_INTERVAL_SECONDS * 1000)
        self._update_timer.timeout.connect(self.check_for_update)
        self._link_callbacks()

    # Start-up and shutdown

    def start(self) -> None:
        """Start everything in a fixed order, logging each step."""
        log.info("start 1/4: look (stylesheet, icons)")
        self._qt_app.setStyleSheet(resources.stylesheet())
        self._qt_app.setWindowIcon(resources.app_icon())
        log.info("start 2/4: tray icon")
        if self.tray is not None:
            self._qt_app.setQuitOnLastWindowClosed(False)
            self.tray.set_signed_in(False)
            # The icon first: a tray entry shown without one flashes empty on some desktops.
            self.update_status()
            self.tray.show()
            startup_mark("tray_shown")
        else:
            log.warning("no system tray: showing the library window instead")
            self._qt_app.setQuitOnLastWindowClosed(True)
            self.show_library()
            self.notice = QMessageBox(
                QMessageBox.Icon.Information, "Vigil", NO_TRAY_NOTICE, parent=self.library
            )
            self.notice.open()
        self.update_status()
        log.info("start 3/4: alert reminders and idle lock")
        self._reminders.start()
        self._update_timer.start()
        self.check_for_update()
        self.idle_watcher.start()
        log.info("start 4/4: core services and sign-in")
        if self.settings.get("hub_url"):
            self._build_core(then=self._resume_sign_in)
        else:
            self.show_sign_in()

    @Slot()
    def quit(self) -> None:
        """Stop in reverse order: reminders, queued work (writes finish), core, then Qt."""
        if self._closing:
            return
        self._closing = True
        log.info("stopping: reminders, idle lock, workers, core services")
        self._reminders.stop()
        self._update_timer.stop()
        self.idle_watcher.stop()
        self.tasks.shutdown()
        self._close_core()
        if self.tray is not None:
            self.tray.hide()
        self.popup.hide()
        self.library.hide()
        self._qt_app.quit()

    def _build_core(self, *, then: Callable[[], None] | None = None) -> None:
        def build() -> tuple[CoreServices, bool]:
            core = self._core_factory(self.paths, self.settings)
            return core, core.cache.content_cursor() is not None

        def done(result: tuple[CoreServices, bool] | None, error: BaseException | None) -> None:
            if error is not None or result is None:
                log.error("core services could not start: %s", error)
                self.show_sign_in(sign_in_problem(error) if error else None)
                return
            self._core_started(*result)
            if then is not None:
                then()

        self.tasks.run_write(build, done)

    def _core_started(self, core: CoreServices, library_cached: bool) -> None:
        if self._closing:
            core.close()
            return
        self.core = core
        self._library_cached = library_cached
        self.bridge.attach(core)
        core.start()
        log.info("core services started for %s", core.hub.base_url)
        self.core_ready.emit()
        self._load_alerts()
        self.reload_library()
        self.update_status()
        if core.cache.quarantined is not None:
            self.bridge.warning.emit(
                "Vigil's local library was damaged, so it was set aside (kept at "
                f"{core.cache.quarantined} for IT) and is being downloaded again from the hub. "
                "Acknowledgements are stored apart and were not affected."
            )

    def _close_core(self) -> None:
        core, self.core = self.core, None
        if core is not None:
            self.bridge.detach()
            core.close()

    # Signing in

    def _resume_sign_in(self) -> None:
        core = self.core
        username = self.settings.get("last_username")
        if core is None:
            return
        if not username:
            self.show_sign_in()
            return

        def done(account: Account | None, error: BaseException | None) -> None:
            if error is not None:
                self.show_sign_in(sign_in_problem(error))
            elif account is None:
                self.show_sign_in()

        self.tasks.run(lambda: core.auth.resume(username), done)

    @Slot()
    def show_sign_in(self, problem: str | None = None) -> None:
        """Open the sign-in dialog (or bring it forward), showing `problem` when given."""
        if self.signin is None:
            dialog = SignInDialog()
            dialog.set_hub(
                self.settings.get("hub_url") or "", locked=self.settings.is_locked("hub_url")
            )
            dialog.set_username(self.settings.get("last_username") or "")
            dialog.credentials_submitted.connect(self._on_credentials)
            dialog.code_submitted.connect(self._on_code)
            dialog.continue_offline.connect(self._on_continue_offline)
            dialog.cancelled.connect(self._on_sign_in_closed)
            dialog.accepted.connect(self._on_sign_in_closed)
            self.signin = dialog
        self.signin.show()
        self.signin.raise_()
        self.signin.activateWindow()
        if problem:
            self.signin.show_error(problem)

    @Slot(str, str, str)
    def _on_credentials(self, hub_url: str, username: str, password: str) -> None:
        if not self.settings.is_locked("hub_url") and hub_url != self.settings.get("hub_url"):
            try:
                self.settings.set("hub_url", hub_url)
            except SettingsError as exc:
                self._sign_in_failed(exc)
                return
            log.info("hub address changed; rebuilding the core services")
            self._close_core()
            self.tasks.run_write(self.settings.save)
            self._build_core(then=lambda: self._begin(username, password))
            return
        if self.core is None:
            self._build_core(then=lambda: self._begin(username, password))
            return
        self._begin(username, password)

    def _begin(self, username: str, password: str) -> None:
        core = self.core
        if core is None:
            return

        def done(challenge: MfaChallenge | None, error: BaseException | None) -> None:
            if self.signin is None:
                return
            if error is not None or challenge is None:
                self._sign_in_failed(error, username=username)
                return
            self._challenge = challenge
            self.signin.show_code_step()
            # The hub just accepted this password: keep a slow, salted check of it for
            # unlocking the idle lock while the hub is unreachable.
            self.tasks.run(lambda: self.unlocker.enroll(username, password), _log_failure)

        self.tasks.run(lambda: core.auth.begin(username, password), done)

    @Slot(str)
    def _on_code(self, code: str) -> None:
        core, challenge = self.core, self._challenge
        if core is None or challenge is None:
            return

        def done(account: Account | None, error: BaseException | None) -> None:
            if error is not None or account is None:
                if getattr(error, "code", "") == "mfa_token_invalid" and self.signin is not None:
                    # The password step expired: that step has to be done again.
                    self.signin.show_credentials_step()
                self._sign_in_failed(error)
                return
            self._challenge = None
            if self.signin is not None:
                self.signin.accept()
            self.settings.set("last_username", account.username)
            self.tasks.run_write(self.settings.save)

        self.tasks.run(lambda: core.auth.complete(challenge, code), done)

    def _sign_in_failed(self, error: BaseException | None, *, username: str = "") -> None:
        if self.signin is None:
            return
        offer = (
            isinstance(error, HubOffline)
            and self._library_cached
            and username == self.settings.get("last_username")
        )
        self.signin.show_error(
            sign_in_problem(error) if error else "Sign-in failed.", offer_offline=offer
        )

    @Slot()
    def _on_continue_offline(self) -> None:
        log.info("continuing offline with the cached library")
        if self.signin is not None:
            self.signin.accept()
        self.show_library()

    @Slot()
    def _on_sign_in_closed(self) -> None:
        dialog, self.signin = self.signin, None
        self._challenge = None
        if dialog is not None:
            dialog.deleteLater()

    @Slot(object)
    def _on_signed_in(self, account: Account) -> None:
        log.info("signed in as %s%s", account.username, "" if account.verified else " (offline)")
        if self.tray is not None:
            self.tray.set_signed_in(True)
        self.library.lock_screen.set_user(account.username)
        if self.idle.locked:
            # Signing in again proves who the agent is, as the unlock prompt would.
            self.idle_watcher.unlock()
        self.update_status()

    @Slot(str)
    def _on_signed_out(self, reason: str) -> None:
        if self.tray is not None:
            self.tray.set_signed_in(False)
        self.update_status()
        if not self._closing:
            self.show_sign_in(None if reason == "You signed out." else reason)

    @Slot()
    def check_for_update(self) -> None:
        """Look for a signed update off the UI thread; the tray says when one is ready."""
        try:
            checker = UpdateChecker.from_settings(self.settings, self.paths)
        except VigilError as exc:
            log.warning("update checks are off: %s", exc.message)
            return
        if checker is None:
            return

        def done(ready: UpdateReady | None, error: BaseException | None) -> None:
            if error is not None:
                log.warning("update check: %s", getattr(error, "message", error))
            elif ready is not None:
                urgency = " IT requires it." if ready.required else ""
                self._on_warning(f"An update is ready: Vigil {ready.version}.{urgency}")

        self.tasks.run(checker.check, done)

    @Slot(str)
    def _on_warning(self, text: str) -> None:
        log.warning("%s", text)
        if self.tray is not None:
            self.tray.notify("info", "Vigil", text)
        else:
            self.library.set_status(text)

    @Slot()
    def _sign_out(self) -> None:
        core = self.core
        if core is None:
            return
        account = core.auth.account

        def sign_out() -> None:
            core.auth.sign_out()
            if account is not None:
                self.unlocker.forget(account.username)

        self.tasks.run(sign_out, _log_failure)

    # Idle lock

    @Slot(bool)
    def _on_locked_changed(self, locked: bool) -> None:
        log.info("idle lock %s", "on" if locked else "off")
        self.library.set_locked(locked)
        if locked:
            # Alert details stay hidden too; only critical alerts may still pop up.
            for alert_id in self.popup.alert_ids():
                card = self._cards.get(alert_id)
                if card is None or not self.idle_watcher.pops_up_while_locked(card.alert.severity):
                    self.popup.remove_alert(alert_id)
            return
        for alert in self.attention.waiting():
            if alert.id not in self.popup.alert_ids():
                self._present(self._cards.get(alert.id) or AlertCard(alert), sound=False)

    @Slot(str)
    def _on_unlock_requested(self, password: str) -> None:
        username = self.settings.get("last_username")
        screen = self.library.lock_screen
        if not username:
            screen.show_error("Sign in to unlock Vigil.")
            self.show_sign_in()
            return
        screen.set_busy(True)

        def check() -> tuple[bool, bool]:
            return self.unlocker.verify(username, password), self.unlocker.is_enrolled(username)

        def done(result: tuple[bool, bool] | None, error: BaseException | None) -> None:
            matched, enrolled = result if result is not None else (False, False)
            if matched:
                self.idle_watcher.unlock()
            elif error is not None:
                screen.show_error(sign_in_problem(error))
            elif not enrolled:
                screen.show_error("This computer cannot check your password yet: sign in again.")
                self.show_sign_in()
            else:
                screen.show_error("That password is not right. Try again.")

        self.tasks.run(check, done)

    # Settings

    @Slot()
    def show_settings(self) -> None:
        """Open the settings dialog (or bring it forward)."""
        if self.settings_dialog is None:
            dialog = SettingsDialog(self.settings)
            dialog.changes_submitted.connect(self._apply_settings)
            dialog.finished.connect(self._on_settings_closed)
            self.settings_dialog = dialog
        self.settings_dialog.show()
        self.settings_dialog.raise_()
        self.settings_dialog.activateWindow()

    @Slot()
    def _on_settings_closed(self) -> None:
        dialog, self.settings_dialog = self.settings_dialog, None
        if dialog is not None:
            dialog.deleteLater()

    @Slot(dict)
    def _apply_settings(self, changes: dict[str, Any]) -> None:
        problems = []
        for name, value in changes.items():
            try:
                self.settings.set(name, value)
            except SettingsError as exc:
                problems.append(exc.message)
        self.sound.enabled = bool(self.settings.get("sounds"))
        self.attention.notify_lesser = bool(self.settings.get("minor_alert_notifications"))
        self.idle.set_idle_minutes(self.settings.get("idle_lock_minutes"))
        self.tasks.run_write(self.settings.save, _log_failure)
        if "start_at_login" in changes:
            enabled = bool(self.settings.get("start_at_login"))
            self.tasks.run_write(lambda: _set_autostart(enabled), self._on_autostart_done)
        if problems:
            self._show_notice("Some settings were not changed", "\n".join(problems))
        self.update_status()

    def _on_autostart_done(self, _result: object, error: BaseException | None) -> None:
        if error is not None:
            message = error.message if isinstance(error, VigilError) else str(error)
            self._show_notice("Start at login was not changed", message)

    def _show_notice(self, title: str, text: str) -> None:
        self.notice = QMessageBox(QMessageBox.Icon.Warning, title, text)
        self.notice.open()

    # Alerts

    def _load_alerts(self) -> None:
        """Bring back alerts from earlier runs that still wait for an acknowledgement."""
        core = self.core
        if core is None:
            return

        def load() -> list[tuple[AlertCard, bool]]:
            return [self._card_and_acted(core, alert) for alert in reversed(core.cache.alerts())]

        def done(found: list[tuple[AlertCard, bool]] | None, error: BaseException | None) -> None:
            for card, acted in found or []:
                self._remember(card)
                if self.attention.receive(card.alert, acted=acted) == "popup":
                    self._present(card, sound=False)
            self.update_status()

        self.tasks.run(load, done)

    @staticmethod
    def _card_and_acted(core: CoreServices, alert: Alert) -> tuple[AlertCard, bool]:
        acted = any(ack.state != AckState.REJECTED for ack in core.outbox.for_alert(alert.id))
        playbook = core.cache.playbook(alert.playbook_id) if alert.playbook_id else None
        templates = [core.cache.template(tid) for tid in alert.template_ids]
        card = AlertCard(
            alert=alert,
            playbook_title=playbook.title if playbook else None,
            templates=tuple((t.id, t.title) for t in templates if t is not None),
        )
        return card, acted

    def _remember(self, card: AlertCard) -> None:
        self._cards[card.alert.id] = card

    @Slot(object)
    def _on_alert(self, alert: Alert) -> None:
        core = self.core
        if core is None:
            return

        def done(found: tuple[AlertCard, bool] | None, error: BaseException | None) -> None:
            card, acted = found if found is not None else (AlertCard(alert), False)
            self._remember(card)
            route = self.attention.receive(alert, acted=acted)
            log.info("alert %s (%s) arrived: %s", alert.id, alert.severity, route or "nothing")
            self.update_status()
            self.reload_library()
            if route == "popup":
                self._present(card)
            elif route == "notification":
                self._notify(alert)

        self.tasks.run(lambda: self._card_and_acted(core, alert), done)

    def _present(self, card: AlertCard, *, sound: bool = True) -> None:
        # While locked, lesser alerts wait (still tracked) until the agent unlocks.
        if self.idle_watcher.pops_up_while_locked(card.alert.severity):
            self.popup.present(card, sound=sound)

    def _notify(self, alert: Alert) -> None:
        if self.tray is not None:
            self.tray.notify(alert.severity, alert.title, alert.body)
        else:
            self.library.set_status(f"New {alert.severity} alert: {alert.title}")

    @Slot()
    def check_reminders(self) -> None:
        """Close expired alerts and bring back (with sound) those due for a reminder."""
        expired = self.attention.take_expired()
        for alert_id in expired:
            log.info("alert %s expired", alert_id)
            self.popup.remove_alert(alert_id)
        for alert in self.attention.due():
            log.info("reminding of unacknowledged alert %s", alert.id)
            self._present(self._cards.get(alert.id) or AlertCard(alert))
            self.attention.shown(alert.id)
        if expired:
            self.update_status()

    @Slot(str, str, str)
    def _on_ack_requested(self, alert_id: str, action: str, note: str) -> None:
        core = self.core
        if core is None:
            self._show_ack_state(alert_id, "failed", "Vigil is not connected to its data yet.")
            return

        def done(record: AckRecord | None, error: BaseException | None) -> None:
            if error is not None or record is None:
                reason = error.message if isinstance(error, VigilError) else str(error)
                self._show_ack_state(alert_id, "failed", reason)
                return
            # Only now is the acknowledgement on disk, so only now may the pop-up say so.
            self.attention.mark_acted(alert_id)
            self._acks[record.ack_id] = alert_id
            self._show_ack_state(alert_id, "recorded")
            self._refresh_ack_states()
            self.update_status()

        self.tasks.run_write(lambda: core.outbox.record(alert_id, action, note or None), done)

    def _show_ack_state(self, alert_id: str, state: Any, reason: str = "") -> None:
        self.popup.set_ack_state(alert_id, state, reason)
        self.ack_state_shown.emit(alert_id, str(state))

    @Slot(object)
    def _on_outbox_changed(self, _counts: object) -> None:
        self._refresh_ack_states()
        self.update_status()

    def _refresh_ack_states(self) -> None:
        core = self.core
        watched = dict(self._acks)
        if core is None or not watched:
            return

        def done(records: list[AckRecord | None] | None, error: BaseException | None) -> None:
            for record in records or []:
                if record is None or record.ack_id not in self._acks:
                    continue
                alert_id = self._acks[record.ack_id]
                if record.state == AckState.SYNCED:
                    del self._acks[record.ack_id]
                    self._show_ack_state(alert_id, "synced")
                elif record.state == AckState.REJECTED:
                    del self._acks[record.ack_id]
                    self._show_ack_state(
                        alert_id, "rejected", record.detail or record.error or "no reason given"
                    )
                    card = self._cards.get(alert_id)
                    if card is not None:
                        self.attention.reopen(card.alert)
            self.reload_library()

        self.tasks.run(lambda: [core.outbox.get(ack_id) for ack_id in watched], done)

    # Status

    @Slot()
    def update_status(self) -> None:
        """Recompute the tray's look and the library's status line from the core's state."""
        core = self.core
        connection: Connection = "signed_out"
        user = None
        pending = rejected = 0
        last_synced = None
        if core is not None:
            sync_status = core.sync.status
            pending, rejected = sync_status.pending_acks, sync_status.rejected_acks
            last_synced = sync_status.last_synced_at
            account = core.auth.account
            if account is not None:
                user = account.username
                connection = _CONNECTIONS[sync_status.state]
        status = AppStatus(
            connection=connection,
            signed_in_user=user,
            vpn_on=self._vpn.on if self._vpn else None,
            vpn_required=bool(self.settings.get("vpn_required")),
            pending_acks=pending,
            rejected_acks=rejected,
            unacked_critical=self.attention.unacked_critical(),
            last_synced_at=last_synced,
        )
        look = tray_look(status, now=datetime.now(UTC))
        if self.tray is not None:
            self.tray.show_look(look)
        self.library.set_status(look.tooltip)
        if connection == "offline" or (core is not None and core.auth.account is None):
            self.library.set_offline(last_synced)
        else:
            self.library.set_online()

    @Slot(object)
    def _on_vpn_changed(self, status: VpnStatus) -> None:
        self._vpn = status
        self.update_status()

    @Slot(object)
    def _on_sync_status(self, _status: object) -> None:
        self.update_status()
        self.reload_library()

    # Library

    @Slot()
    def show_library(self) -> None:
        """Show the library window in front."""
        self.library.show()
        self.library.raise_()
        self.library.activateWindow()

    def reload_library(self) -> None:
        """Refill the library's lists from the cache (off the UI thread)."""
        core = self.core
        if core is None:
            return

        def load() -> tuple[list[Playbook], list[Template], list[AlertHistoryEntry]]:
            entries = [
                _history_entry(alert, core.outbox.for_alert(alert.id))
                for alert in core.cache.alerts()
            ]
            return core.cache.playbooks(), core.cache.templates(), entries

        def done(
            found: tuple[list[Playbook], list[Template], list[AlertHistoryEntry]] | None,
            error: BaseException | None,
        ) -> None:
            if found is None:
                log.error("the library could not be read: %s", error)
                return
            playbooks, templates, entries = found
            self.library.set_playbooks(playbooks)
            self.library.set_templates(templates)
            self.library.set_alerts(entries)

        self.tasks.run(load, done)

    @Slot(str)
    def _search(self, text: str) -> None:
        core = self.core
        if core is None:
            return
        self.tasks.run(
            lambda: core.cache.search(text),
            lambda hits, _error: self.library.show_results(hits or [], text),
        )

    def open_playbook(self, playbook_id: str, alert_id: str | None = None) -> None:
        """Show a playbook in the library, with the checklist progress of `alert_id`."""
        core = self.core
        if core is None:
            return

        def load() -> tuple[Playbook | None, list[Template], list[int]]:
            playbook = core.cache.playbook(playbook_id)
            if playbook is None:
                return None, [], []
            linked = [core.cache.template(tid) for tid in playbook.template_ids]
            # A playbook opened outside an alert keeps its progress under the empty alert id.
            done_steps = sorted(core.cache.checklist(alert_id or "", playbook_id))
            return playbook, [t for t in linked if t is not None], done_steps

        def done(
            found: tuple[Playbook | None, list[Template], list[int]] | None,
            error: BaseException | None,
        ) -> None:
            playbook, linked, done_steps = found if found is not None else (None, [], [])
            if playbook is None:
                self.library.set_status("That playbook is not in the library on this computer yet.")
                self.show_library()
                return
            card = self._cards.get(alert_id or "")
            self.library.show_playbook(
                playbook,
                alert_id=alert_id,
                alert_title=card.alert.title if card else None,
                done_steps=done_steps,
                linked_templates=linked,
            )
            self.show_library()

        self.tasks.run(load, done)

    @Slot(str)
    def _open_template(self, template_id: str) -> None:
        core = self.core
        if core is None:
            return

        def done(template: Template | None, error: BaseException | None) -> None:
            if template is not None:
                self.library.show_template(template)
                self.show_library()

        self.tasks.run(lambda: core.cache.template(template_id), done)

    @Slot(str, str, int, bool)
    def _checklist_toggled(self, alert_id: str, playbook_id: str, step: int, done: bool) -> None:
        core = self.core
        if core is None:
            return
        self.tasks.run_write(
            lambda: core.cache.set_checklist_step(alert_id, playbook_id, step, done)
        )

    @Slot(str)
    def _copy_template(self, template_id: str) -> None:
        core = self.core
        if core is None:
            return

        def done(template: Template | None, error: BaseException | None) -> None:
            if template is None:
                return
            QGuiApplication.clipboard().setText(template.body)
            log.info("template %s copied to the clipboard", template_id)

        self.tasks.run(lambda: core.cache.template(template_id), done)

    # Tray

    @Slot()
    def _sync_now(self) -> None:
        if self.core is not None:
            self.core.sync.request_sync()

    @Slot()
    def _show_status(self) -> None:
        look = self.tray.look if self.tray is not None else None
        text = look.tooltip.replace(" · ", "\n") if look else "Starting…"
        self.notice = QMessageBox(QMessageBox.Icon.Information, "Vigil status", text)
        self.notice.open()

    @Slot()
    def _show_alerts(self) -> None:
        self.library.show_alerts()
        self.show_library()

    def _link_callbacks(self) -> None:
        bridge = self.bridge
        bridge.alert_received.connect(self._on_alert)
        bridge.sync_status_changed.connect(self._on_sync_status)
        bridge.outbox_changed.connect(self._on_outbox_changed)
        bridge.vpn_changed.connect(self._on_vpn_changed)
        bridge.signed_in.connect(self._on_signed_in)
        bridge.signed_out.connect(self._on_signed_out)
        bridge.warning.connect(self._on_warning)
        bridge.alerts_missed.connect(
            lambda _seq: self._on_warning(
                "Some alerts sent while this computer was away are no longer kept by the hub. "
                "Ask your dispatcher whether anything still needs you."
            )
        )

        self.popup.ack_requested.connect(self._on_ack_requested)
        self.popup.playbook_requested.connect(
            lambda playbook_id: self.open_playbook(playbook_id, self.popup.current_alert_id())
        )
        self.popup.template_copy_requested.connect(self._copy_template)

        library = self.library
        library.search_requested.connect(self._search)
        library.playbook_opened.connect(lambda playbook_id: self.open_playbook(playbook_id))
        library.template_opened.connect(self._open_template)
        library.alert_playbook_opened.connect(
            lambda alert_id, playbook_id: self.open_playbook(playbook_id, alert_id)
        )
        library.sync_requested.connect(self._sync_now)
        library.checklist_toggled.connect(self._checklist_toggled)
        library.lock_screen.unlock_requested.connect(self._on_unlock_requested)
        self.idle_watcher.locked_changed.connect(self._on_locked_changed)

        if self.tray is not None:
            tray = self.tray
            tray.open_library_requested.connect(self.show_library)
            tray.alerts_requested.connect(self._show_alerts)
            tray.sync_requested.connect(self._sync_now)
            tray.status_requested.connect(self._show_status)
            tray.settings_requested.connect(self.show_settings)
            tray.sign_out_requested.connect(self._sign_out)
            tray.sign_in_requested.connect(self.show_sign_in)
            tray.quit_requested.connect(self.quit)
            tray.notification_clicked.connect(self._show_alerts)


def _log_failure(_result: object, error: BaseException | None) -> None:
    if error is not None:
        log.warning("background task failed: %s", error)


def _set_autostart(enabled: bool) -> None:
    entry = autostart_for_platform()
    if not enabled:
        entry.disable()
        return
    frozen = getattr(sys, "frozen", False)
    entry.enable([sys.executable] if frozen else [sys.executable, "-m", "client.app"])


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
