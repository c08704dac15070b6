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
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, Signal
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


class AlertSound(QObject):
    """Plays the tone for an alert's severity, when sounds are on.

    Signals:
        played: (severity, how): how is "player", "winsound" or "beep".
    """

    played = Signal(str, str)

    def __init__(self, parent: QObject | None = None, *, enabled: bool = True) -> None:
        super().__init__(parent)
        self.enabled = enabled
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
        started, _pid = QProcess.startDetached(self._player, [str(path)])
        if not started:
            log.warning("the sound player %s could not be started", self._player)
            return None
        return "player"
