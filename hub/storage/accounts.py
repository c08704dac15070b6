"""Users, failed sign-ins and lockouts, MFA challenges, token families and their tokens.

Tokens and MFA tokens are stored only as SHA-256 hashes; the raw values never reach the file.
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from hub.clock import Clock
    from hub.storage.db import Database

Role = Literal["agent", "dispatcher", "admin"]
ROLES: tuple[Role, ...] = ("agent", "dispatcher", "admin")

# Families past their absolute expiry are dropped after this long (their tokens with them).
_EXPIRED_FAMILY_GRACE_SECONDS = 86400

SCHEMA: list[str] = [
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        display_name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('agent', 'dispatcher', 'admin')),
        password_hash TEXT NOT NULL,
        totp_secret TEXT NOT NULL,
        totp_last_step INTEGER NOT NULL DEFAULT 0,
        locked_until REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    )
    """,
    """
    CREATE TABLE login_failures (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        failed_at REAL NOT NULL,
        reason TEXT NOT NULL
    )
    """,
    "CREATE INDEX login_failures_user ON login_failures (user_id, failed_at)",
    """
    CREATE TABLE mfa_challenges (
        token_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        device_id TEXT NOT NULL,
        device_name TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        used_at REAL
    )
    """,
    "CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at)",
    """
    CREATE TABLE token_families (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        device_id TEXT NOT NULL,
        device_name TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        revoked_at REAL,
        revoked_reason TEXT
    )
    """,
    "CREATE INDEX token_families_expiry ON token_families (expires_at)",
    """
    CREATE TABLE access_tokens (
        token_hash TEXT PRIMARY KEY,
        family_id INTEGER NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        revoked_at REAL
    )
    """,
    "CREATE INDEX access_tokens_family ON access_tokens (family_id)",
    """
    CREATE TABLE refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        family_id INTEGER NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        rotated_at REAL
    )
    """,
    "CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id)",
]


class UsernameTaken(Exception):
    """A user with that username already exists."""


@dataclass(frozen=True)
class UserRecord:
    """A stored user; the secrets stay out of repr so they never reach a log."""

    id: int
    username: str
    display_name: str
    role: Role
    password_hash: str = field(repr=False)
    totp_secret: str = field(repr=False)
    totp_last_step: int
    locked_until: float
    disabled_at: float | None = None


@dataclass(frozen=True)
class Challenge:
    """A pending second sign-in step, reached with the MFA token the password step gave."""

    user_id: int
    device_id: str
    device_name: str
    expires_at: float
    used: bool


@dataclass(frozen=True)
class IssuedTokens:
    """The hashes of a new access/refresh pair and the family they belong to."""

    access_hash: str = field(repr=False)
    access_expires_at: float
    refresh_hash: str = field(repr=False)


@dataclass(frozen=True)
class Family:
    """A token family: every token from one sign-in on one device."""

    id: int
    user_id: int
    expires_at: float


@dataclass(frozen=True)
class AccessGrant:
    """What a presented access token stands for."""

    user: UserRecord
    family_id: int
    token_expires_at: float
    family_expires_at: float
    revoked: bool


class MfaOutcome(enum.Enum):
    """How completing the second step went."""

    SIGNED_IN = "signed_in"
    CODE_ALREADY_USED = "code_already_used"
    CODE_STALE = "code_stale"
    CHALLENGE_GONE = "challenge_gone"


class RefreshOutcome(enum.Enum):
    """How presenting a refresh token went."""

    ROTATED = "rotated"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    FAMILY_EXPIRED = "family_expired"
    REUSED = "reused"


@dataclass(frozen=True)
class RefreshResult:
    """The outcome of a refresh, and the family when the token was found."""

    outcome: RefreshOutcome
    family: Family | None = None


_USER_COLUMNS = (
    "id, username, display_name, role, password_hash, totp_secret, totp_last_step, locked_until, "
    "disabled_at"
)


