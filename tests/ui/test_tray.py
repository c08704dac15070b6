"""The tray icon: its look per state and the intents its menu sends."""

from __future__ import annotations

import html

import pytest
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot

from client.core.status import TRAY_ICON_NAMES, TrayLook
from client.ui import resources
from client.ui.tray import TrayIcon, notification_text, tooltip_markup


@pytest.fixture
def tray(qtbot: QtBot) -> TrayIcon:
    return TrayIcon()


@pytest.mark.parametrize("name", TRAY_ICON_NAMES)
def test_every_state_has_an_icon_at_every_tray_size(name: str) -> None:
    for size in resources.TRAY_SIZES:
        assert resources.icon_file(name, size).is_file()
    assert (resources.resource_dir() / "icons" / f"{name}.svg").is_file()


@pytest.mark.parametrize("name", TRAY_ICON_NAMES)
def test_look_sets_icon_and_tooltip(tray: TrayIcon, name: str) -> None:
    look = TrayLook(icon=name, badge_count=0, tooltip=f"state {name}")
    tray.show_look(look)
    assert tray.look == look
    assert tray.tooltip() == f"<qt>Vigil · state {name}</qt>"
    assert not resources.tray_icon(look).isNull()


def test_badge_count_changes_the_picture() -> None:
    plain = resources.tray_icon(TrayLook("pending", 0, "")).pixmap(32, 32).toImage()
    counted = resources.tray_icon(TrayLook("pending", 2, "")).pixmap(32, 32).toImage()
    assert plain.size() == counted.size()
    assert plain != counted


def test_each_state_and_count_draws_its_icon_once() -> None:
    # A new icon at every change of the count left pixmaps in Qt's cache with each alert.
    first = resources.tray_icon(TrayLook("pending", 3, "3 alerts waiting"))
    again = resources.tray_icon(TrayLook("pending", 3, "3 alerts, one new"))
    other = resources.tray_icon(TrayLook("pending", 4, ""))
    many = resources.tray_icon(TrayLook("pending", 12, ""))
    more = resources.tray_icon(TrayLook("pending", 250, ""))

    assert first.cacheKey() == again.cacheKey()
    assert first.cacheKey() != other.cacheKey()
    # Ten or more all show "9+".
    assert many.cacheKey() == more.cacheKey()


@pytest.mark.parametrize(
    ("key", "signal"),
    [
        ("library", "open_library_requested"),
        ("alerts", "alerts_requested"),
        ("sync", "sync_requested"),
        ("status", "status_requested"),
        ("settings", "settings_requested"),
        ("about", "about_requested"),
        ("sign_out", "sign_out_requested"),
        ("quit", "quit_requested"),
    ],
)
def test_menu_actions_emit_intents(qtbot: QtBot, tray: TrayIcon, key: str, signal: str) -> None:
    with qtbot.waitSignal(getattr(tray, signal), timeout=2000):
        tray.actions[key].trigger()


def test_menu_lists_the_actions_in_order(tray: TrayIcon) -> None:
    labels = [action.text().replace("&", "") for action in tray.actions.values()]
    assert labels == [
        "Open library",
        "Alerts",
        "Sync now",
        "Status",
        "Settings",
        "About Vigil",
        "Sign out",
        "Quit",
    ]


def test_signed_out_menu_offers_sign_in_instead(qtbot: QtBot, tray: TrayIcon) -> None:
    tray.set_signed_in(False)
    assert tray.actions["sign_out"].text().replace("&", "") == "Sign in…"
    with qtbot.waitSignal(tray.sign_in_requested, timeout=2000):
        tray.actions["sign_out"].trigger()
    tray.set_signed_in(True)
    with qtbot.waitSignal(tray.sign_out_requested, timeout=2000):
        tray.actions["sign_out"].trigger()


def test_clicking_the_icon_opens_the_library(qtbot: QtBot, tray: TrayIcon) -> None:
    with qtbot.waitSignal(tray.open_library_requested, timeout=2000):
        tray._icon.activated.emit(QSystemTrayIcon.ActivationReason.Trigger)


def test_notification_text_is_escaped_once_for_a_markup_server_and_cut_short() -> None:
    text = notification_text("<b>West</b> &\nvideo down " + "x" * 300, 50, markup=True)
    assert "<b>" not in text
    assert text.startswith("&lt;b&gt;West&lt;/b&gt; &amp; video down")
    assert "&amp;amp;" not in text
    assert "\n" not in text
    assert len(text) <= 80
    assert text.endswith("…")


@pytest.mark.parametrize("raw", ["<b>West</b> & East", "R&amp;D", "a < b > c", 'Tom\'s "clinic"'])
def test_a_plain_text_backend_shows_the_text_as_typed_not_escaped(raw: str) -> None:
    # Qt's own balloon (no notification server) and Windows/macOS show plain text.
    assert notification_text(raw, 100) == raw
    assert "&lt;" not in notification_text(raw, 100)
    # Escaped exactly once: a markup server shows what was typed, "&amp;" included.
    assert html.unescape(notification_text(raw, 100, markup=True)) == raw


def test_without_a_status_notifier_host_notifications_are_plain_text(qapp: object) -> None:
    from client.ui.tray import notification_body_markup

    # The test session bus runs no StatusNotifier host: Qt shows its own plain balloon.
    assert notification_body_markup() is False


def test_tooltip_text_is_never_markup_and_loses_bidi_controls(tray: TrayIcon) -> None:
    hostile = "2 acknowledgements by \u202e<b>x</b><img src=a> wait for \u202e<b>x</b>"
    tray.show_look(TrayLook(icon="pending", badge_count=2, tooltip=hostile))
    shown = tray.tooltip()
    assert "<b>" not in shown and "<img" not in shown
    assert "\u202e" not in shown
    assert "&lt;b&gt;x&lt;/b&gt;" in shown
    assert tooltip_markup("a & b") == "<qt>Vigil · a &amp; b</qt>"
