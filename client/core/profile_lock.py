"""A lock shared by every Vigil process and thread of one profile (the tray app and any number
of `vigil` commands), held while the sign-in's refresh token is rotated.

The hub treats a refresh token presented twice as stolen and ends the sign-in, so two processes
must never both present the token they read from the keyring: the second must wait, read the
keyring again and present the token the first one saved. An OS file lock (fcntl.flock on POSIX,
msvcrt.locking on Windows) is released by the OS when its process dies, so a crash inside the
lock never blocks the next process.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from client.core.errors import VigilError

DEFAULT_TIMEOUT = 30.0
_RETRY_SECONDS = 0.02


class ProfileLockTimeout(VigilError):
    """Another Vigil process held the sign-in lock for too long."""


class ProfileLock:
    """An exclusive lock on a file beside the profile; re-entrant within one thread."""

    def __init__(self, path: Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = path
        self._timeout = timeout
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the block; ProfileLockTimeout when it cannot be had in time."""
        deadline = time.monotonic() + self._timeout
        if not self._threads.acquire(timeout=self._timeout):
            raise self._timed_out()
        try:
            if self._depth == 0:
                self._fd = self._lock_file(deadline)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    _unlock(self._fd)
                    os.close(self._fd)
                    self._fd = None
        finally:
            self._threads.release()

    def _lock_file(self, deadline: float) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Bounded: a process stuck inside the lock must not hang every other one for ever.
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    raise self._timed_out()
                time.sleep(_RETRY_SECONDS)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _timed_out(self) -> ProfileLockTimeout:
        return ProfileLockTimeout(
            f"Another Vigil window or command kept the sign-in busy for over {self._timeout:g} s "
            f"({self.path}). Try again; if it persists, close other Vigil processes."
        )


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
