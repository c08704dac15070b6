"""Post-incident survey answers: one per agent and alert, sent once like acknowledgements."""

from __future__ import annotations

SCHEMA: list[str] = [
    """
    CREATE TABLE survey_answers (
        survey_id TEXT PRIMARY KEY,
        alert_id TEXT NOT NULL,
        username TEXT NOT NULL COLLATE NOCASE,
        clarity INTEGER NOT NULL CHECK (clarity BETWEEN 1 AND 5),
        templates INTEGER CHECK (templates BETWEEN 1 AND 5),
        comment TEXT,
        answered_at_ms INTEGER NOT NULL,
        received_at_ms INTEGER NOT NULL,
        UNIQUE (alert_id, username)
    )
    """,
]
