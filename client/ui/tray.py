"""The system tray icon: shows the app's state and offers the main actions as intent signals."""

from __future__ import annotations

import html
import sys

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from client.core.status import TrayLook
from client.ui import resources
from client.ui.bidi import without_bidi_controls

# The same words as client.ui.text.DRILL_BANNER; that module loads Qt's GUI, which the tray icon
# does not wait for.
DRILL_WORDS = "DRILL: no action with real patients"

NOTIFY_MS = 10_000
READINESS_UNKNOWN = "Readiness not checked yet"
MENU_SHORTCUTS = {"library": "Ctrl+L", "sync": "F5", "quit": "Ctrl+Q"}
_NOTIFY_BODY_CHARS = 240
_SEVERITY_ICON = {
    "critical": QSystemTrayIcon.MessageIcon.Critical,
    "major": QSystemTrayIcon.MessageIcon.Warning,
    "minor": QSystemTrayIcon.MessageIcon.Information,
    "info": QSystemTrayIcon.MessageIcon.Information,
}


def notification_text(text: str, max_chars: int, *, markup: bool = False) -> str:
    """Untrusted text for a desktop notification, escaped exactly once for what shows it.

    One paragraph, cut short, no bidi controls (an override would reverse what the notification
    server shows after it). `markup` is for a notification server that reads the body as a small
    HTML subset; Qt's own balloon and the other platforms show plain text, so escaping there
    would show "&amp;" for "&".
    """
    line = " ".join(without_bidi_controls(text).split())
    if len(line) > max_chars:
        line = line[: max_chars - 1].rstrip() + "…"
    return html.escape(line, quote=False) if markup else line


def notification_body_markup() -> bool:
    """Whether the tray's notifications go to a server that reads the body as markup.

    Qt sends them over D-Bus only when a StatusNotifier host runs (else it draws its own
    plain-text balloon), and a server reads markup only when it says "body-markup".
    """
    if not sys.platform.startswith("linux"):
        return False
    from PySide6.QtDBus import QDBusConnection, QDBusInterface

    bus = QDBusConnection.sessionBus()
    interface = bus.interface() if bus.isConnected() else None
    if interface is None:
        return False
    if not interface.isServiceRegistered("org.kde.StatusNotifierWatcher").value():
        return False
    server = QDBusInterface(
        "org.freedesktop.Notifications",
        "/org/freedesktop/Notifications",
        "org.freedesktop.Notifications",
        bus,
    )
    if not server.isValid():
        return False
    reply = server.call("GetCapabilities")
    arguments = reply.arguments()
    return bool(arguments) and "body-markup" in list(arguments[0])


def tooltip_markup(text: str) -> str:
    """The tray tooltip for `text`: escaped rich text without bidi controls.

    Qt guesses whether a tooltip is rich text, so plain text holding a tag (a username, an alert
    title) would be rendered as markup; escaping inside <qt> makes it always show as written.
    """
    return f"<qt>{html.escape(f'Vigil · {without_bidi_controls(text)}', quote=False)}</qt>"


