"""The pop-up in an incident: a drill says so in words, an update shows what changed with its
links as plain text that only open https on a click, the next update's time turns overdue, a
retraction replaces the content, and hostile hub text stays plain text."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QFont
from PySide6.QtWidgets import QApplication, QLabel, QWidget
from pytestqt.qtbot import QtBot

from client.ui.alert_popup import AlertPopup, alert_name, waiting_row_text
from client.ui.resources import resource_dir
from client.ui.text import DRILL_BANNER, RETRACTED_NOTICE, opens_as_link
from client.ui.view_models import AlertCard
from tests.ui.incidents import HOSTILE, NOW, RLO, changed, incident


class Clock:
    """The pop-up's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class UrlCatcher(QObject):
    """Stands in for the desktop's browser: Qt hands it every https URL opened."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.opened.append(url.toString())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def popup(qtbot: QtBot, clock: Clock) -> AlertPopup:
    widget = AlertPopup(clock=clock, arm_ms=10)
    qtbot.addWidget(widget)
    return widget


@pytest.fixture
def browser() -> Iterator[UrlCatcher]:
    catcher = UrlCatcher()
    for scheme in ("https", "http", "file", "javascript"):
        QDesktopServices.setUrlHandler(scheme, catcher, "open")
    yield catcher
    for scheme in ("https", "http", "file", "javascript"):
        QDesktopServices.unsetUrlHandler(scheme)


def test_a_drill_says_drill_in_words_on_the_banner_title_list_and_to_a_reader(
    qtbot: QtBot, popup: AlertPopup, clock: Clock
) -> None:
    drill = incident(1, drill=True)
    popup.present(AlertCard(drill), sound=False)
    qtbot.waitExposed(popup)
    assert popup.drill_banner.isVisible()
    assert popup.drill_banner.text() == DRILL_BANNER
    assert popup.drill_banner.accessibleName() == DRILL_BANNER
    assert popup.accessibleName().startswith(DRILL_BANNER)
    assert "DRILL" in popup.windowTitle()
    assert waiting_row_text(AlertCard(drill), NOW, 0, NOW).startswith("DRILL · ")
    # Its own colour under the app's stylesheet, unlike any severity band's.
    popup.setStyleSheet((resource_dir() / "vigil.qss").read_text(encoding="utf-8"))
    QApplication.processEvents()
    banner = popup.drill_banner.grab().toImage()
    band = popup.band.grab().toImage()
    drill_colour = banner.pixelColor(banner.width() - 4, banner.height() // 2)
    assert drill_colour.name() == "#5b21b6"
    assert drill_colour != band.pixelColor(band.width() // 2, 3)

    live = incident(2)
    popup.present(AlertCard(live), sound=False)
    popup.show_alert(live.id)
    # What must not happen: a live alert marked as a drill.
    assert not popup.drill_banner.isVisible()
    assert "DRILL" not in popup.windowTitle()
    assert "DRILL" not in alert_name(live)


def test_an_update_shows_number_time_author_severity_change_and_text(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    first = incident(1, "major")
    popup.present(AlertCard(first), sound=False)
    qtbot.waitExposed(popup)
    assert not popup.update_box.isVisible()
    assert not popup.updated_badge.isVisible()

    update = changed(first, text="East lines back.", severity="critical")
    popup.present(AlertCard(update), sound=False)
    heading = popup.update_heading.text()
    assert heading.startswith("Update 1 · ")
    assert "by dora" in heading
    assert "severity Major → Critical" in heading
    assert popup.update_text.toPlainText() == "East lines back."
    assert popup.updated_badge.isVisible()
    assert popup.is_updated(first.id)
    # The first publish's text stays below the news.
    assert popup.body_view.toPlainText() == first.body


def test_update_links_open_only_https_and_only_after_a_click(
    qtbot: QtBot, popup: AlertPopup, browser: UrlCatcher
) -> None:
    links = (
        "https://status.example.org/incident?a=1&b=2",
        "http://plain.example.org/",
        "javascript:alert(1)",
        "file:///etc/passwd",
        f"https://{RLO}evil.example.org/",
    )
    popup.present(AlertCard(changed(incident(1), links=links)), sound=False)
    qtbot.waitExposed(popup)
    # One button, for the https link; the others are shown as words only.
    assert len(popup.link_buttons) == 1
    button = popup.link_buttons[0]
    # "&" doubled so the button shows it instead of taking it as a shortcut marker.
    assert "a=1&&b=2" in button.text()
    assert browser.opened == []  # nothing opens by being shown

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert browser.opened == ["https://status.example.org/incident?a=1&b=2"]

    refused = [label.full_text() for label in popup.links_box.findChildren(QLabel)]
    assert any("http://plain.example.org/" in text and "not opened" in text for text in refused)
    assert all(popup.open_link(link) is False for link in links[1:])
    assert browser.opened == ["https://status.example.org/incident?a=1&b=2"]


def test_a_link_button_opens_with_tab_and_enter(
    qtbot: QtBot, popup: AlertPopup, browser: UrlCatcher
) -> None:
    popup.present(AlertCard(changed(incident(1), links=("https://a.example.org/",))), sound=False)
    qtbot.waitExposed(popup)
    popup.activateWindow()
    popup.update_text.setFocus()
    qtbot.waitUntil(popup.update_text.hasFocus, timeout=2000)
    qtbot.keyClick(popup.update_text, Qt.Key.Key_Tab)
    button = popup.link_buttons[0]
    qtbot.waitUntil(button.hasFocus, timeout=2000)
    qtbot.keyClick(button, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: browser.opened == ["https://a.example.org/"], timeout=2000)
    assert button.accessibleName().startswith("Open link 1 in the browser")


@pytest.mark.parametrize(
    ("url", "opens"),
    [
        ("https://a.example.org/x", True),
        ("HTTPS://a.example.org/x", True),
        ("https://", False),
        ("https:///path", False),
        ("http://a.example.org/", False),
        ("javascript:alert(1)", False),
        ("data:text/html,<b>x</b>", False),
        ("https://a.example.org/\nx", False),
        (f"https://a.example.org/{RLO}", False),
        ("", False),
        ("https://" + "a" * 5000 + ".org/", True),
    ],
)
def test_only_https_links_with_a_host_may_open(url: str, opens: bool) -> None:
    assert opens_as_link(url) is opens


def test_the_next_update_time_turns_overdue_as_the_clock_passes_it(
    qtbot: QtBot, popup: AlertPopup, clock: Clock
) -> None:
    alert = incident(1, next_update_by=NOW + timedelta(minutes=30))
    popup.present(AlertCard(alert), sound=False)
    qtbot.waitExposed(popup)
    assert popup.next_update_label.text().startswith("Next update by ")
    assert "overdue" not in popup.next_update_label.text()
    clock.now = NOW + timedelta(minutes=31)
    popup.refresh_times()
    assert popup.next_update_label.text().startswith("Update overdue (was due by ")
    assert popup.next_update_label.property("overdue") == "true"


@pytest.mark.parametrize("year", [1, 9999])
def test_times_at_the_ends_of_the_calendar_are_shown_not_raised(
    qtbot: QtBot, popup: AlertPopup, year: int
) -> None:
    edge = datetime(year, 1 if year == 1 else 12, 1 if year == 1 else 31, tzinfo=NOW.tzinfo)
    alert = changed(incident(1, next_update_by=edge), at=edge, next_update_by=edge)
    popup.present(AlertCard(alert), sound=False)
    qtbot.waitExposed(popup)
    assert popup.update_heading.text().startswith("Update 1 · ")
    assert popup.next_update_label.isVisible()


def test_a_retraction_replaces_the_content_with_the_notice_and_takes_no_answer(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    first = incident(1, drill=True)
    popup.present(AlertCard(first), sound=False)
    qtbot.waitExposed(popup)
    asked: list[tuple[str, str, str]] = []
    popup.ack_requested.connect(lambda *args: asked.append(args))

    retracted = changed(first, "retracted", "Sent to the wrong region.")
    assert popup.refresh_card(AlertCard(retracted))
    assert popup.closed_notice.isVisible()
    assert popup.closed_notice.text() == f"{RETRACTED_NOTICE}\nSent to the wrong region."
    assert popup.accessibleName().startswith(RETRACTED_NOTICE)
    # What must not happen: the original words, or a way to act on them, still on screen.
    for part in (popup.title_label, popup.body_view, popup.actions_row, popup.note_row):
        assert not part.isVisible()
    assert first.title not in popup.windowTitle()
    popup._act("acknowledged")
    assert asked == []
    assert popup.unanswered_ids() == []
    assert popup.close_button.isVisible()
    # Closing drops it: a retracted alert never comes back.
    qtbot.keyClick(popup, Qt.Key.Key_Escape)
    assert popup.count() == 0


def test_resolved_shows_the_note(qtbot: QtBot, popup: AlertPopup) -> None:
    first = incident(1)
    popup.present(AlertCard(first), sound=False, stays=False)
    qtbot.waitExposed(popup)
    popup.refresh_card(AlertCard(changed(first, "resolved", "Video is back.")))
    assert popup.closed_notice.text() == "RESOLVED: Video is back."
    assert popup.title_label.isVisible()
    assert popup.unanswered_ids() == []


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.one_of(
        st.just(HOSTILE),
        st.just("x" * 5000),
        st.just(""),
        st.text(max_size=300),
    )
)
def test_hub_text_in_an_update_is_plain_text_without_bidi_controls(
    qtbot: QtBot, popup: AlertPopup, text: str
) -> None:
    alert = changed(incident(1, title=text or "t"), text=text, by=text or "dora")
    popup.present(AlertCard(alert), sound=False)
    shown_text = popup.update_text.toPlainText()
    assert RLO not in shown_text and RLO not in popup.update_heading.text()
    assert popup.update_heading.textFormat() == Qt.TextFormat.PlainText
    assert popup.closed_notice.textFormat() == Qt.TextFormat.PlainText
    assert len(shown_text) <= 10_000
    if text == HOSTILE:
        assert "<b>bold</b>" in shown_text


def test_new_controls_have_names_and_stay_whole_at_twice_the_font_size(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    font = QFont(popup.font())
    font.setPointSizeF(font.pointSizeF() * 2)
    popup.setFont(font)
    alert = changed(
        incident(1, drill=True, next_update_by=NOW + timedelta(hours=1)),
        text="x " * 2500,
        links=("https://a.example.org/" + "p" * 300,),
        next_update_by=NOW + timedelta(hours=1),
    )
    popup.present(AlertCard(alert), sound=False)
    qtbot.waitExposed(popup)
    QApplication.processEvents()
    for widget in (popup.drill_banner, popup.update_heading, popup.next_update_label):
        assert widget.accessibleName()
        # Wrapped, never clipped: as high as its text needs at its width.
        assert widget.height() >= widget.heightForWidth(widget.width()) - 1, widget.objectName()
    button = popup.link_buttons[0]
    assert button.accessibleName()
    assert button.width() <= popup.width()
    named: list[QWidget] = [popup.update_text, popup.updated_badge, popup.closed_notice]
    assert all(widget.accessibleName() for widget in named)


def test_an_update_to_an_answered_alert_is_marked_in_place_and_never_raises_the_window(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    first = incident(1)
    popup.present(AlertCard(first), sound=False)
    qtbot.waitExposed(popup)
    popup.set_ack_state(first.id, "recorded")
    assert popup.refresh_card(AlertCard(changed(first, text="News.")))
    assert popup.updated_badge.isVisible()
    assert popup.update_text.toPlainText() == "News."

    popup.hide()
    assert popup.refresh_card(AlertCard(changed(changed(first), text="More news.")))
    # What must not happen: the window coming back (and taking the focus) by itself.
    assert not popup.isVisible()
    # An alert that is not queued is not put there by its update.
    assert not popup.refresh_card(AlertCard(incident(7)))
    assert popup.alert_ids() == [first.id]
    # An older state never replaces a newer one (a replay after an update).
    popup.refresh_card(AlertCard(first))
    assert popup.update_text.toPlainText() == "More news."


def test_only_the_alert_on_the_visible_window_counts_as_displayed(
    qtbot: QtBot, popup: AlertPopup
) -> None:
    displayed: list[str] = []
    popup.alert_displayed.connect(displayed.append)
    critical, major = incident(1), incident(2, "major")
    popup.refresh_card(AlertCard(critical))  # not queued, not shown
    assert displayed == []
    popup.present(AlertCard(critical), sound=False)
    popup.present(AlertCard(major), sound=False)
    qtbot.waitExposed(popup)
    # What must not happen: the major alert waiting behind the critical one counted as seen.
    assert set(displayed) == {critical.id}
    popup.show_next()
    assert displayed[-1] == major.id
