"""The console's reports page: the KPIs per alert, group and period as tables and charts, the same
report as CSV, and each resolved alert's survey answers."""

from __future__ import annotations

import io
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from hub.clock import rfc3339
from hub.console.pages import render
from hub.console.report_figures import (
    ALERT_COLUMNS,
    GROUP_COLUMNS,
    REACH_COLUMNS,
    TOTAL_COLUMNS,
    ReportFilters,
    ReportOutcome,
    chart_data,
    figure_text,
    read_report,
    summarise_surveys,
    time_text,
    with_silent,
)
from hub.console.session import ConsoleDispatcher, ConsoleRefusal, ConsoleSession
from hub.deps import SettingsDep, StoreDep
from hub.routes.surveys import DRILL_LABEL
from hub.storage import Store
from hub.storage.surveys import averages

router = APIRouter()

FilterText = Annotated[str, Query()]


@router.get("/console/reports", response_class=HTMLResponse)
def reports_page(
    request: Request,
    session: ConsoleDispatcher,
    store: StoreDep,
    settings: SettingsDep,
    since: FilterText = "",
    until: FilterText = "",
    group: FilterText = "",
    drill: FilterText = "live",
) -> HTMLResponse:
    """The report of the filters as tables, then charts; a bad filter is named beside its field."""
    filters = ReportFilters(since=since, until=until, group=group, drill=drill)
    outcome = read_report(store, filters, settings.clock.now())
    return _page(request, session, store, outcome)


@router.get("/console/reports.csv", response_model=None)
def reports_csv(
    request: Request,
    session: ConsoleDispatcher,
    store: StoreDep,
    settings: SettingsDep,
    since: FilterText = "",
    until: FilterText = "",
    group: FilterText = "",
    drill: FilterText = "live",
) -> Response:
    """The report of the filters as `vigil-hub report --format csv` writes it, as a download."""
    filters = ReportFilters(since=since, until=until, group=group, drill=drill)
    outcome = read_report(store, filters, settings.clock.now())
    report = outcome.report
    if report is None:
        return _page(request, session, store, outcome)
    out = io.StringIO()
    report.write_csv(out)
    kind = "drill" if report.drill else "live"
    period = f"{rfc3339(report.since)[:10]}-to-{rfc3339(report.until)[:10]}"
    return Response(
        out.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="vigil-kpis-{kind}-{period}.csv"'},
    )


@router.get("/console/reports/surveys/{alert_id}", response_class=HTMLResponse)
def survey_page(
    request: Request, alert_id: str, session: ConsoleDispatcher, store: StoreDep
) -> HTMLResponse:
    """One alert's survey answers: how many gave each rating, and the comments as plain text."""
    try:
        canonical: str | None = str(uuid.UUID(alert_id))
    except ValueError:
        canonical = None
    alert = store.alerts.get(canonical) if canonical is not None else None
    if canonical is None or alert is None:
        raise ConsoleRefusal(
            404, "No such alert", "No such alert is kept on the hub; it may be past retention."
        )
    answers = store.surveys.for_alert(canonical)
    return render(
        request,
        "reports_survey.html",
        session,
        nav="reports",
        alert=alert,
        drill_label=DRILL_LABEL,
        targeted=store.alerts.count_targets(canonical),
        summary=summarise_surveys(answers),
        means=averages(answers),
    )


def _page(
    request: Request, session: ConsoleSession, store: Store, outcome: ReportOutcome
) -> HTMLResponse:
    report = outcome.report
    wire = None if report is None else report.to_wire()
    return render(
        request,
        "reports.html",
        session,
        status_code=200 if report is not None else 422,
        nav="reports",
        filters=outcome.filters,
        errors=outcome.errors,
        group_names=[group.name for group in store.groups.all()],
        wire=wire,
        alerts=[] if wire is None else [with_silent(alert) for alert in wire["alerts"]],
        groups=[] if wire is None else [with_silent(group) for group in wire["groups"]],
        totals=None if wire is None else with_silent(wire["totals"]),
        charts=None if wire is None else chart_data(wire),
        alert_columns=ALERT_COLUMNS,
        group_columns=GROUP_COLUMNS,
        total_columns=TOTAL_COLUMNS,
        reach_columns=REACH_COLUMNS,
        figure=figure_text,
        moment=time_text,
    )
