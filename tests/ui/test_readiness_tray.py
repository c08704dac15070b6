"""Shift readiness in the tray: the one line in the menu and the tooltip, the "Run readiness
check" entry, and the whole app running the check at sign-in against a real hub (offscreen Qt)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from client.app import VigilApp
from client.controllers import readiness as readiness_controller
from client.core.paths import AppPaths
from client.core.policy import Policy
from client.core.readiness import DesktopAbilities, ReadinessOutcome
from client.core.settings import Settings
from client.core.status import TrayLook
from client.ui.tray import READINESS_UNKNOWN, TrayIcon
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, create_user, next_code
from tests.vigil_cli import real_keyring

WAIT_MS = 20_000
DESKTOP = DesktopAbilities(
    tray_available=True, supports_messages=True, audio_output=True, tone_readable=True
)


@pytest.fixture
def tray(qtbot: QtBot) -> TrayIcon:
    return TrayIcon()


def _menu_texts(tray: TrayIcon) -> list[str]:
    return [action.text().replace("&", "") for action in tray._menu.actions()]


def test_the_menu_starts_with_the_readiness_line_and_its_check(tray: TrayIcon) -> None:
    texts = _menu_texts(tray)

    assert texts[:3] == [READINESS_UNKNOWN, "Run readiness check", ""]
    assert not tray.readiness_line.isEnabled()
    assert tray.readiness_action.isEnabled()
    # The other entries keep their order after it.
    assert texts[3] == "Open library"


def test_run_readiness_check_sends_its_intent(qtbot: QtBot, tray: TrayIcon) -> None:
    with qtbot.waitSignal(tray.readiness_requested, timeout=2000):
        tray.readiness_action.trigger()


def test_the_line_shows_in_the_menu_and_the_tooltip(tray: TrayIcon) -> None:
    tray.show_look(TrayLook(icon="connected", badge_count=0, tooltip="Connected"))
    assert tray.tooltip() == "<qt>Vigil · Connected</qt>"

    tray.show_readiness("Not ready: VPN, alert stream")

    assert tray.readiness_line.text() == "Not ready: VPN, alert stream"
    assert tray.tooltip() == "<qt>Vigil · Connected · Not ready: VPN, alert stream</qt>"

    tray.show_readiness("Ready for shift")
    tray.show_look(TrayLook(icon="pending", badge_count=1, tooltip="1 answer waiting"))

    assert tray.tooltip() == "<qt>Vigil · 1 answer waiting · Ready for shift</qt>"


def test_hostile_text_never_becomes_markup_or_reorders_the_line(tray: TrayIcon) -> None:
    tray.show_readiness("Not ready: <b>VPN</b>\u202e & more")

    assert "<b>" not in tray.tooltip()
    assert "&lt;b&gt;VPN&lt;/b&gt;" in tray.tooltip()
    assert "\u202e" not in tray.tooltip()
    assert "\u202e" not in tray.readiness_line.text()


def test_signed_out_the_line_says_not_checked_and_leaves_the_tooltip(tray: TrayIcon) -> None:
    tray.show_look(TrayLook(icon="signin", badge_count=0, tooltip="Signed out"))
    tray.show_readiness("Ready for shift")

    tray.show_readiness(READINESS_UNKNOWN)

    assert tray.tooltip() == "<qt>Vigil · Signed out</qt>"


def test_the_desktop_abilities_come_from_qt_and_the_tone_file(qtbot: QtBot) -> None:
    from PySide6.QtWidgets import QSystemTrayIcon

    abilities = readiness_controller.desktop_abilities()

    assert abilities.tray_available == QSystemTrayIcon.isSystemTrayAvailable()
    assert abilities.supports_messages == QSystemTrayIcon.supportsMessages()
    assert abilities.tone_readable is True


@pytest.fixture
def make_app(qtbot: QtBot, tmp_path: Path) -> Iterator[Callable[[str], VigilApp]]:
    made: list[VigilApp] = []
    qt_app = QApplication.instance()
    assert isinstance(qt_app, QApplication)

    def make(hub_url: str) -> VigilApp:
        paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
        settings = Settings.load(paths, Policy())
        settings.set("sounds", False)
        settings.set("hub_url", hub_url)
        app = VigilApp(qt_app, paths, settings, tray_available=True)
        # The desktop as a test fixes it: offscreen Qt has no tray to ask.
        app.readiness._desktop = lambda: DESKTOP
        qtbot.addWidget(app.library)
        made.append(app)
        app.start()
        return app

    yield make
    for app in made:
        app.quit()
    qt_app.setStyleSheet("")
    qt_app.setQuitOnLastWindowClosed(True)


@real_keyring
@pytest.mark.keyring
@pytest.mark.slow
# Showing a tray icon on the offscreen platform, which has no tray, warns once; a desktop does not.
@pytest.mark.qt_log_ignore("No such signal QPlatformNativeInterface::systemTrayWindowChanged")
def test_the_app_checks_at_sign_in_and_on_request_and_reports_offline_results_later(
    qtbot: QtBot, start_hub: Callable[..., EmbeddedHub], make_app: Callable[[str], VigilApp]
) -> None:
    hub = start_hub()
    secret = create_user(hub.store, "amira", "agent")
    app = make_app(hub.url)
    outcomes: list[ReadinessOutcome] = []
    app.readiness.outcome_changed.connect(outcomes.append)

    qtbot.waitUntil(lambda: app.signin is not None and app.signin.isVisible(), timeout=WAIT_MS)
    dialog = app.signin
    assert dialog is not None
    qtbot.keyClicks(dialog.username_edit, "amira")
    qtbot.keyClicks(dialog.password_edit, DEFAULT_PASSWORD)
    qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.step == "code" and not dialog.busy, timeout=WAIT_MS)
    qtbot.keyClicks(dialog.code_edit, next_code(secret))

    # At sign-in: once the stream is live, without anyone asking.
    qtbot.waitUntil(lambda: len(outcomes) == 1, timeout=WAIT_MS)
    first = outcomes[0]
    statuses = {check.name: check.status for check in first.report.checks}
    assert statuses["stream"] == statuses["hub"] == statuses["cache_age"] == "ok"
    assert statuses["notifications"] == "ok"
    assert first.reported
    tray = app.tray
    assert tray is not None
    assert tray.readiness_line.text() == first.report.summary()
    assert first.report.summary() in tray.tooltip()
    [kept] = hub.store.readiness.for_user("amira")
    assert kept.device_id == app.settings.get("device_id")

    # On request, with the hub gone: shown here, "Not ready: hub, ...", and not reported.
    port = hub.port
    hub.stop()
    tray.readiness_action.trigger()
    qtbot.waitUntil(lambda: len(outcomes) == 2, timeout=WAIT_MS)
    offline = outcomes[1]
    assert not offline.reported
    assert not offline.report.ready
    assert tray.readiness_line.text().startswith("Not ready: hub")

    # At the next contact (the hub answers a sync again) the waiting report reaches it.
    again = start_hub(port=port)
    app.sync_now()
    qtbot.waitUntil(
        lambda: any(
            r.checks["hub"]["status"] == "fail" for r in again.store.readiness.for_user("amira")
        ),
        timeout=WAIT_MS,
    )
    [latest] = again.store.readiness.for_user("amira")
    assert not latest.ready
    # Sent as it was, not run again.
    assert len(outcomes) == 2
