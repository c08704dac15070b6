"""Automatic lock after inactivity (HIPAA automatic log-off): decides from the last input time.

The idle time is the whole desktop's, not only Vigil's windows': an agent typing in the EHR all
morning is not idle. It comes from the platform (the X screensaver extension, logind's idle
hint, GetLastInputInfo, or Quartz), and input in Vigil's own windows counts too. The clock is
injectable so tests drive time. While locked, only critical alerts may still pop up (without
them the agent could miss a crisis).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from client.core.events import Event

log = logging.getLogger(__name__)

# Seconds since the desktop's last input, or None when the platform cannot say right now.
DesktopIdle = Callable[[], float | None]

SEVERITIES_SHOWN_WHILE_LOCKED = frozenset({"critical"})


def shows_while_locked(severity: str) -> bool:
    """Whether an alert pop-up of `severity` still appears while the app is locked."""
    return severity in SEVERITIES_SHOWN_WHILE_LOCKED


class _XScreenSaverInfo(ctypes.Structure):
    _fields_ = [
        ("window", ctypes.c_ulong),
        ("state", ctypes.c_int),
        ("kind", ctypes.c_int),
        ("til_or_since", ctypes.c_ulong),
        ("idle", ctypes.c_ulong),
        ("event_mask", ctypes.c_ulong),
    ]


def _load(name: str, soname: str) -> ctypes.CDLL:
    # The usual soname first: find_library runs ldconfig, slower than the load itself.
    try:
        return ctypes.CDLL(soname)
    except OSError:
        found = ctypes.util.find_library(name)
        if found is None:
            raise OSError(f"lib{name} is not installed") from None
        return ctypes.CDLL(found)


class X11Idle:
    """The X server's idle time from the MIT-SCREEN-SAVER extension (libXss), via ctypes."""

    def __init__(self, display_name: str | None = None) -> None:
        self._x11 = _load("X11", "libX11.so.6")
        self._xss = _load("Xss", "libXss.so.1")
        self._x11.XOpenDisplay.restype = ctypes.c_void_p
        self._x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        self._x11.XDefaultRootWindow.restype = ctypes.c_ulong
        self._x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        self._x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self._x11.XFree.argtypes = [ctypes.c_void_p]
        self._xss.XScreenSaverAllocInfo.restype = ctypes.POINTER(_XScreenSaverInfo)
        self._xss.XScreenSaverQueryInfo.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.POINTER(_XScreenSaverInfo),
        ]
        name = display_name.encode() if display_name else None
        self._display = self._x11.XOpenDisplay(name)
        if not self._display:
            raise OSError(f"the X display {display_name or os.environ.get('DISPLAY')} is closed")
        self._root = self._x11.XDefaultRootWindow(self._display)
        self._info = self._xss.XScreenSaverAllocInfo()
        self._mutex = threading.Lock()

    def __call__(self) -> float | None:
        """Seconds since the last key or pointer input anywhere on this X display."""
        with self._mutex:
            if not self._display:
                return None
            if not self._xss.XScreenSaverQueryInfo(self._display, self._root, self._info):
                return None
            return float(self._info.contents.idle) / 1000.0

    def close(self) -> None:
        """Close the connection to the X server."""
        with self._mutex:
            if self._display:
                self._x11.XFree(self._info)
                self._x11.XCloseDisplay(self._display)
                self._display = None


