"""The hub's data dir and secret files readable by their owner only, whatever existed before.

The database holds TOTP seeds and the key file signs content: a data dir left at 0755 with a
0644 database lets any local user read them.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

OWNER_ONLY_UMASK = 0o077
OWNER_ONLY_DIR = 0o700
OWNER_ONLY_FILE = 0o600


class DataDirError(OSError):
    """The data dir or one of its files cannot be made private; the hub must not start on it."""


@dataclass(frozen=True)
class ModeChange:
    """A file or folder whose mode the hub narrowed, and what it was before."""

    path: Path
    old_mode: int
    new_mode: int

    def __str__(self) -> str:
        return (
            f"{self.path} was mode {self.old_mode:04o}; set it to {self.new_mode:04o} "
            "so that only its owner can read it"
        )


def restrict_umask() -> None:
    """Make every file and folder this process creates from now on private to its owner."""
    os.umask(OWNER_ONLY_UMASK)


def make_private(data_dir: Path, file_names: Iterable[str]) -> list[ModeChange]:
    """Create `data_dir` 0700 if missing, set it 0700 and the named files in it 0600.

    Files that do not exist yet are skipped. Returns what had to change.
    """
    changes: list[ModeChange] = []
    if not data_dir.exists():
        data_dir.mkdir(mode=OWNER_ONLY_DIR, parents=True)
    if sys.platform == "win32":
        # Windows keeps only a read-only bit in these modes; access there is its folders' ACLs.
        return changes
    _set_mode(data_dir, OWNER_ONLY_DIR, changes)
    for name in file_names:
        path = data_dir / name
        if path.exists():
            _set_mode(path, OWNER_ONLY_FILE, changes)
    return changes


def _set_mode(path: Path, mode: int, changes: list[ModeChange]) -> None:
    try:
        old_mode = stat.S_IMODE(path.stat().st_mode)
        if old_mode != mode:
            path.chmod(mode)
    except OSError as exc:
        raise DataDirError(
            f"cannot make {path} private to the hub's user (mode {mode:04o}): {exc.strerror}. "
            "Run the hub as the user that owns its data dir."
        ) from None
    if old_mode != mode:
        changes.append(ModeChange(path=path, old_mode=old_mode, new_mode=mode))
