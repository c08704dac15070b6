"""Post-incident survey answers: one per agent and alert, sent once like acknowledgements."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from hub.clock import rfc3339

if TYPE_CHECKING:
    from hub.clock import Clock
    from hub.storage.db import Connection, Database

log = logging.getLogger(__name__)

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

SurveyStatus = Literal["accepted", "duplicate", "rejected"]
_ANSWER_SELECT = (
    "CAST(survey_id AS BLOB), CAST(username AS BLOB), clarity, templates, CAST(comment AS BLOB), "
    "answered_at_ms, received_at_ms"
)


@dataclass(frozen=True)
class NewSurvey:
    """A well-formed survey answer as a client sent it (ids already normalised)."""

    survey_id: str
    alert_id: str
    clarity: int
    templates: int | None
    comment: str | None
    answered_at_ms: int


@dataclass(frozen=True)
class SurveyResult:
    """The outcome for one survey answer of a batch; survey_id is None for an item without one."""

    survey_id: str | None
    status: SurveyStatus
    error: str | None = None
    detail: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The result object of POST /v1/surveys; error and detail only when set."""
        wire: dict[str, Any] = {"survey_id": self.survey_id, "status": self.status}
        if self.error is not None:
            wire["error"] = self.error
        if self.detail is not None:
            wire["detail"] = self.detail
        return wire


@dataclass(frozen=True)
class SurveyAnswer:
    """A survey answer as the hub keeps it."""

    survey_id: str
    username: str
    clarity: int
    templates: int | None
    comment: str | None
    answered_at_ms: int
    received_at_ms: int

    def to_wire(self) -> dict[str, Any]:
        """The answer object of GET /v1/alerts/{id}/surveys."""
        return {
            "survey_id": self.survey_id,
            "username": self.username,
            "clarity": self.clarity,
            "templates": self.templates,
            "comment": self.comment,
            "answered_at": rfc3339(self.answered_at_ms / 1000),
            "received_at": rfc3339(self.received_at_ms / 1000),
        }


def averages(answers: Sequence[SurveyAnswer]) -> dict[str, Any]:
    """Mean clarity over every answer and mean templates over those that used them (or None)."""
    used = [a.templates for a in answers if a.templates is not None]
    return {
        "answers": len(answers),
        "clarity": round(sum(a.clarity for a in answers) / len(answers), 2) if answers else None,
        "templates": round(sum(used) / len(used), 2) if used else None,
        "templates_used": len(used),
    }


class SurveyStore:
    """Owns the survey_answers table."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def record(
        self, username: str, answers: Sequence[NewSurvey], *, clock_skew_ms: int = 0
    ) -> list[SurveyResult]:
        """Store a batch in one transaction; each answer is accepted, duplicate or rejected alone.

        Only a resolved alert that targeted `username` takes an answer, one per (alert, user);
        answered_at must lie between the alert's issue and now, give or take `clock_skew_ms`.
        """
        received_at_ms = round(self._clock.now() * 1000)
        # BEGIN IMMEDIATE serialises concurrent batches: of parallel copies one inserts, the rest
        # find its row.
        with self._db.write() as conn:
            return [
                _record_one(conn, username, answer, received_at_ms, clock_skew_ms)
                for answer in answers
            ]

    def for_alert(self, alert_id: str) -> list[SurveyAnswer]:
        """Every answer to one alert, oldest received first."""
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_ANSWER_SELECT} FROM survey_answers WHERE alert_id = ? "
                "ORDER BY received_at_ms, survey_id",
                (alert_id,),
            ).fetchall()
        served = (_servable(alert_id, row) for row in rows)
        return [answer for answer in served if answer is not None]


def _record_one(
    conn: Connection,
    username: str,
    answer: NewSurvey,
    received_at_ms: int,
    clock_skew_ms: int,
) -> SurveyResult:
    def rejected(error: str, detail: str) -> SurveyResult:
        return SurveyResult(answer.survey_id, "rejected", error, detail)

    stored = conn.execute(
        "SELECT alert_id, username, clarity, templates, comment, answered_at_ms "
        "FROM survey_answers WHERE survey_id = ?",
        (answer.survey_id,),
    ).fetchone()
    if stored is not None:
        same = (
            stored[0] == answer.alert_id
            and str(stored[1]).casefold() == username.casefold()
            and tuple(stored[2:])
            == (
                answer.clarity,
                answer.templates,
                answer.comment,
                answer.answered_at_ms,
            )
        )
        if same:
            return SurveyResult(answer.survey_id, "duplicate")
        return rejected(
            "survey_id_conflict",
            "This survey_id was already stored with a different answer; make a new survey_id "
            "for a new answer.",
        )
    alert = conn.execute(
        "SELECT issued_at, status FROM alerts WHERE id = ?", (answer.alert_id,)
    ).fetchone()
    if alert is None:
        return rejected(
            "unknown_alert",
            f"No alert {answer.alert_id} is kept on the hub; it may be past retention.",
        )
    if alert[1] != "resolved":
        return rejected(
            "not_resolved",
            f"Alert {answer.alert_id} is {alert[1]}: only a resolved alert takes a survey.",
        )
    targeted = conn.execute(
        "SELECT 1 FROM alert_targets WHERE alert_id = ? AND username = ?",
        (answer.alert_id, username),
    ).fetchone()
    if targeted is None:
        return rejected(
            "not_targeted",
            f"Alert {answer.alert_id} was not published for {username}: only its agents answer "
            "its survey.",
        )
    issued_at_ms = round(float(alert[0]) * 1000)
    if not (
        issued_at_ms - clock_skew_ms <= answer.answered_at_ms <= received_at_ms + clock_skew_ms
    ):
        return rejected(
            "invalid_survey",
            "answered_at: must be after the alert was issued and not after the hub received "
            f"the answer, give or take {clock_skew_ms // 3_600_000} hours of clock difference; "
            "check the device's clock.",
        )
    inserted = conn.execute(
        """
        INSERT INTO survey_answers
            (survey_id, alert_id, username, clarity, templates, comment, answered_at_ms,
             received_at_ms)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT DO NOTHING
        """,
        (
            answer.survey_id,
            answer.alert_id,
            username,
            answer.clarity,
            answer.templates,
            answer.comment,
            answer.answered_at_ms,
            received_at_ms,
        ),
    ).rowcount
    if inserted == 1:
        return SurveyResult(answer.survey_id, "accepted")
    return rejected(
        "already_answered",
        f"{username} already answered the survey of alert {answer.alert_id}; one answer is kept.",
    )


def _servable(alert_id: str, row: Any) -> SurveyAnswer | None:
    """The answer of a row, or None (logged) for a row no hub should have stored."""
    try:
        return SurveyAnswer(
            survey_id=_text(row[0]),
            username=_text(row[1]),
            clarity=int(row[2]),
            templates=None if row[3] is None else int(row[3]),
            comment=None if row[4] is None else _text(row[4]),
            answered_at_ms=int(row[5]),
            received_at_ms=int(row[6]),
        )
    except (TypeError, ValueError, OverflowError) as exc:
        log.error("A survey answer of alert %s cannot be served and is skipped: %s", alert_id, exc)
        return None


def _text(value: object) -> str:
    # Bytes from SQLite (text read as such, see hub/storage/db.py), text from PostgreSQL.
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes):
        raise TypeError("not text")
    return value.decode("utf-8")
