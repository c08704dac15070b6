"""Where Vigil keeps its files: settings in the config dir, cache and outbox in the data dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "vigil"


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
