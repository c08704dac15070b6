"""Growing waits between retries, with jitter so many clients do not retry in lockstep."""

from __future__ import annotations

import random


class Backoff:
    """Exponential backoff with proportional jitter: `first`, then times `factor`, up to `cap`.

    With the defaults the first wait is 0.4-0.6 s and no wait is ever longer than 30 s. After a hub
    restart every client reconnects at once; the jitter (each wait scaled by a random factor in
    1 ± `jitter`) spreads them out.
    """

    def __init__(
        self,
        first: float = 0.5,
        factor: float = 2.0,
        cap: float = 30.0,
        jitter: float = 0.2,
        *,
        rng: random.Random | None = None,
    ) -> None:
        if first <= 0:
            raise ValueError(f"Backoff first wait must be positive, got {first}.")
        if factor < 1:
            raise ValueError(f"Backoff factor must be at least 1, got {factor}.")
        if cap < first:
            raise ValueError(f"Backoff cap ({cap}) must not be below the first wait ({first}).")
        if not 0 <= jitter <= 1:
            raise ValueError(f"Backoff jitter must be between 0 and 1, got {jitter}.")
        self.first = first
        self.factor = factor
        self.cap = cap
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._base = first

    def next_delay(self) -> float:
        """The wait before the next retry, in seconds; each call grows the following one."""
        scale = self._rng.uniform(1 - self.jitter, 1 + self.jitter)
        delay = min(self.cap, self._base * scale)
        self._base = min(self.cap, self._base * self.factor)
        return delay

    def reset(self) -> None:
        """Start again from the first wait (after a success)."""
        self._base = self.first
