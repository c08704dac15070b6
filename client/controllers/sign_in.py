"""Signing in: resuming from the keyring at start, the sign-in dialog's two steps, signing out."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from client.controllers.core_host import CoreHost
from client.controllers.tasks import TaskRunner, log_failure
from client.core.errors import HubOffline, LockedOut, SettingsError, VigilError
from client.core.settings import Settings

if TYPE_CHECKING:
    from client.core.auth import Account, MfaChallenge
    from client.core.offline_unlock import OfflineUnlock
    from client.ui.signin import SignInDialog

log = logging.getLogger(__name__)

SIGNED_OUT_BY_AGENT = "You signed out."


def sign_in_problem(error: BaseException) -> str:
    """A failed sign-in step in words for the dialog."""
    if isinstance(error, LockedOut):
        minutes = max(1, math.ceil(error.retry_after / 60))
        return f"Locked out: try again in {minutes} min"
    if isinstance(error, VigilError):
        return error.message
    return "Signing in failed unexpectedly. Try again; the log has the details."


class SignInFlow(QObject):
    """Owns the sign-in dialog (built when first needed) and turns its steps into core calls.

    Signals:
        offline_chosen: the agent chose to work from the cached library instead of signing in.
    """

    offline_chosen = Signal()

    def __init__(
        self,
        settings: Settings,
        tasks: TaskRunner,
        host: CoreHost,
        unlocker: Callable[[], OfflineUnlock],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._tasks = tasks
        self._host = host
        self._unlocker = unlocker
        self.dialog: SignInDialog | None = None
        self._challenge: MfaChallenge | None = None
        self._closing = False

    def resume(self) -> None:
        """Sign the last user back in from the keyring; the dialog opens when that cannot work."""
        core = self._host.core
        username = self._settings.get("last_username")
        if core is None:
            return
        if not username:
            self.show()
            return

        def done(account: Account | None, error: BaseException | None) -> None:
            if error is not None:
                self.show(sign_in_problem(error))
            elif account is None:
                self.show()

        self._tasks.run(lambda: core.auth.resume(username), done)

    @Slot()
    def show(self, problem: str | None = None) -> None:
        """Open the sign-in dialog (or bring it forward), showing `problem` when given."""
        from client.ui.placement import bring_forward

        if self.dialog is None:
            self.dialog = self._build_dialog()
        bring_forward(self.dialog)
        if problem:
            self.dialog.show_error(problem)

    @Slot(object)
    def core_failed(self, error: BaseException | None) -> None:
        """The core could not be built: the dialog says why (e.g. a hub address is needed)."""
        self.show(sign_in_problem(error) if error else None)

    @Slot(str)
    def signed_out(self, reason: str) -> None:
        """The sign-in ended: ask again (saying why, unless the agent signed out)."""
        if not self._closing:
            self.show(None if reason == SIGNED_OUT_BY_AGENT else reason)

    @Slot()
    def sign_out(self) -> None:
        """Sign out on the hub and forget this computer's offline check of the password."""
        core = self._host.core
        if core is None:
            return
        account = core.auth.account
        unlocker = self._unlocker()

        def sign_out() -> None:
            core.auth.sign_out()
            if account is not None:
                unlocker.forget(account.username)

        self._tasks.run(sign_out, log_failure)

    def shut_down(self) -> None:
        """The app is quitting: a sign-out from now on opens no dialog."""
        self._closing = True

    def _build_dialog(self) -> SignInDialog:
        # Imported on first use: most starts sign in from the keyring and never show it.
        from client.ui.signin import SignInDialog

        dialog = SignInDialog()
        dialog.set_hub(
            self._settings.get("hub_url") or "", locked=self._settings.is_locked("hub_url")
        )
        dialog.set_username(self._settings.get("last_username") or "")
        dialog.credentials_submitted.connect(self._on_credentials)
        dialog.code_submitted.connect(self._on_code)
        dialog.continue_offline.connect(self._on_continue_offline)
        dialog.cancelled.connect(self._on_closed)
        dialog.accepted.connect(self._on_closed)
        return dialog

    @Slot(str, str, str)
    def _on_credentials(self, hub_url: str, username: str, password: str) -> None:
        settings = self._settings
        if not settings.is_locked("hub_url") and hub_url != settings.get("hub_url"):
            try:
                settings.set("hub_url", hub_url)
            except SettingsError as exc:
                self._failed(exc)
                return
            log.info("hub address changed; rebuilding the core services")
            self._host.close()
            self._tasks.run_write(settings.save)
            self._host.build(then=lambda: self._begin(username, password))
            return
        if self._host.core is None:
            self._host.build(then=lambda: self._begin(username, password))
            return
        self._begin(username, password)

    def _begin(self, username: str, password: str) -> None:
        core = self._host.core
        if core is None:
            return

        def done(challenge: MfaChallenge | None, error: BaseException | None) -> None:
            if self.dialog is None:
                return
            if error is not None or challenge is None:
                self._failed(error, username=username)
                return
            self._challenge = challenge
            self.dialog.show_code_step()
            # The hub just accepted this password: keep a slow, salted check of it for
            # unlocking the idle lock while the hub is unreachable.
            unlocker = self._unlocker()
            self._tasks.run(lambda: unlocker.enroll(username, password), log_failure)

        self._tasks.run(lambda: core.auth.begin(username, password), done)

    @Slot(str)
    def _on_code(self, code: str) -> None:
        core, challenge = self._host.core, self._challenge
        if core is None or challenge is None:
            return

        def done(account: Account | None, error: BaseException | None) -> None:
            if error is not None or account is None:
                if getattr(error, "code", "") == "mfa_token_invalid" and self.dialog is not None:
                    # The password step expired: that step has to be done again.
                    self.dialog.show_credentials_step()
                self._failed(error)
                return
            self._challenge = None
            if self.dialog is not None:
                self.dialog.accept()
            self._settings.set("last_username", account.username)
            self._tasks.run_write(self._settings.save)

        self._tasks.run(lambda: core.auth.complete(challenge, code), done)

    def _failed(self, error: BaseException | None, *, username: str = "") -> None:
        if self.dialog is None:
            return
        offer = (
            isinstance(error, HubOffline)
            and self._host.library_cached
            and username == self._settings.get("last_username")
        )
        self.dialog.show_error(
            sign_in_problem(error) if error else "Sign-in failed.", offer_offline=offer
        )

    @Slot()
    def _on_continue_offline(self) -> None:
        log.info("continuing offline with the cached library")
        if self.dialog is not None:
            self.dialog.accept()
        self.offline_chosen.emit()

    @Slot()
    def _on_closed(self) -> None:
        dialog, self.dialog = self.dialog, None
        self._challenge = None
        if dialog is not None:
            dialog.deleteLater()
