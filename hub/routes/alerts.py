"""Alerts: publish, catch up, the live SSE stream, and who acknowledged an alert."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from hub.alerts_service import AlertDraft, AlertRefused, Caller, publish_draft
from hub.broker import AlertBroker, StreamEnd, StreamSession
from hub.config import HubSettings
from hub.connection_limits import ALERT_STREAM_PATH
from hub.deps import (
    CURSOR_MAX,
    AgentUser,
    DispatcherUser,
    SettingsDep,
    SinceQuery,
    StoreDep,
    StreamingAgentGrant,
    StreamOpeningLane,
    User,
    request_source,
)
from hub.errors import ApiError, error_responses
from hub.storage import Store
from hub.storage.alerts import Alert, AlertPage, Answer, Viewer
from hub.tokens import token_hash

log = logging.getLogger(__name__)

router = APIRouter()

ALERT_PAGE_DEFAULT = 500
ALERT_PAGE_MAX = 1000
_REPLAY_PAGE = 500
# How long a new stream waits for its presence to be recorded before going live without it.
PRESENCE_WAIT_SECONDS = 5.0
IDEMPOTENCY_KEY_MAX = 255


def _broker(request: Request) -> AlertBroker:
    broker: AlertBroker = request.app.state.broker
    return broker


BrokerDep = Annotated[AlertBroker, Depends(_broker)]


@router.post(
    "/v1/alerts",
    status_code=201,
    responses={
        200: {"description": "A retry of an earlier publish (same Idempotency-Key): its alert."},
        202: {"description": "Held for a second dispatcher's approval: the approval request."},
        201: {
            "description": "The published alert, with its id, seq and `targeted` count.",
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
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    broker: BrokerDep,
    user: DispatcherUser,
    idempotency_key: Annotated[
        str | None,
        Header(description="Makes retries safe: the same key answers the first alert again."),
    ] = None,
) -> JSONResponse:
    """Publish an alert to its audience; 201 with the alert and `targeted` (200 for a retry).

    202 with the approval request where a second dispatcher must approve it first.
    """
    key = _parse_idempotency_key(idempotency_key)
    caller = Caller.user(user.username, request_source(request))
    try:
        published = publish_draft(
            store, settings, draft, issued_by=user.username, idempotency_key=key, caller=caller
        )
    except AlertRefused as exc:
        detail = f"Invalid request: {exc}" if exc.status == 422 else str(exc)
        raise ApiError(exc.status, exc.error, detail) from exc
    if published.alert is None:
        return JSONResponse(published.to_wire(), status_code=202)
    if published.created:
        broker.notify()
    return JSONResponse(published.to_wire(), status_code=201 if published.created else 200)


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
    page = store.alerts.since(since, limit, _viewer(user))
    served = (_wire(alert) for alert in page.alerts)
    answers = store.alerts.answers_of(user.username, [alert.id for alert in page.alerts])
    return {
        "alerts": [alert for alert in served if alert is not None],
        "last_seq": page.last_seq,
        "more": page.more,
        "gap": page.gap,
        "answers": [answer.to_wire() for answer in answers],
    }


@router.get(ALERT_STREAM_PATH, responses=error_responses(401, 403, 422, 503))
async def alert_stream(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    broker: BrokerDep,
    grant: StreamingAgentGrant,
    lane: StreamOpeningLane,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-Sent Events: replay after Last-Event-ID, then every new alert as it is published.

    The stream lasts only while the access token it was opened with is valid. A hub process that
    holds as many streams as it may answers 503 `streams_full` (hub/connection_limits.py).
    """
    after = _parse_last_event_id(last_event_id)
    access_token = request.headers["authorization"].partition(" ")[2].strip()
    session = StreamSession(
        user_id=grant.user.id,
        username=grant.user.username,
        sees_all=_viewer(User.from_record(grant.user)).sees_all,
        family_id=grant.family_id,
        access_hash=token_hash(access_token),
        expires_at=min(grant.token_expires_at, grant.family_expires_at),
        device_id=grant.device_id,
        device_name=grant.device_name,
    )
    return StreamingResponse(
        _events(store, settings, broker, lane, after, session),
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
    lane: CapacityLimiter,
    after: int | None,
    session: StreamSession,
) -> AsyncIterator[str]:
    # Subscribe before reading the replay so nothing published in between is missed; the seq
    # check below drops what both deliver.
    subscription = broker.subscribe(session)
    try:
        viewer = Viewer(session.username, session.sees_all)
        # One trip to a stream-opening thread for all a new stream reads: after a hub process
        # dies, its streams reconnect here at once (hub/deps.py), and none waits for a write.
        opening = await to_thread.run_sync(
            partial(_open_stream, store, settings, after, viewer), limiter=lane
        )
        last_sent = after
        page = opening.replay
        if page is not None and after is not None:
            if page.gap:
                gap = {"since": after, "oldest_kept_seq": page.oldest_kept_seq}
                yield f"event: gap\ndata: {json.dumps(gap)}\n\n"
            if after > page.last_seq:
                # A seq this hub never issued (its data was reset): without this, every alert up
                # to that seq would be skipped as already delivered.
                last_sent = page.last_seq
            while True:
                for alert in page.alerts:
                    event = _alert_event(alert)
                    if event is not None:
                        yield event
                # Past rows the store could not serve as well, so the next page moves on.
                if page.through_seq <= page.last_seq:
                    last_sent = max(page.through_seq, last_sent or 0)
                if not page.more:
                    break
                page = await to_thread.run_sync(
                    partial(store.alerts.since, last_sent, _REPLAY_PAGE, viewer), limiter=lane
                )
        # The stream counts as reachable for dispatchers before it tells the client it is live.
        # Streams opening together share one write, so a reconnecting crowd never queues a
        # write each behind the acknowledgements.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscription.presence_tried.wait(), PRESENCE_WAIT_SECONDS)
        # The answers already given, from any device: those alerts need no pop-up here. Answers
        # queued live meanwhile are already in it and are not sent twice.
        answered = {answer.ack_id for answer in opening.answers}
        wires = [answer.to_wire() for answer in opening.answers]
        yield f"event: answers\ndata: {_json_line({'answers': wires})}\n\n"
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
            if isinstance(live, Answer):
                if live.ack_id not in answered:
                    answered.add(live.ack_id)
                    yield f"event: answer\ndata: {_json_line(live.to_wire())}\n\n"
                continue
            if last_sent is not None and live.seq <= last_sent:
                continue
            event = _LIVE_EVENTS.event(live)
            if event is not None:
                yield event
            last_sent = live.seq
    finally:
        broker.unsubscribe(subscription)


