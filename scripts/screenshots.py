"""Takes the README's screenshots: the real tray app against the demo hub, driven step by step.

Run it through scripts/screenshots, which starts the virtual X desktop (Xvfb, openbox, trayer)
this needs. Each picture is the window as the desktop shows it (frame included), cropped.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from demo import AGENT, CRITICAL_PLAYBOOK, DemoHub, DemoProfile, PrivateKeyring, keyring_works
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QCursor, QGuiApplication, QPixmap
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QToolTip, QWidget

from client.app import VigilApp
from client.core.models import Alert
from client.core.policy import load_policy
from client.core.settings import Settings
from client.ui.alert_popup import AlertPopup

WAIT_TIMEOUT = 30.0
# Time for the window manager to map, decorate and paint a window before it is grabbed.
SETTLE_MS = 600
MARGIN = 8


class ShotFailed(Exception):
    """A step never reached the state it waits for."""


class Photographer:
    """Grabs windows and screen regions into PNG files."""

    def __init__(self, qt_app: QApplication, out: Path) -> None:
        self.qt_app = qt_app
        self.out = out
        out.mkdir(parents=True, exist_ok=True)

    def wait_until(self, what: str, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_TIMEOUT
        while not condition():
            if time.monotonic() > deadline:
                raise ShotFailed(f"gave up waiting for {what}")
            QTest.qWait(50)

    def settle(self, ms: int = SETTLE_MS) -> None:
        QTest.qWait(ms)

    def region(self, name: str, rect: QRect) -> None:
        screen = QGuiApplication.primaryScreen()
        bounded = rect.intersected(screen.geometry())
        pixmap: QPixmap = screen.grabWindow(
            0, bounded.x(), bounded.y(), bounded.width(), bounded.height()
        )
        path = self.out / f"{name}.png"
        if not pixmap.save(str(path), "PNG"):
            raise ShotFailed(f"could not write {path}")
        print(f"{path} ({bounded.width()}x{bounded.height()}, {path.stat().st_size // 1024} KB)")

    def window(self, name: str, widget: QWidget) -> None:
        # A tooltip or notification balloon left over from an earlier step must not sit over
        # this window.
        QToolTip.hideText()
        for other in QApplication.topLevelWidgets():
            if other.inherits("QBalloonTip"):
                other.hide()
        self.settle()
        self.region(name, widget.frameGeometry())


def take(out: Path) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="vigil-screenshots-"))
    profile = DemoProfile(workdir)
    demo = DemoHub.start(profile.hub_dir, 0)
    profile.prepare(demo.url)
    private_keyring = PrivateKeyring()
    if not keyring_works():
        private_keyring.start()
    qt_app = QApplication(sys.argv[:1])
    qt_app.setApplicationName("Vigil")
    settings = Settings.load(profile.paths, load_policy(profile.policy_file))
    app = VigilApp(qt_app, profile.paths, settings)
    shots = Photographer(qt_app, out)
    try:
        app.start()
        shoot_sign_in(shots, app, demo)
        shots.wait_until("the library to sync", lambda: app.library.playbook_list.count() > 0)
        shoot_tray(shots, app)
        shoot_alert(shots, app, demo)
        shoot_burst(shots, app, demo)
        shoot_incidents(shots, app, demo)
        shoot_about(shots, app)
        shoot_library(shots, app, demo)
        shoot_offline_tray(shots, app)
    finally:
        app.quit()
        demo.stop()
        private_keyring.stop()


def shoot_sign_in(shots: Photographer, app: VigilApp, demo: DemoHub) -> None:
    shots.wait_until("the sign-in dialog", lambda: app.signin is not None)
    dialog = app.signin
    assert dialog is not None
    shots.wait_until("the sign-in dialog to show", dialog.isVisible)
    agent = demo.user(AGENT)
    QTest.keyClicks(dialog.username_edit, agent.username)
    QTest.keyClicks(dialog.password_edit, agent.password or "")
    dialog.password_edit.setFocus()
    shots.window("signin-password", dialog)
    dialog.sign_in_button.click()
    shots.wait_until("the code step", lambda: dialog.code_edit.isVisible())
    code, _until = demo.fresh_code(AGENT)
    QTest.keyClicks(dialog.code_edit, code[:4])
    shots.window("signin-code", dialog)
    # The sixth digit submits the code.
    QTest.keyClicks(dialog.code_edit, code[4:])
    shots.wait_until(
        "the sign-in", lambda: app.core is not None and app.core.auth.account is not None
    )


def shoot_tray(shots: Photographer, app: VigilApp) -> None:
    tray = app.tray
    if tray is None:
        raise ShotFailed("the desktop has no system tray (is trayer running?)")
    shots.wait_until("the connected tray icon", lambda: _tray_icon(app) == "connected")
    tray_icon = tray.findChild(QSystemTrayIcon)
    menu = tray_icon.contextMenu() if tray_icon is not None else None
    if tray_icon is None or menu is None:
        raise ShotFailed("the tray icon has no menu")
    icon = tray_icon.geometry()
    # Hovering the icon shows its tooltip: the state in words.
    QCursor.setPos(icon.center())
    shots.wait_until("the tray tooltip", QToolTip.isVisible)
    shots.settle()
    tip = QRect(icon.topLeft(), icon.size())
    for widget in QApplication.topLevelWidgets():
        if widget.inherits("QTipLabel") and widget.isVisible():
            tip = widget.frameGeometry()
    shots.region("tray-tooltip", tip.united(icon).adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN))
    QToolTip.hideText()
    QCursor.setPos(icon.center() + QPoint(-400, 300))
    menu.popup(icon.bottomLeft() + QPoint(0, 4))
    shots.wait_until("the tray menu", menu.isVisible)
    shots.settle()
    area = menu.frameGeometry().united(icon).adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN)
    shots.region("tray", area)
    menu.hide()
    QToolTip.hideText()


def shoot_alert(shots: Photographer, app: VigilApp, demo: DemoHub) -> None:
    alert = demo.publish_critical()
    popup = app.popup
    shots.wait_until("the critical pop-up", lambda: alert["id"] in popup.alert_ids())
    shots.wait_until("the pop-up to show", popup.isVisible)
    shots.window("alert-critical", popup)
    popup.action_buttons["acknowledged"].click()
    shots.wait_until("the acknowledgement to sync", lambda: "Synced" in _ack_text(app, alert))
    popup.close()


def shoot_burst(shots: Photographer, app: VigilApp, demo: DemoHub) -> None:
    """Five alerts at once: the pop-up opens on the oldest critical, the rest listed by severity."""
    burst = [
        ("major", "pb-phone-outage", "Phone lines dropping calls (East)"),
        ("minor", "pb-flu-season-surge", "Flu-season queue longer than usual"),
        ("critical", CRITICAL_PLAYBOOK, "Video visits down in the West region"),
        ("major", "pb-eprescribing-outage", "E-prescribing delayed for two pharmacies"),
        ("critical", "pb-ehr-downtime", "EHR read-only: charting paused"),
    ]
    published = [
        demo.publish(severity, playbook, title, "Follow the playbook; next update in 30 minutes.")
        for severity, playbook, title in burst
    ]
    popup = app.popup
    wanted = {str(alert["id"]) for alert in published if alert["severity"] != "minor"}
    shots.wait_until("the burst in the pop-up", lambda: wanted <= set(popup.alert_ids()))
    shots.wait_until("the pop-up to show", popup.isVisible)
    shots.wait_until("the actions to take presses", popup.actions_armed)
    shots.window("alert-burst", popup)
    # The waiting list on its own, as the agent reads it.
    waiting = popup.waiting_list
    top_left = waiting.mapToGlobal(QPoint(0, 0))
    rect = QRect(top_left, waiting.size()).adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN)
    shots.region("alert-waiting-list", rect)
    for alert_id in list(popup.alert_ids()):
        shots.wait_until("the actions to take presses", popup.actions_armed)
        if popup.current_alert_id() != alert_id:
            popup.show_alert(alert_id)
        popup.action_buttons["acknowledged"].click()
        shots.wait_until("the answer to be recorded", _answered(popup, alert_id))
    popup.close()


def shoot_incidents(shots: Photographer, app: VigilApp, demo: DemoHub) -> None:
    """A drill, an alert updated before the agent answered, and the same alert retracted."""
    store = demo.hub.store.alerts
    drill, _new = store.publish(
        severity="critical",
        title="Drill: EHR read-only for an hour",
        body="Practise charting on paper with the downtime forms; no patient is affected.",
        playbook_id="pb-ehr-downtime",
        template_ids=[],
        requires_ack=True,
        expires_at=None,
        issued_by="dora",
        drill=True,
    )
    demo.hub.broker.notify()
    popup = app.popup
    shots.wait_until("the drill pop-up", lambda: popup.current_alert_id() == drill.id)
    shots.wait_until("the pop-up to show", popup.isVisible)
    shots.window("alert-drill", popup)
    popup.action_buttons["acknowledged"].click()
    shots.wait_until("the drill's answer", _answered(popup, drill.id))
    popup.close()

    alert = demo.publish(
        "major",
        "pb-phone-outage",
        "Phone lines dropping calls (East)",
        "Calls to the East queue drop after 30 seconds; call patients back from the list.",
    )
    shots.wait_until("the major pop-up", lambda: popup.current_alert_id() == alert["id"])
    popup.close()
    updated = store.change(
        alert["id"],
        kind="update",
        text="The carrier confirms an outage in three states; West lines are affected too. "
        "Use the backup numbers in the playbook.",
        by="dora",
        severity="critical",
        links=["https://status.example.org/incidents/phone-east"],
        next_update_by=time.time() + 30 * 60,
    )
    _deliver(app, demo, Alert.from_json(updated.to_wire()))
    shots.wait_until("the update on screen", lambda: popup.update_box.isVisible())
    shots.wait_until("the actions to take presses", popup.actions_armed)
    shots.window("alert-updated", popup)

    retracted = store.change(
        alert["id"], kind="retracted", text="Sent to the wrong team; phones are fine.", by="dora"
    )
    _deliver(app, demo, Alert.from_json(retracted.to_wire()))
    shots.wait_until("the retraction on screen", lambda: popup.closed_notice.isVisible())
    shots.window("alert-retracted", popup)
    popup.close()


def _deliver(app: VigilApp, demo: DemoHub, alert: Alert) -> None:
    # What the client's stream does with a changed alert; a client that already stored it
    # from the stream reports no change here, and its desk already has it.
    demo.hub.broker.notify()
    core = app.core
    if core is None:
        raise ShotFailed("the client is not running")
    for _old, new in core.cache.store_alerts([alert]).changed:
        app.alert_desk.receive_change(new)


def shoot_about(shots: Photographer, app: VigilApp) -> None:
    app.about.show()
    shots.wait_until("the About window", lambda: app.about.window is not None)
    window = app.about.window
    assert window is not None
    shots.wait_until("the About window to show", window.isVisible)
    shots.window("about", window)
    window.reject()


def shoot_offline_tray(shots: Photographer, app: VigilApp) -> None:
    """The hub is gone: the tray icon says so, and its status window says it in words."""
    tray = app.tray
    tray_icon = tray.findChild(QSystemTrayIcon) if tray is not None else None
    if tray_icon is None:
        raise ShotFailed("the tray icon is gone")
    shots.wait_until("the offline tray icon", lambda: _tray_icon(app) == "offline")
    app.library.hide()
    for widget in QApplication.topLevelWidgets():
        # An earlier alert's notification balloon would cover the picture.
        if widget.inherits("QBalloonTip"):
            widget.hide()
    app.status.show_details()
    shots.settle()
    icon = tray_icon.geometry()
    area = icon.adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN)
    for widget in QApplication.topLevelWidgets():
        if widget.isVisible() and widget.windowTitle().startswith("Vigil status"):
            # Beside the icon, as a picture of the two together.
            widget.move(icon.right() - widget.frameGeometry().width(), icon.bottom() + 12)
            shots.settle()
            area = area.united(widget.frameGeometry().adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN))
            shots.region("tray-offline", area)
            widget.close()
            return
    shots.region("tray-offline", area)


def shoot_library(shots: Photographer, app: VigilApp, demo: DemoHub) -> None:
    alert_id = next(a["id"] for a in demo.published if a["severity"] == "critical")
    app.library_controller.open_playbook(CRITICAL_PLAYBOOK, alert_id)
    library = app.library
    shots.wait_until("the library", library.isVisible)
    library.resize(1000, 660)
    # Below the tray bar, with room for the window frame's title bar.
    library.move(140, 80)
    view = library.playbook_view
    shots.wait_until("the playbook", lambda: view.playbook_id == CRITICAL_PLAYBOOK)
    # An agent a few steps into the checklist.
    for step in (0, 1, 2):
        item = view.steps.item(step)
        if item is not None:
            item.setCheckState(Qt.CheckState.Checked)
    shots.window("library-online", library)
    demo.stop()
    app.sync_now()
    shots.wait_until("the offline banner", library.offline_banner.isVisible)
    shots.window("library-offline", library)


def _answered(popup: AlertPopup, alert_id: str) -> Callable[[], bool]:
    def answered() -> bool:
        text = popup.ack_state_text(alert_id)
        return "Recorded" in text or "Synced" in text

    return answered


def _tray_icon(app: VigilApp) -> str | None:
    look = app.tray.look if app.tray is not None else None
    return look.icon if look is not None else None


def _ack_text(app: VigilApp, alert: dict[str, object]) -> str:
    return app.popup.ack_state_text(str(alert["id"]))


def main() -> int:
    parser = argparse.ArgumentParser(description="Take the README's screenshots.")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        take(args.out)
    except ShotFailed as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
