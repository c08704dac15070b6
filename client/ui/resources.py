"""Finding Vigil's icons, sounds and stylesheet, in a source checkout and in built packages."""

from __future__ import annotations

import logging
import os
import sys
from functools import cache
from pathlib import Path

from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap

from client.core.status import TrayLook

log = logging.getLogger(__name__)

TRAY_SIZES = (16, 22, 32, 48, 64)
APP_SIZES = (16, 32, 48, 64, 128, 256)
_MARKER = "vigil.qss"


def resource_dir() -> Path:
    """The resources folder: VIGIL_RESOURCES, a PyInstaller bundle, the checkout, or share/vigil."""
    candidates: list[Path] = []
    if override := os.environ.get("VIGIL_RESOURCES"):
        candidates.append(Path(override))
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle is not None:
        candidates.append(Path(bundle) / "resources")
    candidates.append(Path(__file__).resolve().parents[2] / "resources")
    candidates.append(Path(sys.prefix) / "share" / "vigil" / "resources")
    for candidate in candidates:
        if (candidate / _MARKER).is_file():
            return candidate
    raise FileNotFoundError(
        "Vigil's resources folder was not found (looked in: "
        + ", ".join(str(c) for c in candidates)
        + "); reinstall Vigil or set VIGIL_RESOURCES to its resources folder."
    )


def icon_file(stem: str, size: int) -> Path:
    """The PNG of icon `stem` (a tray state or "app") at `size` pixels."""
    return resource_dir() / "icons" / f"{stem}-{size}.png"


@cache
def _state_icon(stem: str, sizes: tuple[int, ...]) -> QIcon:
    icon = QIcon()
    for size in sizes:
        icon.addFile(str(icon_file(stem, size)))
    return icon


def app_icon() -> QIcon:
    """Vigil's application icon in every size."""
    return _state_icon("app", APP_SIZES)


def tray_icon(look: TrayLook) -> QIcon:
    """The tray icon for a look: the state's icon, with its count drawn on when there is one."""
    if look.badge_count <= 0:
        return _state_icon(look.icon, TRAY_SIZES)
    return _badged_icon(look.icon, str(look.badge_count) if look.badge_count < 10 else "9+")


# One icon per state and badge text, made once: a new QIcon at every count change would leave
# its scaled pixmaps in Qt's pixmap cache (up to its 10 MiB limit) on every alert.
@cache
def _badged_icon(stem: str, text: str) -> QIcon:
    base = _state_icon(stem, TRAY_SIZES)
    icon = QIcon()
    for size in TRAY_SIZES:
        icon.addPixmap(_with_badge(base.pixmap(size, size), size, text))
    return icon


def _with_badge(pixmap: QPixmap, size: int, text: str) -> QPixmap:
    # Qt's namespace takes about 10 ms to load; the icon shown at start has no badge.
    from PySide6.QtCore import Qt

    # Top-left corner: the state badges sit bottom-right and must stay visible.
    result = QPixmap(pixmap)
    painter = QPainter(result)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    diameter = max(9.0, size * 0.5)
    rect = QRectF(0, 0, diameter * (1.3 if len(text) > 1 else 1.0), diameter)
    painter.setPen(QColor("#ffffff"))
    painter.setBrush(QColor("#1b1f24"))
    painter.drawRoundedRect(rect, diameter / 2, diameter / 2)
    font = QFont()
    font.setBold(True)
    font.setPixelSize(max(7, int(diameter * 0.72)))
    painter.setFont(font)
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
    painter.end()
    return result


def sound_file(severity: str) -> Path | None:
    """The alert tone for a severity (critical, major), or None when it has none."""
    path = resource_dir() / "sounds" / f"{severity}.wav"
    return path if path.is_file() else None


def stylesheet() -> str:
    """The app's Qt stylesheet text."""
    return (resource_dir() / _MARKER).read_text(encoding="utf-8")
