"""Growing waits between retries, with jitter so many clients do not retry in lockstep."""

from __future__ import annotations

import random


class Backoff:
    """Exponential backoff with proportional jitter: `first`, then times `factor`, up to `cap`.

    With the defaults the first wait is 0.4-0.6 s and no wait is ever longer than 30 s. After a hub
    restart every client reconnects at once; the jitter (each wait scaled by a random factor in
    1 ± `jitter`) spreads them out. An optional plateau holds the waits at `plateau` seconds for
    the first `plateau_seconds` of retrying, so a short outage (a hub restart, a Wi-Fi blip) is
    over for the agent within a second, and only a long one backs off towards `cap`.
    """

    def __init__(
        self,
        first: float = 0.5,
        factor: float = 2.0,
        cap: float = 30.0,
        jitter: float = 0.2,
        *,
        plateau: float | None = None,
        plateau_seconds: float = 0.0,
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
        if plateau is not None and not first <= plateau <= cap:
            raise ValueError(f"Backoff plateau ({plateau}) must lie between first and cap.")
        self.first = first
        self.factor = factor
        self.cap = cap
        self.jitter = jitter
        self.plateau = plateau
        self.plateau_seconds = plateau_seconds
        self._rng = rng or random.Random()
        self._base = first
        self._waited = 0.0

    def next_delay(self) -> float:
        """The wait before the next retry, in seconds; each call grows the following one."""
        scale = self._rng.uniform(1 - self.jitter, 1 + self.jitter)
        delay = min(self.cap, self._base * scale)
        grown = min(self.cap, self._base * self.factor)
        if self.plateau is not None and self._waited < self.plateau_seconds:
            grown = min(grown, self.plateau)
        self._base = grown
        self._waited += delay
        return delay

    def reset(self) -> None:
        """Start again from the first wait (after a success)."""
        self._base = self.first
        self._waited = 0.0
