"""Groups of users (team, region, shift) that alerts target, and each user's call-out contact."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast, get_args

from hub.storage.accounts import UnknownUser
from hub.storage.db import INTEGRITY_ERRORS

if TYPE_CHECKING:
    from hub.clock import Clock
    from hub.storage.db import Connection, Database

GroupKind = Literal["team", "region", "shift"]
GROUP_KINDS: frozenset[str] = frozenset(get_args(GroupKind))

SCHEMA: list[str] = [
    """
    CREATE TABLE groups (
        name TEXT PRIMARY KEY COLLATE NOCASE,
        kind TEXT NOT NULL CHECK (kind IN ('team', 'region', 'shift')),
        description TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL
    )
    """,
    """
    CREATE TABLE group_members (
        group_name TEXT NOT NULL COLLATE NOCASE REFERENCES groups (name) ON DELETE CASCADE,
        username TEXT NOT NULL COLLATE NOCASE,
        PRIMARY KEY (group_name, username)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX group_members_username ON group_members (username)",
    # The agent's phone-tree entry for a call-out, and the address of the email-to-SMS or paging
    # gateway the fallback notice goes to.
    "ALTER TABLE users ADD COLUMN phone TEXT",
    "ALTER TABLE users ADD COLUMN fallback_email TEXT",
]


class UnknownGroup(LookupError):
    """No group has that name."""


class GroupExists(Exception):
    """A group of that name (in any letter case) already exists."""


@dataclass(frozen=True)
class Group:
    """A named set of users an alert can target."""

    name: str
    kind: GroupKind
    description: str
    created_at: float
    members: list[str]


@dataclass(frozen=True)
class UserProfile:
    """What an admin sees of a user beyond the account: groups and call-out contact."""

    groups: list[str]
    phone: str | None
    fallback_email: str | None


# The contact fields a caller may set, and the column each is kept in.
CONTACT_FIELDS = ("phone", "fallback_email")


