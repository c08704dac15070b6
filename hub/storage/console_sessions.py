"""The dispatcher console's browser sessions: one per sign-in, tied to that sign-in's token family
so that signing out, ending sessions, disabling or removing the user ends it too."""

from __future__ import annotations

from dataclasses import dataclass

from hub.clock import Clock
from hub.storage.accounts import UserRecord, _user
from hub.storage.db import Database, Row

SCHEMA: list[str] = [
    """
    CREATE TABLE console_sessions (
        id INTEGER PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        family_id INTEGER NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        last_seen_at REAL NOT NULL
    )
    """,
    "CREATE INDEX console_sessions_family ON console_sessions (family_id)",
]


@dataclass(frozen=True)
class ConsoleSessionRecord:
    """A stored console session, its user and whether its sign-in still holds."""

    id: int
    family_id: int
    user: UserRecord
    created_at: float
    last_seen_at: float
    expires_at: float
    revoked: bool


class ConsoleSessionStore:
    """Console sessions, looked up by the hash of the cookie's token."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def create(self, *, token_hash: str, family_id: int) -> int:
        """Open a session for a sign-in's token family; answers its id."""
        now = self._clock.now()
        with self._db.write() as conn:
            cursor = conn.execute(
                "INSERT INTO console_sessions (token_hash, family_id, created_at, last_seen_at) "
                "VALUES (?, ?, ?, ?) RETURNING id",
                (token_hash, family_id, now, now),
            )
            return int(cursor.fetchone()[0])

    def find(self, *, token_hash: str) -> ConsoleSessionRecord | None:
        """The session behind a cookie token's hash, or None when there is none."""
        with self._db.read() as conn:
            row = conn.execute(
                f"{_SELECT} WHERE s.token_hash = ?",
                (token_hash,),
            ).fetchone()
        return None if row is None else _record(row)

    def get(self, session_id: int) -> ConsoleSessionRecord | None:
        """A session by id (the live streams re-check theirs), or None once it is gone."""
        with self._db.read() as conn:
            row = conn.execute(f"{_SELECT} WHERE s.id = ?", (session_id,)).fetchone()
        return None if row is None else _record(row)

    def touch(self, session_id: int) -> None:
        """Note activity now: the idle timeout counts from here."""
        with self._db.write() as conn:
            conn.execute(
                "UPDATE console_sessions SET last_seen_at = ? WHERE id = ?",
                (self._clock.now(), session_id),
            )

    def end(self, session_id: int, *, reason: str) -> None:
        """End a session and the sign-in behind it."""
        now = self._clock.now()
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT family_id FROM console_sessions WHERE id = ?", (session_id,)
            ).fetchone()
            conn.execute("DELETE FROM console_sessions WHERE id = ?", (session_id,))
            if row is not None:
                conn.execute(
                    "UPDATE token_families SET revoked_at = ?, revoked_reason = ? "
                    "WHERE id = ? AND revoked_at IS NULL",
                    (now, reason, row["family_id"]),
                )

    def purge(self, *, idle_before: float) -> int:
        """Forget sessions idle since before `idle_before` or whose sign-in ended."""
        now = self._clock.now()
        with self._db.write() as conn:
            cursor = conn.execute(
                """
                DELETE FROM console_sessions WHERE last_seen_at < ? OR family_id IN (
                    SELECT id FROM token_families WHERE revoked_at IS NOT NULL OR expires_at <= ?
                )
                """,
                (idle_before, now),
            )
            return cursor.rowcount


_SELECT = """
    SELECT s.id AS session_id, s.family_id, s.created_at AS session_created_at,
           s.last_seen_at, f.expires_at AS family_expires_at, f.revoked_at AS family_revoked_at,
           u.id, u.username, u.display_name, u.role, u.password_hash, u.totp_secret,
           u.totp_last_step, u.locked_until, u.disabled_at
    FROM console_sessions AS s
    JOIN token_families AS f ON f.id = s.family_id
    JOIN users AS u ON u.id = f.user_id
"""


def _record(row: Row) -> ConsoleSessionRecord:
    return ConsoleSessionRecord(
        id=row["session_id"],
        family_id=row["family_id"],
        user=_user(row),
        created_at=row["session_created_at"],
        last_seen_at=row["last_seen_at"],
        expires_at=row["family_expires_at"],
        revoked=row["family_revoked_at"] is not None or row["disabled_at"] is not None,
    )
