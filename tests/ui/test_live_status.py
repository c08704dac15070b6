"""The tray tells the truth: the whole app against a real hub, whose alert stream (not the last
sync) decides whether the agent is live, and "Sync now" says what it is doing and what it did."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from client.app import VigilApp
from client.core.paths import AppPaths
from client.core.policy import Policy
from client.core.reminders import AlertAttention
from client.core.settings import Settings
from hub.server import EmbeddedHub
from tests.client.test_outbox_damage import ACKS, damage_page, filled_outbox
from tests.hubtools import DEFAULT_PASSWORD, create_user, publish_alert, sign_in
from tests.ui.test_app_flow import sign_in_through_dialog

WAIT_MS = 15_000


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
        app = VigilApp(qt_app, paths, settings, tray_available=False, attention=AlertAttention())
        qtbot.addWidget(app.library)
        made.append(app)
        app.start()
        return app

    yield make
    for app in made:
        app.quit()
    qt_app.setStyleSheet("")
    qt_app.setQuitOnLastWindowClosed(True)


@pytest.fixture
def agent_secret(hub: EmbeddedHub) -> str:
    return create_user(hub.store, "amira", "agent", display_name="Amira Haddad")


def tooltip(app: VigilApp) -> str:
    look = app.status.look
    return look.tooltip if look is not None else ""


def icon(app: VigilApp) -> str:
    look = app.status.look
    return look.icon if look is not None else ""


def test_a_killed_hub_shows_alerts_paused_at_once_and_live_again_when_it_returns(
    qtbot: QtBot,
    hub: EmbeddedHub,
    start_hub: Callable[..., EmbeddedHub],
    make_app: Callable[[str], VigilApp],
    agent_secret: str,
) -> None:
    app = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    qtbot.waitUntil(lambda: "alerts live" in tooltip(app), timeout=WAIT_MS)
    core = app.core
    assert core is not None
    synced_at = core.sync.status.last_synced_at
    port = hub.port

    hub.stop()

    # The last sync still says "online" (it runs every 5 minutes): only the stream knows.
    qtbot.waitUntil(lambda: icon(app) == "unreachable", timeout=WAIT_MS)
    assert core.sync.status.last_synced_at == synced_at
    text = tooltip(app)
    assert text.startswith("Hub unreachable: alerts paused")
    assert "phone tree" in text
    assert "alerts live" not in text and "Connected" not in text
    # A reconnect attempt does not flicker back to anything that looks live.
    assert icon(app) == "unreachable"

    start_hub(port=port)
    qtbot.waitUntil(lambda: "alerts live" in tooltip(app), timeout=WAIT_MS)
    assert icon(app) != "unreachable"


def test_sync_now_says_it_runs_then_what_it_did_or_why_it_failed(
    qtbot: QtBot,
    hub: EmbeddedHub,
    make_app: Callable[[str], VigilApp],
    agent_secret: str,
) -> None:
    app = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    qtbot.waitUntil(lambda: "alerts live" in tooltip(app), timeout=WAIT_MS)
    dispatcher = create_user(hub.store, "dora", "dispatcher")
    token: str = sign_in(hub.url, "dora", DEFAULT_PASSWORD, dispatcher)["access_token"]
    core = app.core
    assert core is not None
    # Stop the stream so that the alert can only arrive through the sync's catch-up.
    core.alert_stream.stop()
    publish_alert(hub.url, token, severity="minor", title="Portal slow")

    app.sync_now()

    assert "Syncing now…" in tooltip(app)
    qtbot.waitUntil(lambda: "Synced " in tooltip(app), timeout=WAIT_MS)
    assert "1 new alert" in tooltip(app)
    assert "0 acks sent" in tooltip(app)
    assert "Syncing now…" not in tooltip(app)

    hub.stop()
    app.sync_now()
    qtbot.waitUntil(lambda: "Sync failed " in tooltip(app), timeout=WAIT_MS)
    assert "cannot be reached" in tooltip(app)


def test_a_damaged_outbox_at_start_is_salvaged_and_the_agent_is_told(
    qtbot: QtBot, hub: EmbeddedHub, make_app: Callable[[str], VigilApp], tmp_path: Path
) -> None:
    outbox_file = tmp_path / "data" / "outbox.sqlite3"
    filled_outbox(outbox_file)
    damage_page(outbox_file, "acks_alert", which=1)

    app = make_app(hub.url)
    warnings: list[str] = []
    app.bridge.warning.connect(warnings.append)

    qtbot.waitUntil(lambda: any("damaged" in text for text in warnings), timeout=WAIT_MS)
    told = next(text for text in warnings if "damaged" in text)
    assert f"{ACKS} acknowledgement(s) were recovered" in told and "None was lost" in told
    assert "outbox.sqlite3.damaged-" in told
    assert "full" not in told
    core = app.core
    assert core is not None
    assert core.outbox.counts().pending + core.outbox.counts().synced == ACKS
