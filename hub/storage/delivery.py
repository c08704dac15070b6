"""Delivery receipts, stream presence, shift-readiness results and fallback notices: what the hub
knows of whether each agent's devices got an alert and can be reached."""

from __future__ import annotations

SCHEMA: list[str] = [
    # One row per (alert, user, device): when the client stored the alert and when it showed it,
    # by the client's clock; reported_at is the hub's. The earliest report of each wins.
    """
    CREATE TABLE alert_receipts (
        alert_id TEXT NOT NULL,
        username TEXT NOT NULL COLLATE NOCASE,
        device_id TEXT NOT NULL,
        device_name TEXT NOT NULL,
        received_at_ms INTEGER NOT NULL,
        shown_at_ms INTEGER,
        reported_at_ms INTEGER NOT NULL,
        PRIMARY KEY (alert_id, username, device_id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX alert_receipts_username ON alert_receipts (username, alert_id)",
    # One row per alert stream a hub process held: reachability now (closed_at NULL and seen
    # lately) and over time (the intervals).
    """
    CREATE TABLE stream_presence (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL COLLATE NOCASE,
        device_id TEXT NOT NULL,
        device_name TEXT NOT NULL,
        opened_at REAL NOT NULL,
        last_seen_at REAL NOT NULL,
        closed_at REAL
    )
    """,
    "CREATE INDEX stream_presence_username ON stream_presence (username, opened_at)",
    "CREATE INDEX stream_presence_open ON stream_presence (closed_at, last_seen_at)",
    # The latest shift-readiness self-test of each device: checks is a JSON object.
    """
    CREATE TABLE readiness (
        username TEXT NOT NULL COLLATE NOCASE,
        device_id TEXT NOT NULL,
        device_name TEXT NOT NULL,
        ran_at REAL NOT NULL,
        received_at REAL NOT NULL,
        ready INTEGER NOT NULL,
        checks TEXT NOT NULL,
        PRIMARY KEY (username, device_id)
    ) WITHOUT ROWID
    """,
    # Agents a critical alert could not reach in time, and each fallback channel's outcome.
    """
    CREATE TABLE fallback_notices (
        alert_id TEXT NOT NULL,
        username TEXT NOT NULL COLLATE NOCASE,
        channel TEXT NOT NULL,
        marked_at REAL NOT NULL,
        sent_at REAL,
        ok INTEGER NOT NULL DEFAULT 0,
        detail TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (alert_id, username, channel)
    ) WITHOUT ROWID
    """,
]
