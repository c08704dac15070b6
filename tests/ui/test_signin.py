"""The sign-in dialog: both steps, the code field's rules, the locked hub field and each error."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from client.ui.signin import SignInDialog, seconds_left_in_window


class StepClock:
    """A wall clock the test sets, so the countdown is checked without waiting."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> StepClock:
    return StepClock(1_800_000_013.0)


@pytest.fixture
def dialog(qtbot: QtBot, clock: StepClock) -> SignInDialog:
    widget = SignInDialog(clock=clock)
    qtbot.addWidget(widget)
    widget.show()
    return widget


def fill_credentials(qtbot: QtBot, dialog: SignInDialog, password: str = "s3cret pass") -> None:
    dialog.set_hub("https://hub.example.org", locked=False)
    qtbot.keyClicks(dialog.username_edit, "alice")
    qtbot.keyClicks(dialog.password_edit, password)


def test_credentials_are_submitted_and_the_password_leaves_the_widget(
    qtbot: QtBot, dialog: SignInDialog
) -> None:
    fill_credentials(qtbot, dialog)
    with qtbot.waitSignal(dialog.credentials_submitted, timeout=2000) as blocker:
        qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)
    assert blocker.args == ["https://hub.example.org", "alice", "s3cret pass"]
    assert dialog.password_edit.text() == ""
    assert dialog.busy
    assert not dialog.sign_in_button.isEnabled()
    assert dialog.busy_label.text() == "Signing in…"


def test_missing_fields_are_named_and_nothing_is_sent(qtbot: QtBot, dialog: SignInDialog) -> None:
    with qtbot.assertNotEmitted(dialog.credentials_submitted):
        qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    assert "username" in dialog.error_label.text()
    assert dialog.error_label.isVisible()


def test_hub_locked_by_policy_is_read_only_with_a_hint(dialog: SignInDialog) -> None:
    dialog.set_hub("https://vigil.corp.example", locked=True)
    assert dialog.hub_edit.isReadOnly()
    assert dialog.hub_edit.text() == "https://vigil.corp.example"
    assert dialog.hub_hint.isVisible()
    assert dialog.hub_hint.text() == "Set by your IT department"
    dialog.set_hub("https://hub.example.org", locked=False)
    assert not dialog.hub_edit.isReadOnly()
    assert not dialog.hub_hint.isVisible()


def test_code_step_auto_submits_on_the_sixth_digit(qtbot: QtBot, dialog: SignInDialog) -> None:
    dialog.show_code_step()
    assert dialog.step == "code"
    with qtbot.assertNotEmitted(dialog.code_submitted):
        qtbot.keyClicks(dialog.code_edit, "12345")
    with qtbot.waitSignal(dialog.code_submitted, timeout=2000) as blocker:
        qtbot.keyClicks(dialog.code_edit, "6")
    assert blocker.args == ["123456"]
    assert dialog.busy
    assert dialog.busy_label.text() == "Checking the code…"


def test_code_field_takes_digits_only(qtbot: QtBot, dialog: SignInDialog) -> None:
    dialog.show_code_step()
    qtbot.keyClicks(dialog.code_edit, "1a2-b 3")
    assert dialog.code_edit.text() == "123"


def test_enter_with_a_short_code_asks_for_all_digits(qtbot: QtBot, dialog: SignInDialog) -> None:
    dialog.show_code_step()
    qtbot.keyClicks(dialog.code_edit, "42")
    with qtbot.assertNotEmitted(dialog.code_submitted):
        qtbot.keyClick(dialog.code_edit, Qt.Key.Key_Return)
    assert dialog.error_label.text() == "Enter all 6 digits of the code."


def test_countdown_shows_seconds_left_and_ticks(
    qtbot: QtBot, dialog: SignInDialog, clock: StepClock
) -> None:
    dialog.show_code_step()
    assert dialog.countdown_label.text() == "The code changes in 17 s"
    clock.now += 10
    qtbot.waitUntil(
        lambda: dialog.countdown_label.text() == "The code changes in 7 s", timeout=3000
    )
    assert seconds_left_in_window(1_800_000_010.0) == 20
    assert seconds_left_in_window(1_800_000_029.9) == 1


def test_wrong_code_is_shown_and_the_field_is_ready_again(
    qtbot: QtBot, dialog: SignInDialog
) -> None:
    dialog.show_code_step()
    qtbot.keyClicks(dialog.code_edit, "000000")
    dialog.show_error("That code is not right. Wait for the next code and try again.")
    assert dialog.error_label.text().startswith("That code is not right")
    assert dialog.code_edit.text() == ""
    assert dialog.code_edit.isEnabled()
    assert not dialog.busy
    with qtbot.waitSignal(dialog.code_submitted, timeout=2000):
        qtbot.keyClicks(dialog.code_edit, "654321")


@pytest.mark.parametrize(
    "message",
    [
        "Locked out: try again in 12 min",
        "No keyring found: install gnome-keyring or unlock your login keyring.",
        "<b>not bold</b> & <script>x</script>",
    ],
)
def test_each_error_is_shown_as_plain_text(dialog: SignInDialog, message: str) -> None:
    dialog.show_error(message)
    assert dialog.error_label.textFormat() == Qt.TextFormat.PlainText
    assert dialog.error_label.text() == message
    assert not dialog.offline_button.isVisible()


def test_unreachable_hub_offers_to_continue_offline(qtbot: QtBot, dialog: SignInDialog) -> None:
    fill_credentials(qtbot, dialog)
    qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    dialog.show_error("The hub cannot be reached.", offer_offline=True)
    assert dialog.offline_button.isVisible()
    assert dialog.offline_button.accessibleName() == "Continue offline with the cached library"
    with qtbot.waitSignal(dialog.continue_offline, timeout=2000):
        qtbot.mouseClick(dialog.offline_button, Qt.MouseButton.LeftButton)


def test_escape_cancels(qtbot: QtBot, dialog: SignInDialog) -> None:
    with qtbot.waitSignal(dialog.cancelled, timeout=2000):
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()


def test_back_returns_to_credentials_with_username_kept(qtbot: QtBot, dialog: SignInDialog) -> None:
    dialog.set_hub("https://hub.example.org", locked=True)
    dialog.set_username("alice")
    dialog.show_code_step()
    dialog.show_credentials_step()
    assert dialog.step == "credentials"
    assert dialog.username_edit.text() == "alice"
    assert dialog.focusWidget() is dialog.password_edit


def test_controls_have_accessible_names(dialog: SignInDialog) -> None:
    for widget in (
        dialog.hub_edit,
        dialog.username_edit,
        dialog.password_edit,
        dialog.sign_in_button,
        dialog.code_edit,
        dialog.verify_button,
        dialog.offline_button,
    ):
        assert widget.accessibleName()
