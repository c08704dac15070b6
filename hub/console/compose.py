"""The compose page: write, target, preview and publish an alert (or hold it for approval)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from hub.alerts_service import AlertRefused, publish_draft
from hub.broker import AlertBroker
from hub.config import HubSettings
from hub.console.compose_form import (
    LABELS,
    SEARCH_MAX,
    SEVERITIES,
    ComposeForm,
    FieldErrors,
    draft_from,
    idempotency_key_ok,
    place_refusal,
    search_text,
)
from hub.console.compose_preview import content_title, popup_preview
from hub.console.pages import render, see_other
from hub.console.session import ConsoleDispatcher, ConsoleSession
from hub.storage import Store
from hub.storage.content import ContentKind

router = APIRouter()

# Enough matches to pick from while typing; a longer list means the words should be narrower.
SEARCH_RESULTS_MAX = 20


@router.get("/console/compose", response_class=HTMLResponse)
def compose_page(request: Request, session: ConsoleDispatcher) -> HTMLResponse:
    """An empty compose form with a fresh one-time key; Live is chosen, and shown as chosen."""
    form = ComposeForm(mode="live", idempotency_key=_new_key())
    return _compose(request, session, form, FieldErrors())


@router.post("/console/compose", response_model=None)
async def publish(request: Request, session: ConsoleDispatcher) -> Response:
    """Publish the form's alert: 303 to its incident page, or to its approval request when held."""
    form = _form(await request.form())
    errors = FieldErrors()
    draft = draft_from(form, errors)
    if not idempotency_key_ok(form.idempotency_key):
        errors.add("form", "its one-time key is missing or malformed; check it and send it again.")
        form = replace(form, idempotency_key=_new_key())
    if draft is None or errors:
        return await run_in_threadpool(_compose, request, session, form, errors, status_code=422)
    store = _store(request)
    try:
        published = await run_in_threadpool(
            publish_draft,
            store,
            _settings(request),
            draft,
            issued_by=session.user.username,
            idempotency_key=form.idempotency_key,
            caller=session.caller,
        )
    except AlertRefused as exc:
        place_refusal(exc, errors)
        if exc.error == "idempotency_key_reused":
            # That key already sent another alert: this form needs a key of its own.
            form = replace(form, idempotency_key=_new_key())
        return await run_in_threadpool(
            _compose, request, session, form, errors, status_code=exc.status
        )
    if published.alert is not None:
        if published.created:
            _broker(request).notify()
        return see_other(f"/console/incidents/{published.alert['id']}")
    assert published.approval is not None
    return see_other(f"/console/compose/held/{published.approval['id']}")


@router.get("/console/compose/preview", response_model=None)
def preview_address(session: ConsoleDispatcher) -> Response:
    """The preview's address opened again (a reload, a bookmark): the compose page."""
    return see_other("/console/compose")


@router.post("/console/compose/preview", response_model=None)
async def preview_form(request: Request, session: ConsoleDispatcher) -> HTMLResponse:
    """The agent's pop-up for what is typed: a fragment for htmx, else the whole page with it."""
    form = _form(await request.form())
    if request.headers.get("HX-Request") == "true":
        shown = await run_in_threadpool(popup_preview, _store(request), form)
        return render(request, "compose_preview.html", session, nav="compose", preview=shown)
    return await run_in_threadpool(_compose, request, session, form, FieldErrors())


@router.get("/console/compose/audience", response_class=HTMLResponse)
def audience_count(
    request: Request,
    session: ConsoleDispatcher,
    audience_mode: str = "all",
    groups: list[str] = Query(default=[]),  # noqa: B008 - FastAPI's way to read a repeated key
) -> HTMLResponse:
    """The line saying how many agents will receive the alert, counted as the publish targets."""
    form = ComposeForm(audience_mode=audience_mode, groups=tuple(groups))
    return render(
        request,
        "compose_audience.html",
        session,
        nav="compose",
        audience=_audience_summary(_store(request), form),
    )