@dataclass(frozen=True)
class _StreamOpening:
    """What a new stream starts from: the first replay page, and the answers already given."""

    replay: AlertPage | None
    answers: list[Answer]


def _open_stream(
    store: Store, settings: HubSettings, after: int | None, viewer: Viewer
) -> _StreamOpening:
    """Read where a new stream starts; run in a stream-opening thread."""
    replay = None
    if after is not None:
        store.alerts.purge_expired(settings.retention_seconds)
        replay = store.alerts.since(after, _REPLAY_PAGE, viewer)
    return _StreamOpening(replay, store.alerts.answers_of(viewer.username))


def _json_line(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _viewer(user: User) -> Viewer:
    # Dispatchers and admins oversee every incident; an agent sees what targets them.
    return Viewer(user.username, sees_all=user.has_role("dispatcher"))


class _LiveEvents:
    """The events of the last alerts the broker handed out, each made once: the broker gives
    every stream the same Alert object, and serialising it again for each of thousands of
    streams was a large share of the fan-out's time."""

    def __init__(self, size: int) -> None:
        self._size = size
        # Keyed by the object's id; the object is kept with its event, so the id is not reused
        # while the entry lives.
        self._events: dict[int, tuple[Alert, str | None]] = {}
        # Several hubs' event loops share this module in tests.
        self._lock = threading.Lock()

    def event(self, alert: Alert) -> str | None:
        """The alert's event, as _alert_event makes it."""
        with self._lock:
            found = self._events.get(id(alert))
        if found is not None and found[0] is alert:
            return found[1]
        event = _alert_event(alert)
        with self._lock:
            if len(self._events) >= self._size:
                del self._events[next(iter(self._events))]
            self._events[id(alert)] = (alert, event)
        return event


_LIVE_EVENTS = _LiveEvents(size=64)


def _alert_event(alert: Alert) -> str | None:
    wire = _wire(alert)
    if wire is None:
        return None
    data = json.dumps(wire, ensure_ascii=False, separators=(",", ":"))
    return f"id: {alert.seq}\nevent: alert\ndata: {data}\n\n"


def _closed_event(end: StreamEnd) -> str:
    data = json.dumps({"reason": end.value, "detail": end.detail}, separators=(",", ":"))
    return f"event: closed\ndata: {data}\n\n"


def _wire(alert: Alert) -> dict[str, Any] | None:
    # One alert that cannot be written must never end a stream or a catch-up page: the ones
    # after it still have to reach every agent.
    try:
        return alert.to_wire()
    except Exception:
        log.exception("Alert seq %s cannot be served and is skipped", alert.seq)
        return None


def _parse_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip()
    # The IETF draft sends the key as a Structured Field string ("..."); a bare token works too.
    if len(key) >= 2 and key.startswith('"') and key.endswith('"'):
        key = key[1:-1]
    if not (1 <= len(key) <= IDEMPOTENCY_KEY_MAX and key.isascii() and key.isprintable()):
        raise ApiError(
            422,
            "invalid_request",
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters, "
            'such as a UUID: Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324".',
        )
    return key


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