def logind_idle(session: str | None = None) -> float | None:
    """Seconds idle from logind's IdleHint and IdleSinceHint (Wayland sessions); None unknown."""
    session = session or os.environ.get("XDG_SESSION_ID") or "auto"
    try:
        output = subprocess.run(
            ["loginctl", "show-session", session, "-p", "IdleHint", "-p", "IdleSinceHintMonotonic"],
            capture_output=True,
            text=True,
            timeout=1,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    values = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    if values.get("IdleHint") != "yes":
        return 0.0 if "IdleHint" in values else None
    try:
        since_us = int(values.get("IdleSinceHintMonotonic", ""))
    except ValueError:
        return None
    return max(time.clock_gettime(time.CLOCK_MONOTONIC) - since_us / 1e6, 0.0)


def _windows_idle() -> float | None:
    class LastInput(ctypes.Structure):
        _fields_ = [("size", ctypes.c_uint), ("time", ctypes.c_uint)]

    info = LastInput(ctypes.sizeof(LastInput), 0)
    windll = ctypes.windll  # type: ignore[attr-defined]
    if not windll.user32.GetLastInputInfo(ctypes.byref(info)):
        return None
    return ((windll.kernel32.GetTickCount() - info.time) & 0xFFFFFFFF) / 1000.0


def _macos_idle() -> float | None:
    framework = "/System/Library/Frameworks/ApplicationServices.framework/ApplicationServices"
    quartz = ctypes.CDLL(framework)
    quartz.CGEventSourceSecondsSinceLastEventType.restype = ctypes.c_double
    # kCGEventSourceStateHIDSystemState (1), kCGAnyInputEventType (~0).
    return float(quartz.CGEventSourceSecondsSinceLastEventType(1, 0xFFFFFFFF))


def desktop_idle_source() -> DesktopIdle | None:
    """The platform's own measure of the desktop's idle time, or None when there is none."""
    if sys.platform == "win32":
        return _windows_idle
    if sys.platform == "darwin":
        return _macos_idle
    if os.environ.get("DISPLAY"):
        try:
            return X11Idle()
        except OSError as exc:
            log.info("no X screensaver idle time (%s); trying logind", exc)
    if logind_idle() is not None:
        return logind_idle
    log.info("the desktop's idle time is unknown: only input in Vigil's windows counts")
    return None


class IdleTimer:
    """Tracks the last input and the lock state under the policy's idle minutes.

    Events: `locked_changed` (True when it locks, False when it unlocks).
    """

    def __init__(
        self,
        idle_minutes: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        desktop_idle: DesktopIdle | None = None,
    ) -> None:
        self._clock = clock
        self._desktop_idle = desktop_idle
        self._idle_minutes = idle_minutes
        self._last_input = clock()
        self._locked = False
        self._lock = threading.Lock()
        self.locked_changed: Event[bool] = Event("idle.locked_changed")

    @property
    def locked(self) -> bool:
        """Whether the app is locked now."""
        return self._locked

    @property
    def idle_minutes(self) -> float | None:
        """Minutes without input before locking; None or 0: never lock."""
        return self._idle_minutes

    def set_desktop_idle(self, source: DesktopIdle | None) -> None:
        """Where the desktop's idle time comes from (None: only Vigil's own input counts)."""
        self._desktop_idle = source

    def set_idle_minutes(self, minutes: float | None) -> None:
        """Apply a new policy value; the idle time so far still counts."""
        self._idle_minutes = minutes

    def note_input(self) -> None:
        """The user did something (key, mouse, touch): the idle time starts again."""
        self._last_input = self._clock()

    def idle_seconds(self) -> float:
        """Seconds since the last input in Vigil or, when the platform says, anywhere on the
        desktop (whichever was more recent)."""
        own = max(self._clock() - self._last_input, 0.0)
        desktop = self._desktop_idle() if self._desktop_idle is not None else None
        return own if desktop is None else min(own, max(desktop, 0.0))

    def seconds_until_lock(self) -> float | None:
        """Seconds left before the lock (0 when due), or None when it never locks."""
        if not self._idle_minutes or self._idle_minutes <= 0:
            return None
        return max(self._idle_minutes * 60 - self.idle_seconds(), 0.0)

    def check(self) -> bool:
        """Lock when the idle time has run out; returns whether the app is locked."""
        left = self.seconds_until_lock()
        if left == 0:
            self.lock()
        return self._locked

    def lock(self) -> None:
        """Lock now (idle time ran out, or the agent asked)."""
        with self._lock:
            if self._locked:
                return
            self._locked = True
        self.locked_changed.emit(True)

    def unlock(self) -> None:
        """Unlock after the agent proved who they are; the idle time starts again."""
        with self._lock:
            if not self._locked:
                return
            self._locked = False
            self._last_input = self._clock()
        self.locked_changed.emit(False)
