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
PINNED_SUFFIX = " (set by IT)"
READ_ONLY_NOTE = "Vigil is locked: unlock it to change settings."

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

        self.sound_device = QLineEdit(str(settings.get("sound_device") or ""))
        self.sound_device.setPlaceholderText("The system's default output")
        self.sound_device.setAccessibleName("Audio output for alert tones")
        self.sound_device.setToolTip(
            "A device name as your sound system calls it (e.g. from `pactl list short sinks`); "
            "blank plays on the default output"
        )
        self._initial["sound_device"] = self.sound_device.text()
        device_row = QFormLayout()
        device_row.addRow("Alert tone &output", self.sound_device)
        pref_layout.addLayout(device_row)

        organisation = QGroupBox("Connection and security")
        form = QFormLayout(organisation)

        # The hub address is changed at sign-in, never here: show it read-only.
        self.hub_url = QLineEdit(str(settings.get("hub_url") or "Not set"))
        self.hub_url.setReadOnly(True)
        self.hub_url.setAccessibleName("Hub address")
        self._lock_if_set(settings, "hub_url", self.hub_url)
        form.addRow(self._row_label(settings, "hub_url", "Hub address"), self.hub_url)

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
        form.addRow(self._row_label(settings, "idle_lock_minutes", "Lock after"), self.idle_minutes)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._submit)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(preferences)
        layout.addWidget(organisation)
        self.read_only_note = plain_label(READ_ONLY_NOTE, name="Error")
        self.read_only_note.setAccessibleName("Settings are read-only")
        self.read_only_note.setVisible(False)
        layout.insertWidget(0, self.read_only_note)
        self.locked_hint = plain_label(
            f"Items marked{PINNED_SUFFIX} are set by your IT department and cannot be changed "
            "here.",
            name="Hint",
        )
        self.locked_hint.setVisible(any(settings.is_locked(n) for n in self._lockable_names()))
        layout.addWidget(self.locked_hint)
        layout.addWidget(self.buttons)

    @staticmethod
    def _lockable_names() -> tuple[str, ...]:
        return (*(name for name, _ in PREFERENCES), "hub_url", "vpn_required", "idle_lock_minutes")

    @staticmethod
    def _row_label(settings: SettingsReader, name: str, text: str) -> str:
        return text + PINNED_SUFFIX if settings.is_locked(name) else text

    @staticmethod
    def _lock_if_set(settings: SettingsReader, name: str, widget: QWidget) -> None:
        if settings.is_locked(name):
            widget.setEnabled(False)
            widget.setProperty("pinned", True)
            widget.setToolTip(LOCKED_NOTE)
            widget.setAccessibleDescription(LOCKED_NOTE)
            if isinstance(widget, QCheckBox):
                widget.setText(widget.text() + PINNED_SUFFIX)

    def set_read_only(self, read_only: bool) -> None:
        """While Vigil is locked nothing here can change (OK included); pinned items stay so."""
        editable: list[QWidget] = [*self.checkboxes.values(), self.idle_minutes, self.sound_device]
        for widget in editable:
            widget.setEnabled(not read_only and not widget.property("pinned"))
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        if ok is not None:
            ok.setEnabled(not read_only)
        self.read_only_note.setVisible(read_only)

    def is_read_only(self) -> bool:
        """Whether the dialog is read-only (Vigil is locked)."""
        return self.read_only_note.isVisibleTo(self)

    def changes(self) -> dict[str, Any]:
        """The options the agent changed (locked ones never appear)."""
        current: dict[str, Any] = {name: box.isChecked() for name, box in self.checkboxes.items()}
        current["idle_lock_minutes"] = self.idle_minutes.value()
        current["sound_device"] = self.sound_device.text().strip()
        enabled = {name: box.isEnabled() for name, box in self.checkboxes.items()}
        enabled["idle_lock_minutes"] = self.idle_minutes.isEnabled()
        enabled["sound_device"] = self.sound_device.isEnabled()
        changes = {
            name: value
            for name, value in current.items()
            if enabled[name] and value != self._initial[name]
        }
        if changes.get("sound_device") == "":
            changes["sound_device"] = None
        return changes

    @Slot()
    def _submit(self) -> None:
        if self.is_read_only():
            return
        changes = self.changes()
        if changes:
            self.changes_submitted.emit(changes)
        self.accept()
