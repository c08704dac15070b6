"""The sign-in dialog driven by the keyboard: Enter and Escape in every field of both steps."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from client.ui.signin import SignInDialog

ENTER_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)


@pytest.fixture
def dialog(qtbot: QtBot) -> SignInDialog:
    widget = SignInDialog(clock=lambda: 1_800_000_013.0)
    qtbot.addWidget(widget)
    with qtbot.waitActive(widget, timeout=5000):
        widget.show()
    widget.set_hub("https://hub.example.org", locked=False)
    widget.username_edit.setText("alice")
    widget.password_edit.setText("s3cret pass")
    return widget


def credential_fields(dialog: SignInDialog) -> dict[str, QLineEdit]:
    return {
        "hub": dialog.hub_edit,
        "username": dialog.username_edit,
        "password": dialog.password_edit,
    }


@pytest.mark.parametrize("key", ENTER_KEYS)
@pytest.mark.parametrize("field", ["hub", "username", "password"])
def test_enter_in_a_credentials_field_submits_and_the_dialog_stays_open(
    qtbot: QtBot, dialog: SignInDialog, field: str, key: Qt.Key
) -> None:
    edit = credential_fields(dialog)[field]
    edit.setFocus()
    with (
        qtbot.assertNotEmitted(dialog.cancelled),
        qtbot.waitSignal(dialog.credentials_submitted, timeout=2000) as blocker,
    ):
        qtbot.keyClick(edit, key)
    assert blocker.args == ["https://hub.example.org", "alice", "s3cret pass"]
    # What must not happen: the same key press cancelling the sign-in it just started.
    assert dialog.isVisible()
    assert dialog.result() == 0
    assert dialog.busy
    # Focus does not fall onto Cancel, where the next Space or Enter would cancel.
    assert dialog.focusWidget() is None or dialog.focusWidget().accessibleName() != (
        "Cancel sign-in"
    )
    dialog.show_code_step()
    assert dialog.step == "code"
    assert dialog.isVisible()
    assert dialog.code_edit.hasFocus()


def test_a_second_enter_while_busy_neither_resubmits_nor_cancels(
    qtbot: QtBot, dialog: SignInDialog
) -> None:
    sent: list[tuple[str, str, str]] = []
    dialog.credentials_submitted.connect(lambda *args: sent.append(args))
    with qtbot.assertNotEmitted(dialog.cancelled):
        qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)
        qtbot.keyClick(dialog, Qt.Key.Key_Return)
        qtbot.keyClick(dialog, Qt.Key.Key_Space)
    assert len(sent) == 1
    assert dialog.isVisible()


def test_enter_with_a_field_missing_names_it_and_keeps_the_dialog(
    qtbot: QtBot, dialog: SignInDialog
) -> None:
    dialog.password_edit.clear()
    with (
        qtbot.assertNotEmitted(dialog.credentials_submitted),
        qtbot.assertNotEmitted(dialog.cancelled),
    ):
        qtbot.keyClick(dialog.username_edit, Qt.Key.Key_Return)
    assert "password" in dialog.error_label.text()
    assert dialog.isVisible()
    assert not dialog.busy


@pytest.mark.parametrize("key", ENTER_KEYS)
def test_enter_in_the_code_field_checks_the_digits_and_stays_on_the_code_step(
    qtbot: QtBot, dialog: SignInDialog, key: Qt.Key
) -> None:
    dialog.show_code_step()
    qtbot.keyClicks(dialog.code_edit, "123")
    with qtbot.assertNotEmitted(dialog.code_submitted), qtbot.assertNotEmitted(dialog.cancelled):
        qtbot.keyClick(dialog.code_edit, key)
    assert dialog.error_label.text() == "Enter all 6 digits of the code."
    assert (dialog.step, dialog.isVisible()) == ("code", True)


def test_sixth_digit_submits_once_and_enter_afterwards_does_not_cancel(
    qtbot: QtBot, dialog: SignInDialog
) -> None:
    dialog.show_code_step()
    codes: list[str] = []
    dialog.code_submitted.connect(codes.append)
    with qtbot.assertNotEmitted(dialog.cancelled):
        qtbot.keyClicks(dialog.code_edit, "123456")
        qtbot.keyClick(dialog.code_edit, Qt.Key.Key_Return)
        qtbot.keyClick(dialog, Qt.Key.Key_Return)
    assert codes == ["123456"]
    assert (dialog.step, dialog.isVisible()) == ("code", True)


def test_enter_on_a_focused_button_presses_that_button(qtbot: QtBot, dialog: SignInDialog) -> None:
    dialog.show_code_step()
    back = dialog.back_button
    back.setFocus()
    with qtbot.assertNotEmitted(dialog.code_submitted):
        qtbot.keyClick(back, Qt.Key.Key_Return)
    assert dialog.step == "credentials"
    assert dialog.isVisible()


@pytest.mark.parametrize("field", ["hub", "username", "password", "code"])
def test_escape_in_any_field_cancels_and_closes(
    qtbot: QtBot, dialog: SignInDialog, field: str
) -> None:
    if field == "code":
        dialog.show_code_step()
        edit = dialog.code_edit
    else:
        edit = credential_fields(dialog)[field]
    with (
        qtbot.assertNotEmitted(dialog.credentials_submitted),
        qtbot.waitSignal(dialog.cancelled, timeout=2000),
    ):
        qtbot.keyClick(edit, Qt.Key.Key_Escape)
    assert not dialog.isVisible()


def test_an_error_grows_the_dialog_instead_of_squeezing_the_fields(
    qtbot: QtBot, dialog: SignInDialog
) -> None:
    edit_height = dialog.password_edit.height()
    dialog.show_error(
        "The hub at https://hub.example.org did not answer within 10 seconds. "
        "Check your network or VPN, then try again. " * 3,
        offer_offline=True,
    )
    edits = credential_fields(dialog).values()

    def laid_out_whole() -> bool:
        return all(
            edit.height() >= max(edit.minimumSizeHint().height(), edit_height) for edit in edits
        )

    # The layout settles through posted events; wait for it, boundedly.
    qtbot.waitUntil(laid_out_whole, timeout=3000)
    assert dialog.error_label.isVisible()
    assert dialog.error_label.height() >= dialog.error_label.heightForWidth(
        dialog.error_label.width()
    )
