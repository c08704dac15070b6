"""The real tray app (VigilApp), signed in to a benchmark hub, driven by JSON commands on stdin.

Run as `python -m tests.perf.app_driver --hub URL --user NAME --data DIR [--tray]`, through
`procs.AppDriver`. It signs in through the sign-in dialog, asking its parent for the password
({"need": "password"}) and then for a TOTP code ({"need": "code"}), each answered with one line
{"value": ...}: so this process loads only what the app itself loads, and its memory is the app's.
It prints {"ready": ...} once signed in and synced, then answers each command with one line:
  {"cmd": "settle"}                  collect garbage, let Qt finish pending work
  {"cmd": "heap"}                    what lives on the heap: bytes malloc has handed out and not
                                     had back (every arena), SQLite's share of them (its page
                                     caches), bytes in Python's small-object allocator (which
                                     takes its memory from mmap, not malloc), Qt's widgets
  {"cmd": "open_library"} / {"cmd": "close_library"}  (open waits for the lists to fill)
  {"cmd": "type", "text": T}         type T into the library's search field a key at a time;
                                     answers with the ms from each key to its results
  {"cmd": "search_core", "text": T}  Cache.search timing without the window (ms)
  {"cmd": "watch_popups"}            from now on print {"shown": alert id, "at": time.time()} at
                                     each pop-up show event
  {"cmd": "received"}                how many alerts the app has received
  {"cmd": "popup"}                   whether the pop-up is visible, and its alerts' ids
  {"cmd": "dismiss_all"}             take every alert off the pop-up
  {"cmd": "ack_all"}                 acknowledge every alert on the pop-up as an agent would,
                                     wait until the outbox has sent them, then close the pop-up
Closing stdin quits the app.
"""

from __future__ import annotations

import _sqlite3
import argparse
import ctypes
import gc
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from client.app import VigilApp
from client.core.paths import AppPaths
from client.core.policy import Policy
from client.core.settings import Settings
from client.core.sync import ConnectionState

if TYPE_CHECKING:
    from client.ui.library import LibraryWindow

READY_TIMEOUT = 600.0
RESULT_TIMEOUT = 5.0


def wait_until(condition: Any, timeout: float) -> bool:
    """Run Qt's loop until `condition()` holds or `timeout` s pass; whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        QApplication.processEvents()
        time.sleep(0.0005)
    return True


def say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


class Commands(QObject):
    """Lines from stdin, re-emitted on the UI thread; `ended` when stdin closes."""

    line = Signal(str)
    ended = Signal()

    def start(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for text in sys.stdin:
            self.line.emit(text)
        self.ended.emit()


class Driver(QObject):
    """Carries out the commands on the running app."""

    def __init__(self, app: VigilApp) -> None:
        super().__init__()
        self.app = app
        self.received = 0
        self.watching = False
        self.results_at: dict[str, float] = {}
        self._timed_library = False
        app.bridge.alert_received.connect(self._on_alert)

    def _library(self) -> LibraryWindow:
        """The library window (the app builds it on first use), its results timed."""
        library = self.app.library
        if not self._timed_library:
            self._timed_library = True
            show_results = library.show_results

            def timed_show_results(hits: Any, query: str | None = None) -> None:
                show_results(hits, query)
                if query is not None:
                    self.results_at[query] = time.monotonic()

            # Instrumentation only: note when each query's results reach the window.
            library.show_results = timed_show_results  # type: ignore[method-assign]
        return library

    def _on_alert(self, _alert: object) -> None:
        self.received += 1

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if self.watching and watched is self.app.popup and event.type() == QEvent.Type.Show:
            say({"shown": self.app.popup.current_alert_id(), "at": time.time()})
        return False

    def handle(self, text: str) -> None:
        command = json.loads(text)
        name = command["cmd"]
        if name == "settle":
            gc.collect()
            wait_until(lambda: False, 0.2)
            say({"ok": True})
        elif name == "heap":
            say(
                {
                    "malloc_in_use_bytes": malloc_in_use(),
                    "sqlite_bytes": sqlite_memory_used(),
                    "python_bytes": python_small_objects(),
                    "widgets": len(QApplication.allWidgets()),
                }
            )
        elif name == "open_library":
            library = self._library()
            self.app.library_controller.show()
            wait_until(library.isVisible, 5)
            # The window fills its lists from the cache when first built: let that finish.
            wait_until(lambda: library.playbook_list.count() > 0, 60)
            wait_until(lambda: False, 0.2)
            say({"ok": True})
        elif name == "close_library":
            library = self._library()
            library.clear_search()
            library.close()
            say({"ok": True})
        elif name == "type":
            say({"ms": self._type(command["text"])})
        elif name == "search_core":
            core = self.app.core
            assert core is not None
            start = time.perf_counter()
            hits = core.cache.search(command["text"])
            say({"ms": (time.perf_counter() - start) * 1000, "hits": len(hits)})
        elif name == "watch_popups":
            # Builds the pop-up now (the app builds it with the first alert otherwise).
            self.app.popup.installEventFilter(self)
            self.watching = True
            say({"ok": True})
        elif name == "received":
            say({"received": self.received})
        elif name == "popup":
            popup = self.app.popup
            say({"visible": popup.isVisible(), "alerts": popup.alert_ids()})
        elif name == "dismiss_all":
            for alert_id in self.app.popup.alert_ids():
                self.app.popup.remove_alert(alert_id)
            say({"ok": True})
        elif name == "ack_all":
            popup = self.app.popup
            core = self.app.core
            assert core is not None
            alert_ids = popup.alert_ids()
            # The writes are queued on the disk worker: wait for every one to land and sync.
            expected = core.outbox.counts().synced + len(alert_ids)
            for alert_id in alert_ids:
                popup.ack_requested.emit(alert_id, "acknowledged", "")
            synced = wait_until(lambda: core.outbox.counts().synced >= expected, 60)
            for alert_id in popup.alert_ids():
                popup.remove_alert(alert_id)
            say({"ok": synced})
        else:
            say({"error": f"unknown command {name!r}"})

    def _type(self, text: str) -> list[float]:
        library = self._library()
        field = library.search_field
        library.clear_search()
        wait_until(lambda: False, 0.05)
        latencies = []
        for count in range(1, len(text) + 1):
            typed = text[:count]
            QTest.keyClicks(field, typed[-1])
            pressed = time.monotonic()
            if not typed.strip():
                continue
            query = typed.strip()
            self.results_at.pop(query, None)
            if wait_until(lambda q=query: q in self.results_at, RESULT_TIMEOUT):
                latencies.append((self.results_at[query] - pressed) * 1000)
        return latencies


def sqlite_memory_used() -> int:
    """Bytes SQLite holds on the heap in this process, every connection's page cache included."""
    # _sqlite3 links the SQLite library; its symbols are reachable through the module's handle.
    library = ctypes.CDLL(_sqlite3.__file__)
    library.sqlite3_memory_used.restype = ctypes.c_int64
    used: int = library.sqlite3_memory_used()
    return used


