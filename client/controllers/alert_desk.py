"""Alerts as the agent meets them: the pop-up, tray notifications, reminders until acknowledged,
and each acknowledgement followed from the outbox to the hub."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from client.controllers.core_host import CoreHost
from client.controllers.tasks import TaskRunner
from client.core.answers import answer_for
from client.core.errors import OutboxError, VigilError
from client.core.models import Alert
from client.core.reminders import AlertAttention
from client.core.settings import Settings
from client.ui.sound import AlertSound, RepeatingTone
from client.ui.text import (
    RETRACTED_NOTICE,
    TITLE_SHOWN_MAX,
    closing_note,
    drill_title,
    elide,
    latest_update,
    shown,
)
from client.ui.view_models import AlertCard

if TYPE_CHECKING:
    from client.controllers.surveys import SurveyPrompter
    from client.core.content import Template
    from client.core.outbox import AckRecord
    from client.core.services import CoreServices
    from client.ui.alert_popup import AlertPopup
    from client.ui.template_dialog import TemplateCopyDialog

log = logging.getLogger(__name__)

REMINDER_TICK_MS = 1000
# Answers kept for acks not followed yet (see _keep_early); older ones are other windows' acks.
MAX_SETTLED_EARLY = 256


def card_and_acted(core: CoreServices, alert: Alert) -> tuple[AlertCard, bool]:
    """The alert with its linked titles, and whether the agent already answered it (worker)."""
    user = core.auth.current_username()
    try:
        hub_answers = [answer] if (answer := core.answers.hub_answer(alert.id)) else []
        acted = answer_for(
            core.outbox.for_alert(alert.id), author=user, hub_answers=hub_answers
        ).stands or bool(hub_answers)
    except OutboxError as exc:
        # An unreadable outbox must not hide an alert: unsure, it reminds rather than stays quiet.
        log.warning("answer to alert %s unknown: %s", alert.id, exc.message)
        acted = False
    playbook = core.cache.playbook(alert.playbook_id) if alert.playbook_id else None
    templates = [core.cache.template(tid) for tid in alert.template_ids]
    card = AlertCard(
        alert=alert,
        playbook_title=playbook.title if playbook else None,
        templates=tuple((t.id, t.title) for t in templates if t is not None),
    )
    return card, acted


class AlertDesk(QObject):
    """Routes each alert (pop-up, notification or list), reminds until it is answered, and
    records the answer durably before the pop-up says so. The pop-up is built with the first
    alert that needs it.

    Signals:
        ack_state_shown: (alert_id, state) each time the pop-up shows an acknowledgement state.
        notification: (severity, title, text) for the tray's notification.
        status_changed: what the tray shows may have changed (waiting alerts, pending acks).
        history_changed: the alerts list may have changed.
        playbook_requested: (playbook_id, alert_id) the agent wants an alert's playbook.
        template_copied: (template_id, title) a filled template went to the clipboard.
        alert_on_screen: (alert_id) the pop-up put this alert on screen (a "shown" receipt).
        content_opened: (alert_id, kind, id, version) a template was opened for an alert.
        answered_elsewhere_seen: (alert_id, device_name) the agent answered it on another
            computer; the history says so.
    """

    ack_state_shown = Signal(str, str)
    notification = Signal(str, str, str)
    status_changed = Signal()
    history_changed = Signal()
    playbook_requested = Signal(str, str)
    template_copied = Signal(str, str)
    alert_on_screen = Signal(str)
    content_opened = Signal(str, str, str, int)
    answered_elsewhere_seen = Signal(str, str)

    def __init__(
        self,
        settings: Settings,
        tasks: TaskRunner,
        host: CoreHost,
        attention: AlertAttention,
        may_pop_up: Callable[[str], bool],
        *,
        reminder_tick_ms: int = REMINDER_TICK_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._tasks = tasks
        self._host = host
        self.attention = attention
        self._may_pop_up = may_pop_up
        self._settings = settings
        self.sound = AlertSound(
            self, enabled=bool(settings.get("sounds")), device=settings.get("sound_device")
        )
        # The critical tone again and again until someone answers (IT sets how often).
        self.tone = RepeatingTone(
            self.sound,
            lambda: self.attention.unacked_critical() > 0,
            interval_ms=int(settings.get("critical_repeat_seconds")) * 1000,
            parent=self,
        )
        self._popup: AlertPopup | None = None
        self._copy_dialog: TemplateCopyDialog | None = None
        # Cards of the alerts that may pop up again (reminders, unlocking, a rejected answer).
        self._cards: dict[str, AlertCard] = {}
        self._acks: dict[str, str] = {}  # ack_id -> alert_id, until synced or rejected
        self._settled_early: dict[str, AckRecord] = {}
        # Alerts answered on another computer: they never pop up or remind here again.
        self._answered_elsewhere: dict[str, str] = {}
        self._change_seqs: dict[str, int] = {}  # alert_id -> the newest change's seq seen
        self._displayed: set[str] = set()
        self._reminders = QTimer(self)
        self._reminders.setInterval(reminder_tick_ms)
        self._reminders.timeout.connect(self.check_reminders)
        # Told of every alert shown here, to ask about the resolved ones (set by the app).
        self.surveys: SurveyPrompter | None = None

    @property
    def popup(self) -> AlertPopup:
        """The pop-up window, built on first use."""
        if self._popup is None:
            self._popup = self._build_popup()
        return self._popup

    def start(self) -> None:
        """Start checking for reminders and expiry, and repeating the critical tone."""
        self._reminders.start()
        self.tone.start()

    def stop(self) -> None:
        """Stop reminding and close the pop-up."""
        self._reminders.stop()
        self.tone.stop()
        if self._popup is not None:
            self._popup.hide()

    def apply_settings(self, settings: Settings) -> None:
        """Take the agent's sound and notification settings."""
        self.sound.enabled = bool(settings.get("sounds"))
        self.sound.device = settings.get("sound_device")
        self.tone.set_interval_ms(int(settings.get("critical_repeat_seconds")) * 1000)
        self.attention.notify_lesser = bool(settings.get("minor_alert_notifications"))
        if self._popup is not None:
            self._apply_popup_policy(self._popup)

    def load_waiting(self) -> None:
        """Bring back alerts from earlier runs that still wait for an acknowledgement."""
        core = self._host.core
        if core is None:
            return

        def load() -> list[tuple[AlertCard, bool]]:
            return [card_and_acted(core, alert) for alert in reversed(core.cache.alerts())]

        def done(found: list[tuple[AlertCard, bool]] | None, error: BaseException | None) -> None:
            for card, acted in found or []:
                acted = acted or card.alert.id in self._answered_elsewhere
                if self.attention.receive(card.alert, acted=acted) == "popup":
                    self._cards[card.alert.id] = card
                    self._present(card, sound=False)
            self.status_changed.emit()

        self._tasks.run(load, done)

    @Slot(object)
    def receive(self, alert: Alert) -> None:
        """A new alert from the stream: route it to the pop-up, a notification or the list."""
        core = self._host.core
        if core is None:
            return
        if self.surveys is not None:
            self.surveys.alert_seen(alert)

        def done(found: tuple[AlertCard, bool] | None, error: BaseException | None) -> None:
            card, acted = found if found is not None else (AlertCard(alert), False)
            acted = acted or alert.id in self._answered_elsewhere
            route = self.attention.receive(alert, acted=acted)
            log.info("alert %s (%s) arrived: %s", alert.id, alert.severity, route or "nothing")
            self.status_changed.emit()
            self.history_changed.emit()
            if route == "popup":
                self._cards[alert.id] = card
                self._present(card)
            elif route == "notification":
                self._notify(alert, alert.body)

        self._tasks.run(lambda: card_and_acted(core, alert), done)

    @Slot(object)
    def receive_change(self, alert: Alert) -> None:
        """A newer state of a known alert (same id, higher seq): an update, its resolution or
        its retraction. An update comes back on screen for an agent who has not answered it;
        one who has sees it marked updated where it is, without the window taking focus."""
        core = self._host.core
        if core is None:
            return
        if alert.seq <= self._change_seqs.get(alert.id, 0):
            # The same change twice (stream and catch-up), or an older one: nothing new.
            return
        self._change_seqs[alert.id] = alert.seq
        if self.surveys is not None:
            # A resolution of an alert this agent saw offers the survey.
            self.surveys.alert_seen(alert)

        def done(found: tuple[AlertCard, bool] | None, error: BaseException | None) -> None:
            card, acted = found if found is not None else (AlertCard(alert), False)
            log.info("alert %s changed: %s, revision %d", alert.id, alert.status, alert.revision)
            if alert.is_closed:
                self._close(card)
            elif acted or alert.id in self._answered_elsewhere:
                self._cards.pop(alert.id, None)
                popup = self._popup
                shown_here = popup is not None and popup.isVisible() and popup.refresh_card(card)
                if not shown_here:
                    self._notify(alert, _news(alert))
            else:
                self._resurface(card)
            self.status_changed.emit()
            self.history_changed.emit()

        self._tasks.run(lambda: card_and_acted(core, alert), done)

    @Slot(str, str, str)
    def answer_from_hub(self, alert_id: str, device_id: str, device_name: str) -> None:
        """The hub accepted an answer of this agent: one from another computer closes the
        alert here; this computer's own answers are followed through the outbox."""
        if device_id and device_id == self._settings.get("device_id"):
            return
        self.answered_elsewhere(alert_id, device_name or "another computer")

    @Slot(str, str)
    def answered_elsewhere(self, alert_id: str, device_name: str) -> None:
        """The agent answered this alert on another computer: it leaves the screen now and
        never comes back here."""
        self._answered_elsewhere[alert_id] = device_name
        self.attention.stop(alert_id)
        self._cards.pop(alert_id, None)
        if self._popup is not None:
            self._popup.remove_alert(alert_id)
        log.info("alert %s answered on another computer", alert_id)
        self.answered_elsewhere_seen.emit(alert_id, device_name)
        self.status_changed.emit()
        self.history_changed.emit()

    def answered_on(self, alert_id: str) -> str | None:
        """The other computer's name where the agent answered this alert, if that happened."""
        return self._answered_elsewhere.get(alert_id)

    @Slot(str)
    def _on_displayed(self, alert_id: str) -> None:
        # Once per alert: the first time it is on screen is what a "shown" receipt records.
        if alert_id not in self._displayed:
            self._displayed.add(alert_id)
            self.alert_on_screen.emit(alert_id)

    def _resurface(self, card: AlertCard) -> None:
        alert = card.alert
        if self.attention.replace(alert):
            route = "popup"
        else:
            # Not waiting before (a lesser alert, or one the agent snoozed away): route it anew.
            route = self.attention.receive(alert) or "list"
        if route == "popup":
            self._cards[alert.id] = card
            self._present(card)
        elif self._popup is not None and self._popup.refresh_card(card):
            return
        elif route == "notification":
            self._notify(alert, _news(alert))

    def _close(self, card: AlertCard) -> None:
        # Resolved or retracted: nothing more is asked of the agent, at once.
        alert = card.alert
        waited = self.attention.is_waiting(alert.id)
        self.attention.stop(alert.id)
        self._cards.pop(alert.id, None)
        popup = self._popup
        if alert.status == "retracted":
            # Kept on screen (content replaced by the notice) so nobody acts on what it said.
            if popup is not None and popup.isVisible() and popup.refresh_card(card):
                return
            if popup is not None:
                popup.remove_alert(alert.id)
            if waited:
                self._notify(alert, closing_note(alert))
            return
        if popup is not None and alert.id in popup.alert_ids():
            popup.remove_alert(alert.id)
            if popup.count():
                popup.show_notice(f"Resolved: {elide(shown(alert.title, TITLE_SHOWN_MAX), 60)}")

    def _notify(self, alert: Alert, text: str) -> None:
        title = alert.title
        if alert.status == "retracted":
            title = f"{RETRACTED_NOTICE} · {title}"
        elif alert.revision and alert.status == "open":
            title = f"Updated: {title}"
        self.notification.emit(alert.severity, drill_title(title) if alert.drill else title, text)

    @Slot()
    def check_reminders(self) -> None:
        """Close expired alerts and bring back (with sound) those due for a reminder."""
        expired = self.attention.take_expired()
        for alert_id in expired:
            log.info("alert %s expired", alert_id)
            self._cards.pop(alert_id, None)
            if self._popup is not None:
                self._popup.remove_alert(alert_id)
        if self._popup is not None:
            self._popup.refresh_times()
        for alert in self.attention.due():
            log.info("reminding of unacknowledged alert %s", alert.id)
            self._present(self._cards.get(alert.id) or AlertCard(alert), reminder=True)
            self.attention.shown(alert.id)
        if expired:
            self.status_changed.emit()

    @Slot(bool)
    def set_locked(self, locked: bool) -> None:
        """While locked only critical alerts stay on screen; unlocking brings the rest back."""
        if locked:
            if self._popup is None:
                return
            for alert_id in self._popup.alert_ids():
                card = self._cards.get(alert_id)
                if card is None or not self._may_pop_up(card.alert.severity):
                    self._popup.remove_alert(alert_id)
            return
        shown = self._popup.alert_ids() if self._popup is not None else []
        for alert in self.attention.waiting():
            if alert.id not in shown:
                self._present(self._cards.get(alert.id) or AlertCard(alert), sound=False)

    @Slot(object)
    def outbox_changed(self, _counts: object) -> None:
        """The outbox's counts moved on: what the tray shows may have changed."""
        self.status_changed.emit()

    @Slot(object)
    def acks_changed(self, records: tuple[AckRecord, ...]) -> None:
        """The outbox says what became of these acks: show it for the ones being followed."""
        followed = False
        for record in records:
            alert_id = self._acks.get(record.ack_id)
            if alert_id is None:
                self._keep_early(record)
                continue
            followed = True
            if record.state == "synced":
                del self._acks[record.ack_id]
                # Settled for good: the card (with its playbook and templates) is only kept for
                # reminders and for reopening a rejected acknowledgement.
                self._cards.pop(alert_id, None)
                self._show_ack_state(alert_id, "synced")
            elif record.state == "rejected":
                del self._acks[record.ack_id]
                self._show_ack_state(
                    alert_id, "rejected", answer_for([record]).reason or "no reason given"
                )
                card = self._cards.get(alert_id)
                if card is not None:
                    self.attention.reopen(card.alert)
        if followed:
            self.history_changed.emit()

    def _keep_early(self, record: AckRecord) -> None:
        # An ack recorded by the pop-up is followed once its write's callback runs; the hub's
        # answer can come first (both wait in the UI thread's queue), so it is kept till then.
        if record.state == "pending":
            return
        self._settled_early[record.ack_id] = record
        if len(self._settled_early) > MAX_SETTLED_EARLY:
            del self._settled_early[next(iter(self._settled_early))]

    def _build_popup(self) -> AlertPopup:
        # Imported with the first alert that pops up, not before the tray icon shows.
        from client.ui.alert_popup import AlertPopup

        popup = AlertPopup(sound=self.sound)
        popup.ack_requested.connect(self._on_ack_requested)
        popup.playbook_requested.connect(
            lambda playbook_id: self.playbook_requested.emit(
                playbook_id, popup.current_alert_id() or ""
            )
        )
        popup.template_copy_requested.connect(self.copy_template)
        popup.snooze_requested.connect(self.snooze)
        popup.alert_displayed.connect(self._on_displayed)
        self._apply_popup_policy(popup)
        return popup

    def _apply_popup_policy(self, popup: AlertPopup) -> None:
        popup.set_snooze_minutes(int(self._settings.get("patient_snooze_minutes")))
        popup.set_critical_fullscreen(bool(self._settings.get("critical_fullscreen")))

    @Slot(str)
    def snooze(self, alert_id: str) -> None:
        """ "With a patient": a non-critical alert leaves the screen and comes back later."""
        minutes = int(self._settings.get("patient_snooze_minutes"))
        if not self.attention.snooze(alert_id, minutes):
            return
        log.info("alert %s snoozed for %d min (with a patient)", alert_id, minutes)
        if self._popup is not None:
            self._popup.remove_alert(alert_id)
        self.status_changed.emit()

    def _present(self, card: AlertCard, *, sound: bool = True, reminder: bool = False) -> None:
        # While locked, lesser alerts wait (still tracked) until the agent unlocks.
        if self._may_pop_up(card.alert.severity):
            self.popup.present(card, sound=sound, reminder=reminder)

    @Slot(str)
    def open_alert(self, alert_id: str) -> None:
        """Show an alert from the history in the pop-up, to answer it whatever its severity."""
        core = self._host.core
        if core is None:
            return

        def load() -> tuple[AlertCard, bool] | None:
            alert = core.cache.alert(alert_id)
            return card_and_acted(core, alert) if alert is not None else None

        def done(found: tuple[AlertCard, bool] | None, error: BaseException | None) -> None:
            if found is None:
                log.warning("alert %s could not be opened: %s", alert_id, error or "not cached")
                return
            card, _acted = found
            if self._may_pop_up(card.alert.severity):
                # Kept only while on screen: reminders stay the attention tracker's decision.
                self.popup.present(card, sound=False, stays=False)
                self.popup.show_alert(alert_id)

        self._tasks.run(load, done)

    @Slot(str)
    def copy_template(self, template_id: str) -> None:
        """Open a template's fill-in form over the pop-up; the filled text is copied from there."""
        core = self._host.core
        if core is None:
            return
        banner = core.vpn_gate.banner
        if banner is not None:
            # IT's VPN rule closes template copying off the VPN; the alert itself stays answerable.
            if self._popup is not None:
                self._popup.show_notice(banner)
            return

        def load() -> tuple[Template | None, bool]:
            template = core.cache.template(template_id)
            damaged = template is None and core.cache.is_damaged("template", template_id)
            return template, damaged

        def done(found: tuple[Template | None, bool] | None, error: BaseException | None) -> None:
            template, damaged = found if found is not None else (None, False)
            if template is None:
                if self._popup is not None:
                    self._popup.show_notice(
                        "That template failed its signature check on this computer, so it is not "
                        "shown; it is being fetched again from the hub."
                        if damaged
                        else "That template is not in the library on this computer."
                    )
                return
            self._open_copy_dialog(template)
            alert_id = self._popup.current_alert_id() if self._popup is not None else None
            if alert_id:
                self.content_opened.emit(alert_id, "template", template.id, template.version)

        self._tasks.run(load, done)

    def _open_copy_dialog(self, template: Template) -> None:
        from client.ui.placement import bring_forward
        from client.ui.template_dialog import TemplateCopyDialog

        if self._copy_dialog is not None:
            self._copy_dialog.close()
        # A child of the pop-up, so it stays above a pop-up that stays on top.
        dialog = TemplateCopyDialog(template, parent=self._popup)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dialog.copied.connect(self._on_template_copied)
        dialog.destroyed.connect(lambda _obj=None: self._forget_copy_dialog(dialog))
        self._copy_dialog = dialog
        bring_forward(dialog)

    def _forget_copy_dialog(self, dialog: TemplateCopyDialog) -> None:
        if self._copy_dialog is dialog:
            self._copy_dialog = None

    @property
    def copy_dialog(self) -> TemplateCopyDialog | None:
        """The template fill-in form while it is open."""
        return self._copy_dialog

    @Slot(str, str)
    def _on_template_copied(self, template_id: str, title: str) -> None:
        log.info("template %s copied to the clipboard", template_id)
        if self._popup is not None:
            self._popup.show_notice(f"Copied: {title}")
        self.template_copied.emit(template_id, title)

    @Slot(str, str, str)
    def _on_ack_requested(self, alert_id: str, action: str, note: str) -> None:
        core = self._host.core
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
            self._show_ack_state(alert_id, "recorded")
            self._acks[record.ack_id] = alert_id
            # The hub may have answered it while this callback waited in the queue.
            early = self._settled_early.pop(record.ack_id, None)
            if early is not None:
                self.acks_changed((early,))
            self.history_changed.emit()
            self.status_changed.emit()

        account = core.auth.account
        if account is None:
            # An ack is recorded under its author; with nobody signed in there is none.
            self._show_ack_state(
                alert_id, "failed", "Sign in to acknowledge: nothing was recorded."
            )
            return
        author = account.username
        self._tasks.run_write(
            lambda: core.outbox.record(alert_id, action, note or None, author=author), done
        )

    def _show_ack_state(self, alert_id: str, state: Any, reason: str = "") -> None:
        if self._popup is not None:
            self._popup.set_ack_state(alert_id, state, reason)
        self.ack_state_shown.emit(alert_id, str(state))


def _news(alert: Alert) -> str:
    update = latest_update(alert)
    return update.text if update is not None else alert.body
