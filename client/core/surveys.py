"""The post-incident survey queue: which resolved alerts each user is asked about, and their
answers, on disk before the dialog says "Thank you" and sent to the hub exactly once.

A survey belongs to one user and one alert. It starts when the client shows the user an open
alert, is offered once when that alert is resolved (a retracted alert withdraws it; see
`SurveyQueue.follow`), and is answered at most once: the answer takes a `survey_id` (a UUID made
once) that is the hub's idempotency key, so sending it again after a crash or a lost answer is
harmless. Like the acknowledgement outbox, each survey is sent only with its own user's session,
and has its own SQLite file committed with synchronous=FULL; a damaged one is set aside and a
fresh one started.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from client.core.durable_sqlite import create_owner_only, make_durable
from client.core.errors import BadResponse, HubError, VigilError
from client.core.events import Event
from client.core.outbox_salvage import is_corruption, set_aside
from client.core.sqlite_transaction import write_transaction

if TYPE_CHECKING:
    from client.core.hub_client import HubClient
    from client.core.models import Alert

log = logging.getLogger(__name__)

T = TypeVar("T")

FILENAME = "surveys.sqlite3"
MAX_COMMENT_CHARS = 2000
MAX_BATCH = 100
SCORES = range(1, 6)
DRILL_LABEL = "DRILL: no action with real patients"
# The hub's answer for a survey it already holds from this user under another survey_id (another
# device, or a copy of the profile): the survey is done, not something to send again.
ALREADY_ANSWERED = "already_answered"
# Newline and tab are how people write; the hub refuses every other control character.
_ALLOWED_CONTROLS = frozenset("\n\t")

_SCHEMA = [
    """
    CREATE TABLE surveys (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id TEXT NOT NULL,
        author TEXT NOT NULL,
        title TEXT NOT NULL,
        drill INTEGER NOT NULL,
        state TEXT NOT NULL,
        survey_id TEXT UNIQUE,
        clarity INTEGER,
        templates INTEGER,
        comment TEXT,
        answered_at TEXT,
        error TEXT,
        detail TEXT,
        synced_at TEXT,
        UNIQUE (author, alert_id)
    );
    CREATE INDEX surveys_state ON surveys (author, state, seq)
    """,
]
_COLUMNS = (
    "alert_id, author, title, drill, state, survey_id, clarity, templates, comment, answered_at, "
    "error, detail"
)


class SurveyError(VigilError):
    """A survey answer could not be saved (nothing was saved), or the queue cannot be used."""


class SurveyState(StrEnum):
    """Where a survey is, from the alert shown to the hub's answer."""

    SHOWN = "shown"  # the alert was shown to the user and is not resolved yet
    OFFERED = "offered"  # resolved: waiting for the user's answer
    QUEUED = "queued"  # answered, on disk, waiting to be sent
    SENT = "sent"  # the hub holds it
    REJECTED = "rejected"  # the hub refused it, with its reason
    WITHDRAWN = "withdrawn"  # the alert was retracted: no survey


@dataclass(frozen=True)
class SurveyRecord:
    """One user's survey of one alert as this computer keeps it."""

    alert_id: str
    author: str
    title: str
    drill: bool
    state: SurveyState
    survey_id: str | None = None
    clarity: int | None = None
    templates: int | None = None
    comment: str | None = None
    answered_at: str | None = None
    error: str | None = None
    detail: str | None = None

    @property
    def label(self) -> str:
        """The alert's title as a survey names it, marked when it was a drill."""
        return f"{DRILL_LABEL}: {self.title}" if self.drill else self.title

    def to_json(self) -> dict[str, Any]:
        """The item as POST /v1/surveys takes it (only for an answered survey)."""
        return {
            "survey_id": self.survey_id,
            "alert_id": self.alert_id,
            "clarity": self.clarity,
            "templates": self.templates,
            "comment": self.comment,
            "answered_at": self.answered_at,
        }


@dataclass(frozen=True)
class SurveyResult:
    """The hub's answer for one survey."""

    survey_id: str
    status: str  # accepted, duplicate or rejected
    error: str | None = None
    detail: str | None = None


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _record(row: tuple[Any, ...]) -> SurveyRecord:
    alert_id, author, title, drill, state, survey_id, clarity, templates, comment = row[:9]
    answered_at, error, detail = row[9:]
    return SurveyRecord(
        alert_id,
        author,
        title,
        bool(drill),
        SurveyState(state),
        survey_id,
        clarity,
        templates,
        comment,
        answered_at,
        error,
        detail,
    )


