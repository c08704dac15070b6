"""A private X display with a window manager and a system tray (Xvfb + openbox + trayer), so the
start-up benchmark can time a real QSystemTrayIcon being shown."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

START_TIMEOUT = 20.0
TRAY_CHECK = (
    "import sys\n"
    "from PySide6.QtWidgets import QApplication, QSystemTrayIcon\n"
    "app = QApplication(sys.argv[:1])\n"
    "sys.exit(0 if QSystemTrayIcon.isSystemTrayAvailable() else 1)\n"
)
PROGRAMS = ("Xvfb", "openbox", "trayer")


class TrayDisplay:
    """Xvfb on a free display number, openbox and trayer on it; `stop()` ends all three."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        read_end, write_end = os.pipe()
        xvfb = subprocess.Popen(
            [
                "Xvfb",
                "-displayfd",
                str(write_end),
                "-screen",
                "0",
                "1600x1000x24",
                "-nolisten",
                "tcp",
            ],
            pass_fds=(write_end,),
            stderr=subprocess.DEVNULL,
        )
        self._procs.append(xvfb)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.stop()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"
        self.env = {"DISPLAY": self.display, "QT_QPA_PLATFORM": "xcb"}
        env = {**os.environ, **self.env}
        for args in (
            ["openbox"],
            [
                "trayer",
                "--edge",
                "top",
                "--align",
                "right",
                "--widthtype",
                "pixel",
                "--width",
                "200",
            ],
        ):
            self._procs.append(
                subprocess.Popen(
                    args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
        deadline = time.monotonic() + START_TIMEOUT
        while subprocess.run([sys.executable, "-c", TRAY_CHECK], env=env).returncode != 0:
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("no system tray appeared on the private display")
            time.sleep(0.2)

    @staticmethod
    def available() -> bool:
        """Whether Xvfb, openbox and trayer are installed."""
        return all(shutil.which(program) for program in PROGRAMS)

    def stop(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self._procs = []