class TrayIcon(QObject):
    """Vigil's tray icon and menu; it decides nothing and only reports what the agent picked.

    Signals:
        open_library_requested: the agent wants the library window (menu or a click on the icon).
        alerts_requested: the agent wants the alerts list.
        sync_requested: "Sync now".
        status_requested: the agent wants the status in detail.
        settings_requested: the agent wants the settings dialog.
        about_requested: the agent wants the About window (version, policy, licences).
        sign_out_requested: "Sign out" (offered while signed in).
        sign_in_requested: "Sign in…" (offered in its place while signed out).
        quit_requested: "Quit".
        notification_clicked: the agent clicked the last tray notification.
        readiness_requested: "Run readiness check".
    """

    open_library_requested = Signal()
    alerts_requested = Signal()
    sync_requested = Signal()
    status_requested = Signal()
    settings_requested = Signal()
    about_requested = Signal()
    sign_out_requested = Signal()
    sign_in_requested = Signal()
    quit_requested = Signal()
    notification_clicked = Signal()
    readiness_requested = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._icon = QSystemTrayIcon(self)
        self._menu = QMenu()
        self._menu.setAccessibleName("Vigil menu")
        self.actions: dict[str, QAction] = {}
        for key, label, signal in (
            ("library", "Open &library", self.open_library_requested),
            ("alerts", "&Alerts", self.alerts_requested),
            ("sync", "&Sync now", self.sync_requested),
            ("status", "S&tatus", self.status_requested),
            ("settings", "Setti&ngs", self.settings_requested),
            ("about", "A&bout Vigil", self.about_requested),
            ("sign_out", "Sign &out", None),
            ("quit", "&Quit", self.quit_requested),
        ):
            if key in ("settings", "quit"):
                self._menu.addSeparator()
            action = self._menu.addAction(label)
            if signal is not None:
                action.triggered.connect(signal.emit)
            self.actions[key] = action
        self._signed_in = True
        self.actions["sign_out"].triggered.connect(self._on_sign_out_or_in)
        self._icon.setContextMenu(self._menu)
        self._icon.activated.connect(self._on_activated)
        self._icon.messageClicked.connect(self.notification_clicked.emit)
        self.look: TrayLook | None = None
        self._drills_waiting = 0
        self._body_markup: bool | None = None
        self._add_readiness_entries()

    def show(self) -> None:
        """Put the icon in the tray."""
        self._icon.show()

    def add_shortcuts(self) -> None:
        """Give the menu's actions their keys.

        The first key sequence loads Qt's enums (about 10 ms), so the app does this once the icon
        is up; the menu cannot open before the event loop runs.
        """
        for key, shortcut in MENU_SHORTCUTS.items():
            self.actions[key].setShortcut(QKeySequence(shortcut))

    def hide(self) -> None:
        """Take the icon out of the tray."""
        self._icon.hide()

    def is_visible(self) -> bool:
        """Whether the icon is in the tray."""
        return self._icon.isVisible()

    def tooltip(self) -> str:
        """The tooltip the icon shows now (escaped rich text)."""
        return self._icon.toolTip()

    @Slot(object)
    def show_look(self, look: TrayLook) -> None:
        """Show a state: its icon (with count) and its tooltip."""
        if look == self.look:
            return
        self.look = look
        self._icon.setIcon(resources.tray_icon(look))
        self._show_tooltip()

    def set_drills_waiting(self, count: int) -> None:
        """How many drill alerts wait for an answer: the tooltip says so in words."""
        count = max(0, count)
        if count == self._drills_waiting:
            return
        self._drills_waiting = count
        self._show_tooltip()

    def set_signed_in(self, signed_in: bool) -> None:
        """Offer "Sign out" while signed in and "Sign in…" while not."""
        self._signed_in = signed_in
        self.actions["sign_out"].setText("Sign &out" if signed_in else "Sign &in…")

    @Slot()
    def _on_sign_out_or_in(self) -> None:
        if self._signed_in:
            self.sign_out_requested.emit()
        else:
            self.sign_in_requested.emit()

    def notify(self, severity: str, title: str, body: str) -> None:
        """A desktop notification for an alert that needs no pop-up (text shown as plain text)."""
        if self._body_markup is None:
            self._body_markup = notification_body_markup()
        self._icon.showMessage(
            # The summary is plain text on every server; only the body may be markup.
            notification_text(title, 100),
            notification_text(body, _NOTIFY_BODY_CHARS, markup=self._body_markup),
            _SEVERITY_ICON.get(severity, QSystemTrayIcon.MessageIcon.Information),
            NOTIFY_MS,
        )

    @Slot(QSystemTrayIcon.ActivationReason)
    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.open_library_requested.emit()

    # Shift readiness: one line in the menu and the tooltip, and the entry that runs the check.

    def _add_readiness_entries(self) -> None:
        first = self._menu.actions()[0]
        self.readiness_line = QAction(READINESS_UNKNOWN, self._menu)
        # A line of state, not a command: shown, never picked.
        self.readiness_line.setEnabled(False)
        self.readiness_action = QAction("Run &readiness check", self._menu)
        self.readiness_action.triggered.connect(self.readiness_requested.emit)
        self._menu.insertActions(first, [self.readiness_line, self.readiness_action])
        self._menu.insertSeparator(first)

    def show_readiness(self, summary: str) -> None:
        """Show the latest self-test's one line ("Ready for shift" or "Not ready: ...")."""
        self.readiness_line.setText(without_bidi_controls(summary))
        self._show_tooltip()

    def _show_tooltip(self) -> None:
        parts = [self.look.tooltip] if self.look is not None else []
        if self.readiness_line.text() != READINESS_UNKNOWN:
            parts.append(self.readiness_line.text())
        if self._drills_waiting:
            noun = "drill alert" if self._drills_waiting == 1 else "drill alerts"
            parts.append(f"{DRILL_WORDS} ({self._drills_waiting} {noun} waiting)")
        self._icon.setToolTip(tooltip_markup(" · ".join(parts)))
