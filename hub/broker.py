"""Fans new alerts out to every open SSE stream, whichever process published them, and each
user's answers to every stream of theirs; records which streams are open (reachability); ends each
stream as soon as the sign-in it was opened with no longer holds."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hub.storage.alerts import Alert, Answer
from hub.storage.delivery import OpenedStream

if TYPE_CHECKING:
    from hub.config import HubSettings
    from hub.storage import Store

log = logging.getLogger(__name__)

# Alerts published by another process (`vigil-hub alert publish` next to a running hub) are only
# seen by polling the store; this bounds how late they reach the streams.
POLL_SECONDS = 1.0
# Retention is in days; purging once a minute keeps the tables tidy without extra load.
PURGE_EVERY_SECONDS = 60.0
# A stream this far behind is closed; its client reconnects with Last-Event-ID and replays.
SUBSCRIBER_BACKLOG = 1000
# How often open streams are checked against the store for sign-outs, revocations, removed users
# and expiry: a stream must end within a second of its sign-in ending, in any process.
SESSION_CHECK_SECONDS = 0.5
# Every open stream is stamped as seen this often, all in one write; a stream not stamped for
# REACHABLE_SECONDS (three of these) no longer makes its agent reachable.
PRESENCE_SECONDS = 15.0
_FETCH_LIMIT = 500
# Pages of answers read per wake-up: a flood of answers cannot hold the fan-out loop forever.
_FAN_OUT_PAGES = 20


class StreamEnd(enum.Enum):
    """Why the hub ended a stream; sent to the client as the stream's last event."""

    SIGNED_OUT = "signed_out"
    TOKEN_EXPIRED = "token_expired"
    STREAM_LIMIT = "stream_limit"
    TOO_FAR_BEHIND = "too_far_behind"
    HUB_STOPPING = "hub_stopping"

    @property
    def detail(self) -> str:
        """A sentence for the person reading the client's log."""
        return _END_DETAILS[self]


_END_DETAILS = {
    StreamEnd.SIGNED_OUT: (
        "The sign-in this stream was opened with has ended (signed out, revoked or the user "
        "removed)."
    ),
    StreamEnd.TOKEN_EXPIRED: (
        "The access token this stream was opened with has expired; reconnect with a fresh one "
        "and Last-Event-ID."
    ),
    StreamEnd.STREAM_LIMIT: (
        "This user opened a newer alert stream beyond the per-user limit, so this, the oldest, "
        "was closed; reconnect with Last-Event-ID if it is still needed."
    ),
    StreamEnd.TOO_FAR_BEHIND: (
        "This stream fell too far behind; reconnect with Last-Event-ID to replay what it missed."
    ),
    StreamEnd.HUB_STOPPING: "The hub is shutting down; reconnect with Last-Event-ID.",
}


@dataclass(frozen=True)
class StreamSession:
    """The sign-in a stream was opened with: the stream lives only as long as it holds."""

    user_id: int
    family_id: int
    username: str
    # Dispatchers and admins receive every alert; agents the ones whose audience holds them.
    sees_all: bool
    access_hash: str = field(repr=False)
    expires_at: float
    # The device of the sign-in: where the stream's presence is recorded.
    device_id: str = ""
    device_name: str = ""


