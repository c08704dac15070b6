"""The floor for start-up and memory: a PySide6 script that only shows a tray icon.

It marks the same milestones as the app (see client.app.startup_mark), in the same file format,
then idles until stdin closes, so its RSS can be read like the app's.
"""

import os
import sys
import threading
import time

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QApplication, QSystemTrayIcon


def mark(name: str) -> None:
    path = os.environ.get("VIGIL_PERF_MARKS")
    if path:
        with open(path, "a", encoding="utf-8") as marks:
            marks.write(f"{name} {time.monotonic():.6f}\n")


def main() -> int:
    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    pixmap = QPixmap(32, 32)
    pixmap.fill(QColor("#2e7d32"))
    tray = QSystemTrayIcon(QIcon(pixmap))
    tray.show()
    mark("tray_shown")
    QTimer.singleShot(0, lambda: mark("event_loop"))
    # Quit when the benchmark closes stdin (read on a thread; Qt's loop keeps the main one).
    threading.Thread(target=lambda: (sys.stdin.read(), app.quit()), daemon=True).start()
    wake = QTimer()
    wake.start(500)
    wake.timeout.connect(lambda: None)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
