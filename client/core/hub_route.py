"""Which of the hub's addresses the client uses now: IT lists them preferred first; a failing one
is left for the next, and the preferred is probed with a growing, jittered wait until it answers
again, then used again.

Every address serves the same hub (one database), so a sign-in, the alert sequence and the
acknowledgements are the same on each: switching needs no new sign-in, and the alert stream
resumes from its Last-Event-ID on whichever address it reaches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from client.core.backoff import Backoff
from client.core.events import Event

log = logging.getLogger(__name__)

# Probes of the preferred address while on a backup: the first after about 15 s (a restart is
# usually over by then), then twice as long each time up to 5 minutes. With 2,000 laptops on a
# backup that is at most about 7 probes a second, spread by the jitter, and each is one small
# unauthenticated GET.
PROBE_FIRST_SECONDS = 15.0
PROBE_CAP_SECONDS = 300.0
PROBE_JITTER = 0.5
# Back on the preferred for this long, it counts as recovered: a later failure starts the probe
# waits from the first again. A preferred that fails sooner (flapping) keeps the grown waits.
STABLE_SECONDS = 600.0
STOP_JOIN_SECONDS = 5.0


@dataclass(frozen=True)
class RouteChange:
    """The route moved from `previous` to `current`; `reason` says why, in words (no secrets)."""

    previous: str
    current: str
    reason: str


class HubRoute:
    """The hub's addresses in IT's order and the one in use; thread-safe.

    `probe(address)` answers whether an address serves the hub now; it is called from the route's
    own thread, only while a backup is in use. Events: `changed` (RouteChange), from the thread
    that noticed the failure or from the probe thread.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        probe: Callable[[str], bool] | None = None,
        probe_backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("A hub route needs at least one address.")
        self.urls: tuple[str, ...] = tuple(urls)
        self.changed: Event[RouteChange] = Event("HubRoute.changed")
        self._probe = probe
        self._probe_backoff = probe_backoff or Backoff(
            first=PROBE_FIRST_SECONDS, cap=PROBE_CAP_SECONDS, jitter=PROBE_JITTER
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._index = 0
        self._back_on_preferred_at: float | None = None
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def preferred(self) -> str:
        """The first address: the one to use whenever it answers."""
        return self.urls[0]

    @property
    def current(self) -> str:
        """The address in use now."""
        with self._lock:
            return self.urls[self._index]

    @property
    def on_backup(self) -> bool:
        """Whether an address other than the preferred is in use."""
        with self._lock:
            return self._index != 0

    def backup_number(self) -> int:
        """Which backup is in use (1 for the second address); 0 on the preferred."""
        with self._lock:
            return self._index

    def failed(self, url: str, reason: str) -> str:
        """`url` failed (`reason` in words): move to the next address if it is the one in use.
        Returns the address in use afterwards (another thread may have moved already)."""
        with self._lock:
            if len(self.urls) == 1 or self.urls[self._index] != url:
                return self.urls[self._index]
            previous = self.urls[self._index]
            self._index = (self._index + 1) % len(self.urls)
            current = self.urls[self._index]
            leaving_preferred = previous == self.preferred
            if leaving_preferred:
                self._forget_probe_waits_if_stable()
        self._announce(RouteChange(previous, current, f"{previous} failed: {reason}"))
        if leaving_preferred:
            self._start_probing()
        return current

    def close(self, timeout: float = STOP_JOIN_SECONDS) -> None:
        """Stop probing; waits at most `timeout` seconds for the probe thread."""
        self._closed.set()
        self._wake.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def probe_now(self) -> None:
        """Cut the probe's wait short (the network changed, say)."""
        self._wake.set()

    def _forget_probe_waits_if_stable(self) -> None:
        returned = self._back_on_preferred_at
        if returned is None or self._clock() - returned >= STABLE_SECONDS:
            self._probe_backoff.reset()

    def _start_probing(self) -> None:
        if self._probe is None or self._closed.is_set():
            return
        with self._lock:
            # The thread clears _thread under this lock as it decides to end, so a move off the
            # preferred either finds it still probing or starts a new one: never neither.
            if self._thread is not None:
                return
            self._wake.clear()
            self._thread = threading.Thread(
                target=self._probe_until_back,
                args=(self._probe,),
                name="hub-route-probe",
                daemon=True,
            )
            self._thread.start()

    def _probe_until_back(self, probe: Callable[[str], bool]) -> None:
        while True:
            with self._lock:
                if self._closed.is_set() or self._index == 0:
                    self._thread = None
                    return
                # Under the lock: failed() resets the same backoff from other threads.
                delay = self._probe_backoff.next_delay()
            self._wake.wait(delay)
            self._wake.clear()
            if self._closed.is_set() or not self.on_backup:
                continue
            try:
                answered = probe(self.preferred)
            except Exception:
                # A bug in one probe must not leave the client on a backup for the rest of the day.
                log.exception("Probing the preferred hub address failed")
                answered = False
            if answered:
                self.preferred_answered()

    def preferred_answered(self) -> None:
        """The preferred address answers again: use it from now on."""
        with self._lock:
            if self._index == 0:
                return
            previous = self.urls[self._index]
            self._index = 0
            self._back_on_preferred_at = self._clock()
        self._announce(
            RouteChange(previous, self.preferred, f"the preferred address {self.preferred} answers")
        )

    def _announce(self, change: RouteChange) -> None:
        log.warning(
            "Hub address switched from %s to %s (%s)",
            change.previous,
            change.current,
            change.reason,
        )
        self.changed.emit(change)
