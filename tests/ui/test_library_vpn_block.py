"""The library in the policy's VPN block mode, as the app wires it: the real core against the real
hub (whose VPN ranges say this computer is off the VPN), the real controller and window offscreen.
Closed with a banner saying why and what to do; copying a template does nothing; on the VPN again
it opens."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from client.controllers.alert_desk import AlertDesk
from client.controllers.core_bridge import CoreBridge
from client.controllers.core_host import CoreHost
from client.controllers.library import LibraryController
from client.controllers.tasks import TaskRunner
from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.reminders import AlertAttention
from client.core.settings import Settings
from client.core.vpn import VpnStatus
from client.core.vpn_gate import BANNER
from hub.server import EmbeddedHub

WAIT_MS = 20_000


@pytest.fixture
def library(
    qtbot: QtBot, start_hub: Callable[..., EmbeddedHub], tmp_path: Path
) -> Iterator[tuple[LibraryController, CoreHost, AlertDesk]]:
    hub = start_hub(vpn_cidrs=["10.8.0.0/16"])
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"hub_url": hub.url, "vpn": {"mode": "block"}}))
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    settings = Settings.load(paths, load_policy(policy))
    tasks = TaskRunner()
    bridge = CoreBridge()
    host = CoreHost(paths, settings, tasks, bridge)
    controller = LibraryController(tasks, host)
    desk = AlertDesk(settings, tasks, host, AlertAttention(), lambda _severity: True)
    bridge.vpn_changed.connect(controller.vpn_changed)  # as app.py wires it
    with qtbot.waitSignal(host.started, timeout=WAIT_MS):
        host.build()
    yield controller, host, desk
    desk.popup.close()
    if controller._window is not None:
        controller._window.close()
    host.shut_down()
    tasks.shutdown()


def test_off_the_vpn_the_library_is_closed_with_a_banner_and_copies_nothing(
    qtbot: QtBot, library: tuple[LibraryController, CoreHost, AlertDesk]
) -> None:
    controller, host, desk = library
    controller.show()
    window = controller.window
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.is_vpn_blocked, timeout=WAIT_MS)

    assert window.vpn_banner.isVisible() and window.vpn_banner.text() == BANNER
    assert not window.search_field.isEnabled()
    assert not window.tabs.isTabEnabled(0) and not window.tabs.isTabEnabled(1)
    assert window.tabs.currentIndex() == 2, "the alert history stays open"
    QGuiApplication.clipboard().setText("before")
    # The alert pop-up's Copy goes through the same rule: no fill-in form, nothing copied.
    popup = desk.popup
    desk.copy_template("tpl-video-outage-phone")
    assert popup.notice_label.text() == BANNER
    assert desk.copy_dialog is None
    assert QGuiApplication.clipboard().text() == "before"

    controller.vpn_changed(VpnStatus(True, "hub", "On the VPN"))

    assert not window.is_vpn_blocked
    assert not window.vpn_banner.isVisible()
    assert window.search_field.isEnabled() and window.tabs.isTabEnabled(0)
    assert host.core is not None
