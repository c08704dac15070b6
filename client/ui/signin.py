"""The sign-in dialog: hub address, username and password, then the 6-digit authenticator code."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QRegularExpression, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeyEvent, QRegularExpressionValidator
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

CODE_DIGITS = 6
TOTP_PERIOD = 30


def seconds_left_in_window(now: float, period: int = TOTP_PERIOD) -> int:
    """Seconds until the authenticator shows its next code (1..period)."""
    return period - int(now) % period


def _plain_label(text: str = "", name: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    if name:
        label.setObjectName(name)
    return label


class SignInDialog(QDialog):
    """Two steps: credentials, then the code; every outcome is reported as an intent signal.

    Signals:
        credentials_submitted: (hub_url, username, password) for the first step.
        code_submitted: the 6-digit code, on the sixth digit or Enter.
        continue_offline: the agent chose to work from the cached library.
        cancelled: the agent closed the dialog without signing in.
    """

    credentials_submitted = Signal(str, str, str)
    code_submitted = Signal(str)
    continue_offline = Signal()
    cancelled = Signal()

    def __init__(
        self, parent: QWidget | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._busy = False
        self.setWindowTitle("Sign in to Vigil")
        self.setAccessibleName("Sign in to Vigil")
        self.setMinimumWidth(420)

        self.heading = _plain_label("Sign in", "Heading")
        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_credentials_page())
        self.pages.addWidget(self._build_code_page())

        self.error_label = _plain_label("", "Error")
        self.error_label.setAccessibleName("Sign-in problem")
        self.error_label.hide()
        self.busy_label = _plain_label("", "Hint")
        self.busy_label.hide()
        self.offline_button = QPushButton("Continue &offline with the cached library")
        self.offline_button.setAccessibleName("Continue offline with the cached library")
        self.offline_button.clicked.connect(self.continue_offline.emit)
        self.offline_button.hide()

        layout = QVBoxLayout(self)
        # The dialog grows to fit an error line instead of squeezing the fields under it.
        layout.setSizeConstraint(QLayout.SizeConstraint.SetMinimumSize)
        layout.addWidget(self.heading)
        layout.addWidget(self.pages)
        layout.addWidget(self.error_label)
        layout.addWidget(self.offline_button)
        layout.addWidget(self.busy_label)

        for button in self.findChildren(QPushButton):
            # A focused auto-default button takes Enter for itself; Enter here always means the
            # step's own action (see keyPressEvent), so no button may claim it.
            button.setAutoDefault(False)
        self._countdown_timer = QTimer(self)
        self._countdown_timer.setInterval(1000)
        self._countdown_timer.timeout.connect(self._update_countdown)
        self.show_credentials_step()

    def _build_credentials_page(self) -> QWidget:
        page = QWidget()
        self.hub_edit = QLineEdit()
        self.hub_edit.setAccessibleName("Hub address")
        self.hub_edit.setPlaceholderText("https://vigil-hub.example.org")
        self.hub_hint = _plain_label("Set by your IT department", "Hint")
        self.hub_hint.hide()
        self.username_edit = QLineEdit()
        self.username_edit.setAccessibleName("Username")
        self.password_edit = QLineEdit()
        self.password_edit.setAccessibleName("Password")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)

        form = QFormLayout()
        hub_label = QLabel("&Hub address")
        hub_label.setBuddy(self.hub_edit)
        form.addRow(hub_label, self.hub_edit)
        form.addRow("", self.hub_hint)
        user_label = QLabel("&Username")
        user_label.setBuddy(self.username_edit)
        form.addRow(user_label, self.username_edit)
        password_label = QLabel("&Password")
        password_label.setBuddy(self.password_edit)
        form.addRow(password_label, self.password_edit)

        buttons = QDialogButtonBox()
        self.sign_in_button = buttons.addButton("&Sign in", QDialogButtonBox.ButtonRole.AcceptRole)
        self.sign_in_button.setAccessibleName("Sign in")
        self.sign_in_button.setDefault(True)
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setAccessibleName("Cancel sign-in")
        self.sign_in_button.clicked.connect(self._submit_credentials)
        cancel.clicked.connect(self.reject)

        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(buttons)
        QWidget.setTabOrder(self.hub_edit, self.username_edit)
        QWidget.setTabOrder(self.username_edit, self.password_edit)
        QWidget.setTabOrder(self.password_edit, self.sign_in_button)
        QWidget.setTabOrder(self.sign_in_button, cancel)
        return page

    def _build_code_page(self) -> QWidget:
        page = QWidget()
        intro = _plain_label("Enter the 6-digit code from your authenticator app.")
        self.code_edit = QLineEdit()
        self.code_edit.setObjectName("CodeInput")
        self.code_edit.setAccessibleName("Authenticator code")
        self.code_edit.setMaxLength(CODE_DIGITS)
        self.code_edit.setValidator(
            QRegularExpressionValidator(QRegularExpression(f"[0-9]{{0,{CODE_DIGITS}}}"), self)
        )
        self.code_edit.setInputMethodHints(Qt.InputMethodHint.ImhDigitsOnly)
        self.code_edit.setPlaceholderText("123456")
        self.code_edit.textChanged.connect(self._on_code_changed)
        self.countdown_label = _plain_label("", "Countdown")
        self.countdown_label.setAccessibleName("Seconds until the next code")

        buttons = QDialogButtonBox()
        self.verify_button = buttons.addButton("&Verify", QDialogButtonBox.ButtonRole.AcceptRole)
        self.verify_button.setAccessibleName("Verify code")
        # Looks like the main action, as "Sign in" does on the first step.
        self.verify_button.setObjectName("Primary")
        self.back_button = back = buttons.addButton("&Back", QDialogButtonBox.ButtonRole.ResetRole)
        back.setAccessibleName("Back to username and password")
        cancel = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setAccessibleName("Cancel sign-in")
        self.verify_button.clicked.connect(self._submit_code)
        back.clicked.connect(self.show_credentials_step)
        cancel.clicked.connect(self.reject)

        row = QHBoxLayout()
        row.addWidget(self.code_edit, 1)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(intro)
        layout.addLayout(row)
        layout.addWidget(self.countdown_label)
        layout.addWidget(buttons)
        return page

    @property
    def step(self) -> str:
        """ "credentials" or "code": the step on screen."""
        return "code" if self.pages.currentIndex() == 1 else "credentials"

    @property
    def busy(self) -> bool:
        """Whether a request for this dialog is running."""
        return self._busy

    def set_hub(self, url: str, *, locked: bool) -> None:
        """Fill the hub address; a locked one (IT policy) is read-only with a hint saying why."""
        self.hub_edit.setText(url)
        self.hub_edit.setReadOnly(locked)
        self.hub_hint.setVisible(locked)
        self.hub_edit.setToolTip("Set by your IT department" if locked else "")

    def set_username(self, username: str) -> None:
        """Fill the username (the last one used) and put the cursor on the password."""
        self.username_edit.setText(username)
        self._focus_first_empty()

    @Slot()
    def show_credentials_step(self) -> None:
        """Show step 1: hub address, username, password."""
        self._countdown_timer.stop()
        self.pages.setCurrentIndex(0)
        self.heading.setText("Sign in")
        self.code_edit.clear()
        self.clear_error()
        self.set_busy(False)
        self._focus_first_empty()

    def show_code_step(self) -> None:
        """Show step 2: the 6-digit code with the seconds left in the current window."""
        self.pages.setCurrentIndex(1)
        self.heading.setText("Authenticator code")
        self.clear_error()
        self.set_busy(False)
        self.code_edit.clear()
        self.code_edit.setFocus()
        self._update_countdown()
        self._countdown_timer.start()

    def set_busy(self, busy: bool) -> None:
        """While a request runs, inputs are disabled and a line says what is happening."""
        self._busy = busy
        if busy:
            # Disabling the focused field would hand focus on to the next button (Cancel).
            self.setFocus()
        for widget in (
            self.hub_edit,
            self.username_edit,
            self.password_edit,
            self.sign_in_button,
            self.code_edit,
            self.verify_button,
            self.offline_button,
        ):
            widget.setEnabled(not busy)
        self.busy_label.setText(
            ("Checking the code…" if self.step == "code" else "Signing in…") if busy else ""
        )
        self.busy_label.setVisible(busy)
        self.setCursor(Qt.CursorShape.BusyCursor if busy else Qt.CursorShape.ArrowCursor)

    def show_error(self, text: str, *, offer_offline: bool = False) -> None:
        """Show a problem in the dialog (plain text) and let the agent try again."""
        self.set_busy(False)
        self.error_label.setText(text)
        self.error_label.show()
        self.offline_button.setVisible(offer_offline)
        self._fit_height()
        if self.step == "code":
            self.code_edit.clear()
            self.code_edit.setFocus()
        else:
            self._focus_first_empty()

    def clear_error(self) -> None:
        """Hide the problem line and the offline offer."""
        self.error_label.clear()
        self.error_label.hide()
        self.offline_button.hide()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter runs the step on screen (or the focused button); never Cancel by surprise."""
        if event.key() not in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            super().keyPressEvent(event)
            return
        event.accept()
        if self._busy:
            return
        focused = self.focusWidget()
        if isinstance(focused, QPushButton) and focused.isEnabled():
            focused.click()
        elif self.step == "code":
            self._submit_code()
        else:
            self._submit_credentials()

    def reject(self) -> None:
        """Esc or Cancel: tell the app, then close."""
        self._countdown_timer.stop()
        self.cancelled.emit()
        super().reject()

    def accept(self) -> None:
        """Signed in: close without a cancel."""
        self._countdown_timer.stop()
        super().accept()

    def _fit_height(self) -> None:
        # A wrapped line's height depends on the width, which a window's minimum size ignores:
        # grow to the height the layout needs at this width so the fields above keep theirs.
        layout = self.layout()
        if layout is None:
            return
        layout.activate()
        needed = layout.totalHeightForWidth(self.width())
        if needed > self.height():
            self.resize(self.width(), needed)

    def _focus_first_empty(self) -> None:
        for edit in (self.hub_edit, self.username_edit, self.password_edit):
            if not edit.text() and not edit.isReadOnly():
                edit.setFocus()
                return
        self.password_edit.setFocus()

    @Slot()
    def _submit_credentials(self) -> None:
        if self._busy or self.step != "credentials":
            return
        hub_url = self.hub_edit.text().strip()
        username = self.username_edit.text().strip()
        password = self.password_edit.text()
        if not hub_url or not username or not password:
            self.show_error("Enter the hub address, your username and your password.")
            return
        self.clear_error()
        self.set_busy(True)
        # The password leaves the widget at once: it lives only as long as the request needs it.
        self.password_edit.clear()
        self.credentials_submitted.emit(hub_url, username, password)

    @Slot(str)
    def _on_code_changed(self, text: str) -> None:
        if len(text) == CODE_DIGITS:
            self._submit_code()

    @Slot()
    def _submit_code(self) -> None:
        if self._busy or self.step != "code":
            return
        code = self.code_edit.text()
        if len(code) != CODE_DIGITS or not code.isdigit():
            self.show_error(f"Enter all {CODE_DIGITS} digits of the code.")
            return
        self.clear_error()
        self.set_busy(True)
        self.code_submitted.emit(code)

    @Slot()
    def _update_countdown(self) -> None:
        seconds = seconds_left_in_window(self._clock())
        self.countdown_label.setText(f"The code changes in {seconds} s")
