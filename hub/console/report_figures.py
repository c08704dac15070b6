"""The reports page's figures: its filters checked field by field, the KPI report they ask for,
the text of each figure, the charts' series and the survey answers' summary.

Every figure comes from hub.reports' wire form, so the page shows what GET /v1/reports/kpis and
`vigil-hub report` give for the same filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from hub.audit_export import InvalidTime, parse_time
from hub.reports import InvalidReport, KpiReport, build_report

if TYPE_CHECKING:
    from hub.storage import Store
    from hub.storage.surveys import SurveyAnswer

# The same bounds as GET /v1/reports/kpis' query parameters.
TIME_MAX = 64
GROUP_MAX = 200
DRILL_CHOICES = ("live", "drill")
RATINGS = (1, 2, 3, 4, 5)

FigureKind = Literal["count", "seconds", "share", "mean"]


@dataclass(frozen=True)
class Column:
    """One figure of a table: its key in the report's JSON, its heading and how it reads."""

    key: str
    heading: str
    kind: FigureKind


# Shared by the per-alert and per-group tables, in the order of docs/protocol.md's table.
_TARGET_COLUMNS = (
    Column("targeted", "Targeted", "count"),
    Column("delivered", "Delivered", "count"),
    Column("delivered_within_1m_share", "Delivered within 1 min", "share"),
    Column("answered", "Answered", "count"),
    Column("silent", "No answer", "count"),
    Column("acknowledged", "Acknowledged", "count"),
    Column("acknowledged_share", "Acknowledged share", "share"),
    Column("escalated", "Escalated", "count"),
    Column("unable", "Unable", "count"),
    Column("ack_median_seconds", "Answer median", "seconds"),
    Column("ack_p90_seconds", "Answer 90th percentile", "seconds"),
    Column("survey_count", "Surveys", "count"),
)

ALERT_COLUMNS = (
    Column("first_delivery_seconds", "First delivery", "seconds"),
    *_TARGET_COLUMNS,
    Column("resolve_seconds", "Resolved after", "seconds"),
    Column("updates", "Updates", "count"),
    Column("update_interval_mean_seconds", "Update interval mean", "seconds"),
    Column("update_interval_max_seconds", "Update interval longest", "seconds"),
)

GROUP_COLUMNS = (
    Column("alerts", "Alerts", "count"),
    Column("first_delivery_seconds", "First delivery (median over alerts)", "seconds"),
    *_TARGET_COLUMNS,
)

TOTAL_COLUMNS = (
    Column("alerts", "Alerts", "count"),
    Column("open", "Open", "count"),
    Column("resolved", "Resolved", "count"),
    Column("first_delivery_seconds", "First delivery (median over alerts)", "seconds"),
    *_TARGET_COLUMNS,
    Column("resolve_median_seconds", "Resolution median", "seconds"),
    Column("resolve_max_seconds", "Resolution longest", "seconds"),
    Column("updates", "Updates", "count"),
    Column("update_interval_mean_seconds", "Update interval mean", "seconds"),
    Column("update_interval_max_seconds", "Update interval longest", "seconds"),
    Column("survey_clarity_mean", "Survey: clarity mean (1-5)", "mean"),
    Column("survey_templates_mean", "Survey: templates mean (1-5)", "mean"),
)

REACH_COLUMNS = (
    Column("agents", "Agents", "count"),
    Column("mean_share", "Reachable, mean share", "share"),
    Column("lowest_share", "Reachable, lowest share", "share"),
)


def figure_text(value: object, kind: FigureKind) -> str:
    """A figure as the page shows it, losing nothing of the JSON's precision; "—" for none."""
    if value is None:
        return "—"
    if kind == "count":
        return str(value)
    number = float(value)  # type: ignore[arg-type]
    if kind == "share":
        # Shares have 4 decimals: a percentage with 2 keeps them all.
        return f"{number * 100:.2f} %"
    digits = f"{number:.3f}".rstrip("0").rstrip(".")
    return f"{digits} s" if kind == "seconds" else digits


def time_text(rfc3339: str | None) -> str:
    """An RFC 3339 time of the report as people read it: `2026-12-03 14:05:09 UTC`."""
    if rfc3339 is None:
        return "—"
    return f"{rfc3339[:10]} {rfc3339[11:19]} UTC"


