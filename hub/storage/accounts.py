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

# Rotated refresh tokens kept per family to recognise a replay (and revoke the family); one
# rotated longer ago than that is answered as unknown (401 token_invalid), revoking nothing.
KEPT_ROTATED_REFRESH_TOKENS = 16
# Access tokens kept per family: the newest and the one before (a refresh whose answer was lost
# leaves the client using it); older ones are unknown from then on.
KEPT_ACCESS_TOKENS = 2

# The `address` of a lock that holds for the account from every address.
ACCOUNT_WIDE = "*"

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


# Second migration. Lockout per (username, source address) and account-wide, for unknown usernames
# as for known ones (so the answers never tell which exist), each attempt counted before it is
# checked; and a rotated refresh token's successor pair, sealed under a key only the rotated
# token gives, for the grace window in which the same pair is answered again.
SIGNIN_HARDENING_SCHEMA: list[str] = [
    "DROP TABLE login_failures",
    """
    CREATE TABLE signin_failures (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL COLLATE NOCASE,
        address TEXT NOT NULL,
        failed_at REAL NOT NULL,
        reason TEXT NOT NULL
    )
    """,
    "CREATE INDEX signin_failures_key ON signin_failures (username, address, failed_at)",
    "CREATE INDEX signin_failures_time ON signin_failures (failed_at)",
    """
    CREATE TABLE signin_locks (
        username TEXT NOT NULL COLLATE NOCASE,
        address TEXT NOT NULL,
        through_id INTEGER NOT NULL,
        locked_until REAL NOT NULL,
        PRIMARY KEY (username, address)
    )
    """,
    "CREATE INDEX signin_locks_expiry ON signin_locks (locked_until)",
    "ALTER TABLE refresh_tokens ADD COLUMN successor_hash TEXT",
    "ALTER TABLE refresh_tokens ADD COLUMN successor_sealed BLOB",
    """
    CREATE INDEX refresh_tokens_sealed ON refresh_tokens (rotated_at)
    WHERE successor_sealed IS NOT NULL
    """,
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
    # The device the sign-in was made on: what receipts, answers and streams are recorded under.
    device_id: str = ""
    device_name: str = ""


@dataclass(frozen=True)
class LockoutRules:
    """When failures lock: per (account, address), and for the account from anywhere."""

    threshold: int
    window_seconds: float
    lockout_seconds: float
    account_threshold: int
    account_window_seconds: float

    @property
    def longest_window(self) -> float:
        """Failures and locks older than this count for nothing any more."""
        return max(self.window_seconds, self.account_window_seconds, self.lockout_seconds)


@dataclass(frozen=True)
class AttemptReservation:
    """A sign-in attempt counted before it is checked, or the lock that refused it."""

    attempt_id: int | None
    locked_until: float | None
    # Whether this attempt, should it fail, reaches a limit: only then is its failure settled
    # with a second write (`confirm_failure`); any other failure is already counted as it is.
    may_lock: bool = False


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
    # The token was rotated moments ago and its successor never used: the answer was lost.
    REPLAYED_IN_GRACE = "replayed_in_grace"


@dataclass(frozen=True)
class RefreshResult:
    """The outcome of a refresh, the family when the token was found, and on a replay within
    the grace window the successor pair as sealed at rotation."""

    outcome: RefreshOutcome
    family: Family | None = None
    sealed_successor: bytes | None = field(default=None, repr=False)


_USER_COLUMNS = (
    "id, username, display_name, role, password_hash, totp_secret, totp_last_step, locked_until, "
    "disabled_at"
)


class AccountStore:
    """Owns the users, signin_failures, signin_locks, mfa_challenges, token_families and
    *_tokens tables."""

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

    def reserve_attempt(
        self, *, username: str, address: str, step: str, rules: LockoutRules
    ) -> AttemptReservation:
        """Count a sign-in attempt as a failure before it is checked, unless it is locked out.

        One transaction, so of many parallel attempts at most `rules.threshold` are let through
        to be checked; `cancel_attempt` takes back one that was right, and `confirm_failure`
        locks when a failed one reached a limit.
        """
        now = self._clock.now()
        with self._db.write() as conn:
            conn.execute(
                "DELETE FROM signin_failures WHERE failed_at < ?", (now - rules.longest_window,)
            )
            conn.execute(
                "DELETE FROM signin_locks WHERE locked_until < ?", (now - rules.longest_window,)
            )
            locks = conn.execute(
                """
                SELECT MAX(locked_until) FROM signin_locks
                WHERE username = ? AND address IN (?, ?) AND locked_until > ?
                """,
                (username, address, ACCOUNT_WIDE, now),
            ).fetchone()[0]
            if locks is not None:
                return AttemptReservation(attempt_id=None, locked_until=locks)
            here, anywhere = _failure_counts(conn, username, address, rules, now)
            if here >= rules.threshold or anywhere >= rules.account_threshold:
                # Attempts still being checked fill the count: the lock is about to be set.
                return AttemptReservation(attempt_id=None, locked_until=now + rules.lockout_seconds)
            attempt_id = conn.execute(
                """
                INSERT INTO signin_failures (username, address, failed_at, reason)
                VALUES (?, ?, ?, ?)
                """,
                (username, address, now, step),
            ).lastrowid
            assert attempt_id is not None
            may_lock = here + 1 >= rules.threshold or anywhere + 1 >= rules.account_threshold
            return AttemptReservation(attempt_id=attempt_id, locked_until=None, may_lock=may_lock)

    def confirm_failure(self, *, attempt_id: int, reason: str, rules: LockoutRules) -> float | None:
        """The reserved attempt failed: keep it counted and lock when it reaches a limit.

        Returns when the lock that now holds ends, or None when there is none.
        """
        now = self._clock.now()
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT username, address FROM signin_failures WHERE id = ?", (attempt_id,)
            ).fetchone()
            if row is None:
                return None
            username, address = row["username"], row["address"]
            conn.execute("UPDATE signin_failures SET reason = ? WHERE id = ?", (reason, attempt_id))
            here, anywhere = _failure_counts(conn, username, address, rules, now)
            locked_until = now + rules.lockout_seconds
            for scope, reached in (
                (address, here >= rules.threshold),
                (ACCOUNT_WIDE, anywhere >= rules.account_threshold),
            ):
                if not reached:
                    continue
                # The lock replaces the count: failures up to now are not counted again after it.
                (through_id,) = conn.execute(
                    "SELECT MAX(id) FROM signin_failures WHERE username = ?", (username,)
                ).fetchone()
                conn.execute(
                    """
                    INSERT INTO signin_locks (username, address, through_id, locked_until)
                    VALUES (?, ?, ?, ?)
                    ON CONFLICT (username, address) DO UPDATE
                    SET through_id = excluded.through_id, locked_until = excluded.locked_until
                    """,
                    (username, scope, through_id, locked_until),
                )
            active = conn.execute(
                """
                SELECT MAX(locked_until) FROM signin_locks
                WHERE username = ? AND address IN (?, ?) AND locked_until > ?
                """,
                (username, address, ACCOUNT_WIDE, now),
            ).fetchone()[0]
            return float(active) if active is not None else None

    def cancel_attempt(self, *, attempt_id: int) -> None:
        """The reserved attempt was right (or never checked): it does not count."""
        with self._db.write() as conn:
            conn.execute("DELETE FROM signin_failures WHERE id = ?", (attempt_id,))

    def unlock(self, user_id: int) -> None:
        """Lift every lock of a user and forget their failures, from every address."""
        with self._db.write() as conn:
            row = conn.execute("SELECT username FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                return
            conn.execute("DELETE FROM signin_failures WHERE username = ?", (row["username"],))
            conn.execute("DELETE FROM signin_locks WHERE username = ?", (row["username"],))

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
            # A full sign-in ends the run of failures (locks still in force stay).
            conn.execute(
                """
                DELETE FROM signin_failures
                WHERE username = (SELECT username FROM users WHERE id = ?)
                """,
                (user_id,),
            )
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

    def rotate_refresh(
        self,
        *,
        refresh_hash: str,
        tokens: IssuedTokens,
        sealed_successor: bytes,
        grace_seconds: float,
    ) -> RefreshResult:
        """Trade a refresh token for a new pair; a token presented twice revokes its family.

        Except within `grace_seconds` of its rotation while the successor is unused: then the
        successor as sealed at rotation is answered again. One transaction, so of racing
        refreshes of one token exactly one rotates it.
        """
        now = self._clock.now()
        with self._db.write() as conn:
            row = conn.execute(
                """
                SELECT f.id, f.user_id, f.expires_at, f.revoked_at, r.rotated_at,
                       r.successor_sealed, s.rotated_at AS successor_rotated_at
                FROM refresh_tokens AS r JOIN token_families AS f ON f.id = r.family_id
                LEFT JOIN refresh_tokens AS s ON s.token_hash = r.successor_hash
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
                in_grace = (
                    row["successor_sealed"] is not None
                    and row["successor_rotated_at"] is None
                    and now - row["rotated_at"] <= grace_seconds
                    and now < family.expires_at
                )
                if in_grace:
                    return RefreshResult(
                        RefreshOutcome.REPLAYED_IN_GRACE, family, row["successor_sealed"]
                    )
                _revoke_family(conn, family.id, now, "refresh_reused")
                return RefreshResult(RefreshOutcome.REUSED, family)
            if now >= family.expires_at:
                return RefreshResult(RefreshOutcome.FAMILY_EXPIRED, family)
            # Only the newest rotation may be answered again; older sealed pairs go for good.
            conn.execute(
                """
                UPDATE refresh_tokens SET successor_sealed = NULL
                WHERE successor_sealed IS NOT NULL AND (family_id = ? OR rotated_at < ?)
                """,
                (family.id, now - grace_seconds),
            )
            conn.execute(
                """
                UPDATE refresh_tokens
                SET rotated_at = ?, successor_hash = ?, successor_sealed = ?
                WHERE token_hash = ?
                """,
                (now, tokens.refresh_hash, sealed_successor, refresh_hash),
            )
            _insert_tokens(conn, family, tokens, now)
            _prune_family_tokens(conn, family.id)
            return RefreshResult(RefreshOutcome.ROTATED, family)

    def find_access(self, *, access_hash: str) -> AccessGrant | None:
        """What an access token hash stands for, or None when it is unknown."""
        with self._db.read() as conn:
            row = conn.execute(
                f"""
                SELECT a.expires_at AS token_expires_at, a.revoked_at AS token_revoked_at,
                       f.id AS family_id, f.expires_at AS family_expires_at,
                       f.revoked_at AS family_revoked_at,
                       f.device_id AS device_id, f.device_name AS device_name,
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
            device_id=row["device_id"],
            device_name=row["device_name"],
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


def _failure_counts(
    conn: sqlite3.Connection, username: str, address: str, rules: LockoutRules, now: float
) -> tuple[int, int]:
    """Failures (those still being checked included) from `address`, and from anywhere, since
    the last lock."""
    boundaries = dict(
        conn.execute(
            "SELECT address, through_id FROM signin_locks WHERE username = ? AND address IN (?, ?)",
            (username, address, ACCOUNT_WIDE),
        ).fetchall()
    )
    (here,) = conn.execute(
        """
        SELECT COUNT(*) FROM signin_failures
        WHERE username = ? AND address = ? AND failed_at > ? AND id > ?
        """,
        (username, address, now - rules.window_seconds, boundaries.get(address, 0)),
    ).fetchone()
    (anywhere,) = conn.execute(
        """
        SELECT COUNT(*) FROM signin_failures
        WHERE username = ? AND failed_at > ? AND id > ?
        """,
        (username, now - rules.account_window_seconds, boundaries.get(ACCOUNT_WIDE, 0)),
    ).fetchone()
    return int(here), int(anywhere)


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


def _prune_family_tokens(conn: sqlite3.Connection, family_id: int) -> None:
    """Keep a family's newest tokens only, so refreshing in a loop cannot grow the tables."""
    conn.execute(
        """
        DELETE FROM refresh_tokens WHERE family_id = ? AND rotated_at IS NOT NULL AND rowid NOT IN
            (SELECT rowid FROM refresh_tokens WHERE family_id = ? AND rotated_at IS NOT NULL
             ORDER BY rowid DESC LIMIT ?)
        """,
        (family_id, family_id, KEPT_ROTATED_REFRESH_TOKENS),
    )
    conn.execute(
        """
        DELETE FROM access_tokens WHERE family_id = ? AND rowid NOT IN
            (SELECT rowid FROM access_tokens WHERE family_id = ? ORDER BY rowid DESC LIMIT ?)
        """,
        (family_id, family_id, KEPT_ACCESS_TOKENS),
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
    SELECT u.id, u.username, u.display_name, u.role, u.created_at, u.disabled_at,
           -- The latest lock on the account, account-wide or from one address.
           COALESCE((SELECT MAX(l.locked_until) FROM signin_locks AS l
                     WHERE l.username = u.username), 0) AS locked_until,
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