class Subscription:
    """One open stream's inbox: alerts in seq order and the user's answers, then None when the
    stream must end."""

    def __init__(self, session: StreamSession) -> None:
        self.session = session
        # The stream's row in the store's stream presence, once the broker has recorded it.
        self.presence_id: int | None = None
        # Set once the broker has tried to record it (and, unless that failed, has).
        self.presence_tried = asyncio.Event()
        self._queue: asyncio.Queue[Alert | Answer | None] = asyncio.Queue(
            maxsize=SUBSCRIBER_BACKLOG + 1
        )
        self.closed = False
        self.end: StreamEnd | None = None

    def offer(self, alert: Alert | Answer) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= SUBSCRIBER_BACKLOG:
            log.warning("Closing an alert stream that fell %d alerts behind", SUBSCRIBER_BACKLOG)
            self.close(StreamEnd.TOO_FAR_BEHIND)
            return
        self._queue.put_nowait(alert)

    def close(self, end: StreamEnd) -> None:
        """End the stream after what it already holds; `end` says why."""
        if not self.closed:
            self.closed = True
            self.end = end
            self._queue.put_nowait(None)

    async def next(self, timeout: float) -> Alert | Answer | None:
        """The next alert or answer; raises TimeoutError after `timeout` s; None once the stream
        must end."""
        if not self._queue.empty():
            return self._queue.get_nowait()
        # asyncio.timeout, not wait_for: wait_for wraps the get in a task of its own, and every
        # stream waits again after every event it is sent, thousands of times in one fan-out.
        async with asyncio.timeout(timeout):
            return await self._queue.get()