class GroupStore:
    """Owns the groups and group_members tables."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def create(self, name: str, kind: GroupKind, description: str = "") -> Group:
        """A new, empty group; GroupExists when the name is taken in any letter case."""
        now = self._clock.now()
        try:
            with self._db.write() as conn:
                conn.execute(
                    "INSERT INTO groups (name, kind, description, created_at) VALUES (?, ?, ?, ?)",
                    (name, kind, description, now),
                )
        except INTEGRITY_ERRORS:
            raise GroupExists(name) from None
        return Group(name, kind, description, now, [])

    def remove(self, name: str) -> None:
        """Delete a group and its memberships; alerts that targeted it keep their targets."""
        with self._db.write() as conn:
            if conn.execute("DELETE FROM groups WHERE name = ?", (name,)).rowcount == 0:
                raise UnknownGroup(name)

    def get(self, name: str) -> Group | None:
        """One group with its members, by name in any letter case."""
        with self._db.read() as conn:
            return _group(conn, name)

    def all(self) -> list[Group]:
        """Every group with its members, by name."""
        with self._db.read() as conn:
            names = [row[0] for row in conn.execute("SELECT name FROM groups ORDER BY name")]
            groups = [_group(conn, name) for name in names]
        return [group for group in groups if group is not None]

    def add_members(self, name: str, usernames: Sequence[str]) -> list[str]:
        """Add users (who must exist) to a group; the ones that were not members already."""
        with self._db.write() as conn:
            group = _group(conn, name)
            if group is None:
                raise UnknownGroup(name)
            added = []
            for username in usernames:
                row = conn.execute(
                    "SELECT username FROM users WHERE username = ?", (username,)
                ).fetchone()
                if row is None:
                    raise UnknownUser(username)
                inserted = conn.execute(
                    "INSERT INTO group_members (group_name, username) VALUES (?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (group.name, row[0]),
                ).rowcount
                if inserted:
                    added.append(str(row[0]))
        return added

    def remove_members(self, name: str, usernames: Sequence[str]) -> list[str]:
        """Take users out of a group; the ones that were members."""
        with self._db.write() as conn:
            group = _group(conn, name)
            if group is None:
                raise UnknownGroup(name)
            removed = []
            for username in usernames:
                row = conn.execute(
                    "DELETE FROM group_members WHERE group_name = ? AND username = ? "
                    "RETURNING username",
                    (group.name, username),
                ).fetchone()
                if row is not None:
                    removed.append(str(row[0]))
        return removed

    def forget_user(self, username: str) -> None:
        """Take a removed user out of every group, so a new account of that name starts in none."""
        with self._db.write() as conn:
            conn.execute("DELETE FROM group_members WHERE username = ?", (username,))

    def groups_of(self, username: str) -> list[str]:
        """The groups a user belongs to, by name."""
        with self._db.read() as conn:
            return [
                str(row[0])
                for row in conn.execute(
                    "SELECT group_name FROM group_members WHERE username = ? ORDER BY group_name",
                    (username,),
                )
            ]

    def agent_counts(self) -> dict[str, int]:
        """Per group name, how many enabled agents an alert to it would reach now."""
        with self._db.read() as conn:
            rows = conn.execute(
                """
                SELECT g.name, COUNT(u.username) FROM groups g
                LEFT JOIN group_members m ON m.group_name = g.name
                LEFT JOIN users u ON u.username = m.username AND u.role = 'agent'
                    AND u.disabled_at IS NULL
                GROUP BY g.name
                """
            ).fetchall()
        return {str(name): int(count) for name, count in rows}

    def profile(self, username: str) -> UserProfile:
        """A user's groups and contact; UnknownUser when there is no such user."""
        with self._db.read() as conn:
            row = conn.execute(
                "SELECT username, phone, fallback_email FROM users WHERE username = ?",
                (username,),
            ).fetchone()
            if row is None:
                raise UnknownUser(username)
            groups = [
                str(found[0])
                for found in conn.execute(
                    "SELECT group_name FROM group_members WHERE username = ? ORDER BY group_name",
                    (row[0],),
                )
            ]
        return UserProfile(groups, _optional(row[1]), _optional(row[2]))

    def profiles(self) -> dict[str, UserProfile]:
        """Every user's groups and contact, by username in lower case."""
        with self._db.read() as conn:
            users = conn.execute("SELECT username, phone, fallback_email FROM users").fetchall()
            members = conn.execute(
                "SELECT username, group_name FROM group_members ORDER BY group_name"
            ).fetchall()
        groups: dict[str, list[str]] = {}
        for username, group_name in members:
            groups.setdefault(str(username).lower(), []).append(str(group_name))
        return {
            str(name).lower(): UserProfile(
                groups.get(str(name).lower(), []), _optional(phone), _optional(email)
            )
            for name, phone, email in users
        }

    def set_contact(self, username: str, changes: dict[str, str | None]) -> UserProfile:
        """Set (or clear, with None) the named contact fields of a user; UnknownUser if none."""
        unknown = set(changes) - set(CONTACT_FIELDS)
        if unknown:
            raise ValueError(f"not contact fields: {sorted(unknown)}")
        with self._db.write() as conn:
            row = conn.execute(
                "SELECT username FROM users WHERE username = ?", (username,)
            ).fetchone()
            if row is None:
                raise UnknownUser(username)
            for column in CONTACT_FIELDS:
                if column in changes:
                    conn.execute(
                        f"UPDATE users SET {column} = ? WHERE username = ?",
                        (changes[column], row[0]),
                    )
        return self.profile(username)

    def missing(self, names: Sequence[str]) -> list[str]:
        """The names among `names` that no group has."""
        with self._db.read() as conn:
            return [
                name
                for name in dict.fromkeys(names)
                if conn.execute("SELECT 1 FROM groups WHERE name = ?", (name,)).fetchone() is None
            ]


def _group(conn: Connection, name: str) -> Group | None:
    row = conn.execute(
        "SELECT name, kind, description, created_at FROM groups WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        return None
    members = [
        str(member[0])
        for member in conn.execute(
            "SELECT username FROM group_members WHERE group_name = ? ORDER BY username",
            (row[0],),
        )
    ]
    return Group(str(row[0]), cast(GroupKind, row[1]), str(row[2]), float(row[3]), members)


def _optional(value: object) -> str | None:
    return None if value is None else str(value)