@router.get("/console/compose/content", response_class=HTMLResponse)
def content_search(
    request: Request,
    session: ConsoleDispatcher,
    kind: Literal["playbook", "template"],
    q: str = "",
    playbook_q: str = "",
    template_q: str = "",
    playbook_id: str = "",
    template_ids: list[str] = Query(default=[]),  # noqa: B008 - a repeated key
) -> HTMLResponse:
    """The existing playbooks or templates matching `q`, with the ones already chosen first."""
    form = ComposeForm(
        playbook_id=playbook_id.strip(),
        template_ids=tuple(dict.fromkeys(item.strip() for item in template_ids if item.strip())),
    )
    store = _store(request)
    return render(
        request,
        "compose_content.html",
        session,
        nav="compose",
        # The page's search fields send their own names; `q` is for everyone else.
        picker=_picker(store, form, kind, q or (playbook_q if kind == "playbook" else template_q)),
    )


@router.get("/console/compose/held/{approval_id}", response_class=HTMLResponse)
def held(request: Request, session: ConsoleDispatcher, approval_id: str) -> HTMLResponse:
    """A publish held for a second dispatcher: what it waits for and where the queue is."""
    approval = _store(request).alerts.approval(approval_id)
    if approval is None:
        return render(
            request,
            "compose_held.html",
            session,
            status_code=404,
            nav="compose",
            approval=None,
        )
    return render(request, "compose_held.html", session, nav="compose", approval=approval.to_wire())


def _compose(
    request: Request,
    session: ConsoleSession,
    form: ComposeForm,
    errors: FieldErrors,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    store = _store(request)
    counts = store.groups.agent_counts()
    groups = [
        {"name": group.name, "kind": group.kind, "agents": counts.get(group.name, 0)}
        for group in store.groups.all()
    ]
    return render(
        request,
        "compose.html",
        session,
        status_code=status_code,
        nav="compose",
        form=form,
        errors=errors.by_field,
        labels=LABELS,
        severities=SEVERITIES,
        groups=groups,
        audience=_audience_summary(store, form),
        playbooks=_picker(store, form, "playbook", form.playbook_q),
        templates=_picker(store, form, "template", form.template_q),
        # A refused form shows its preview too: what was typed is what the agent would read.
        preview=popup_preview(store, form),
        require_approval=store.settings.require_approval(),
        search_max=SEARCH_MAX,
    )


def _audience_summary(store: Store, form: ComposeForm) -> dict[str, Any]:
    everyone = form.audience_mode != "groups"
    count = store.alerts.count_audience(None if everyone else list(form.groups))
    return {
        "count": count,
        "everyone": everyone,
        "none_chosen": not everyone and not form.groups,
        "conflict": form.audience_conflict,
    }


def _picker(store: Store, form: ComposeForm, kind: ContentKind, query: str) -> dict[str, Any]:
    """The chosen items (kept, even while the search shows others) and the search's matches."""
    chosen_ids = (
        ([form.playbook_id] if form.playbook_id else [])
        if kind == "playbook"
        else list(form.template_ids)
    )
    chosen = []
    for item_id in chosen_ids:
        # Only items the hub holds are offered, even back: an unknown id is named in the error.
        title = content_title(store, kind, item_id)
        if title is not None:
            chosen.append({"id": item_id, "title": title})
    text = search_text(query)
    matches = []
    if text:
        for item in store.content.search(kind, text, SEARCH_RESULTS_MAX + 1):
            if item.id not in chosen_ids:
                matches.append({"id": item.id, "title": content_title(store, kind, item.id)})
    return {
        "kind": kind,
        "query": text,
        "chosen": chosen,
        "matches": matches[:SEARCH_RESULTS_MAX],
        "more": len(matches) > SEARCH_RESULTS_MAX,
        "searched": bool(text),
    }


def _form(data: FormData) -> ComposeForm:
    values = {key: value for key, value in data.items() if isinstance(value, str)}
    lists = {
        key: [value for value in data.getlist(key) if isinstance(value, str)]
        for key in ("groups", "template_ids")
    }
    return ComposeForm.from_fields(values, lists)


def _new_key() -> str:
    return str(uuid.uuid4())


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _settings(request: Request) -> HubSettings:
    settings: HubSettings = request.app.state.settings
    return settings


def _broker(request: Request) -> AlertBroker:
    broker: AlertBroker = request.app.state.broker
    return broker
