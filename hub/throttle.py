"""Sign-in throttles: token buckets per source address, per username and for the whole hub, kept
in memory.

They run before any password hash is computed, so a flood of guesses costs the hub a dictionary
lookup each, not 64 MiB of argon2. Only failures use up the buckets: a successful attempt gives
its token back. The per-username bucket does not apply from an address that signed in as that
user before, so guessing a known username from elsewhere cannot keep its owner out.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from hub.clock import Clock

# Keys kept per bucket kind; the least recently used go first (a full bucket holds no state).
MAX_KEYS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One token bucket per key: `burst` at once, refilled at `per_minute`."""

    def __init__(self, burst: int, per_minute: float, clock: Clock) -> None:
        self._burst = max(1, burst)
        self._per_second = max(per_minute, 1e-9) / 60
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def wait_seconds(self, key: str) -> float:
        """0 when `key` has a token now, else how long until it will."""
        bucket = self._refilled(key)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self._per_second

    def take(self, key: str) -> None:
        """Use one token of `key` (call after `wait_seconds` said 0)."""
        self._refilled(key).tokens -= 1

    def give_back(self, key: str) -> None:
        """Return one token to `key`, never above the burst."""
        bucket = self._refilled(key)
        bucket.tokens = min(self._burst, bucket.tokens + 1)

    def _refilled(self, key: str) -> _Bucket:
        now = self._clock.now()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(tokens=self._burst, updated=now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._per_second)
            bucket.updated = now
        self._buckets[key] = bucket
        while len(self._buckets) > MAX_KEYS:
            self._buckets.popitem(last=False)
        return bucket


class SignInThrottle:
    """Admits a sign-in attempt when its address, its username and the hub as a whole each have
    a token; the hub-wide bucket keeps attempts near the pace the password hashing can serve, so
    a flood from many addresses is slowed down rather than answered busy as fast as it asks."""

    def __init__(
        self,
        *,
        address_burst: int,
        address_per_minute: float,
        username_burst: int,
        username_per_minute: float,
        total_burst: int,
        total_per_minute: float,
        clock: Clock,
    ) -> None:
        self._lock = threading.Lock()
        self._addresses = TokenBuckets(address_burst, address_per_minute, clock)
        self._usernames = TokenBuckets(username_burst, username_per_minute, clock)
        self._total = TokenBuckets(total_burst, total_per_minute, clock)
        self._known_pairs: OrderedDict[tuple[str, str], None] = OrderedDict()

    def admit(self, address: str, username: str) -> int | None:
        """Take a token for the attempt and answer None, or the whole seconds to wait."""
        name = _username_key(username)
        with self._lock:
            known = (name, address) in self._known_pairs
            wait = self._addresses.wait_seconds(address)
            if not known:
                # From where its owner signed in before, a username is not held back by guessing
                # elsewhere: neither by its own bucket nor by the hub-wide one.
                wait = max(wait, self._usernames.wait_seconds(name), self._total.wait_seconds(""))
            if wait > 0:
                return max(1, math.ceil(wait))
            self._addresses.take(address)
            if not known:
                self._usernames.take(name)
                self._total.take("")
            return None

    def succeeded(self, address: str, username: str) -> None:
        """The attempt was right: give its tokens back and trust this address for this user."""
        name = _username_key(username)
        with self._lock:
            self._addresses.give_back(address)
            if (name, address) in self._known_pairs:
                # Most recently used last, so the oldest pairs are the ones dropped.
                self._known_pairs.move_to_end((name, address))
                return
            self._usernames.give_back(name)
            self._total.give_back("")
            self._known_pairs[(name, address)] = None
            while len(self._known_pairs) > MAX_KEYS:
                self._known_pairs.popitem(last=False)


def _username_key(username: str) -> str:
    # Usernames are unique in any ASCII letter case (SQLite's NOCASE), so count them that way.
    return username.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")