class AccountStore:
    """Owns the users, login_failures, mfa_challenges, token_families and *_tokens tables."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    # Users

    def create_user(
        self,
        *,
        username: str,
        display_name: str,
        role: Role,
        password_hash: str,
        totp_secret: str,
    ) -> UserRecord:
        """Add a user; UsernameTaken when the name (in any letter case) exists."""
        try:
            with self._db.write() as conn:
                cursor = conn.execute(
                    """
                    INSERT INTO users
                        (username, display_name, role, password_hash, totp_secret, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                    (username, display_name, role, password_hash, totp_secret, self._clock.now()),
                )
                user_id = cursor.lastrowid
        except sqlite3.IntegrityError as exc:
            if "users.username" in str(exc):
                raise UsernameTaken(username) from None
            raise
        assert user_id is not None
        user = self.get_user(user_id=user_id)
        assert user is not None
        return user

    def get_user(self, *, user_id: int) -> UserRecord | None:
        """A user by id."""
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)
            ).fetchone()
        return None if row is None else _user(row)

    def find_user(self, *, username: str) -> UserRecord | None:
        """A user by username, in any letter case."""
        with self._db.read() as conn:
            row = conn.execute(
                f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?", (username,)
            ).fetchone()
        return None if row is None else _user(row)

    def user_exists(self, *, username: str) -> bool:
        """Whether a username (in any letter case) is taken."""
        return self.find_user(username=username) is not None

    def set_password_hash(self, *, user_id: int, password_hash: str) -> None:
        """Replace a user's password hash (after a rehash with newer parameters)."""
        with self._db.write() as conn:
            conn.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
            )

    # Failed attempts and lockout

    def record_failure(
        self,
        *,
        user_id: int,
        reason: str,
        threshold: int,
        window_seconds: float,
        lockout_seconds: float,
    ) -> float | None:
        """Log one failed attempt; when it is the `threshold`-th in the window, lock the user.

        Returns the time the lock ends when this failure locked the user, else None.
        """
        now = self._clock.now()
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO login_failures (user_id, failed_at, reason) VALUES (?, ?, ?)",
                (user_id, now, reason),
            )
            (recent,) = conn.execute(
                "SELECT COUNT(*) FROM login_failures WHERE user_id = ? AND failed_at > ?",
                (user_id, now - window_seconds),
            ).fetchone()
            if recent < threshold:
                return None
            locked_until = now + lockout_seconds
            conn.execute("UPDATE users SET locked_until = ? WHERE id = ?", (locked_until, user_id))
            # The lock replaces the count: after it ends the user starts afresh.
            conn.execute("DELETE FROM login_failures WHERE user_id = ?", (user_id,))
            return locked_until

    # MFA challenges

    def create_challenge(
        self,
        *,
        token_hash: str,
        user_id: int,
        device_id: str,
        device_name: str,
        expires_at: float,
    ) -> None:
        """Store a pending second step under the hash of its MFA token."""
        now = self._clock.now()
        with self._db.write() as conn:
            conn.execute("DELETE FROM mfa_challenges WHERE expires_at < ?", (now,))
            conn.execute(
                """
                INSERT INTO mfa_challenges
                    (token_hash, user_id, device_id, device_name, created_at, expires_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """,
                (token_hash, user_id, device_id, device_name, now, expires_at),
            )

    def get_challenge(self, *, token_hash: str) -> Challenge | None:
        """The pending second step for an MFA token hash, used or not."""
        with self._db.read() as conn:
            row = conn.execute(
                """
                SELECT user_id, device_id, device_name, expires_at, used_at
                FROM mfa_challenges WHERE token_hash = ?
                """,
                (token_hash,),
            ).fetchone()
        if row is None:
            return None
        return Challenge(
            user_id=row["user_id"],
            device_id=row["device_id"],
            device_name=row["device_name"],
            expires_at=row["expires_at"],
            used=row["used_at"] is not None,
        )

    def complete_mfa(
        self,
        *,
        challenge_hash: str,
        step: int,
        family_expires_at: float,
        tokens: IssuedTokens,
    ) -> tuple[MfaOutcome, Family | None]:
        """Accept a TOTP step for a challenge and open a token family, all or nothing.

        The step is accepted only if it is newer than the user's last accepted one, so one code
        signs in once even when submitted in parallel.
        """
        now = self._clock.now()
        with self._db.write() as conn:
            challenge = conn.execute(
                """
                SELECT user_id, device_id, device_name FROM mfa_challenges
                WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?
                """,
                (challenge_hash, now),
            ).fetchone()
            if challenge is None:
                return MfaOutcome.CHALLENGE_GONE, None
            user_id = challenge["user_id"]
            accepted = conn.execute(
                "UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?",
                (step, user_id, step),
            ).rowcount
            if accepted != 1:
                (last_step,) = conn.execute(
                    "SELECT totp_last_step FROM users WHERE id = ?", (user_id,)
                ).fetchone()
                if last_step == step:
                    return MfaOutcome.CODE_ALREADY_USED, None
                return MfaOutcome.CODE_STALE, None
            conn.execute(
                "UPDATE mfa_challenges SET used_at = ? WHERE token_hash = ?", (now, challenge_hash)
            )
            conn.execute("DELETE FROM login_failures WHERE user_id = ?", (user_id,))
            conn.execute(
                "DELETE FROM token_families WHERE expires_at < ?",
                (now - _EXPIRED_FAMILY_GRACE_SECONDS,),
            )
            family_id = conn.execute(
                """
                INSERT INTO token_families (user_id, device_id, device_name, created_at, expires_at)
                VALUES (?, ?, ?, ?, ?)
                """,
                (user_id, challenge["device_id"], challenge["device_name"], now, family_expires_at),
            ).lastrowid
            assert family_id is not None
            family = Family(id=family_id, user_id=user_id, expires_at=family_expires_at)
            _insert_tokens(conn, family, tokens, now)
            return MfaOutcome.SIGNED_IN, family

    # Tokens

    def rotate_refresh(self, *, refresh_hash: str, tokens: IssuedTokens) -> RefreshResult:
        """Trade a refresh token for a new pair; a token presented twice revokes its family.

        One transaction, so of two racing refreshes of one token exactly one sees it unused.
        """
        now = self._clock.now()
        with self._db.write() as conn:
            row = conn.execute(
                """
                SELECT f.id, f.user_id, f.expires_at, f.revoked_at, r.rotated_at
                FROM refresh_tokens AS r JOIN token_families AS f ON f.id = r.family_id
                WHERE r.token_hash = ?
                """,
                (refresh_hash,),
            ).fetchone()
            if row is None:
                return RefreshResult(RefreshOutcome.UNKNOWN)
            family = Family(id=row[0], user_id=row[1], expires_at=row[2])
            if row["revoked_at"] is not None:
                return RefreshResult(RefreshOutcome.REVOKED, family)
            if row["rotated_at"] is not None:
                _revoke_family(conn, family.id, now, "refresh_reused")
                return RefreshResult(RefreshOutcome.REUSED, family)
            if now >= family.expires_at:
                return RefreshResult(RefreshOutcome.FAMILY_EXPIRED, family)
            conn.execute(
                "UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ?",
                (now, refresh_hash),
            )
            _insert_tokens(conn, family, tokens, now)
            return RefreshResult(RefreshOutcome.ROTATED, family)

    def find_access(self, *, access_hash: str) -> AccessGrant | None:
        """What an access token hash stands for, or None when it is unknown."""
        with self._db.read() as conn:
            row = conn.execute(
                f"""
                SELECT a.expires_at AS token_expires_at, a.revoked_at AS token_revoked_at,
                       f.id AS family_id, f.expires_at AS family_expires_at,
                       f.revoked_at AS family_revoked_at,
                       {", ".join("u." + column for column in _USER_COLUMNS.split(", "))}
                FROM access_tokens AS a
                JOIN token_families AS f ON f.id = a.family_id
                JOIN users AS u ON u.id = f.user_id
                WHERE a.token_hash = ?
                """,
                (access_hash,),
            ).fetchone()
        if row is None:
            return None
        return AccessGrant(
            user=_user(row),
            family_id=row["family_id"],
            token_expires_at=row["token_expires_at"],
            family_expires_at=row["family_expires_at"],
            revoked=row["token_revoked_at"] is not None
            or row["family_revoked_at"] is not None
            or row["disabled_at"] is not None,
        )

    def revoke_family(self, *, family_id: int, reason: str) -> None:
        """Revoke every access and refresh token of a family."""
        with self._db.write() as conn:
            _revoke_family(conn, family_id, self._clock.now(), reason)

    def usable_access_tokens(self, access_hashes: set[str]) -> set[str]:
        """Which of these access token hashes still exist with neither token nor family revoked.

        Expiry is left to the caller. Read-only; the alert streams ask this every half second.
        """
        wanted = list(access_hashes)
        chunk_size = 500  # well below SQLite's limit on bound parameters
        usable: set[str] = set()
        with self._db.read() as conn:
            for start in range(0, len(wanted), chunk_size):
                chunk = wanted[start : start + chunk_size]
                rows = conn.execute(
                    f"""
                    SELECT a.token_hash FROM access_tokens AS a
                    JOIN token_families AS f ON f.id = a.family_id
                    JOIN users AS u ON u.id = f.user_id
                    WHERE a.token_hash IN ({", ".join("?" * len(chunk))})
                      AND a.revoked_at IS NULL AND f.revoked_at IS NULL
                      AND u.disabled_at IS NULL
                    """,
                    chunk,
                ).fetchall()
                usable.update(row[0] for row in rows)
        return usable

    # User administration (IT): every change that ends access revokes the sessions in its
    # own transaction.

    def list_users(self) -> list[UserSummary]:
        """Every user, by username."""
        with self._db.read() as conn:
            rows = conn.execute(
                _SUMMARY_QUERY + " ORDER BY u.username COLLATE NOCASE", (self._clock.now(),)
            ).fetchall()
        return [_summary(row) for row in rows]

    def user_summary(self, *, username: str) -> UserSummary | None:
        """One user by username (any letter case), or None."""
        with self._db.read() as conn:
            return _find_summary(conn, username, self._clock.now())

    def disable_user(self, *, username: str) -> UserChange:
        """Stop a user signing in and end every session of theirs; LastAdmin, UnknownUser."""
        now = self._clock.now()
        with self._db.write() as conn:
            user = _require(conn, username, now)
            changed = user.disabled_at is None
            if changed:
                _refuse_last_admin(conn, user)
                conn.execute("UPDATE users SET disabled_at = ? WHERE id = ?", (now, user.id))
            ended = _end_sessions(conn, user.id, now, "user_disabled")
            return UserChange(_require(conn, username, now), changed, ended)

    def enable_user(self, *, username: str) -> UserChange:
        """Let a disabled user sign in again; UnknownUser."""
        now = self._clock.now()
        with self._db.write() as conn:
            user = _require(conn, username, now)
            changed = user.disabled_at is not None
            conn.execute("UPDATE users SET disabled_at = NULL WHERE id = ?", (user.id,))
            return UserChange(_require(conn, username, now), changed, 0)

    def remove_user(self, *, username: str) -> UserChange:
        """Delete a user with their sessions; their acks and audit events keep the username."""
        now = self._clock.now()
        with self._db.write() as conn:
            user = _require(conn, username, now)
            _refuse_last_admin(conn, user)
            ended = _end_sessions(conn, user.id, now, "user_removed")
            # ON DELETE CASCADE drops the families, tokens, challenges and failures with the row.
            conn.execute("DELETE FROM users WHERE id = ?", (user.id,))
            return UserChange(user, True, ended)

    def replace_password(self, *, username: str, password_hash: str) -> UserChange:
        """Set a new password hash and end every session signed in with the old password."""
        return self._replace_credential(username, "password_hash", password_hash, "password_reset")

    def replace_totp_secret(self, *, username: str, totp_secret: str) -> UserChange:
        """Set a new authenticator secret and end every session; old codes stop working."""
        return self._replace_credential(username, "totp_secret", totp_secret, "mfa_reset")

    def revoke_sessions(self, *, username: str) -> UserChange:
        """End every session of a user at once; they may sign in again."""
        now = self._clock.now()
        with self._db.write() as conn:
            user = _require(conn, username, now)
            ended = _end_sessions(conn, user.id, now, "revoked_by_admin")
            return UserChange(_require(conn, username, now), ended > 0, ended)

    def unlock(self, user_id: int) -> None:
        """Lift a lockout now and forget the failed attempts that led to it."""
        with self._db.write() as conn:
            conn.execute("UPDATE users SET locked_until = 0 WHERE id = ?", (user_id,))
            conn.execute("DELETE FROM login_failures WHERE user_id = ?", (user_id,))

    def _replace_credential(
        self, username: str, column: Literal["password_hash", "totp_secret"], value: str, why: str
    ) -> UserChange:
        now = self._clock.now()
        with self._db.write() as conn:
            user = _require(conn, username, now)
            # totp_last_step restarts with a new secret: steps of the old one mean nothing now.
            reset_step = ", totp_last_step = 0" if column == "totp_secret" else ""
            conn.execute(
                f"UPDATE users SET {column} = ?{reset_step} WHERE id = ?", (value, user.id)
            )
            ended = _end_sessions(conn, user.id, now, why)
            return UserChange(_require(conn, username, now), True, ended)


