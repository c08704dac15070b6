"""The KPI report of incidents: the period's alerts, per group and in total, shaped as the JSON of
GET /v1/reports/kpis and `vigil-hub report`, or as spreadsheet-safe CSV (one row per alert)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from hub.audit_export import safe_cell
from hub.clock import EARLIEST_MS, rfc3339
from hub.storage.reports import (
    NO_AGENTS,
    NO_TARGETS,
    AlertRow,
    Reachability,
    ReportQuery,
    ReportRows,
    TargetFigures,
)

if TYPE_CHECKING:
    from hub.storage import Store

# Without --since the report covers the default alert retention: what the hub still holds.
DEFAULT_PERIOD_SECONDS = 30 * 86_400
DELIVERY_TARGET_SECONDS = 60

# The CSV's columns: one row per alert, the same names as the JSON's alert objects.
ALERT_COLUMNS = (
    "alert_id",
    "title",
    "severity",
    "status",
    "issued_at",
    "closed_at",
    "targeted",
    "delivered",
    "first_delivery_seconds",
    "delivered_within_1m_share",
    "answered",
    "answered_share",
    "acknowledged",
    "acknowledged_share",
    "escalated",
    "unable",
    "ack_median_seconds",
    "ack_p90_seconds",
    "resolve_seconds",
    "updates",
    "update_interval_mean_seconds",
    "update_interval_max_seconds",
    "survey_count",
    "survey_clarity_mean",
    "survey_templates_mean",
)


class InvalidReport(ValueError):
    """A report that cannot be made as asked; `error` is the protocol's code, the text says why."""

    def __init__(self, message: str, error: str = "invalid_request") -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class KpiReport:
    """A whole report: the period asked for and every figure read for it."""

    since: float
    until: float
    drill: bool
    group: str | None
    rows: ReportRows

    def to_wire(self) -> dict[str, Any]:
        """The report's JSON: period, drill, group, alerts, groups and totals."""
        return {
            "period": {"since": rfc3339(self.since), "until": rfc3339(self.until)},
            "drill": self.drill,
            "group": self.group,
            "alerts": [self._alert(alert) for alert in self.rows.alerts],
            "groups": [self._group(name) for name in self.rows.groups],
            "totals": self._totals(),
        }

    def write_csv(self, out: TextIO) -> None:
        """One row per alert, with a header; every cell formula-safe."""
        # CRLF, as RFC 4180: the writer then quotes a cell holding a lone CR too, which a
        # spreadsheet would otherwise take for the end of the row.
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(ALERT_COLUMNS)
        for alert in self.rows.alerts:
            wire = self._alert(alert)
            writer.writerow([safe_cell(_cell(wire[column])) for column in ALERT_COLUMNS])

    def _alert(self, alert: AlertRow) -> dict[str, Any]:
        figures = self.rows.by_alert.get(alert.alert_id, NO_TARGETS)
        resolved = alert.status == "resolved" and alert.closed_at is not None
        return {
            "alert_id": alert.alert_id,
            "title": alert.title,
            "severity": alert.severity,
            "status": alert.status,
            "issued_at": rfc3339(alert.issued_at),
            "closed_at": None if alert.closed_at is None else rfc3339(alert.closed_at),
            **_target_wire(figures),
            "resolve_seconds": (
                _seconds(max(alert.closed_at - alert.issued_at, 0.0))
                if resolved and alert.closed_at is not None
                else None
            ),
            "updates": alert.updates,
            "update_interval_mean_seconds": _seconds(alert.update_interval_mean),
            "update_interval_max_seconds": _seconds(alert.update_interval_max),
        }

    def _group(self, name: str) -> dict[str, Any]:
        figures = self.rows.by_group.get(name, NO_TARGETS)
        return {
            "group": name,
            "alerts": figures.alerts,
            **_target_wire(figures),
            "reachability": _reach_wire(self.rows.reach_by_group.get(name, NO_AGENTS)),
        }

    def _totals(self) -> dict[str, Any]:
        alerts = self.rows.alerts
        resolve_times = sorted(
            max(alert.closed_at - alert.issued_at, 0.0)
            for alert in alerts
            if alert.status == "resolved" and alert.closed_at is not None
        )
        intervals = self.rows.intervals
        return {
            "alerts": len(alerts),
            "open": sum(alert.status == "open" for alert in alerts),
            "resolved": len(resolve_times),
            **_target_wire(self.rows.total),
            "resolve_median_seconds": _seconds(_nearest_rank(resolve_times, 0.5)),
            "resolve_max_seconds": _seconds(resolve_times[-1] if resolve_times else None),
            "updates": intervals.count,
            "update_interval_mean_seconds": _seconds(intervals.mean),
            "update_interval_max_seconds": _seconds(intervals.longest),
            "reachability": _reach_wire(self.rows.reach_total),
            # Retracted alerts were never a crisis to resolve: listed apart, not timed.
            "retracted": [
                {
                    "alert_id": alert.alert_id,
                    "title": alert.title,
                    "issued_at": rfc3339(alert.issued_at),
                    "retracted_at": None if alert.closed_at is None else rfc3339(alert.closed_at),
                }
                for alert in alerts
                if alert.status == "retracted"
            ],
        }


