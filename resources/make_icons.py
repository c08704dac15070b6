"""Draw Vigil's icons: one SVG per tray state plus tray-sized PNGs, and the app icon.

Every state has its own badge shape (check, barred ring, open padlock, key, clock, pause, bell)
so the states differ for colour-blind agents too. Run: `python resources/make_icons.py` (needs
PySide6; works without a display through Qt's offscreen platform).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TRAY_SIZES = (16, 22, 32, 48, 64)
APP_SIZES = (16, 32, 48, 64, 128, 256)
HERE = Path(__file__).resolve().parent
OUT = HERE / "icons"

# A light outline keeps the dark shield visible on dark panels as well as light ones.
SHIELD = (
    '<path d="M30 3 L52 11 V29 C52 43 43 53 30 59 C17 53 8 43 8 29 V11 Z" '
    'fill="#34465c" stroke="#ffffff" stroke-width="2.5" stroke-linejoin="round"/>'
)

BADGES = {
    "connected": (
        '<circle cx="46" cy="46" r="16" fill="#1e7e34" stroke="#ffffff" stroke-width="2.5"/>'
        '<path d="M38 46 L44 52 L55 40" fill="none" stroke="#ffffff" stroke-width="5" '
        'stroke-linecap="round" stroke-linejoin="round"/>'
    ),
    "offline": (
        '<circle cx="46" cy="46" r="16" fill="#ffffff"/>'
        '<circle cx="46" cy="46" r="12.5" fill="none" stroke="#5f6368" stroke-width="5"/>'
        '<path d="M37 55 L55 37" stroke="#5f6368" stroke-width="5" stroke-linecap="round"/>'
    ),
    "vpn_off": (
        '<path d="M36 40 V34 A8 8 0 0 1 52 34" fill="none" stroke="#ffffff" stroke-width="9" '
        'stroke-linecap="round"/>'
        '<path d="M36 40 V34 A8 8 0 0 1 52 34" fill="none" stroke="#b45309" stroke-width="4.5" '
        'stroke-linecap="round"/>'
        '<rect x="30" y="39" width="32" height="23" rx="4" fill="#b45309" stroke="#ffffff" '
        'stroke-width="2.5"/>'
        '<rect x="44" y="45" width="4" height="10" rx="2" fill="#ffffff"/>'
    ),
    "signin": (
        '<circle cx="38" cy="46" r="11" fill="#ffffff"/>'
        '<circle cx="38" cy="46" r="8" fill="none" stroke="#1a56db" stroke-width="5"/>'
        '<path d="M45 46 H61 M56 46 V54 M61 46 V52" fill="none" stroke="#ffffff" '
        'stroke-width="9" stroke-linecap="round"/>'
        '<path d="M45 46 H60 M56 46 V53 M60 46 V51" fill="none" stroke="#1a56db" '
        'stroke-width="4.5" stroke-linecap="round"/>'
    ),
    # Alerts paused: a pause sign, so it reads apart from the barred ring of "offline".
    "unreachable": (
        '<circle cx="46" cy="46" r="16" fill="#b91c1c" stroke="#ffffff" stroke-width="2.5"/>'
        '<path d="M41 38 V54 M51 38 V54" fill="none" stroke="#ffffff" stroke-width="5" '
        'stroke-linecap="round"/>'
    ),
    "pending": (
        '<circle cx="46" cy="46" r="16" fill="#6d28d9" stroke="#ffffff" stroke-width="2.5"/>'
        '<path d="M46 36 V46 L53 50" fill="none" stroke="#ffffff" stroke-width="4.5" '
        'stroke-linecap="round" stroke-linejoin="round"/>'
    ),
}

# Critical swaps the shield for a bell: the outline itself changes, not only a badge.
CRITICAL = (
    '<path d="M32 4 C21 4 14 12 14 24 V36 L7 47 H57 L50 36 V24 C50 12 43 4 32 4 Z" '
    'fill="#c5221f" stroke="#ffffff" stroke-width="2.5" stroke-linejoin="round"/>'
    '<path d="M25 51 A7 7 0 0 0 39 51 Z" fill="#c5221f" stroke="#ffffff" stroke-width="2.5" '
    'stroke-linejoin="round"/>'
    '<path d="M32 13 V31" stroke="#ffffff" stroke-width="6" stroke-linecap="round"/>'
    '<circle cx="32" cy="40" r="3.5" fill="#ffffff"/>'
)

APP = (
    '<rect x="1" y="1" width="62" height="62" rx="14" fill="#1f3a5f"/>'
    '<path d="M32 8 L51 15 V31 C51 43 43 51 32 57 C21 51 13 43 13 31 V15 Z" fill="#ffffff"/>'
    '<path d="M32 19 C26.5 19 23 23 23 29 V35 L19.5 40.5 H44.5 L41 35 V29 C41 23 37.5 19 32 19 Z" '
    'fill="#1f3a5f"/>'
    '<path d="M28.5 43 A3.5 3.5 0 0 0 35.5 43 Z" fill="#1f3a5f"/>'
)


def svg(body: str) -> str:
    """A 64x64 SVG document around `body`."""
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
        f"{body}</svg>\n"
    )


def documents() -> dict[str, str]:
    """Every icon's SVG text by file stem."""
    docs = {state: svg(SHIELD + badge) for state, badge in BADGES.items()}
    docs["critical"] = svg(CRITICAL)
    docs["app"] = svg(APP)
    return docs


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QByteArray, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    OUT.mkdir(exist_ok=True)
    for stem, text in documents().items():
        (OUT / f"{stem}.svg").write_text(text, encoding="utf-8")
        renderer = QSvgRenderer(QByteArray(text.encode()))
        for size in APP_SIZES if stem == "app" else TRAY_SIZES:
            image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
            image.fill(Qt.GlobalColor.transparent)
            painter = QPainter(image)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            renderer.render(painter)
            painter.end()
            image.save(str(OUT / f"{stem}-{size}.png"))
    del app
    print(f"icons written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
