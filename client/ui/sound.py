"""Alert tones without QtMultimedia (PySide6-Essentials does not ship it).

The tone's WAV file is handed to the platform's own player, started detached so the UI thread
never waits: winsound (asynchronous) on Windows, afplay on macOS, paplay / pw-play / aplay on
Linux. With no player, or no tone file, the desktop's beep is used instead.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QTimer, Signal, Slot
from PySide6.QtWidgets import QApplication

from client.ui import resources

log = logging.getLogger(__name__)

_PLAYERS = ("paplay", "pw-play", "aplay", "afplay")


def find_player() -> str | None:
    """The first command-line WAV player found on PATH, or None."""
    for name in _PLAYERS:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def player_arguments(player: str, path: Path, device: str | None) -> list[str]:
    """The player's command line for `path` on `device` (each player names it its own way)."""
    name = Path(player).name
    if not device:
        return [str(path)]
    if name == "paplay":
        return [f"--device={device}", str(path)]
    if name == "pw-play":
        return ["--target", device, str(path)]
    if name == "aplay":
        return ["-D", device, str(path)]
    # afplay has no device option: macOS plays on the output chosen in System Settings.
    return [str(path)]


class AlertSound(QObject):
    """Plays the tone for an alert's severity, when sounds are on.

    Signals:
        played: (severity, how): how is "player", "winsound" or "beep".
    """

    played = Signal(str, str)

    def __init__(
        self, parent: QObject | None = None, *, enabled: bool = True, device: str | None = None
    ) -> None:
        super().__init__(parent)
        self.enabled = enabled
        # The agent's own output (a headset rather than the laptop's speaker); None: default.
        self.device = device
        self._player = find_player()

    def play(self, severity: str) -> None:
        """Play the severity's tone (or a beep) without blocking; nothing when sounds are off."""
        if not self.enabled:
            return
        path = resources.sound_file(severity)
        how = self._play_file(path) if path is not None else None
        if how is None:
            QApplication.beep()
            how = "beep"
        self.played.emit(severity, how)

    def _play_file(self, path: Path) -> str | None:
        if sys.platform == "win32":
            winsound = importlib.import_module("winsound")
            winsound.PlaySound(str(path), winsound.SND_FILENAME | winsound.SND_ASYNC)
            return "winsound"
        if self._player is None:
            return None
        started, _pid = QProcess.startDetached(
            self._player, player_arguments(self._player, path, self.device)
        )
        if not started:
            log.warning("the sound player %s could not be started", self._player)
            return None
        return "player"


class RepeatingTone(QObject):
    """Plays the critical tone again every interval while `needed()` says a critical alert
    still waits for an answer; silent otherwise."""

    def __init__(
        self,
        sound: AlertSound,
        needed: Callable[[], bool],
        *,
        interval_ms: int,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._sound = sound
        self._needed = needed
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.tick)

    def set_interval_ms(self, interval_ms: int) -> None:
        """A new interval (from IT's policy)."""
        self._timer.setInterval(interval_ms)

    def start(self) -> None:
        """Start repeating (the tone plays only while needed)."""
        self._timer.start()

    def stop(self) -> None:
        """Stop repeating."""
        self._timer.stop()

    @Slot()
    def tick(self) -> None:
        """Play the critical tone when a critical alert is still unanswered."""
        if self._needed():
            self._sound.play("critical")