def _insert_tokens(
    conn: sqlite3.Connection, family: Family, tokens: IssuedTokens, now: float
) -> None:
    conn.execute(
        """
        INSERT INTO access_tokens (token_hash, family_id, created_at, expires_at)
        VALUES (?, ?, ?, ?)
        """,
        (tokens.access_hash, family.id, now, tokens.access_expires_at),
    )
    conn.execute(
        """
        INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at)
        VALUES (?, ?, ?, ?)
        """,
        (tokens.refresh_hash, family.id, now, family.expires_at),
    )


def _revoke_family(conn: sqlite3.Connection, family_id: int, now: float, reason: str) -> None:
    conn.execute(
        """
        UPDATE token_families SET revoked_at = ?, revoked_reason = ?
        WHERE id = ? AND revoked_at IS NULL
        """,
        (now, reason, family_id),
    )
    conn.execute(
        "UPDATE access_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
        (now, family_id),
    )


def _user(row: sqlite3.Row) -> UserRecord:
    return UserRecord(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        role=row["role"],
        password_hash=row["password_hash"],
        totp_secret=row["totp_secret"],
        totp_last_step=row["totp_last_step"],
        locked_until=row["locked_until"],
        disabled_at=row["disabled_at"],
    )


# User administration (`vigil-hub user ...` and /v1/admin/users): appended by its own migration.

