"""The tray names the backup hub address while the client uses it: the whole app, IT's policy
listing two addresses of one real hub (the preferred through a proxy that can refuse)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from client.app import VigilApp
from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.reminders import AlertAttention
from client.core.settings import Settings
from hub.server import EmbeddedHub
from tests.faultproxy import FaultProxy
from tests.hubtools import create_user
from tests.ui.test_app_flow import sign_in_through_dialog

WAIT_MS = 15_000


@pytest.fixture
def front(hub: EmbeddedHub) -> Iterator[FaultProxy]:
    proxy = FaultProxy((hub.host, hub.port)).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def app(qtbot: QtBot, tmp_path: Path, hub: EmbeddedHub, front: FaultProxy) -> Iterator[VigilApp]:
    qt_app = QApplication.instance()
    assert isinstance(qt_app, QApplication)
    policy_path = tmp_path / "policy.json"
    policy_path.write_text(json.dumps({"hub_urls": [front.url, hub.url]}))
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    settings = Settings.load(paths, load_policy(policy_path))
    settings.set("sounds", False)
    started = VigilApp(qt_app, paths, settings, tray_available=False, attention=AlertAttention())
    qtbot.addWidget(started.library)
    started.start()
    yield started
    started.quit()
    qt_app.setStyleSheet("")
    qt_app.setQuitOnLastWindowClosed(True)


def tooltip(app: VigilApp) -> str:
    look = app.status.look
    return look.tooltip if look is not None else ""


def test_the_tray_names_the_backup_while_it_is_used_and_not_once_the_preferred_is_back(
    qtbot: QtBot, hub: EmbeddedHub, front: FaultProxy, app: VigilApp
) -> None:
    secret = create_user(hub.store, "amira", "agent", display_name="Amira Haddad")
    sign_in_through_dialog(qtbot, app, secret)
    qtbot.waitUntil(lambda: "Connected to hub as amira" in tooltip(app), timeout=WAIT_MS)
    assert "backup" not in tooltip(app)

    front.refuse_connections()
    qtbot.waitUntil(
        lambda: f"Connected (backup hub {hub.url}) as amira: alerts live" in tooltip(app),
        timeout=WAIT_MS,
    )
    # Live on the backup: not paused, not offline, no new sign-in (the VPN icon may show here).
    assert app.status.look is not None
    assert app.status.look.icon not in ("unreachable", "offline", "signin")
    core = app.core
    assert core is not None and core.auth.account is not None

    front.accept_connections()
    # A network change cuts the probe's wait (15 s and more) short; the app does the same.
    core.hub.route.probe_now()
    qtbot.waitUntil(lambda: "Connected to hub as amira" in tooltip(app), timeout=WAIT_MS)
    assert "backup" not in tooltip(app)
    assert core.hub.current_url == front.url
