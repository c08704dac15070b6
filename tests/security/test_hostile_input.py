"""Hostile alerts and content: markup, script, Qt rich-text tags, bidi overrides, NUL, a megabyte
of text, invalid UTF-8 and numbers where strings belong. The hub refuses what breaks its rules;
the client's parsers refuse malformed shapes with typed errors; every widget shows the rest
literally (plain text, or escaped rich text) and stays usable.

Bidi controls: a widget that shows one untrusted text alone keeps it as sent (an override there
can only reorder that text, inside its own paragraph). Where untrusted text is composed with
other text in one string (tooltips, desktop notifications) explicit bidi controls are removed,
so an unclosed U+202E cannot reverse the words Vigil puts after it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PySide6.QtCore import Qt
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QPushButton
from pytestqt.qtbot import QtBot

from client.core.cache import Cache
from client.core.content import Playbook, Template
from client.core.errors import BadResponse
from client.core.models import Alert
from client.ui.alert_popup import AlertCard, AlertPopup
from client.ui.elided_label import ElidedLabel
from client.ui.library import ID_ROLE, AlertHistoryEntry, LibraryWindow
from client.ui.playbook_view import PlaybookView
from client.ui.signin import SignInDialog
from client.ui.template_view import TemplateView
from client.ui.text import TITLE_SHOWN_MAX, plain_tooltip
from client.ui.tray import notification_text
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, HTTP_TIMEOUT, auth_headers, create_user, sign_in
from tests.library_content import ContentSigner, open_cache

RLO = "\u202e"
HOSTILE = [
    "<script>alert('x')</script>",
    '<img src="file:///etc/hostname"> <img src=x onerror=alert(1)>',
    '<a href="https://evil.example/login">Sign in again</a>',
    '<font color="red" size="7">URGENT</font>',
    "<table><tr><td>cell</td></tr></table>",
    "<b>bold</b> &amp; &lt;i&gt; <!-- comment -->",
    f"Call {RLO}0010-555-1+ now",
    "NUL\x00inside",
]
MEGABYTE = "W" * 1_000_000
BAD_SHAPES = [
    {"title": 5},
    {"title": None},
    {"body": ["not", "text"]},
    {"id": 7},
    {"seq": "1"},
    {"seq": True},
    {"severity": "<b>critical</b>"},
    {"template_ids": "tpl-1"},
    {"template_ids": [1, 2]},
    {"requires_ack": "yes"},
    {"playbook_id": 12},
    {"issued_by": {"name": "x"}},
]


def alert_json(**fields: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "00000000-0000-4000-8000-000000000001",
        "seq": 1,
        "severity": "critical",
        "title": "Video visits down",
        "body": "Move visits to phone.",
        "playbook_id": "pb-hostile",
        "template_ids": [],
        "requires_ack": True,
        "issued_at": "2026-11-27T10:42:00Z",
        "expires_at": None,
        "issued_by": "dispatch",
    }
    raw.update(fields)
    return raw


def hostile_playbook(text: str) -> dict[str, Any]:
    return {
        "title": text,
        "category": text,
        "severity": "critical",
        "summary": text,
        "steps": [text, "Second step"],
        "escalation_path": [{"level": 1, "role": text, "contact": text, "after_minutes": 0}],
        "phone_tree": [{"order": 1, "name": text, "role": text, "phone": text, "notes": text}],
        "template_ids": [],
        "tags": [],
    }


def hostile_template(text: str) -> dict[str, Any]:
    return {
        "title": text,
        "channel": "email",
        "subject": text,
        "body": f"Hello {{patient_first_name}}, {text}",
        "placeholders": [{"name": "patient_first_name", "description": text}],
        "approved_by": text,
        "approved_at": "2026-09-02",
        "locale": "en-US",
        "tags": [],
    }


def tooltip_text(tooltip: str) -> str:
    """What a tooltip shows: Qt renders it as rich text when it looks like rich text."""
    document = QTextDocument()
    if GuiQt.mightBeRichText(tooltip):
        document.setHtml(tooltip)
    else:
        document.setPlainText(tooltip)
    return document.toPlainText()


def assert_literal(label: QLabel, text: str) -> None:
    assert label.textFormat() == Qt.TextFormat.PlainText
    assert label.text() == text
    assert not label.openExternalLinks()


# The hub


@pytest.fixture
def dispatcher(hub: EmbeddedHub) -> str:
    secret = create_user(hub.store, "dora", "dispatcher")
    token: str = sign_in(hub.url, "dora", DEFAULT_PASSWORD, secret)["access_token"]
    return token


def _publish(hub: EmbeddedHub, token: str, **fields: Any) -> requests.Response:
    body = {"severity": "major", "title": "Video visits down", "body": "Use phones."}
    body.update(fields)
    return requests.post(
        f"{hub.url}/v1/alerts", json=body, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )


@pytest.mark.parametrize("text", HOSTILE)
def test_hub_stores_hostile_alert_text_as_sent_and_serves_it_back(
    hub: EmbeddedHub, dispatcher: str, text: str
) -> None:
    published = _publish(hub, dispatcher, title=text, body=text * 10)

    assert published.status_code == 201, published.text
    served = requests.get(
        f"{hub.url}/v1/alerts", headers=auth_headers(dispatcher), timeout=HTTP_TIMEOUT
    ).json()["alerts"]
    assert [(a["title"], a["body"]) for a in served] == [(text, text * 10)]


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"title": "x" * 201}, 422),
        ({"title": "x" * 900_000}, 422),
        ({"title": MEGABYTE}, 413),
        ({"body": "x" * 10_001}, 422),
        ({"title": 5}, 422),
        ({"title": ["a"]}, 422),
        ({"body": None}, 422),
        ({"severity": "<b>critical</b>"}, 422),
        ({"template_ids": "tpl-1"}, 422),
        ({"requires_ack": "yes please"}, 422),
    ],
)
def test_hub_refuses_overlong_and_mistyped_alerts_and_stores_nothing(
    hub: EmbeddedHub, dispatcher: str, fields: dict[str, Any], status: int
) -> None:
    response = _publish(hub, dispatcher, **fields)

    assert response.status_code == status
    assert response.json()["error"] in ("invalid_request", "too_large")
    assert hub.store.alerts.since(None, 10).alerts == []


def test_hub_answers_invalid_utf8_as_invalid_json(hub: EmbeddedHub, dispatcher: str) -> None:
    response = requests.post(
        f"{hub.url}/v1/alerts",
        data=b'{"severity": "major", "title": "\xff\xfe", "body": "x"}',
        headers={**auth_headers(dispatcher), "Content-Type": "application/json"},
        timeout=HTTP_TIMEOUT,
    )

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("cursor", ["9" * 30, str(2**63), "9" * 5000])
def test_hub_refuses_cursors_beyond_64_bits_instead_of_failing(
    hub: EmbeddedHub, dispatcher: str, cursor: str
) -> None:
    for path in ("/v1/alerts", "/v1/content"):
        response = requests.get(
            f"{hub.url}{path}",
            params={"since": cursor},
            headers=auth_headers(dispatcher),
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 422, (path, response.text)
    stream = requests.get(
        f"{hub.url}/v1/alerts/stream",
        headers={**auth_headers(dispatcher), "Last-Event-ID": cursor},
        timeout=HTTP_TIMEOUT,
    )
    assert stream.status_code == 422
    assert stream.json()["error"] == "invalid_request"


# The client's parsers


@pytest.mark.parametrize(
    "fields", BAD_SHAPES, ids=lambda f: "-".join(f"{k}={v!r}" for k, v in f.items())
)
def test_alert_with_a_wrong_type_is_a_typed_error(fields: dict[str, Any]) -> None:
    with pytest.raises(BadResponse, match="alert"):
        Alert.from_json(alert_json(**fields))


@pytest.mark.parametrize("text", [*HOSTILE, MEGABYTE])
def test_alert_parser_keeps_hostile_text_exactly(text: str) -> None:
    alert = Alert.from_json(alert_json(title=text, body=text))

    assert (alert.title, alert.body) == (text, text)


@pytest.mark.parametrize(
    "change",
    [
        {"title": 5},
        {"steps": ["ok", 7]},
        {"steps": "one step"},
        {"phone_tree": [{"order": "1", "name": "x", "phone": "1"}]},
        {"escalation_path": [{"level": 1.5, "after_minutes": 0}]},
        {"tags": [None]},
        {"summary": {"html": "<b>x</b>"}},
    ],
)
def test_playbook_with_numbers_where_strings_belong_is_refused_by_the_cache(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    data = {**hostile_playbook("ok"), **change}
    with pytest.raises(BadResponse, match="pb-bad"):
        Playbook.from_data("pb-bad", 1, data)
    signer = ContentSigner()
    cache = Cache.open(tmp_path / "cache.sqlite3")
    try:
        report = cache.apply_content([signer.item("playbook", "pb-bad", data)], signer.verifier())
        assert [item.id for item in report.refused] == ["pb-bad"]
        assert cache.playbook("pb-bad") is None
    finally:
        cache.close()


@pytest.mark.parametrize(
    "change", [{"body": 3}, {"channel": "<script>"}, {"subject": 1}, {"placeholders": [{}]}]
)
def test_template_with_a_wrong_type_is_a_typed_error(change: dict[str, Any]) -> None:
    with pytest.raises(BadResponse, match="tpl-bad"):
        Template.from_data("tpl-bad", 1, {**hostile_template("ok"), **change})


# The widgets


@pytest.fixture
def popup(qtbot: QtBot) -> AlertPopup:
    widget = AlertPopup()
    qtbot.addWidget(widget)
    return widget


@pytest.mark.parametrize("text", HOSTILE)
def test_alert_popup_shows_hostile_text_literally(popup: AlertPopup, text: str) -> None:
    alert = Alert.from_json(alert_json(title=text, body=text))

    popup.present(AlertCard(alert, playbook_title=text, templates=(("t1", text),)), sound=False)
    # Shown as typed, except bidi controls, which would reverse it ("fdp.exe" as "exe.pdf").
    expected = text.replace(RLO, "")

    assert popup.title_label.textFormat() == Qt.TextFormat.PlainText
    assert popup.title_label.full_text() == expected
    assert RLO not in popup.title_label.text()
    assert popup.body_view.toPlainText() == expected
    assert_literal(popup.playbook_label, f"Playbook: {expected}")
    template_labels = popup.templates_box.findChildren(ElidedLabel)
    assert [label.full_text() for label in template_labels] == [f"Template: {expected}"]
    assert all(label.textFormat() == Qt.TextFormat.PlainText for label in template_labels)
    # The words Vigil puts around the alert are their own labels, untouched by its text.
    assert popup.severity_label.text() == "▲ CRITICAL ALERT"
    assert popup.meta_label.text().endswith("by dispatch")


def test_a_megabyte_alert_is_cut_and_the_pop_up_stays_on_screen_and_usable(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    alert = Alert.from_json(alert_json(title=MEGABYTE, body=MEGABYTE))

    popup.present(AlertCard(alert), sound=False)
    QApplication.processEvents()

    screen = popup.screen().availableGeometry()
    assert popup.width() <= screen.width()
    assert popup.minimumSizeHint().width() <= screen.width()
    assert len(popup.title_label.full_text()) == TITLE_SHOWN_MAX
    # Elided to the window, whole on hover: never a megabyte laid out.
    assert popup.title_label.is_elided()
    assert popup.title_label.text().endswith("…")
    assert len(popup.body_view.toPlainText()) <= 10_000
    with qtbot.waitSignal(popup.ack_requested, timeout=2000) as acked:
        qtbot.mouseClick(popup.action_buttons["acknowledged"], Qt.MouseButton.LeftButton)
    assert acked.args[:2] == [alert.id, "acknowledged"]


@pytest.fixture
def hostile_cache(tmp_path: Path) -> Iterator[Cache]:
    extra = [
        *(("playbook", f"pb-hostile-{n}", hostile_playbook(t)) for n, t in enumerate(HOSTILE[:-1])),
        *(
            ("template", f"tpl-hostile-{n}", hostile_template(t))
            for n, t in enumerate(HOSTILE[:-1])
        ),
    ]
    cache = open_cache(tmp_path / "cache.sqlite3", extra)
    yield cache
    cache.close()


@pytest.mark.parametrize("index", range(len(HOSTILE) - 1))
def test_playbook_and_template_views_show_hostile_content_literally(
    qtbot: QtBot, hostile_cache: Cache, index: int
) -> None:
    text = HOSTILE[index]
    playbook = hostile_cache.playbook(f"pb-hostile-{index}")
    template = hostile_cache.template(f"tpl-hostile-{index}")
    assert playbook is not None and template is not None
    playbook_view, template_view = PlaybookView(), TemplateView()
    qtbot.addWidget(playbook_view)
    qtbot.addWidget(template_view)

    playbook_view.show_playbook(playbook, alert_id="a1", alert_title=text)
    template_view.show_template(template)
    expected = text.replace(RLO, "")

    assert_literal(playbook_view.title, expected)
    assert_literal(playbook_view.summary, expected)
    assert playbook_view.steps.item(0).text() == f"1. {expected}"
    copy_tooltips = [
        tooltip_text(button.toolTip())
        for button in playbook_view.findChildren(QPushButton)
        if button.toolTip()
    ]
    assert copy_tooltips == [f"Copy {text.replace(RLO, '')}"]
    assert_literal(template_view.title, expected)
    assert template_view.preview.toPlainText().endswith(expected)
    hints = [tooltip_text(edit.toolTip()) for edit in template_view.findChildren(QLineEdit)]
    assert hints == [text.replace(RLO, "")]
    labels = [label for label in template_view.findChildren(QLabel) if label.text()]
    assert all(label.textFormat() == Qt.TextFormat.PlainText for label in labels)


def test_library_lists_and_tooltips_show_hostile_titles_literally(
    qtbot: QtBot, hostile_cache: Cache
) -> None:
    window = LibraryWindow()
    qtbot.addWidget(window)
    window.set_playbooks(hostile_cache.playbooks())
    alerts = [
        AlertHistoryEntry(Alert.from_json(alert_json(id=f"a{n}", seq=n + 1, title=t, body=t)))
        for n, t in enumerate([*HOSTILE, MEGABYTE])
    ]
    window.set_alerts(alerts)

    shown = {
        window.playbook_list.item(row).text(): tooltip_text(
            window.playbook_list.item(row).toolTip()
        )
        for row in range(window.playbook_list.count())
    }
    for text in HOSTILE[:-1]:
        assert shown[text.replace(RLO, "")].startswith(text.replace(RLO, "") + "\n")
    for row in range(window.alert_list.topLevelItemCount()):
        item = window.alert_list.topLevelItem(row)
        assert len(item.text(2)) <= 120
        assert len(tooltip_text(item.toolTip(2))) <= 300
    window.show_alerts()
    items = {
        window.alert_list.topLevelItem(row).data(0, ID_ROLE): window.alert_list.topLevelItem(row)
        for row in range(window.alert_list.topLevelItemCount())
    }
    window.alert_list.setCurrentItem(items[f"a{len(HOSTILE) - 1}"])
    assert_literal(window.alert_title, HOSTILE[-1])
    window.alert_list.setCurrentItem(items[f"a{len(HOSTILE)}"])
    assert len(window.alert_title.text()) == TITLE_SHOWN_MAX
    assert window.minimumSizeHint().width() <= window.screen().availableGeometry().width()


@pytest.mark.parametrize("text", HOSTILE)
def test_tooltips_and_notifications_never_interpret_markup_or_bidi(text: str) -> None:
    assert tooltip_text(plain_tooltip(text)) == text.replace(RLO, "")
    for markup in (False, True):
        assert RLO not in notification_text(text, 100, markup=markup)
    # A markup server gets every "<" escaped, exactly once; a plain one gets the text as typed.
    assert "<" not in notification_text(text, 100, markup=True).replace("&lt;", "")
    assert html.unescape(notification_text(text, 100, markup=True)) == notification_text(text, 100)


@pytest.mark.parametrize("text", HOSTILE)
def test_sign_in_errors_are_plain_text(qtbot: QtBot, text: str) -> None:
    dialog = SignInDialog()
    qtbot.addWidget(dialog)

    dialog.show_error(text)

    assert_literal(dialog.error_label, text)


def test_raw_hostile_json_alert_round_trips_through_the_cache(tmp_path: Path) -> None:
    cache = Cache.open(tmp_path / "cache.sqlite3")
    try:
        alerts = [
            Alert.from_json(alert_json(id=f"a{n}", seq=n + 1, title=t, body=t))
            for n, t in enumerate([*HOSTILE, MEGABYTE])
        ]
        cache.add_alerts(alerts)
        assert {a.title for a in cache.alerts()} == {*HOSTILE, MEGABYTE}
        assert json.loads(json.dumps(alerts[0].to_json()))["title"] == HOSTILE[0]
    finally:
        cache.close()
