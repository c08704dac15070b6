"""Post-incident surveys as the agent meets them: the alert desk reports every alert it shows;
when one it showed this user is resolved, the survey dialog asks about it, once."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot

from client.controllers.core_host import CoreHost
from client.controllers.tasks import TaskRunner
from client.core.errors import VigilError
from client.core.models import Alert

if TYPE_CHECKING:
    from client.core.surveys import SurveyRecord
    from client.ui.survey_dialog import SurveyDialog

log = logging.getLogger(__name__)


class SurveyPrompter(QObject):
    """Offers each survey once (in order, one at a time) and saves the answer before the dialog
    thanks the agent. Surveys belong to the user they were offered to: a sign-out puts the
    dialog away, and the next user never sees it."""

    def __init__(self, tasks: TaskRunner, host: CoreHost, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks = tasks
        self._host = host
        self._dialog: SurveyDialog | None = None
        self._waiting: list[SurveyRecord] = []
        self._asking: SurveyRecord | None = None
        self._locked = False

    @property
    def dialog(self) -> SurveyDialog:
        """The survey dialog, built on first use."""
        if self._dialog is None:
            # Imported with the first survey, not before the tray icon shows.
            from client.ui.survey_dialog import SurveyDialog

            self._dialog = SurveyDialog()
            self._dialog.submitted.connect(self._on_submitted)
            self._dialog.later.connect(self._on_later)
        return self._dialog

    @Slot(object)
    def alert_seen(self, alert: Alert) -> None:
        """The alert desk showed this alert (new, changed or closed) to the signed-in user."""
        core = self._host.core
        queue = core.surveys if core is not None else None
        user = core.auth.current_username() if core is not None else None
        if queue is None or user is None:
            return

        def done(offered: list[SurveyRecord] | None, error: BaseException | None) -> None:
            if error is not None:
                log.warning("survey of alert %s not followed: %s", alert.id, error)
                return
            self._waiting.extend(offered or [])
            self._ask_next()

        self._tasks.run_write(lambda: queue.follow([alert], user, shown=True), done)

    @Slot()
    def user_changed(self) -> None:
        """Someone signed in or out: put away every survey of the previous user."""
        self._waiting.clear()
        self._asking = None
        if self._dialog is not None:
            self._dialog.blockSignals(True)
            self._dialog.reject()
            self._dialog.blockSignals(False)

    @Slot(bool)
    def set_locked(self, locked: bool) -> None:
        """While Vigil is locked no survey is on screen (its alert's title is not for whoever
        sits down); one put away is asked again first after unlocking."""
        self._locked = locked
        if not locked:
            self._ask_next()
            return
        dialog = self._dialog
        if dialog is None or self._asking is None or dialog.saving:
            return
        self._waiting.insert(0, self._asking)
        self._asking = None
        dialog.blockSignals(True)
        dialog.reject()
        dialog.blockSignals(False)

    def _ask_next(self) -> None:
        if self._locked:
            return
        core = self._host.core
        user = core.auth.current_username() if core is not None else None
        self._waiting = [record for record in self._waiting if record.author == user]
        if self._asking is not None or not self._waiting:
            return
        self._asking = self._waiting.pop(0)
        self.dialog.ask(self._asking.alert_id, self._asking.title, drill=self._asking.drill)

    @Slot(str, int, object, str)
    def _on_submitted(
        self, alert_id: str, clarity: int, templates: int | None, comment: str
    ) -> None:
        core = self._host.core
        record = self._asking
        if core is None or core.surveys is None or record is None or record.alert_id != alert_id:
            self.dialog.show_error("this survey is no longer open; see `vigil surveys`.")
            return
        queue, author = core.surveys, record.author

        def save() -> SurveyRecord:
            return queue.answer(
                alert_id, author, clarity=clarity, templates=templates, comment=comment or None
            )

        def done(saved: SurveyRecord | None, error: BaseException | None) -> None:
            if saved is None:
                message = error.message if isinstance(error, VigilError) else str(error)
                log.warning("survey of alert %s not saved: %s", alert_id, message)
                self.dialog.show_error(message)
                return
            self._asking = None
            self.dialog.show_saved()
            self._ask_next()

        self._tasks.run_write(save, done)

    @Slot(str)
    def _on_later(self, alert_id: str) -> None:
        # Still offered: `vigil surveys` lists it and `vigil survey` answers it.
        log.info("survey of alert %s left for later", alert_id)
        self._asking = None
        self._ask_next()
