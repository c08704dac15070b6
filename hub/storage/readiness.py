"""The `readiness` table (schema in hub/storage/delivery.py): each device's latest shift-readiness
self-test, with the device taken from the sign-in that reported it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hub.clock import Clock, rfc3339
from hub.storage.db import Database

READINESS_TABLE = "readiness"


class UnknownDevice(LookupError):
    """The sign-in behind a report no longer exists (revoked and purged between the checks)."""


@dataclass(frozen=True)
class ReadinessRecord:
    """One device's latest self-test: when it ran (client clock), when it arrived, its checks."""

    username: str
    device_id: str
    device_name: str
    ran_at: float
    received_at: float
    ready: bool
    checks: dict[str, dict[str, str]]

    def to_wire(self) -> dict[str, Any]:
        """The `readiness` object of the protocol (GET /v1/agents)."""
        return {"ran_at": rfc3339(self.ran_at), "ready": self.ready, "checks": self.checks}


class ReadinessStore:
    """Stores and reads the latest readiness report of each (user, device)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def record(
        self,
        username: str,
        family_id: int,
        ran_at: float,
        checks: dict[str, dict[str, str]],
    ) -> ReadinessRecord:
        """Keep the report unless the device already sent a later one; returns what is kept.

        An offline report delivered after a newer one must not replace it, so the newer ran_at
        wins whatever the order of arrival.
        """
        ready = all(check["status"] != "fail" for check in checks.values())
        now = self._clock.now()
        with self._db.write() as conn:
            device = conn.execute(
                "SELECT device_id, device_name FROM token_families WHERE id = ?", (family_id,)
            ).fetchone()
            if device is None:
                raise UnknownDevice(family_id)
            conn.execute(
                f"""
                INSERT INTO {READINESS_TABLE}
                    (username, device_id, device_name, ran_at, received_at, ready, checks)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (username, device_id) DO UPDATE SET
                    device_name = excluded.device_name,
                    ran_at = excluded.ran_at,
                    received_at = excluded.received_at,
                    ready = excluded.ready,
                    checks = excluded.checks
                WHERE excluded.ran_at >= {READINESS_TABLE}.ran_at
                """,
                (
                    username,
                    device["device_id"],
                    device["device_name"],
                    ran_at,
                    now,
                    int(ready),
                    json.dumps(checks, ensure_ascii=False, sort_keys=True),
                ),
            )
            row = conn.execute(
                f"SELECT * FROM {READINESS_TABLE} WHERE username = ? AND device_id = ?",
                (username, device["device_id"]),
            ).fetchone()
        return _record(row)

    def for_user(self, username: str) -> list[ReadinessRecord]:
        """Every device's latest report for `username`, newest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT * FROM {READINESS_TABLE} WHERE username = ? ORDER BY ran_at DESC",
                (username,),
            ).fetchall()
        return [_record(row) for row in rows]


def _record(row: Any) -> ReadinessRecord:
    return ReadinessRecord(
        username=row["username"],
        device_id=row["device_id"],
        device_name=row["device_name"],
        ran_at=row["ran_at"],
        received_at=row["received_at"],
        ready=bool(row["ready"]),
        checks=json.loads(row["checks"]),
    )
