"""A small, Qt-free publish/subscribe primitive that core services use to report changes.

The UI layer (client/controllers/core_bridge.py) re-emits these as Qt signals; core code never
imports Qt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


class Event(Generic[T]):
    """A list of callbacks called with one value, from whichever thread emits."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[[T], None]] = []
        self._lock = threading.Lock()

    def connect(self, callback: Callable[[T], None]) -> None:
        """Call `callback(value)` on every emit."""
        with self._lock:
            self._callbacks.append(callback)

    def disconnect(self, callback: Callable[[T], None]) -> None:
        """Stop calling `callback`; unknown callbacks are ignored."""
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def emit(self, value: T) -> None:
        """Call every callback; one failing callback is logged and does not stop the others."""
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(value)
            except Exception:
                # A broken listener must never take down the service that emits.
                log.exception("listener of %s failed", self.name)