@dataclass(frozen=True)
class ReportFilters:
    """The filters as typed (so the form and the CSV button keep them); empty means default."""

    since: str = ""
    until: str = ""
    group: str = ""
    drill: str = "live"

    def query(self) -> str:
        """The filters as a query string, for links that ask for the same report."""
        return urlencode(
            {"since": self.since, "until": self.until, "group": self.group, "drill": self.drill}
        )


@dataclass(frozen=True)
class ReportOutcome:
    """The report the filters ask for, or the problem with each field that stops it."""

    filters: ReportFilters
    report: KpiReport | None
    errors: dict[str, str] = field(default_factory=dict)


def read_report(store: Store, filters: ReportFilters, now: float) -> ReportOutcome:
    """The KPI report of the filters, as the API builds it; or errors keyed by field name."""
    errors: dict[str, str] = {}
    bounds: dict[str, float | None] = {}
    for name, text in (("since", filters.since), ("until", filters.until)):
        value = text.strip()
        if len(value) > TIME_MAX:
            errors[name] = f"{name}: at most {TIME_MAX} characters; write it like 2026-12-03."
            continue
        try:
            bounds[name] = parse_time(value, name) if value else None
        except InvalidTime as exc:
            errors[name] = str(exc)
    group = filters.group.strip()
    if len(group) > GROUP_MAX:
        errors["group"] = f"group: at most {GROUP_MAX} characters."
    if filters.drill not in DRILL_CHOICES:
        errors["drill"] = "drill: choose live alerts or drills; the two are never mixed."
    if errors:
        return ReportOutcome(filters, None, errors)
    try:
        report = build_report(
            store,
            since=bounds["since"],
            until=bounds["until"],
            drill=filters.drill == "drill",
            group=group or None,
            now=now,
        )
    except InvalidReport as exc:
        if exc.error == "unknown_group":
            name = "group"
        else:
            # The period is wrong as a whole: shown by the bound the person set last.
            name = "until" if filters.until.strip() else "since"
        # The period's message already names both bounds: "since (...) must be before until".
        message = str(exc) if name != "group" else f"group: {exc}"
        return ReportOutcome(filters, None, {name: message})
    return ReportOutcome(filters, report)


def with_silent(figures: dict[str, Any]) -> dict[str, Any]:
    """A row of the report's JSON with `silent`: its targets that never answered."""
    return {**figures, "silent": figures["targeted"] - figures["answered"]}


def chart_data(wire: dict[str, Any]) -> dict[str, Any]:
    """The charts' series from the report's JSON (the same figures as the tables); a chart with
    nothing to draw (no alert, no group with targets) is left out."""
    alerts = wire["alerts"]
    groups = [with_silent(group) for group in wire["groups"]]
    charts: dict[str, Any] = {}
    if alerts:
        charts["timing"] = {
            "labels": [alert["title"] for alert in alerts],
            "unit": "seconds",
            "datasets": [
                _series("First delivery", alerts, "first_delivery_seconds"),
                _series("Answer median", alerts, "ack_median_seconds"),
                _series("Answer 90th percentile", alerts, "ack_p90_seconds"),
            ],
        }
    if any(group["targeted"] for group in groups):
        charts["answers"] = {
            "labels": [group["group"] for group in groups],
            "unit": "agents",
            "stacked": True,
            "datasets": [
                _series("Acknowledged", groups, "acknowledged"),
                _series("Escalated", groups, "escalated"),
                _series("Unable", groups, "unable"),
                _series("No answer", groups, "silent"),
            ],
        }
    return charts


def _series(label: str, rows: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    return {"label": label, "data": [row[key] for row in rows]}


@dataclass(frozen=True)
class SurveySummary:
    """How a resolved alert's agents answered its survey: counts per rating, and the comments."""

    answers: int
    clarity: dict[int, int]
    templates: dict[int, int]
    templates_unrated: int
    comments: list[SurveyAnswer]


def summarise_surveys(answers: Sequence[SurveyAnswer]) -> SurveySummary:
    """Counts of each clarity and templates rating (1-5) and the answers that left a comment."""
    clarity = dict.fromkeys(RATINGS, 0)
    templates = dict.fromkeys(RATINGS, 0)
    unrated = 0
    for answer in answers:
        clarity[answer.clarity] = clarity.get(answer.clarity, 0) + 1
        if answer.templates is None:
            unrated += 1
        else:
            templates[answer.templates] = templates.get(answer.templates, 0) + 1
    return SurveySummary(
        answers=len(answers),
        clarity=clarity,
        templates=templates,
        templates_unrated=unrated,
        comments=[answer for answer in answers if answer.comment and answer.comment.strip()],
    )
