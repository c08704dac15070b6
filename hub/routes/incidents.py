"""Incidents for dispatchers: update, resolve, retract, approve, and read alerts with figures."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from hub import alerts_service
from hub.alerts_service import AlertRefused, AlertUpdateDraft, Caller, ClosingNote, Rejection
from hub.broker import AlertBroker
from hub.deps import DispatcherUser, SettingsDep, StoreDep, User, request_source
from hub.errors import ApiError, error_responses

router = APIRouter()

_CHANGE_ANSWERS = error_responses(401, 403, 404, 409, 413, 422)
INCIDENT_PAGE_DEFAULT = 200


@router.post("/v1/alerts/{alert_id}/updates", status_code=201, responses=_CHANGE_ANSWERS)
def post_update(
    alert_id: str,
    update: AlertUpdateDraft,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    user: DispatcherUser,
) -> JSONResponse:
    """Add an update to an open alert; 201 with the whole alert (new seq, `updates`)."""
    with _answers():
        alert = alerts_service.update_alert(
            store, settings, _alert_id(alert_id), update, _caller(user, request)
        )
    _broker(request).notify()
    return JSONResponse(alert, status_code=201)


@router.post("/v1/alerts/{alert_id}/resolve", responses=_CHANGE_ANSWERS)
def resolve(
    alert_id: str, body: ClosingNote, request: Request, store: StoreDep, user: DispatcherUser
) -> dict[str, Any]:
    """Close an open alert as resolved, with a note; the whole alert."""
    with _answers():
        alert = alerts_service.close_alert(
            store, _alert_id(alert_id), "resolved", body.note, _caller(user, request)
        )
    _broker(request).notify()
    return alert


@router.post("/v1/alerts/{alert_id}/retract", responses=_CHANGE_ANSWERS)
def retract(
    alert_id: str, body: ClosingNote, request: Request, store: StoreDep, user: DispatcherUser
) -> dict[str, Any]:
    """Close an open alert as retracted (sent in error), with a note; the whole alert."""
    with _answers():
        alert = alerts_service.close_alert(
            store, _alert_id(alert_id), "retracted", body.note, _caller(user, request)
        )
    _broker(request).notify()
    return alert


@router.get("/v1/incidents", responses=error_responses(401, 403, 422))
def list_incidents(
    store: StoreDep,
    settings: SettingsDep,
    user: DispatcherUser,
    status: Literal["open", "closed", "all"] = "all",
    drill: Literal["live", "drill", "all"] = "all",
    limit: Annotated[int, Query(ge=1, le=alerts_service.INCIDENTS_MAX)] = INCIDENT_PAGE_DEFAULT,
) -> dict[str, Any]:
    """Kept alerts newest first, with targets, answers and whether an update is overdue."""
    drill_filter = None if drill == "all" else drill == "drill"
    return {"incidents": alerts_service.incidents(store, settings, status, drill_filter, limit)}


@router.get("/v1/alerts/{alert_id}", responses=error_responses(401, 403, 404))
def show_alert(
    alert_id: str, store: StoreDep, settings: SettingsDep, user: DispatcherUser
) -> dict[str, Any]:
    """One alert: `{alert, targeted, update_overdue, approval_override}`."""
    with _answers():
        return alerts_service.incident(store, settings, _alert_id(alert_id))


@router.get("/v1/approvals", responses=error_responses(401, 403, 422))
def list_approvals(
    store: StoreDep,
    user: DispatcherUser,
    status: Literal["pending", "approved", "rejected", "all"] = "pending",
) -> dict[str, Any]:
    """Approval requests, newest first."""
    return {"approvals": alerts_service.approvals(store, None if status == "all" else status)}


@router.post("/v1/approvals/{approval_id}/approve", status_code=201, responses=_CHANGE_ANSWERS)
def approve(
    approval_id: str,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    user: DispatcherUser,
) -> JSONResponse:
    """Publish a held alert as a second dispatcher; 201 with the alert and `targeted`."""
    with _answers():
        published = alerts_service.approve(
            store, settings, _approval_id(approval_id), _caller(user, request)
        )
    _broker(request).notify()
    return JSONResponse(published.to_wire(), status_code=201)


@router.post("/v1/approvals/{approval_id}/reject", responses=_CHANGE_ANSWERS)
def reject(
    approval_id: str, body: Rejection, request: Request, store: StoreDep, user: DispatcherUser
) -> dict[str, Any]:
    """Refuse a held alert, with a reason: it is never sent. The approval object."""
    with _answers():
        return alerts_service.reject(
            store, _approval_id(approval_id), body.reason, _caller(user, request)
        )


@contextmanager
def _answers() -> Iterator[None]:
    """Turns a refused change into the protocol's error answer."""
    try:
        yield
    except AlertRefused as exc:
        detail = f"Invalid request: {exc}" if exc.status == 422 else str(exc)
        raise ApiError(exc.status, exc.error, detail) from None


def _caller(user: User, request: Request) -> Caller:
    return Caller.user(user.username, request_source(request))


def _broker(request: Request) -> AlertBroker:
    broker: AlertBroker = request.app.state.broker
    return broker


def _alert_id(value: str) -> str:
    # Ids are UUIDs stored in canonical form; anything else names no alert.
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(
            404, "unknown_alert", "No such alert is kept on the hub; it may be past retention."
        ) from None


def _approval_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(404, "unknown_approval", "No such approval request on this hub.") from None
