"""Alerts: publish, catch up, the live SSE stream, and who acknowledged an alert."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from hub.alerts_service import AlertDraft, InvalidAlert, publish_alert
from hub.broker import AlertBroker, StreamEnd, StreamSession
from hub.config import HubSettings
from hub.deps import (
    CURSOR_MAX,
    AccessGrantDep,
    AgentUser,
    DispatcherUser,
    SettingsDep,
    SinceQuery,
    StoreDep,
)
from hub.errors import ApiError, error_responses
from hub.storage import Store
from hub.storage.alerts import Alert
from hub.tokens import token_hash

router = APIRouter()

ALERT_PAGE_DEFAULT = 500
ALERT_PAGE_MAX = 1000
_REPLAY_PAGE = 500


def _broker(request: Request) -> AlertBroker:
    broker: AlertBroker = request.app.state.broker
    return broker


BrokerDep = Annotated[AlertBroker, Depends(_broker)]


@router.post(
    "/v1/alerts",
    status_code=201,
    responses={
        201: {
            "description": "The published alert, with its id and seq.",
            "links": {
                "AcksOfThisAlert": {
                    "operationId": "alert_acks",
                    "parameters": {"alert_id": "$response.body#/id"},
                }
            },
        },
        **error_responses(401, 403, 413, 422),
    },
)
def post_alert(
    draft: AlertDraft,
    store: StoreDep,
    settings: SettingsDep,
    broker: BrokerDep,
    user: DispatcherUser,
) -> JSONResponse:
    """Publish an alert to every agent; 201 with the alert, its id and seq."""
    try:
        alert = publish_alert(
            store,
            settings,
            severity=draft.severity,
            title=draft.title,
            body=draft.body,
            playbook_id=draft.playbook_id,
            template_ids=draft.template_ids,
            requires_ack=draft.requires_ack,
            expires_at=draft.expires_at,
            issued_by=user.username,
        )
    except InvalidAlert as exc:
        raise ApiError(422, "invalid_request", f"Invalid request: {exc}") from exc
    broker.notify()
    return JSONResponse(alert, status_code=201)


@router.get("/v1/alerts", responses=error_responses(401, 403, 422))
def alerts_since(
    store: StoreDep,
    settings: SettingsDep,
    user: AgentUser,
    since: SinceQuery = None,
    limit: Annotated[int, Query(ge=1, le=ALERT_PAGE_MAX)] = ALERT_PAGE_DEFAULT,
) -> dict[str, Any]:
    """Catch-up: kept alerts after `since`, and whether some after it are already gone."""
    store.alerts.purge_expired(settings.retention_seconds)
    page = store.alerts.since(since, limit)
    return {
        "alerts": [alert.to_wire() for alert in page.alerts],
        "last_seq": page.last_seq,
        "more": page.more,
        "gap": page.gap,
    }


@router.get("/v1/alerts/stream", responses=error_responses(401, 403, 422))
async def alert_stream(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    broker: BrokerDep,
    user: AgentUser,
    grant: AccessGrantDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-Sent Events: replay after Last-Event-ID, then every new alert as it is published.

    The stream lasts only while the access token it was opened with is valid.
    """
    after = _parse_last_event_id(last_event_id)
    access_token = request.headers["authorization"].partition(" ")[2].strip()
    session = StreamSession(
        user_id=grant.user.id,
        family_id=grant.family_id,
        access_hash=token_hash(access_token),
        expires_at=min(grant.token_expires_at, grant.family_expires_at),
    )
    return StreamingResponse(
        _events(store, settings, broker, after, session),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/v1/alerts/{alert_id}/acks",
    operation_id="alert_acks",
    responses=error_responses(401, 403, 404),
)
def alert_acks(alert_id: str, store: StoreDep, user: DispatcherUser) -> dict[str, Any]:
    """Who acknowledged an alert, with the client's acted_at and the hub's received_at."""
    canonical = _canonical_uuid(alert_id)
    if canonical is None or store.alerts.get(canonical) is None:
        raise ApiError(
            404, "unknown_alert", "No such alert is kept on the hub; it may be past retention."
        )
    return {
        "alert_id": canonical,
        "acks": [ack.to_wire() for ack in store.alerts.acks_for(canonical)],
    }


async def _events(
    store: Store,
    settings: HubSettings,
    broker: AlertBroker,
    after: int | None,
    session: StreamSession,
) -> AsyncIterator[str]:
    # Subscribe before reading the replay so nothing published in between is missed; the seq
    # check below drops what both deliver.
    subscription = broker.subscribe(session)
    try:
        last_sent = after
        if after is not None:
            await run_in_threadpool(store.alerts.purge_expired, settings.retention_seconds)
            page = await run_in_threadpool(store.alerts.since, after, _REPLAY_PAGE)
            if page.gap:
                gap = {"since": after, "oldest_kept_seq": page.oldest_kept_seq}
                yield f"event: gap\ndata: {json.dumps(gap)}\n\n"
            if after > page.last_seq:
                # A seq this hub never issued (its data was reset): without this, every alert up
                # to that seq would be skipped as already delivered.
                last_sent = page.last_seq
            while True:
                for alert in page.alerts:
                    yield _alert_event(alert)
                    last_sent = alert.seq
                if not page.more:
                    break
                page = await run_in_threadpool(store.alerts.since, last_sent, _REPLAY_PAGE)
        # Tells the client the stream is live: everything published from here on will arrive.
        yield ": connected\n\n"
        while True:
            try:
                live = await subscription.next(settings.heartbeat_seconds)
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            if live is None:
                # The broker ended the stream (sign-in over, stream cap, shutdown); the client
                # reconnects with a fresh token and Last-Event-ID, so nothing is lost.
                yield _closed_event(subscription.end or StreamEnd.HUB_STOPPING)
                return
            if last_sent is not None and live.seq <= last_sent:
                continue
            yield _alert_event(live)
            last_sent = live.seq
    finally:
        broker.unsubscribe(subscription)


def _alert_event(alert: Alert) -> str:
    data = json.dumps(alert.to_wire(), ensure_ascii=False, separators=(",", ":"))
    return f"id: {alert.seq}\nevent: alert\ndata: {data}\n\n"


def _closed_event(end: StreamEnd) -> str:
    data = json.dumps({"reason": end.value, "detail": end.detail}, separators=(",", ":"))
    return f"event: closed\ndata: {data}\n\n"


def _parse_last_event_id(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    # The length check comes first: int() of thousands of digits is slow, then refused by Python.
    if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= CURSOR_MAX):
        raise ApiError(
            422,
            "invalid_request",
            "Last-Event-ID must be the seq (a whole number) of the last alert received.",
        )
    return int(text)


def _canonical_uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
