"""The template view: a form per placeholder, live preview, SMS length counter, copy and warning."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from client.core.cache import Cache
from client.core.content import Template
from client.ui.template_view import TemplateView
from tests.library_content import open_cache

SMS_ID = "tpl-video-outage-sms"


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    cache = open_cache(tmp_path / "cache.sqlite3")
    yield cache
    cache.close()


@pytest.fixture
def view(qtbot: QtBot) -> TemplateView:
    view = TemplateView()
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    return view


@pytest.fixture
def sms(cache: Cache) -> Template:
    template = cache.template(SMS_ID)
    assert template is not None
    return template


def test_form_has_one_labelled_field_per_placeholder(view: TemplateView, sms: Template) -> None:
    view.show_template(sms)
    assert list(view.values()) == ["patient_first_name", "callback_number"]
    field = view.field("patient_first_name")
    description = sms.placeholders[0].description
    assert field.accessibleName() == "Patient first name"
    assert field.accessibleDescription() == description
    assert field.toolTip() == description
    assert field.placeholderText() == description
    assert view.title.text() == sms.title


def test_preview_follows_typing_and_keeps_unfilled_placeholders(
    qtbot: QtBot, view: TemplateView, sms: Template
) -> None:
    view.show_template(sms)
    assert view.preview.toPlainText() == sms.body
    qtbot.keyClicks(view.field("patient_first_name"), "Ana {callback_number} <b>")
    preview = view.preview.toPlainText()
    assert "Hi Ana {callback_number} <b>, our video" in preview
    assert preview.endswith("from {callback_number}. Reply STOP to opt out.")
    assert view.warning.text() == "Not filled in yet: {callback_number}"


def test_sms_counter_and_red_when_over(qtbot: QtBot, view: TemplateView, sms: Template) -> None:
    view.show_template(sms)
    qtbot.keyClicks(view.field("patient_first_name"), "Ana")
    qtbot.keyClicks(view.field("callback_number"), "+1-555-0142")
    length = len(view.preview.toPlainText())
    assert length <= 160
    assert view.counter.text() == f"{length} / 160"
    assert view.counter.property("over") is False

    qtbot.keyClicks(view.field("patient_first_name"), "x" * (161 - length))
    assert view.counter.text() == "161 / 160 · 2 messages"
    assert view.counter.property("over") is True
    assert "color: #8a1c14" in view.counter.styleSheet()

    view.field("patient_first_name").setText("Łucja")
    assert view.counter.text().endswith("/ 70 (special characters: 70 per message) · 3 messages")


def test_copy_puts_the_filled_text_on_the_clipboard(
    qtbot: QtBot, view: TemplateView, sms: Template
) -> None:
    view.show_template(sms)
    view.field("patient_first_name").setText("Ana")
    view.field("callback_number").setText("+1-555-0142")
    with qtbot.waitSignal(view.copied, timeout=2000) as copied:
        qtbot.mouseClick(view.copy_button, Qt.MouseButton.LeftButton)
    assert copied.args == [SMS_ID]
    assert QGuiApplication.clipboard().text() == (
        "Cedarbrook Telehealth: Hi Ana, our video service is down. Your care team will call "
        "you for your visit from +1-555-0142. Reply STOP to opt out."
    )


def test_copy_with_unfilled_placeholders_warns_first(
    qtbot: QtBot, view: TemplateView, sms: Template
) -> None:
    QGuiApplication.clipboard().setText("before")
    view.show_template(sms)
    view.field("patient_first_name").setText("Ana")
    copied: list[str] = []
    view.copied.connect(copied.append)

    view.copy_button.click()
    assert copied == []
    assert QGuiApplication.clipboard().text() == "before"
    assert view.copy_button.text() == "Copy anyway"
    assert "{callback_number}" in view.warning.text()
    assert "press Copy anyway" in view.warning.text()

    view.copy_button.click()
    assert copied == [SMS_ID]
    assert "from {callback_number}." in QGuiApplication.clipboard().text()


def test_editing_after_the_warning_asks_again(view: TemplateView, sms: Template) -> None:
    view.show_template(sms)
    view.copy_button.click()
    view.field("patient_first_name").setText("Ana")
    assert view.copy_button.text() == "Copy"


def test_email_subject_and_channels_without_limit(view: TemplateView, cache: Cache) -> None:
    email = next(t for t in cache.templates() if t.channel == "email" and t.subject)
    view.show_template(email)
    assert view.subject.isVisibleTo(view)
    assert view.subject.text().startswith("Subject: ")
    assert not view.counter.isVisibleTo(view)
    banner = next(t for t in cache.templates() if t.channel == "portal_banner")
    view.show_template(banner)
    assert view.counter.text().endswith(" / 280")
    assert not view.subject.isVisibleTo(view)
