"""The library window's controller: fills it from the cache off the UI thread, runs its searches,
opens playbooks and templates, and keeps checklist progress. The window is built when the agent
first opens it; until then only what it should show is kept."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from client.controllers.core_host import CoreHost
from client.controllers.tasks import TaskRunner
from client.core.answers import answer_for
from client.core.models import Alert
from client.core.reminders import parse_time
from client.core.status import TrayLook
from client.core.vpn_gate import VpnMode, vpn_gate
from client.ui.view_models import AlertHistoryEntry

if TYPE_CHECKING:
    from client.core.content import Playbook, Template
    from client.core.outbox import AckRecord
    from client.core.services import CoreServices
    from client.core.vpn import VpnStatus
    from client.ui.library import LibraryWindow

    Lists = tuple[list[Playbook], list[Template], list[AlertHistoryEntry]]
    OpenedPlaybook = tuple[Playbook | None, list[Template], list[int], str | None]

log = logging.getLogger(__name__)

MISSING = "That playbook is not in the library on this computer yet."
DAMAGED = (
    "That item failed its signature check on this computer, so it is not shown; it is being "
    "fetched again from the hub."
)


def history_entry(
    alert: Alert, acks: Sequence[AckRecord], answered_on: str | None = None
) -> AlertHistoryEntry:
    """An alert for the library's history, with the state of the agent's answer, where it was
    given when on another computer, and whether an update came after it."""
    answer = answer_for(acks)
    answered_at = max(
        (t for ack in acks if ack.state != "dismissed" and (t := parse_time(ack.acted_at))),
        default=None,
    )
    update = alert.updates[-1] if alert.updates else None
    update_at = parse_time(update.at) if update is not None and update.kind == "update" else None
    return AlertHistoryEntry(
        alert,
        answer.state,
        answer.action,
        answer.reason,
        answered_on=answered_on,
        updated_since_answer=(
            answered_at is not None and update_at is not None and update_at > answered_at
        ),
    )


def _lists(core: CoreServices) -> Lists:
    device_id = core.settings.get("device_id")
    entries = [
        history_entry(
            alert, core.outbox.for_alert(alert.id), _answered_on(core, alert.id, device_id)
        )
        for alert in core.cache.alerts()
    ]
    return core.cache.playbooks(), core.cache.templates(), entries


def _answered_on(core: CoreServices, alert_id: str, device_id: object) -> str | None:
    # The hub's record outlives this run: "Answered on" survives a restart.
    answer = core.answers.hub_answer(alert_id)
    if answer is None or (answer.device_id is not None and answer.device_id == device_id):
        return None
    return answer.device_name or "another computer"


class LibraryController(QObject):
    """Owns the library window and answers what the agent asks of it.

    Signals:
        sync_requested: the agent asked for a sync now.
        unlock_requested(password): the agent typed a password on the lock screen.
        sign_in_requested: the lock screen asked for the sign-in window.
        about_requested: the agent asked for the About window.
        alert_opened(alert_id): the agent opened an alert from the history, to answer it.
        content_opened(alert_id, kind, id, version): a playbook was shown for an alert (the
            versions an agent read before answering are recorded with the answer).
    """

    sync_requested = Signal()
    unlock_requested = Signal(str)
    sign_in_requested = Signal()
    about_requested = Signal()
    alert_opened = Signal(str)
    content_opened = Signal(str, str, str, int)

    def __init__(self, tasks: TaskRunner, host: CoreHost, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks = tasks
        self._host = host
        self._window: LibraryWindow | None = None
        # What the window shows, kept while it is not built yet.
        self._status = ""
        self._offline: tuple[bool, datetime | None] = (False, None)
        self._locked = False
        self._vpn_banner: str | None = None
        self._user: str | None = None
        # One read of the lists at a time: a burst of alerts asks for hundreds of reloads, and
        # each reads the whole history, so they are folded into one more read after the current.
        self._reloading = False
        self._reload_again = False
        # alert_id -> the other computer where the agent answered it (from the hub, this run).
        self._answered_on: dict[str, str] = {}

    @property
    def window(self) -> LibraryWindow:
        """The library window, built on first use."""
        if self._window is None:
            self._window = self._build_window()
            self.reload()
        return self._window

    @Slot()
    def show(self) -> None:
        """Show the library window in front."""
        from client.ui.placement import bring_forward

        bring_forward(self.window)

    @Slot()
    def show_alerts(self) -> None:
        """Show the library on its Alerts tab."""
        self.window.show_alerts()
        self.show()

    def hide(self) -> None:
        """Hide the window, if it was ever built."""
        if self._window is not None:
            self._window.hide()

    @Slot()
    def reload(self) -> None:
        """Refill the window's lists from the cache (off the UI thread); nothing while unbuilt."""
        core = self._host.core
        if core is None or self._window is None:
            return
        if self._reloading:
            self._reload_again = True
            return
        self._reloading = True

        def done(found: Lists | None, error: BaseException | None) -> None:
            self._reloading = False
            if found is None or self._window is None:
                log.error("the library could not be read: %s", error)
            else:
                playbooks, templates, entries = found
                self._window.set_playbooks(playbooks)
                self._window.set_templates(templates)
                self._window.set_alerts(
                    [
                        replace(
                            entry,
                            answered_on=self._answered_on.get(entry.alert.id) or entry.answered_on,
                        )
                        for entry in entries
                    ]
                )
            if self._reload_again:
                # The lists changed while they were read: shown now, but read once more.
                self._reload_again = False
                self.reload()

        self._tasks.run(lambda: _lists(core), done)

    @Slot(str, str)
    def mark_answered_elsewhere(self, alert_id: str, device_name: str) -> None:
        """The agent answered this alert on another computer: the history says where."""
        self._answered_on[alert_id] = device_name
        self.reload()

    def open_playbook(self, playbook_id: str, alert_id: str | None = None) -> None:
        """Show a playbook in the library, with the checklist progress of `alert_id`."""
        core = self._host.core
        if core is None:
            return
        if self._vpn_banner is not None:
            self.set_status(self._vpn_banner)
            self.show()
            return

        def load() -> OpenedPlaybook:
            playbook = core.cache.playbook(playbook_id)
            if playbook is None:
                # Without a playbook, the last slot says why it cannot be shown.
                why = DAMAGED if core.cache.is_damaged("playbook", playbook_id) else MISSING
                return None, [], [], why
            linked = [core.cache.template(tid) for tid in playbook.template_ids]
            # A playbook opened outside an alert keeps its progress under the empty alert id.
            done_steps = sorted(core.cache.checklist(alert_id or "", playbook_id))
            alert = core.cache.alert(alert_id) if alert_id else None
            title = alert.title if alert is not None else None
            return playbook, [t for t in linked if t is not None], done_steps, title

        def done(found: OpenedPlaybook | None, error: BaseException | None) -> None:
            playbook, linked, done_steps, title = found or (None, [], [], None)
            if playbook is None:
                self.set_status(title or MISSING)
                self.show()
                return
            self.window.show_playbook(
                playbook,
                alert_id=alert_id,
                alert_title=title,
                done_steps=done_steps,
                linked_templates=linked,
            )
            if alert_id:
                self.content_opened.emit(alert_id, "playbook", playbook.id, playbook.version)
            self.show()

        self._tasks.run(load, done)

    @Slot(str)
    def set_status(self, text: str) -> None:
        """The window's status line."""
        self._status = text
        if self._window is not None:
            self._window.set_status(text)

    @Slot(object)
    def show_look(self, look: TrayLook) -> None:
        """The app's state in words on the status line, as the tray's tooltip says it."""
        self.set_status(look.tooltip)

    @Slot(bool, object)
    def show_offline(self, offline: bool, cached_at: datetime | None) -> None:
        """Show (or hide) the banner saying the library is the copy cached at `cached_at`."""
        self._offline = (offline, cached_at)
        if self._window is not None:
            self._apply_offline(self._window)

    @Slot(object)
    def vpn_changed(self, status: VpnStatus) -> None:
        """Close or open the library as the policy's VPN rule says for this VPN state."""
        core = self._host.core
        mode = core.settings.vpn_mode() if core is not None else VpnMode.OFF
        self._vpn_banner = vpn_gate(mode, status).banner
        if self._window is not None:
            self._window.set_vpn_block(self._vpn_banner)

    @Slot(bool)
    def set_locked(self, locked: bool) -> None:
        """Hide the library behind the lock screen, or bring it back."""
        self._locked = locked
        if self._window is not None:
            self._window.set_locked(locked)

    @Slot(str)
    def set_user(self, username: str | None) -> None:
        """Whose password unlocks the lock screen."""
        self._user = username
        if self._window is not None:
            self._window.lock_screen.set_user(username)

    @Slot(str)
    def show_unlock_error(self, message: str) -> None:
        """Why unlocking failed, on the lock screen."""
        self.window.lock_screen.show_error(message)

    @Slot(str)
    def show_sign_in_needed(self, message: str) -> None:
        """Unlocking needs the sign-in window: the lock screen says so and offers it."""
        self.window.lock_screen.show_sign_in_needed(message)

    def _build_window(self) -> LibraryWindow:
        # Imported when the agent first opens the library, not before the tray icon shows.
        from client.ui.library import LibraryWindow

        window = LibraryWindow()
        window.set_status(self._status)
        self._apply_offline(window)
        window.set_vpn_block(self._vpn_banner)
        if self._locked:
            window.set_locked(True)
        window.lock_screen.set_user(self._user)
        window.search_requested.connect(self._search)
        window.playbook_opened.connect(lambda playbook_id: self.open_playbook(playbook_id))
        window.template_opened.connect(self._open_template)
        window.alert_playbook_opened.connect(
            lambda alert_id, playbook_id: self.open_playbook(playbook_id, alert_id)
        )
        window.sync_requested.connect(self.sync_requested)
        window.alert_opened.connect(self.alert_opened)
        window.about_requested.connect(self.about_requested)
        window.checklist_toggled.connect(self._checklist_toggled)
        window.lock_screen.unlock_requested.connect(self.unlock_requested)
        window.lock_screen.sign_in_requested.connect(self.sign_in_requested)
        return window

    def _apply_offline(self, window: LibraryWindow) -> None:
        offline, cached_at = self._offline
        if offline:
            window.set_offline(cached_at)
        else:
            window.set_online()

    @Slot(str)
    def _search(self, text: str) -> None:
        core = self._host.core
        if core is None or self._window is None:
            return
        window = self._window
        self._tasks.run(
            lambda: core.cache.search(text),
            lambda hits, _error: window.show_results(hits or [], text),
        )

    @Slot(str)
    def _open_template(self, template_id: str) -> None:
        core = self._host.core
        if core is None:
            return

        def done(template: Template | None, error: BaseException | None) -> None:
            if template is not None:
                self.window.show_template(template)
                self.show()
            elif core.cache.is_damaged("template", template_id):
                self.set_status(DAMAGED)

        self._tasks.run(lambda: core.cache.template(template_id), done)

    @Slot(str, str, int, bool)
    def _checklist_toggled(self, alert_id: str, playbook_id: str, step: int, done: bool) -> None:
        core = self._host.core
        if core is None:
            return
        self._tasks.run_write(
            lambda: core.cache.set_checklist_step(alert_id, playbook_id, step, done)
        )
