"""Where Vigil keeps its files: settings in the config dir, cache and outbox in the data dir.

Both folders and everything in them are for the agent's account alone: folders 0700, files 0600,
fixed at every start for profiles made by older versions (on POSIX systems; Windows profiles are
already private to the user).
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

APP_NAME = "vigil"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# A profile holds a handful of files; the bound only keeps a strange folder from stalling start-up.
MAX_PRIVATE_ENTRIES = 10_000


@dataclass(frozen=True)
class AppPaths:
    """The client's config and data folders; every file location is derived from these two."""

    config_dir: Path
    data_dir: Path

    @classmethod
    def default(cls) -> AppPaths:
        """The platform's folders for Vigil, or VIGIL_CONFIG_DIR / VIGIL_DATA_DIR when set."""
        config = os.environ.get("VIGIL_CONFIG_DIR") or platformdirs.user_config_dir(APP_NAME)
        data = os.environ.get("VIGIL_DATA_DIR") or platformdirs.user_data_dir(APP_NAME)
        return cls(config_dir=Path(config), data_dir=Path(data))

    @property
    def settings_file(self) -> Path:
        """The user's own settings (JSON)."""
        return self.config_dir / "settings.json"

    @property
    def content_keys_file(self) -> Path:
        """The content-signing keys this computer trusts, outside the disposable cache (JSON)."""
        return self.config_dir / "content-keys.json"

    @property
    def cache_db(self) -> Path:
        """The content and alert cache (SQLite)."""
        return self.data_dir / "cache.sqlite3"

    @property
    def outbox_db(self) -> Path:
        """The durable acknowledgement outbox (SQLite)."""
        return self.data_dir / "outbox.sqlite3"

    @property
    def log_dir(self) -> Path:
        """Log files."""
        return self.data_dir / "logs"

    def make_private(self) -> list[Path]:
        """Create both folders 0700 and make everything in them owner-only (folders 0700, files
        0600). Returns what was fixed. (The `vigil` program also sets its umask to 0077, so files
        it makes later start owner-only.)"""
        if os.name != "posix":
            return []
        fixed: list[Path] = []
        seen = 0
        for folder in (self.config_dir, self.data_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
            for root, dirs, files in os.walk(folder):
                for name in (".", *dirs, *files):
                    seen += 1
                    if seen > MAX_PRIVATE_ENTRIES:
                        log.warning("stopped making %s private after %d entries", folder, seen)
                        return fixed
                    path = Path(root) / name if name != "." else Path(root)
                    if _make_owner_only(path):
                        fixed.append(path)
        if fixed:
            log.info("made %d file(s) of the profile readable by their owner only", len(fixed))
        return fixed


def _make_owner_only(path: Path) -> bool:
    """chmod one entry to 0700 (folder) or 0600 (file); symlinks are left alone. True if changed."""
    try:
        info = path.lstat()
    except OSError:
        return False
    if stat.S_ISLNK(info.st_mode):
        return False
    wanted = PRIVATE_DIR if stat.S_ISDIR(info.st_mode) else PRIVATE_FILE
    if stat.S_IMODE(info.st_mode) == wanted:
        return False
    try:
        path.chmod(wanted)
    except OSError as exc:
        log.warning("could not make %s private: %s", path, exc.strerror)
        return False
    return True
