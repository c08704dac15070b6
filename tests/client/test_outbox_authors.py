"""Each acknowledgement records its author, and an outbox from before authors were recorded is
upgraded safely: its acks go only to the profile's last signed-in user at the upgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from client.core.errors import OutboxError
from client.core.outbox import Outbox

ALERT = "6f1c1f7e-8f0e-4d57-9a39-0b4b3e1f2a10"

# The outbox as Vigil wrote it before acks had authors (schema version 1).
_VERSION_1 = """
CREATE TABLE acks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ack_id TEXT NOT NULL UNIQUE,
    alert_id TEXT NOT NULL,
    action TEXT NOT NULL,
    note TEXT,
    acted_at TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    detail TEXT,
    synced_at TEXT
);
CREATE INDEX acks_state ON acks (state, seq);
CREATE INDEX acks_alert ON acks (alert_id, seq);
PRAGMA user_version = 1;
"""


def old_outbox(path: Path, pending: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(_VERSION_1)
        for n in range(pending):
            conn.execute(
                "INSERT INTO acks (ack_id, alert_id, action, acted_at, state) "
                "VALUES (?, ?, 'acknowledged', '2026-11-27T10:00:00.000Z', 'pending')",
                (f"00000000-0000-4000-8000-{n:012d}", ALERT),
            )


@pytest.mark.parametrize("author", ["", "   ", None])
def test_an_ack_without_a_known_author_is_refused_and_nothing_recorded(
    tmp_path: Path, author: str | None
) -> None:
    outbox = Outbox.open(tmp_path / "outbox.sqlite3")
    with pytest.raises(OutboxError, match="sign in first"):
        outbox.record(ALERT, "acknowledged", author=author)  # type: ignore[arg-type]
    assert outbox.counts().pending == 0
    outbox.close()


@pytest.mark.parametrize("author", ["agent", "\u202eeve", "<b>x</b>", "ü" * 200])
def test_the_author_is_kept_exactly(tmp_path: Path, author: str) -> None:
    outbox = Outbox.open(tmp_path / "outbox.sqlite3")
    ack = outbox.record(ALERT, "acknowledged", author=author)
    assert outbox.get(ack.ack_id) == ack
    assert ack.author == author
    assert outbox.pending(author=author) == [ack]
    assert outbox.pending(author="someone-else") == []
    assert outbox.counts().held_for_others("someone-else") == ((author, 1),)
    outbox.close()


def test_old_acks_belong_to_the_last_signed_in_user_at_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    old_outbox(path, pending=2)

    outbox = Outbox.open(path, legacy_owner="agent")

    assert outbox.legacy_owner == "agent"
    assert [ack.author for ack in outbox.pending()] == [None, None]
    assert len(outbox.pending(author="agent")) == 2
    assert outbox.pending(author="dispatcher") == []
    counts = outbox.counts()
    assert counts.pending_for("agent") == 2 and counts.unattributed("agent") == 0
    assert counts.pending_for("dispatcher") == 0 and counts.unattributed("dispatcher") == 2
    assert counts.unattributed(None) == 2
    outbox.close()
    # The owner is decided once, at the upgrade: a later sign-in cannot claim them.
    reopened = Outbox.open(path, legacy_owner="dispatcher")
    assert reopened.legacy_owner == "agent"
    assert reopened.pending(author="dispatcher") == []
    reopened.close()


def test_old_acks_with_no_known_last_user_are_held_for_everyone(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    old_outbox(path, pending=3)

    outbox = Outbox.open(path, legacy_owner=None)

    assert outbox.legacy_owner is None
    assert outbox.pending(author="agent") == []
    assert outbox.counts().unattributed("agent") == 3
    outbox.close()


def test_an_empty_old_outbox_names_no_owner(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    old_outbox(path, pending=0)
    outbox = Outbox.open(path, legacy_owner="agent")
    assert outbox.legacy_owner is None
    outbox.close()
