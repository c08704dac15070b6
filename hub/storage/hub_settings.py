"""Hub-wide settings kept in the database, so `vigil-hub serve` and every command agree on them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.clock import Clock
    from hub.storage.db import Database

SCHEMA: list[str] = [
    """
    CREATE TABLE hub_settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL
    )
    """,
]

REQUIRE_APPROVAL = "require_approval"


class HubSettingStore:
    """Owns the hub_settings table: one text value per key."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def require_approval(self) -> bool:
        """Whether a live critical alert needs a second dispatcher before it is sent."""
        return self._get(REQUIRE_APPROVAL) == "on"

    def set_require_approval(self, required: bool) -> bool:
        """Turn two-person approval on or off; whether the setting changed."""
        return self._set(REQUIRE_APPROVAL, "on" if required else "off")

    def _get(self, key: str) -> str | None:
        with self._db.read() as conn:
            row = conn.execute("SELECT value FROM hub_settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set(self, key: str, value: str) -> bool:
        with self._db.write() as conn:
            row = conn.execute("SELECT value FROM hub_settings WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] == value:
                return False
            conn.execute(
                """
                INSERT INTO hub_settings (key, value, updated_at) VALUES (?, ?, ?)
                ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                    updated_at = excluded.updated_at
                """,
                (key, value, self._clock.now()),
            )
        return True
