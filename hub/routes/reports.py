"""GET /v1/reports/kpis: the incident KPIs for dispatchers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from hub.audit_export import InvalidTime, parse_time
from hub.deps import DispatcherUser, SettingsDep, StoreDep
from hub.errors import ApiError, error_responses
from hub.reports import InvalidReport, build_report

router = APIRouter()

TimeQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        description="An RFC 3339 time or a date; UTC when it has no offset.",
    ),
]


@router.get("/v1/reports/kpis", responses=error_responses(401, 403, 422))
def kpis(
    store: StoreDep,
    settings: SettingsDep,
    user: DispatcherUser,
    since: TimeQuery = None,
    until: TimeQuery = None,
    group: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    drill: Literal["live", "drill"] = "live",
) -> dict[str, Any]:
    """Delivery, answers, resolution, updates, surveys and reachability of the period's alerts."""
    try:
        start = None if since is None else parse_time(since, "since")
        end = None if until is None else parse_time(until, "until")
        report = build_report(
            store,
            since=start,
            until=end,
            drill=drill == "drill",
            group=group,
            now=settings.clock.now(),
        )
    except InvalidTime as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    except InvalidReport as exc:
        raise ApiError(422, exc.error, str(exc)) from None
    return report.to_wire()
