"""Playbooks and templates: signed, versioned items paged by one global change cursor."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import rfc8785

if TYPE_CHECKING:
    from hub.clock import Clock
    from hub.signing import ContentSigner
    from hub.storage.db import Connection, Database

ContentKind = Literal["playbook", "template"]
CONTENT_KINDS: tuple[ContentKind, ...] = ("playbook", "template")

# Rows are never removed: a deletion is a tombstone, so the highest cursor of any row is the
# global cursor and a client that was offline still learns about the deletion.
SCHEMA: list[str] = [
    """
    CREATE TABLE content_items (
        kind TEXT NOT NULL CHECK (kind IN ('playbook', 'template')),
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        data TEXT,
        signature TEXT NOT NULL,
        key_id TEXT NOT NULL,
        cursor INTEGER NOT NULL UNIQUE,
        updated_at REAL NOT NULL,
        PRIMARY KEY (kind, id)
    )
    """,
]


@dataclass(frozen=True)
class ContentItem:
    """One playbook or template at its latest change, as signed."""

    kind: ContentKind
    id: str
    version: int
    deleted: bool
    data: dict[str, Any] | None
    signature: str
    key_id: str
    cursor: int

    def to_wire(self) -> dict[str, Any]:
        """The item as GET /v1/content sends it."""
        return {
            "kind": self.kind,
            "id": self.id,
            "version": self.version,
            "deleted": self.deleted,
            "data": self.data,
            "signature": self.signature,
            "key_id": self.key_id,
        }


@dataclass(frozen=True)
class ContentChange:
    """A write to apply: data None deletes the item."""

    kind: ContentKind
    id: str
    data: dict[str, Any] | None


class ContentStore:
    """Owns the content_items table."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def upsert(
        self, kind: ContentKind, id: str, data: dict[str, Any], signer: ContentSigner
    ) -> bool:
        """Create or update one item; True when its data changed (new version and cursor)."""
        return self.apply([ContentChange(kind, id, data)], signer)[0]

    def delete(self, kind: ContentKind, id: str, signer: ContentSigner) -> bool:
        """Turn an item into a signed tombstone; False when it was missing or already deleted."""
        return self.apply([ContentChange(kind, id, None)], signer)[0]

    def apply(self, changes: Iterable[ContentChange], signer: ContentSigner) -> list[bool]:
        """Apply several writes in one transaction; for each, whether it changed anything."""
        results: list[bool] = []
        with self._db.write() as conn:
            for change in changes:
                results.append(self._apply_one(conn, change, signer))
        return results

    def _apply_one(self, conn: Connection, change: ContentChange, signer: ContentSigner) -> bool:
        if change.kind not in CONTENT_KINDS:
            raise ValueError(f"Unknown content kind {change.kind!r}")
        row = conn.execute(
            "SELECT version, deleted, data FROM content_items WHERE kind = ? AND id = ?",
            (change.kind, change.id),
        ).fetchone()
        deleting = change.data is None
        if row is None and deleting:
            return False
        if row is not None:
            was_deleted = bool(row[1])
            if deleting and was_deleted:
                return False
            # Compare canonical encodings: the signature covers exactly these bytes.
            if (
                not deleting
                and not was_deleted
                and _canonical(json.loads(row[2])) == _canonical(change.data)
            ):
                return False
        version = 1 if row is None else int(row[0]) + 1
        cursor = conn.execute("SELECT COALESCE(MAX(cursor), 0) + 1 FROM content_items").fetchone()[
            0
        ]
        signature = signer.sign_item(change.kind, change.id, version, deleting, change.data)
        stored = None if change.data is None else _canonical(change.data).decode("utf-8")
        conn.execute(
            """
            INSERT INTO content_items
                (kind, id, version, deleted, data, signature, key_id, cursor, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (kind, id) DO UPDATE SET
                version = excluded.version, deleted = excluded.deleted, data = excluded.data,
                signature = excluded.signature, key_id = excluded.key_id,
                cursor = excluded.cursor, updated_at = excluded.updated_at
            """,
            (
                change.kind,
                change.id,
                version,
                int(deleting),
                stored,
                signature,
                signer.key_id,
                cursor,
                self._clock.now(),
            ),
        )
        return True

    def changes(self, since: int | None, limit: int) -> tuple[list[ContentItem], int, bool]:
        """Items changed after `since` (exclusive) in cursor order: (items, cursor, more)."""
        after = since or 0
        with self._db.read() as conn:
            rows = conn.execute(
                """
                SELECT kind, id, version, deleted, data, signature, key_id, cursor
                FROM content_items WHERE cursor > ? ORDER BY cursor LIMIT ?
                """,
                (after, limit + 1),
            ).fetchall()
        more = len(rows) > limit
        items = [_item(row) for row in rows[:limit]]
        cursor = items[-1].cursor if items else after
        return items, cursor, more

    def get(self, kind: ContentKind, id: str) -> ContentItem | None:
        """One item by kind and id, tombstones included."""
        with self._db.read() as conn:
            row = conn.execute(
                """
                SELECT kind, id, version, deleted, data, signature, key_id, cursor
                FROM content_items WHERE kind = ? AND id = ?
                """,
                (kind, id),
            ).fetchone()
        return None if row is None else _item(row)

    def search(self, kind: ContentKind, text: str, limit: int) -> list[ContentItem]:
        """Live (not deleted) items of `kind` whose id or title holds `text`, by title."""
        pattern = "%" + _like_escaped(text.strip()) + "%"
        with self._db.read() as conn:
            rows = conn.execute(
                """
                SELECT kind, id, version, deleted, data, signature, key_id, cursor
                FROM content_items
                WHERE kind = ? AND deleted = 0 AND (
                    id LIKE ? ESCAPE '\\' OR json_extract(data, '$.title') LIKE ? ESCAPE '\\'
                )
                ORDER BY json_extract(data, '$.title') COLLATE NOCASE, id
                LIMIT ?
                """,
                (kind, pattern, pattern, limit),
            ).fetchall()
        return [_item(row) for row in rows]


def _like_escaped(text: str) -> str:
    # The dispatcher's words are matched literally: % and _ are not wildcards here.
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _canonical(data: dict[str, Any] | None) -> bytes:
    return rfc8785.dumps(data)


def _item(row: Any) -> ContentItem:
    return ContentItem(
        kind=row[0],
        id=row[1],
        version=int(row[2]),
        deleted=bool(row[3]),
        data=None if row[4] is None else json.loads(row[4]),
        signature=row[5],
        key_id=row[6],
        cursor=int(row[7]),
    )
