"""The settings dialog: the agent's own preferences, and what IT set shown but locked.

It reads the current values once (get / is_locked, as client.core.settings.Settings offers)
and emits only what the agent changed; its controller saves them and updates the autostart
entry.
"""

from __future__ import annotations

from typing import Any, Protocol

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from client.ui.text import plain_label

LOCKED_NOTE = "Set by your IT department"

# (option name, the words next to its checkbox)
PREFERENCES: tuple[tuple[str, str], ...] = (
    ("start_at_login", "&Start Vigil when I sign in to this computer"),
    ("sounds", "Play a s&ound for major and critical alerts"),
    ("minor_alert_notifications", "Show desktop &notifications for info and minor alerts"),
)
IDLE_MINUTES_RANGE = (1, 480)


class SettingsReader(Protocol):
    """Read-only access to the effective settings."""

    def get(self, name: str) -> Any:
        """The effective value of option `name`."""

    def is_locked(self, name: str) -> bool:
        """Whether IT set option `name`."""


class SettingsDialog(QDialog):
    """Edits the agent's preferences; IT-set options are shown disabled.

    Signals:
        changes_submitted(changes): {option name: new value} for every option the agent changed.
    """

    changes_submitted = Signal(dict)

    def __init__(self, settings: SettingsReader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Vigil settings")
        self.setAccessibleName("Vigil settings")
        self._initial: dict[str, Any] = {}
        self.checkboxes: dict[str, QCheckBox] = {}

        preferences = QGroupBox("Your preferences")
        pref_layout = QVBoxLayout(preferences)
        for name, text in PREFERENCES:
            box = QCheckBox(text)
            box.setAccessibleName(text.replace("&", ""))
            box.setChecked(bool(settings.get(name)))
            self._initial[name] = box.isChecked()
            self._lock_if_set(settings, name, box)
            self.checkboxes[name] = box
            pref_layout.addWidget(box)

        organisation = QGroupBox("Connection and security")
        form = QFormLayout(organisation)

        # The hub address is changed at sign-in, never here: show it read-only.
        self.hub_url = QLineEdit(str(settings.get("hub_url") or "Not set"))
        self.hub_url.setReadOnly(True)
        self.hub_url.setAccessibleName("Hub address")
        self._lock_if_set(settings, "hub_url", self.hub_url)
        form.addRow("Hub address", self.hub_url)

        self.vpn_required = QCheckBox("VPN required")
        self.vpn_required.setAccessibleName("VPN required")
        self.vpn_required.setChecked(bool(settings.get("vpn_required")))
        self._initial["vpn_required"] = self.vpn_required.isChecked()
        self._lock_if_set(settings, "vpn_required", self.vpn_required)
        self.checkboxes["vpn_required"] = self.vpn_required
        form.addRow("", self.vpn_required)

        self.idle_minutes = QSpinBox()
        self.idle_minutes.setRange(*IDLE_MINUTES_RANGE)
        self.idle_minutes.setSuffix(" min")
        self.idle_minutes.setAccessibleName("Lock after minutes without activity")
        self.idle_minutes.setValue(int(settings.get("idle_lock_minutes")))
        self._initial["idle_lock_minutes"] = self.idle_minutes.value()
        self._lock_if_set(settings, "idle_lock_minutes", self.idle_minutes)
        form.addRow("Lock after", self.idle_minutes)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._submit)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(preferences)
        layout.addWidget(organisation)
        self.locked_hint = plain_label(f"Greyed-out items: {LOCKED_NOTE.lower()}.", name="Hint")
        self.locked_hint.setVisible(any(settings.is_locked(n) for n in self._lockable_names()))
        layout.addWidget(self.locked_hint)
        layout.addWidget(self.buttons)

    @staticmethod
    def _lockable_names() -> tuple[str, ...]:
        return (*(name for name, _ in PREFERENCES), "hub_url", "vpn_required", "idle_lock_minutes")

    @staticmethod
    def _lock_if_set(settings: SettingsReader, name: str, widget: QWidget) -> None:
        if settings.is_locked(name):
            widget.setEnabled(False)
            widget.setToolTip(LOCKED_NOTE)
            widget.setAccessibleDescription(LOCKED_NOTE)

    def changes(self) -> dict[str, Any]:
        """The options the agent changed (locked ones never appear)."""
        current: dict[str, Any] = {name: box.isChecked() for name, box in self.checkboxes.items()}
        current["idle_lock_minutes"] = self.idle_minutes.value()
        enabled = {name: box.isEnabled() for name, box in self.checkboxes.items()}
        enabled["idle_lock_minutes"] = self.idle_minutes.isEnabled()
        return {
            name: value
            for name, value in current.items()
            if enabled[name] and value != self._initial[name]
        }

    @Slot()
    def _submit(self) -> None:
        changes = self.changes()
        if changes:
            self.changes_submitted.emit(changes)
        self.accept()