USER_ADMIN_SCHEMA: list[str] = [
    # When IT disabled the account; NULL while it may sign in.
    "ALTER TABLE users ADD COLUMN disabled_at REAL",
    # Ending a user's sessions and counting them look families up by user.
    "CREATE INDEX IF NOT EXISTS token_families_user ON token_families (user_id)",
]


class UnknownUser(LookupError):
    """No user has that username."""


class LastAdmin(Exception):
    """The change would leave the hub without an enabled admin."""


@dataclass(frozen=True)
class UserSummary:
    """What IT sees of an account: no hash, secret or token."""

    id: int
    username: str
    display_name: str
    role: Role
    created_at: float
    disabled_at: float | None
    locked_until: float
    active_sessions: int
    last_sign_in_at: float | None


@dataclass(frozen=True)
class UserChange:
    """The account after a change, whether anything changed, and how many sign-ins it ended."""

    user: UserSummary
    changed: bool
    sessions_ended: int


_SUMMARY_QUERY = """
    SELECT u.id, u.username, u.display_name, u.role, u.created_at, u.disabled_at, u.locked_until,
           (SELECT COUNT(*) FROM token_families AS f
            WHERE f.user_id = u.id AND f.revoked_at IS NULL AND f.expires_at > ?) AS active,
           (SELECT MAX(f.created_at) FROM token_families AS f WHERE f.user_id = u.id) AS last_in
    FROM users AS u
"""


