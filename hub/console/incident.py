"""The incident page: header, the full per-agent table and the timeline (live), and the forms
that post an update, resolve or retract. Changes go through hub.alerts_service, as /v1 does."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import ValidationError

from hub import alerts_service
from hub.alerts_service import AlertRefused, AlertUpdateDraft
from hub.broker import AlertBroker
from hub.config import HubSettings
from hub.console import incident_view
from hub.console.live import live_fragments
from hub.console.pages import render, see_other, templates
from hub.console.session import ConsoleDispatcher, ConsoleRefusal, ConsoleSession
from hub.deps import SettingsDep, StoreDep
from hub.storage import Store

router = APIRouter()

Done = Literal["updated", "resolved", "retracted"]
_DONE_NOTICES: dict[str, str] = {
    "updated": "The update was posted; agents get it now.",
    "resolved": "The incident is resolved; agents are asked for the survey.",
    "retracted": "The alert is retracted; agents are told it was sent in error.",
}
# A browser's datetime-local value has no zone: the console shows and takes times in UTC.
_TIME_HINT = "a date and time such as 2026-12-03T14:30 (UTC)"


@dataclass
class FormState:
    """What a dispatcher typed into the page's forms, and what was wrong with it."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@router.get("/console/incidents/{alert_id}", response_class=HTMLResponse)
def incident_page(
    alert_id: str,
    request: Request,
    session: ConsoleDispatcher,
    store: StoreDep,
    settings: SettingsDep,
    done: str | None = None,
) -> HTMLResponse:
    """One incident: header, every agent, the timeline, and the forms while it is open."""
    notice = _DONE_NOTICES.get(done or "")
    return _page(request, session, store, settings, alert_id, FormState(), notice=notice)


@router.get("/console/incidents/{alert_id}/live")
def incident_live(
    alert_id: str,
    request: Request,
    session: ConsoleDispatcher,
    store: StoreDep,
    settings: SettingsDep,
) -> Response:
    """The incident page's live parts as server-sent events; a 404 page for an unknown id."""
    canonical = _canonical(alert_id)
    if canonical is None or store.alerts.get(canonical) is None:
        raise _missing()
    stream: StreamingResponse = live_fragments(
        request, session, lambda: _live_parts(store, settings, canonical)
    )
    return stream


@router.post("/console/incidents/{alert_id}/update", response_class=HTMLResponse)
def post_update(
    alert_id: str,
    request: Request,
    session: ConsoleDispatcher,
    store: StoreDep,
    settings: SettingsDep,
    text: Annotated[str, Form()] = "",
    next_update_by: Annotated[str, Form()] = "",
    links: Annotated[str, Form()] = "",
) -> Response:
    """Post an update; back to the page (303), or the page again with what was wrong."""
    text = _lines(text)
    form = FormState({"text": text, "next_update_by": next_update_by, "links": links})
    fields: dict[str, Any] = {"text": text}
    given_links = [line.strip() for line in links.splitlines() if line.strip()]
    if given_links:
        fields["links"] = given_links
    if next_update_by.strip():
        try:
            fields["next_update_by"] = _utc_time(next_update_by)
        except ValueError:
            form.errors["next_update_by"] = f"Next update by: give {_TIME_HINT}, or leave it empty."
    draft = None
    try:
        draft = AlertUpdateDraft.model_validate(fields)
    except ValidationError as exc:
        for error in exc.errors():
            form.errors.setdefault(str(error["loc"][0]), _field_message(error))
    if form.errors or draft is None:
        return _page(request, session, store, settings, alert_id, form, status_code=422)
    return _change(
        request,
        session,
        store,
        settings,
        alert_id,
        form,
        lambda canonical: alerts_service.update_alert(
            store, settings, canonical, draft, session.caller
        ),
        done="updated",
        field_of_error=("next_update_by", "links", "text"),
    )


@router.post("/console/incidents/{alert_id}/resolve", response_class=HTMLResponse)
def post_resolve(
    alert_id: str,
    request: Request,
    session: ConsoleDispatcher,
    store: StoreDep,
    settings: SettingsDep,
    note: Annotated[str, Form()] = "",
) -> Response:
    """Resolve with a note; agents are then asked for the survey."""
    note = _lines(note)
    form = FormState({"resolve_note": note})
    return _change(
        request,
        session,
        store,
        settings,
        alert_id,
        form,
        lambda canonical: alerts_service.close_alert(
            store, canonical, "resolved", note, session.caller
        ),
        done="resolved",
        field_of_error=("resolve_note",),
    )


