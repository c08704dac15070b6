"""Automatic lock after inactivity (HIPAA automatic log-off): decides from the last input time.

The UI reports input and asks `should_lock()`; the clock is injectable so tests drive time.
While locked, only critical alerts may still pop up (without them the agent could miss a crisis).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from client.core.events import Event

SEVERITIES_SHOWN_WHILE_LOCKED = frozenset({"critical"})


def shows_while_locked(severity: str) -> bool:
    """Whether an alert pop-up of `severity` still appears while the app is locked."""
    return severity in SEVERITIES_SHOWN_WHILE_LOCKED


class IdleTimer:
    """Tracks the last input and the lock state under the policy's idle minutes.

    Events: `locked_changed` (True when it locks, False when it unlocks).
    """

    def __init__(
        self, idle_minutes: float | None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
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

    def set_idle_minutes(self, minutes: float | None) -> None:
        """Apply a new policy value; the idle time so far still counts."""
        self._idle_minutes = minutes

    def note_input(self) -> None:
        """The user did something (key, mouse, touch): the idle time starts again."""
        self._last_input = self._clock()

    def idle_seconds(self) -> float:
        """Seconds since the last input."""
        return max(self._clock() - self._last_input, 0.0)

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
