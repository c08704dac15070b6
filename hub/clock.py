"""Time for the hub, injectable so tests can move it instead of sleeping."""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """A source of the current time as Unix seconds."""

    def now(self) -> float: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to: for tests of lockouts and token lifetimes."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        with self._lock:
            self._now += seconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The protocol's time format has four-digit years: these are the first and last instants it can
# write, in Unix milliseconds.
EARLIEST_MS = -62_135_596_800_000
LATEST_MS = 253_402_300_799_999


def rfc3339(seconds: float) -> str:
    """Unix seconds as the protocol's time format: UTC, milliseconds, `Z` suffix.

    Total: a time outside years 1-9999 (or NaN, treated as the earliest) is written as the nearest
    one the format can hold, so a stored value can never make an answer fail.
    """
    millis = _clamped_millis(seconds)
    moment = _EPOCH + timedelta(milliseconds=millis)
    # %Y is not zero-padded to four digits on every platform.
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _clamped_millis(seconds: float) -> int:
    if math.isnan(seconds):
        return EARLIEST_MS
    # Clamped before scaling: a finite float times 1000 can overflow to infinity.
    bounded = min(max(seconds, EARLIEST_MS / 1000), LATEST_MS / 1000)
    return min(max(round(bounded * 1000), EARLIEST_MS), LATEST_MS)