@router.post("/console/incidents/{alert_id}/retract", response_class=HTMLResponse)
def post_retract(
    alert_id: str,
    request: Request,
    session: ConsoleDispatcher,
    store: StoreDep,
    settings: SettingsDep,
    note: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Retract with a reason, once the dispatcher ticked the confirmation."""
    note = _lines(note)
    form = FormState({"retract_note": note, "confirm": confirm})
    if confirm != "yes":
        form.errors["confirm"] = (
            "Tick the box to confirm: every agent is told this alert was sent in error."
        )
        return _page(request, session, store, settings, alert_id, form, status_code=422)
    return _change(
        request,
        session,
        store,
        settings,
        alert_id,
        form,
        lambda canonical: alerts_service.close_alert(
            store, canonical, "retracted", note, session.caller
        ),
        done="retracted",
        field_of_error=("retract_note",),
    )


def _change(
    request: Request,
    session: ConsoleSession,
    store: Store,
    settings: HubSettings,
    alert_id: str,
    form: FormState,
    change: Callable[[str], object],
    *,
    done: Done,
    field_of_error: tuple[str, ...],
) -> Response:
    canonical = _canonical(alert_id)
    if canonical is None:
        raise _missing()
    try:
        change(canonical)
    except AlertRefused as exc:
        if exc.status == 404:
            raise _missing() from None
        form.errors[_refused_field(exc, field_of_error)] = str(exc)
        return _page(request, session, store, settings, alert_id, form, status_code=exc.status)
    broker: AlertBroker = request.app.state.broker
    broker.notify()
    return see_other(f"/console/incidents/{canonical}?done={done}")


def _page(
    request: Request,
    session: ConsoleSession,
    store: Store,
    settings: HubSettings,
    alert_id: str,
    form: FormState,
    *,
    notice: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    canonical = _canonical(alert_id)
    page = None if canonical is None else incident_view.incident_page(store, settings, canonical)
    if page is None:
        raise _missing()
    return render(
        request,
        "incident.html",
        session,
        status_code=status_code,
        nav="board",
        item=page.view,
        timeline=page.timeline,
        form=form,
        notice_text=notice,
    )


def _live_parts(store: Store, settings: HubSettings, alert_id: str) -> dict[str, str]:
    page = incident_view.incident_page(store, settings, alert_id)
    context = {
        "item": None if page is None else page.view,
        "timeline": [] if page is None else page.timeline,
        "now": settings.clock.now(),
    }
    return {
        name: templates.get_template(template).render(**context)
        for name, template in (
            ("incident-status", "incident_status.html"),
            ("incident-summary", "incident_summary.html"),
            ("incident-agents", "incident_agents.html"),
            ("incident-timeline", "incident_timeline.html"),
        )
    }


def _missing() -> ConsoleRefusal:
    return ConsoleRefusal(
        404,
        "No such incident",
        "The hub keeps no alert with that id: it may be mistyped, or past retention.",
    )


def _canonical(alert_id: str) -> str | None:
    # Ids are UUIDs stored in canonical form; anything else names no alert.
    try:
        return str(uuid.UUID(alert_id))
    except ValueError:
        return None


def _lines(value: str) -> str:
    # Browsers send a textarea's line breaks as CRLF (HTML's form encoding); the hub's text
    # rules allow newlines but no carriage return.
    return value.replace("\r\n", "\n")


def _utc_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _field_message(error: Any) -> str:
    where = {"text": "Update text", "links": "Links", "next_update_by": "Next update by"}
    location = error["loc"]
    name = where.get(str(location[0]), str(location[0]))
    if str(location[0]) == "links" and len(location) > 1 and isinstance(location[1], int):
        name = f"Links, line {location[1] + 1}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{name}: {message}."


def _refused_field(exc: AlertRefused, fields: tuple[str, ...]) -> str:
    # The service names the field a refusal is about at the start of its message.
    message = str(exc)
    for name in fields:
        if message.startswith(name.removeprefix("resolve_").removeprefix("retract_")):
            return name
    return "form"