def check_answer(clarity: object, templates: object, comment: object) -> str | None:
    """Why an answer cannot be sent (None when it can): the hub's rules, checked before saving."""
    if not isinstance(clarity, int) or isinstance(clarity, bool) or clarity not in SCORES:
        return "How clear the instructions were is a number from 1 to 5."
    if templates is not None and (
        not isinstance(templates, int) or isinstance(templates, bool) or templates not in SCORES
    ):
        return "How useful the templates were is a number from 1 to 5, or none if not used."
    if comment is None:
        return None
    if not isinstance(comment, str):
        return "The comment must be text."
    if len(comment) > MAX_COMMENT_CHARS:
        return f"The comment is {len(comment)} characters; at most {MAX_COMMENT_CHARS} are sent."
    for index, char in enumerate(comment):
        code = ord(char)
        control = code < 0x20 or 0x7F <= code <= 0x9F
        if (control and char not in _ALLOWED_CONTROLS) or 0xD800 <= code <= 0xDFFF:
            return f"The comment holds a control character (U+{code:04X}) at position {index}."
    return None


class _Damaged(Exception):
    """The file is damaged (failed its check or SQLite reported corruption)."""


def _connect(path: Path) -> sqlite3.Connection:
    """Open, check and migrate the file; _Damaged when it is corrupt, SurveyError otherwise."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        create_owner_only(path)
        # Autocommit mode: every transaction below is explicit (write_transaction).
        conn = sqlite3.connect(path, check_same_thread=False, timeout=10.0, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise SurveyError(f"The survey store {path} cannot be opened ({exc}).") from exc
    try:
        check = conn.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            raise _Damaged(f"quick_check: {str(check[:3])[:300]}")
        make_durable(conn)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(_SCHEMA):
            raise SurveyError(
                f"The survey store {path} was written by a newer Vigil; update Vigil rather "
                "than lose the answers in it."
            )
        for number, script in enumerate(_SCHEMA[version:], start=version + 1):
            with write_transaction(conn):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                # PRAGMA takes no bound parameter; `number` is an int from enumerate.
                conn.execute(f"PRAGMA user_version = {number}")
        if os.name == "posix":
            path.chmod(0o600)
    except sqlite3.Error as exc:
        conn.close()
        if is_corruption(exc):
            raise _Damaged(str(exc)) from exc
        raise SurveyError(
            f"The survey store {path} cannot be used ({exc}). Check the disk and the data "
            "folder's permissions; do not delete the file, it may hold answers not yet sent."
        ) from exc
    except (SurveyError, _Damaged):
        conn.close()
        raise
    return conn


class SurveyQueue:
    """Durable survey queue of one profile; safe to call from any thread.

    Events: `answered` (each survey answered on this computer: send it soon) and `changed`
    (a survey's state moved on; carries the affected records).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path
        self._lock = threading.RLock()
        # Where a damaged file was moved at open, if one was.
        self.damaged_file: Path | None = None
        self.answered: Event[SurveyRecord] = Event("surveys.answered")
        self.changed: Event[tuple[SurveyRecord, ...]] = Event("surveys.changed")

    @classmethod
    def open(cls, path: Path) -> SurveyQueue:
        """Open or create the queue file (owner-only); SurveyError when it cannot be used.

        A damaged file is set aside as `surveys.sqlite3.damaged-<UTC time>` (kept for recovery)
        and a fresh one started: surveys must never stop the app.
        """
        try:
            return cls(_connect(path), path)
        except _Damaged as exc:
            target = set_aside(path)
            log.warning("survey store %s is damaged (%s); set aside as %s", path, exc, target)
            queue = cls(_connect(path), path)
            queue.damaged_file = target
            return queue

    @property
    def path(self) -> Path:
        """The queue file."""
        return self._path

    def close(self) -> None:
        """Close the file; the object must not be used afterwards."""
        with self._lock:
            self._conn.close()

    def _use(self, work: Callable[[sqlite3.Connection], T], failure: str) -> T:
        try:
            with self._lock:
                return work(self._conn)
        except sqlite3.Error as exc:
            raise SurveyError(f"{failure} ({exc}); the survey store is {self._path}.") from exc

    def _select(self, where: str, params: tuple[Any, ...]) -> list[SurveyRecord]:
        rows = self._use(
            lambda conn: conn.execute(
                f"SELECT {_COLUMNS} FROM surveys WHERE {where}", params
            ).fetchall(),
            "The survey store could not be read",
        )
        return [_record(row) for row in rows]

    def get(self, alert_id: str, author: str) -> SurveyRecord | None:
        """`author`'s survey of one alert, in whatever state."""
        found = self._select("author = ? AND alert_id = ?", (author, alert_id))
        return found[0] if found else None

    def follow(self, alerts: Iterable[Alert], author: str, *, shown: bool) -> list[SurveyRecord]:
        """Bring `author`'s surveys in step with these alerts as they are now, in one write;
        returns the surveys offered by this call.

        With `shown` (the alerts are on `author`'s screen now) an open alert is noted as shown.
        A resolved alert shown to `author` before is offered, once; a retracted one withdraws
        its survey for everyone (answers already given stay).
        """
        listed = list(alerts)

        def apply(conn: sqlite3.Connection) -> list[str]:
            offered: list[str] = []
            with write_transaction(conn):
                for alert in listed:
                    if alert.status == "open" and shown:
                        conn.execute(
                            "INSERT OR IGNORE INTO surveys (alert_id, author, title, drill, state) "
                            "VALUES (?, ?, ?, ?, 'shown')",
                            (alert.id, author, alert.title, int(alert.drill)),
                        )
                    elif alert.status == "resolved":
                        changed = conn.execute(
                            "UPDATE surveys SET state = 'offered', title = ?, drill = ? "
                            "WHERE author = ? AND alert_id = ? AND state = 'shown'",
                            (alert.title, int(alert.drill), author, alert.id),
                        ).rowcount
                        if changed:
                            offered.append(alert.id)
                    elif alert.status == "retracted":
                        conn.execute(
                            "UPDATE surveys SET state = 'withdrawn' WHERE alert_id = ? "
                            "AND state IN ('shown', 'offered')",
                            (alert.id,),
                        )
            return offered

        offered_ids = self._use(apply, "The survey store could not be written")
        if not offered_ids:
            return []
        marks = ", ".join("?" for _ in offered_ids)
        records = self._select(
            f"author = ? AND alert_id IN ({marks}) ORDER BY seq", (author, *offered_ids)
        )
        self.changed.emit(tuple(records))
        return records

    def answer(
        self,
        alert_id: str,
        author: str,
        *,
        clarity: int,
        templates: int | None,
        comment: str | None,
    ) -> SurveyRecord:
        """Save `author`'s answer to an offered survey, committed to disk before returning.

        Only after this returns may the dialog say "Thank you". SurveyError (nothing saved) for
        an answer the hub would refuse, a survey not offered to `author`, or one already answered.
        """
        problem = check_answer(clarity, templates, comment or None)
        if problem is not None:
            raise SurveyError(f"{problem} Nothing was saved.")
        survey_id = str(uuid.uuid4())
        answered_at = _utc_now()

        def save(conn: sqlite3.Connection) -> tuple[bool, SurveyState | None]:
            with write_transaction(conn):
                row = conn.execute(
                    "SELECT state FROM surveys WHERE author = ? AND alert_id = ?",
                    (author, alert_id),
                ).fetchone()
                if row is None or row[0] != SurveyState.OFFERED:
                    return False, None if row is None else SurveyState(row[0])
                conn.execute(
                    "UPDATE surveys SET state = 'queued', survey_id = ?, clarity = ?, "
                    "templates = ?, comment = ?, answered_at = ? WHERE author = ? AND alert_id = ?",
                    (survey_id, clarity, templates, comment or None, answered_at, author, alert_id),
                )
                return True, SurveyState.QUEUED

        saved, state = self._use(save, "The answer could NOT be saved on this computer")
        if not saved:
            raise SurveyError(_not_answerable(alert_id, author, state))
        record = self.get(alert_id, author)
        if record is None:
            raise SurveyError(f"The answer to alert {alert_id} was saved but cannot be read back.")
        self.answered.emit(record)
        self.changed.emit((record,))
        return record

    def offered(self, author: str) -> list[SurveyRecord]:
        """`author`'s surveys waiting for an answer, oldest first."""
        return self._select("author = ? AND state = 'offered' ORDER BY seq", (author,))

    def queued(self, author: str, limit: int = MAX_BATCH) -> list[SurveyRecord]:
        """`author`'s answers waiting to be sent, oldest first."""
        return self._select("author = ? AND state = 'queued' ORDER BY seq LIMIT ?", (author, limit))

    def apply_results(self, author: str, results: Iterable[SurveyResult]) -> None:
        """Mark queued answers per the hub's answer: accepted, duplicate or already answered →
        sent; other refusals → rejected with the reason. Others are left as they are."""
        now = _utc_now()
        answered = list(results)

        def apply(conn: sqlite3.Connection) -> None:
            with write_transaction(conn):
                for result in answered:
                    done = result.status in ("accepted", "duplicate") or (
                        result.status == "rejected" and result.error == ALREADY_ANSWERED
                    )
                    if done:
                        conn.execute(
                            "UPDATE surveys SET state = 'sent', synced_at = ?, error = ? "
                            "WHERE survey_id = ? AND author = ? AND state = 'queued'",
                            (now, result.error, result.survey_id, author),
                        )
                    elif result.status == "rejected":
                        conn.execute(
                            "UPDATE surveys SET state = 'rejected', error = ?, detail = ?, "
                            "synced_at = ? WHERE survey_id = ? AND author = ? AND state = 'queued'",
                            (
                                result.error or "rejected",
                                result.detail,
                                now,
                                result.survey_id,
                                author,
                            ),
                        )

        self._use(apply, "The hub's answers could not be saved; the surveys are sent again")
        if answered:
            marks = ", ".join("?" for _ in answered)
            self.changed.emit(
                tuple(self._select(f"survey_id IN ({marks})", tuple(r.survey_id for r in answered)))
            )


def _not_answerable(alert_id: str, author: str, state: SurveyState | None) -> str:
    if state is None:
        return (
            f"There is no survey of alert {alert_id} for {author}: surveys are asked only about "
            "resolved alerts Vigil showed you. Nothing was saved."
        )
    if state in (SurveyState.QUEUED, SurveyState.SENT, SurveyState.REJECTED):
        return f"You already answered the survey of alert {alert_id}. Nothing was saved."
    if state is SurveyState.WITHDRAWN:
        return f"Alert {alert_id} was retracted: it has no survey. Nothing was saved."
    return f"Alert {alert_id} is not resolved yet: its survey comes when it is. Nothing was saved."


@dataclass(frozen=True)
class SurveyFlushReport:
    """What one survey flush did. `error` is why it stopped early (the rest stays queued)."""

    sent: int
    rejected: int
    queued: int
    error: HubError | None = None


def _parse_results(body: Any, batch: list[SurveyRecord]) -> list[SurveyResult]:
    """The hub's per-item answers for this batch; BadResponse when the body is unusable."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise BadResponse("The hub's answer to the surveys has no list of results.")
    in_batch = {record.survey_id for record in batch}
    results: dict[str, SurveyResult] = {}
    for raw in body["results"]:
        if not isinstance(raw, dict):
            continue
        survey_id, status = raw.get("survey_id"), raw.get("status")
        error, detail = raw.get("error"), raw.get("detail")
        if (
            isinstance(survey_id, str)
            and survey_id in in_batch
            and status in ("accepted", "duplicate", "rejected")
            and isinstance(error, str | None)
            and isinstance(detail, str | None)
        ):
            results[survey_id] = SurveyResult(survey_id, status, error, detail)
    return list(results.values())


def flush_surveys(queue: SurveyQueue, hub: HubClient, *, author: str) -> SurveyFlushReport:
    """Send `author`'s queued answers (the hub must hold their session); failures are reported.

    An answer is marked sent only with a per-item answer from the hub for it.
    """
    sent = rejected = 0
    error: HubError | None = None
    # Bounded: enough batches for what is queued now, plus one for answers saved meanwhile.
    for _ in range(len(queue.queued(author, limit=10_000)) // MAX_BATCH + 2):
        batch = queue.queued(author)
        if not batch:
            break
        try:
            body = hub.post_json("/v1/surveys", {"answers": [r.to_json() for r in batch]})
            results = _parse_results(body, batch)
        except HubError as exc:
            error = exc
            break
        queue.apply_results(author, results)
        for result in results:
            if result.status == "rejected" and result.error != ALREADY_ANSWERED:
                rejected += 1
                log.warning("hub rejected survey %s: %s", result.survey_id, result.error)
            else:
                sent += 1
        if len(results) < len(batch):
            error = BadResponse(
                f"The hub answered for {len(results)} of {len(batch)} surveys; the others stay "
                "queued and are sent again."
            )
            break
    return SurveyFlushReport(sent, rejected, len(queue.queued(author)), error)