def _summary(row: sqlite3.Row) -> UserSummary:
    return UserSummary(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        role=row["role"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
        locked_until=row["locked_until"],
        active_sessions=row["active"],
        last_sign_in_at=row["last_in"],
    )


def _find_summary(conn: sqlite3.Connection, username: str, now: float) -> UserSummary | None:
    row = conn.execute(_SUMMARY_QUERY + " WHERE u.username = ?", (now, username)).fetchone()
    return None if row is None else _summary(row)


def _require(conn: sqlite3.Connection, username: str, now: float) -> UserSummary:
    user = _find_summary(conn, username, now)
    if user is None:
        raise UnknownUser(username)
    return user


def _refuse_last_admin(conn: sqlite3.Connection, user: UserSummary) -> None:
    if user.role != "admin" or user.disabled_at is not None:
        return
    (others,) = conn.execute(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL AND id != ?",
        (user.id,),
    ).fetchone()
    if others == 0:
        raise LastAdmin(user.username)


def _end_sessions(conn: sqlite3.Connection, user_id: int, now: float, reason: str) -> int:
    # Pending second steps go too, so a password typed before the change cannot finish signing in.
    conn.execute("DELETE FROM mfa_challenges WHERE user_id = ?", (user_id,))
    families = [
        family_id
        for (family_id,) in conn.execute(
            "SELECT id FROM token_families WHERE user_id = ? AND revoked_at IS NULL", (user_id,)
        )
    ]
    for family_id in families:
        _revoke_family(conn, family_id, now, reason)
    return len(families)
