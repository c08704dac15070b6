"""A small, bounded pool of threads for argon2 password work, apart from the route threads.

Each argon2id verification takes 64 MiB and a few CPU-heavy threads for tens of milliseconds.
Run on the route thread pool, a flood of sign-ins filled all of it and every other call waited
behind the hashes; here at most `workers` hashes run at once, at most `queue` more wait, and a
sign-in beyond that is refused at once (`HashingBusy`) rather than queued without bound.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from hub import passwords

# Hashing threads run at a lower CPU priority than the routes: sign-in may be slower under a
# flood, alerts and acknowledgements stay fast. Threads argon2 starts inherit it.
HASHING_NICENESS = 10


class HashingBusy(Exception):
    """Every hashing worker is busy and the queue is full."""


class HashingPool:
    """Password hashing and verification on `workers` threads with room for `queue` waiting."""

    def __init__(self, workers: int, queue: int) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, workers),
            thread_name_prefix="vigil-hash",
            initializer=_lower_priority,
        )
        self._room = threading.BoundedSemaphore(max(1, workers) + max(0, queue))

    @contextlib.contextmanager
    def admitted(self) -> Iterator[None]:
        """Hold a place in the pool for one sign-in; HashingBusy at once when there is none."""
        if not self._room.acquire(blocking=False):
            raise HashingBusy
        try:
            yield
        finally:
            self._room.release()

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches `password_hash`; call within `admitted()`."""
        return self._executor.submit(passwords.verify_password, password_hash, password).result()

    def burn_verification(self, password: str) -> None:
        """Spend one verification's time and memory, for an unknown username."""
        self._executor.submit(passwords.burn_verification, password).result()

    def hash(self, password: str) -> str:
        """A new argon2id hash of `password`; call within `admitted()`."""
        return self._executor.submit(passwords.hash_password, password).result()

    def close(self) -> None:
        """Finish the running work and stop the threads."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def _lower_priority() -> None:
    # On Linux the nice value belongs to each thread; elsewhere this is a no-op.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)