def report_period(
    since: float | None,
    until: float | None,
    now: float,
    names: tuple[str, str] = ("since", "until"),
) -> tuple[float, float]:
    """The period [since, until): until defaults to now, since to 30 days before until.

    `names` are what the caller calls the two bounds, for the error.
    """
    end = now if until is None else until
    # The default start never goes before year 1, the earliest time the report can write back.
    start = max(end - DEFAULT_PERIOD_SECONDS, EARLIEST_MS / 1000) if since is None else since
    if not start < end:
        raise InvalidReport(
            f"{names[0]} ({rfc3339(start)}) must be before {names[1]} ({rfc3339(end)}); "
            "the report covers the alerts issued from the one up to the other."
        )
    return start, end


def build_report(
    store: Store,
    *,
    since: float | None,
    until: float | None,
    drill: bool,
    group: str | None,
    now: float,
    names: tuple[str, str] = ("since", "until"),
) -> KpiReport:
    """The KPIs of the live (or drill) alerts issued in the period, for one group or all.

    InvalidReport when since is not before until, or (`unknown_group`) no group has that name.
    """
    start, end = report_period(since, until, now, names)
    name = None
    if group is not None:
        name = store.reports.group_name(group)
        if name is None:
            raise InvalidReport(f"no group is named {group[:80]!r}.", "unknown_group")
    rows = store.reports.read(ReportQuery(since=start, until=end, drill=drill, group=name, now=now))
    return KpiReport(since=start, until=end, drill=drill, group=name, rows=rows)


def _target_wire(figures: TargetFigures) -> dict[str, Any]:
    targeted = figures.targeted
    return {
        "targeted": targeted,
        "delivered": figures.delivered,
        "first_delivery_seconds": _seconds(figures.first_delivery_seconds),
        "delivered_within_1m_share": _share(figures.delivered_within_minute, targeted),
        "answered": figures.answered,
        "answered_share": _share(figures.answered, targeted),
        "acknowledged": figures.acknowledged,
        "acknowledged_share": _share(figures.acknowledged, targeted),
        "escalated": figures.escalated,
        "unable": figures.unable,
        "ack_median_seconds": _seconds(figures.answer_median_seconds),
        "ack_p90_seconds": _seconds(figures.answer_p90_seconds),
        "survey_count": figures.surveys,
        "survey_clarity_mean": _mean(figures.clarity_mean),
        "survey_templates_mean": _mean(figures.templates_mean),
    }


def _reach_wire(reach: Reachability) -> dict[str, Any]:
    return {
        "agents": reach.agents,
        "mean_share": None if reach.mean_share is None else round(reach.mean_share, 4),
        "lowest_share": None if reach.lowest_share is None else round(reach.lowest_share, 4),
    }


def _nearest_rank(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    # Nearest rank, as the SQL percentiles: the value at rank ceil(fraction * n).
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _seconds(value: float | None) -> float | None:
    # Millisecond resolution, as the stored times.
    return None if value is None else round(float(value), 3)


def _mean(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