def malloc_in_use() -> int:
    """Bytes glibc's malloc has handed out and not had back, over every arena (malloc_info)."""
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "malloc.xml"
        stream = libc.fopen(str(path).encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        report = path.read_text()
    # The process-wide totals follow the last arena's </heap>.
    totals = report[report.rfind("</heap>") :]

    def size(tag: str, kind: str) -> int:
        found = re.search(rf'<{tag} type="{kind}"[^>]* size="(\d+)"', totals)
        return int(found.group(1)) if found else 0

    free = size("total", "fast") + size("total", "rest")
    return size("system", "current") - free + size("total", "mmap")


def python_small_objects() -> int:
    """Bytes in allocated blocks of Python's small-object allocator (sys._debugmallocstats)."""
    # The statistics go to the C-level stderr: point file descriptor 2 at a file meanwhile.
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(capture.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        report = capture.read().decode()
    found = re.search(r"# bytes in allocated blocks\s*=\s*([\d,]+)", report)
    if found is None:
        raise RuntimeError("sys._debugmallocstats() printed no allocated-blocks figure")
    return int(found.group(1).replace(",", ""))


def ask_parent(what: str) -> str:
    """A value the parent process holds (the password, a fresh TOTP code)."""
    say({"need": what})
    value: str = json.loads(sys.stdin.readline())["value"]
    return value


def sign_in(app: VigilApp, username: str) -> None:
    """Sign in through the sign-in dialog, as an agent would."""
    if not wait_until(lambda: app.signin is not None and app.signin.isVisible(), 60):
        raise SystemExit("the sign-in dialog did not open")
    dialog = app.signin
    assert dialog is not None
    QTest.keyClicks(dialog.username_edit, username)
    QTest.keyClicks(dialog.password_edit, ask_parent("password"))
    QTest.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    if not wait_until(lambda: dialog.step == "code" and not dialog.busy, 60):
        raise SystemExit("the password step did not finish")
    QTest.keyClicks(dialog.code_edit, ask_parent("code"))
    if not wait_until(lambda: app.signin is None, 60):
        raise SystemExit("the code step did not finish")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hub", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--tray", action="store_true")
    args = parser.parse_args()
    qt_app = QApplication(sys.argv[:1])
    paths = AppPaths(config_dir=args.data / "config", data_dir=args.data / "data")
    settings = Settings.load(paths, Policy())
    settings.set("hub_url", args.hub)
    settings.set("sounds", False)
    app = VigilApp(qt_app, paths, settings, tray_available=args.tray)
    app.start()
    started = time.monotonic()
    sign_in(app, args.user)
    core = app.core
    assert core is not None

    def synced() -> bool:
        status = core.sync.status
        return (
            status.state == ConnectionState.ONLINE
            and status.last_synced_at is not None
            and core.cache.content_cursor() is not None
        )

    if not wait_until(synced, READY_TIMEOUT):
        raise SystemExit("the first sync did not finish")
    driver = Driver(app)
    commands = Commands()
    commands.line.connect(driver.handle)
    commands.ended.connect(app.quit)
    commands.start()
    say({"ready": True, "sync_seconds": time.monotonic() - started})
    return qt_app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
