"""The approval queue: live critical alerts held for a second dispatcher, approved or rejected."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from hub import alerts_service
from hub.alerts_service import AlertRefused
from hub.broker import AlertBroker
from hub.config import HubSettings
from hub.console.compose_preview import content_title
from hub.console.live import live_fragments
from hub.console.pages import render, see_other, templates
from hub.console.session import ConsoleDispatcher, ConsoleSession
from hub.storage import Store
from hub.storage.alerts import Approval
from hub.storage.content import ContentKind

router = APIRouter()

# The decided requests shown under the queue: the recent ones a shift needs, not the archive.
DECIDED_SHOWN = 50
PENDING_SHOWN = alerts_service.INCIDENTS_MAX


@router.get("/console/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, session: ConsoleDispatcher) -> HTMLResponse:
    """Pending requests with Approve and Reject, then the recently decided ones."""
    return _page(request, session, {})


@router.get("/console/approvals/live", response_model=None)
def approvals_live(
    request: Request, session: ConsoleDispatcher, seen: str = ""
) -> StreamingResponse:
    """SSE: a status line that says when the queue differs from the page showing `seen`.

    Only a line, never the queue itself: a swap must not wipe a reason being typed.
    """
    store = _store(request)

    def status() -> dict[str, str]:
        return {"approvals-status": _status_html(store, seen)}

    return live_fragments(request, session, status)


@router.post("/console/approvals/{approval_id}/approve", response_model=None)
async def approve(request: Request, session: ConsoleDispatcher, approval_id: str) -> Response:
    """Publish a held alert as the second dispatcher: 303 to its incident page."""
    canonical = _canonical(approval_id)
    if canonical is None:
        return await _refused(request, session, approval_id, "approve", _unknown(), {})
    try:
        published = await run_in_threadpool(
            alerts_service.approve, _store(request), _settings(request), canonical, session.caller
        )
    except AlertRefused as exc:
        return await _refused(request, session, canonical, "approve", exc, {})
    _broker(request).notify()
    assert published.alert is not None
    return see_other(f"/console/incidents/{published.alert['id']}")


@router.post("/console/approvals/{approval_id}/reject", response_model=None)
async def reject(request: Request, session: ConsoleDispatcher, approval_id: str) -> Response:
    """Refuse a held alert with a reason: it is never sent. 303 back to the queue."""
    form = await request.form()
    raw = form.get("reason", "")
    reason = raw if isinstance(raw, str) else ""
    typed = {"reason": reason}
    canonical = _canonical(approval_id)
    if canonical is None:
        return await _refused(request, session, approval_id, "reject", _unknown(), typed)
    try:
        await run_in_threadpool(
            alerts_service.reject, _store(request), canonical, reason, session.caller
        )
    except AlertRefused as exc:
        return await _refused(request, session, canonical, "reject", exc, typed)
    return see_other("/console/approvals")


async def _refused(
    request: Request,
    session: ConsoleSession,
    approval_id: str,
    action: str,
    exc: AlertRefused,
    typed: dict[str, str],
) -> HTMLResponse:
    words = "Reason" if action == "reject" and exc.status == 422 else "This request"
    message = str(exc)
    # The service names the model's field ("reason: ..."); the page names it as its label does.
    if message.startswith("reason: "):
        message = message[len("reason: ") :]
    refusal = {
        "approval_id": approval_id,
        "action": action,
        "field": "reason" if words == "Reason" else "request",
        "message": f"{words}: {message}",
        "typed": typed,
    }
    return await run_in_threadpool(_page, request, session, refusal, exc.status)


def _page(
    request: Request, session: ConsoleSession, refusal: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    store = _store(request)
    pending = [
        _item(store, approval) for approval in store.alerts.approvals("pending", PENDING_SHOWN)
    ]
    decided = [
        _item(store, approval)
        for approval in store.alerts.approvals(None, PENDING_SHOWN + DECIDED_SHOWN)
        if approval.status != "pending"
    ][:DECIDED_SHOWN]
    known = {item["id"] for item in pending}
    waiting, digest = _queue_state(store)
    return render(
        request,
        "approvals.html",
        session,
        status_code=status_code,
        nav="approvals",
        pending=pending,
        decided=decided,
        refusal=refusal,
        # A refusal about a request no longer in the queue is shown at the top of the page.
        refusal_on_top=bool(refusal) and refusal["approval_id"] not in known,
        require_approval=store.settings.require_approval(),
        waiting=waiting,
        digest=digest,
        changed=False,
    )


def _queue_state(store: Store) -> tuple[int, str]:
    """How many wait, and a digest of the queue's state (which requests, in which status)."""
    recent = store.alerts.approvals(None, PENDING_SHOWN + DECIDED_SHOWN)
    waiting = sum(1 for approval in recent if approval.status == "pending")
    state = "\n".join(f"{approval.id}:{approval.status}" for approval in recent)
    return waiting, hashlib.sha256(state.encode()).hexdigest()[:32]


def _status_html(store: Store, seen: str) -> str:
    waiting, digest = _queue_state(store)
    return templates.get_template("approvals_status.html").render(
        waiting=waiting, changed=digest != seen
    )


def _item(store: Store, approval: Approval) -> dict[str, Any]:
    draft = approval.draft
    audience = draft.get("audience")
    return {
        "id": approval.id,
        "status": approval.status,
        "title": str(draft.get("title", "")),
        "body": str(draft.get("body", "")),
        "severity": str(draft.get("severity", "")),
        "drill": bool(draft.get("drill", False)),
        "audience": audience,
        "playbook": _titled(store, "playbook", draft.get("playbook_id")),
        "templates": [_titled(store, "template", item) for item in draft.get("template_ids") or []],
        "expires_at": draft.get("expires_at"),
        "next_update_by": draft.get("next_update_by"),
        "agents_now": store.alerts.count_audience(audience)
        if approval.status == "pending"
        else None,
        "requested_by": approval.requested_by,
        "requested_at": approval.requested_at,
        "decided_by": approval.decided_by,
        "decided_at": approval.decided_at,
        "alert_id": approval.alert_id,
        "reason": approval.reason,
    }


def _titled(store: Store, kind: ContentKind, item_id: object) -> str | None:
    """A linked item as the queue names it: its title and id, or None when there is none."""
    if not isinstance(item_id, str) or not item_id:
        return None
    title = content_title(store, kind, item_id)
    return item_id if title is None else f"{title} ({item_id})"


def _canonical(value: str) -> str | None:
    # Ids are UUIDs stored in canonical form; anything else names no request.
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _unknown() -> AlertRefused:
    return AlertRefused("No such approval request on this hub.", "unknown_approval", 404)


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _settings(request: Request) -> HubSettings:
    settings: HubSettings = request.app.state.settings
    return settings


def _broker(request: Request) -> AlertBroker:
    broker: AlertBroker = request.app.state.broker
    return broker