class AlertBroker:
    """Wakes every open stream when an alert is published, and polls for other processes' alerts."""

    def __init__(self, store: Store, settings: HubSettings) -> None:
        self._store = store
        self._settings = settings
        self._subscriptions: set[Subscription] = set()
        # Each user's open streams, oldest first, for the per-user cap.
        self._by_user: dict[int, deque[Subscription]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._pump: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._seen_seq = 0
        self._seen_answer = 0
        self._stopping = False
        self._presence: asyncio.Task[None] | None = None
        self._presence_wake: asyncio.Event | None = None
        self._stop_listening: Callable[[], None] | None = None
        # Streams opened and not yet recorded in the store's presence: recorded together by the
        # presence task, so that opening a stream never waits for a write of its own.
        self._opened_presence: list[Subscription] = []
        # Presence ids of streams that ended and are not yet stamped closed in the store.
        self._closed_presence: list[int] = []

    async def start(self) -> None:
        """Begin fanning out; call from the app's event loop (the lifespan)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        self._seen_seq = await asyncio.to_thread(self._store.alerts.last_seq)
        self._seen_answer = await asyncio.to_thread(self._store.alerts.last_answer_position)
        self._presence_wake = asyncio.Event()
        self._pump = asyncio.create_task(self._run(), name="alert-broker")
        self._watcher = asyncio.create_task(self._watch_sessions(), name="stream-sessions")
        self._presence = asyncio.create_task(self._record_presence(), name="stream-presence")
        # Other hub processes on the same PostgreSQL database wake this one as soon as they
        # commit an alert or an answer; polling stays as the safety net.
        self._stop_listening = self._store.db.listen(self.notify)

    async def stop(self) -> None:
        """End every open stream and the polling tasks; record the streams as closed."""
        self.close_streams()
        if self._stop_listening is not None:
            await asyncio.to_thread(self._stop_listening)
            self._stop_listening = None
        for task in (self._pump, self._watcher, self._presence):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._pump = None
        self._watcher = None
        self._presence = None
        try:
            await self._write_presence(stamp_open=False)
        except Exception:
            # Left open, they stop counting as reachable once their last stamp is old enough.
            log.exception("Could not record the closed streams")

    def close_streams(self) -> None:
        """End every open stream now and refuse new ones; safe to call from any thread.

        A server calls this before its graceful shutdown, which otherwise waits for the streams.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._close_all()
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._close_all)

    def notify(self) -> None:
        """Tell the broker an alert was stored; safe to call from any thread."""
        loop = self._loop
        wake = self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        # Route handlers run in a worker thread; asyncio objects must be touched on their loop.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake.set)

    def subscribe(self, session: StreamSession) -> Subscription:
        """A new inbox that receives every alert stored from now on; call on the event loop.

        The stream is recorded in the store's stream presence moments later, and stamped there
        while it is open. When the user already has the most streams allowed, the oldest one is
        closed: a laptop that reconnects after a network drop must never be locked out by its
        own dead streams.
        """
        subscription = Subscription(session)
        if self._stopping:
            subscription.close(StreamEnd.HUB_STOPPING)
            subscription.presence_tried.set()
            return subscription
        own = self._by_user.setdefault(session.user_id, deque())
        while len(own) >= self._settings.limits.max_streams_per_user:
            self._end(own[0], StreamEnd.STREAM_LIMIT)
        own.append(subscription)
        self._subscriptions.add(subscription)
        self._opened_presence.append(subscription)
        if self._presence_wake is not None:
            self._presence_wake.set()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget an inbox when its stream ends."""
        self._forget(subscription)
        subscription.closed = True
        self._presence_ended(subscription)

    def _presence_ended(self, subscription: Subscription) -> None:
        presence_id = subscription.presence_id
        if presence_id is None:
            return
        subscription.presence_id = None
        self._closed_presence.append(presence_id)
        if self._presence_wake is not None:
            self._presence_wake.set()

    @property
    def open_streams(self) -> int:
        """How many streams are subscribed right now."""
        return len(self._subscriptions)

    def open_streams_of(self, user_id: int) -> int:
        """How many streams one user has open right now."""
        return len(self._by_user.get(user_id, ()))

    def _close_all(self) -> None:
        self._stopping = True
        for subscription in list(self._subscriptions):
            subscription.close(StreamEnd.HUB_STOPPING)
            self._presence_ended(subscription)
        self._subscriptions.clear()
        self._by_user.clear()

    def _end(self, subscription: Subscription, end: StreamEnd) -> None:
        session = subscription.session
        log.info(
            "Ending an alert stream of user %d (sign-in %d): %s",
            session.user_id,
            session.family_id,
            end.value,
        )
        subscription.close(end)
        self._forget(subscription)

    def _forget(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        user_id = subscription.session.user_id
        own = self._by_user.get(user_id)
        if own is not None:
            with contextlib.suppress(ValueError):
                own.remove(subscription)
            if not own:
                del self._by_user[user_id]

    async def _watch_sessions(self) -> None:
        # Sign-outs, refresh reuse and user removal may happen in another process (the CLI), so
        # the store, not an in-process signal, is the source of truth.
        while True:
            await asyncio.sleep(SESSION_CHECK_SECONDS)
            try:
                await self._end_dead_sessions()
            except Exception:
                # A locked or briefly unavailable database must not stop the checks for good.
                log.exception("Could not check the open streams' sign-ins; trying again")

    async def _end_dead_sessions(self) -> None:
        now = self._settings.clock.now()
        for subscription in list(self._subscriptions):
            if subscription.session.expires_at <= now:
                self._end(subscription, StreamEnd.TOKEN_EXPIRED)
        hashes = {subscription.session.access_hash for subscription in self._subscriptions}
        if not hashes:
            return
        usable = await asyncio.to_thread(self._store.accounts.usable_access_tokens, hashes)
        for subscription in list(self._subscriptions):
            # A stream opened while the store was asked is checked next time, not ended now.
            access_hash = subscription.session.access_hash
            if access_hash in hashes and access_hash not in usable:
                self._end(subscription, StreamEnd.SIGNED_OUT)

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        next_purge = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()
            try:
                if loop.time() >= next_purge:
                    next_purge = loop.time() + PURGE_EVERY_SECONDS
                    await asyncio.to_thread(
                        self._store.alerts.purge_expired, self._settings.retention_seconds
                    )
                await self._fan_out_new()
                await self._fan_out_answers()
            except Exception:
                # A locked or briefly unavailable database must not end live delivery for good.
                log.exception("Could not read new alerts; trying again")

    async def _fan_out_new(self) -> None:
        while True:
            page = await asyncio.to_thread(self._store.alerts.since, self._seen_seq, _FETCH_LIMIT)
            for alert in page.alerts:
                targets = None
                if alert.audience is not None:
                    # Read once per alert, not per stream: membership is fixed at publish.
                    found = await asyncio.to_thread(self._store.alerts.targets, alert.id)
                    targets = {username.lower() for username in found}
                for subscription in list(self._subscriptions):
                    session = subscription.session
                    if targets is None or session.sees_all or session.username.lower() in targets:
                        subscription.offer(alert)
            # Rows the store could not serve are skipped too, so one cannot be read again and again.
            self._seen_seq = max(self._seen_seq, page.through_seq)
            if not page.more:
                return

    async def _fan_out_answers(self) -> None:
        # One cursor over every user's answers in received order: an answer accepted by any
        # process reaches each stream of its user once, whichever device sent it.
        for _ in range(_FAN_OUT_PAGES):
            answers, highest = await asyncio.to_thread(
                self._store.alerts.answers_after, self._seen_answer, _FETCH_LIMIT
            )
            if highest < self._seen_answer:
                # The newest answers were purged: SQLite hands their positions out again.
                self._seen_answer = highest
                return
            by_owner: dict[str, list[Subscription]] = {}
            for subscription in self._subscriptions:
                by_owner.setdefault(subscription.session.username.lower(), []).append(subscription)
            for answer in answers:
                for subscription in by_owner.get(answer.username.lower(), ()):
                    subscription.offer(answer)
                self._seen_answer = max(self._seen_answer, answer.position)
            if len(answers) < _FETCH_LIMIT:
                return

    async def _record_presence(self) -> None:
        assert self._presence_wake is not None
        loop = asyncio.get_running_loop()
        next_stamp = loop.time() + PRESENCE_SECONDS
        next_purge = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._presence_wake.wait(), max(0.0, next_stamp - loop.time())
                )
            self._presence_wake.clear()
            stamp_open = loop.time() >= next_stamp
            if stamp_open:
                next_stamp = loop.time() + PRESENCE_SECONDS
            try:
                await self._write_presence(stamp_open=stamp_open)
                # Presence intervals are kept as long as alerts, for reports over the same period.
                if loop.time() >= next_purge:
                    next_purge = loop.time() + PURGE_EVERY_SECONDS
                    await asyncio.to_thread(
                        self._store.delivery.purge_presence, self._settings.retention_seconds
                    )
            except Exception:
                # A locked or briefly unavailable database must not stop the stamps for good.
                log.exception("Could not record which alert streams are open; trying again")

    async def _write_presence(self, *, stamp_open: bool) -> None:
        # A stream that ended before it was recorded is left out: it was open for moments.
        opened = [s for s in self._opened_presence if not s.closed]
        for subscription in self._opened_presence:
            if subscription.closed:
                subscription.presence_tried.set()
        self._opened_presence = []
        closed, self._closed_presence = self._closed_presence, []
        seen = []
        if stamp_open:
            seen = [
                subscription.presence_id
                for subscription in self._subscriptions
                if subscription.presence_id is not None
            ]
        streams = [
            OpenedStream(s.session.username, s.session.device_id, s.session.device_name)
            for s in opened
        ]
        try:
            ids = await asyncio.to_thread(
                self._store.delivery.record_streams, streams, seen, closed
            )
        except BaseException:
            # The streams go on unrecorded for now (reachability is a view for dispatchers;
            # the alerts must flow without it), and are recorded by a later write.
            for subscription in opened:
                subscription.presence_tried.set()
            self._opened_presence[:0] = opened
            self._closed_presence.extend(closed)
            raise
        for subscription, presence_id in zip(opened, ids, strict=True):
            subscription.presence_tried.set()
            if subscription.closed:
                # It ended while being recorded: stamped closed by the next write.
                self._closed_presence.append(presence_id)
                if self._presence_wake is not None:
                    self._presence_wake.set()
            else:
                subscription.presence_id = presence_id
