"""Where windows appear: on the screen the agent is using, whole, title bar included, and
restored from minimized when the agent asks for them."""

from __future__ import annotations

from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt
from PySide6.QtGui import QCursor, QGuiApplication, QScreen
from PySide6.QtWidgets import QWidget

# Room kept for a window manager's frame before the window is first shown (the frame's real
# size is only known afterwards): a generous title bar and thin borders.
FRAME_ALLOWANCE = QMargins(8, 40, 8, 8)
_PLACED = "vigilPlaced"


def fit_on_screen(size: QSize, area: QRect, frame: QMargins = FRAME_ALLOWANCE) -> QRect:
    """The window's rect (without frame), centred in `area` with its frame inside it too."""
    inner = area.marginsRemoved(frame)
    width = max(1, min(size.width(), inner.width()))
    height = max(1, min(size.height(), inner.height()))
    left = inner.left() + max(0, (inner.width() - width) // 2)
    top = inner.top() + max(0, (inner.height() - height) // 2)
    return QRect(left, top, width, height)


def title_bar_visible(frame_geometry: QRect, screens: list[QRect]) -> bool:
    """Whether the top strip of a window's frame (its title bar) lies on some screen."""
    strip = QRect(frame_geometry.left(), frame_geometry.top(), frame_geometry.width(), 24)
    return any(screen.intersected(strip).width() >= min(100, strip.width()) for screen in screens)


def screen_for(anchor: QPoint | None = None) -> QScreen | None:
    """The screen holding `anchor` (by default the pointer, which has just used the tray)."""
    point = anchor if anchor is not None else QCursor.pos()
    return QGuiApplication.screenAt(point) or QGuiApplication.primaryScreen()


def place(window: QWidget, anchor: QPoint | None = None) -> None:
    """Size and centre `window` on the anchor's screen, its frame wholly on that screen."""
    screen = screen_for(anchor)
    if screen is None:
        return
    size = window.size() if window.isVisible() else window.sizeHint()
    size = size.expandedTo(window.minimumSize())
    rect = fit_on_screen(size, screen.availableGeometry())
    window.resize(rect.size())
    window.move(rect.topLeft())


def bring_forward(window: QWidget, anchor: QPoint | None = None) -> None:
    """Show `window` in front: restored when minimized, placed anew when hidden or off-screen."""
    if window.isMinimized():
        state = window.windowState() & ~Qt.WindowState.WindowMinimized
        window.setWindowState(state | Qt.WindowState.WindowActive)
    screens = [screen.availableGeometry() for screen in QGuiApplication.screens()]
    # Placed once; after that the agent's own placement stands unless it left the screens.
    if not window.property(_PLACED) or not title_bar_visible(window.frameGeometry(), screens):
        place(window, anchor)
        window.setProperty(_PLACED, True)
    window.show()
    window.raise_()
    window.activateWindow()
