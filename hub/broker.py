"""Fans new alerts out to every open SSE stream, whichever process published them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from hub.storage.alerts import Alert

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
_FETCH_LIMIT = 500


class Subscription:
    """One open stream's inbox: alerts in seq order, then None when the stream must end."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Alert | None] = asyncio.Queue(maxsize=SUBSCRIBER_BACKLOG + 1)
        self.closed = False

    def offer(self, alert: Alert) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= SUBSCRIBER_BACKLOG:
            log.warning("Closing an alert stream that fell %d alerts behind", SUBSCRIBER_BACKLOG)
            self.close()
            return
        self._queue.put_nowait(alert)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(None)

    async def next(self, timeout: float) -> Alert | None:
        """The next alert; raises TimeoutError after `timeout` s; None once the stream must end."""
        return await asyncio.wait_for(self._queue.get(), timeout)


class AlertBroker:
    """Wakes every open stream when an alert is published, and polls for other processes' alerts."""

    def __init__(self, store: Store, settings: HubSettings) -> None:
        self._store = store
        self._settings = settings
        self._subscriptions: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._pump: asyncio.Task[None] | None = None
        self._seen_seq = 0
        self._stopping = False

    async def start(self) -> None:
        """Begin fanning out; call from the app's event loop (the lifespan)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        self._seen_seq = await asyncio.to_thread(self._store.alerts.last_seq)
        self._pump = asyncio.create_task(self._run(), name="alert-broker")

    async def stop(self) -> None:
        """End every open stream and the polling task."""
        self.close_streams()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None

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

    def subscribe(self) -> Subscription:
        """A new inbox that receives every alert stored from now on; call on the event loop."""
        subscription = Subscription()
        if self._stopping:
            subscription.close()
        else:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget an inbox when its stream ends."""
        self._subscriptions.discard(subscription)
        subscription.closed = True

    @property
    def open_streams(self) -> int:
        """How many streams are subscribed right now."""
        return len(self._subscriptions)

    def _close_all(self) -> None:
        self._stopping = True
        for subscription in list(self._subscriptions):
            subscription.close()
        self._subscriptions.clear()

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
            except Exception:
                # A locked or briefly unavailable database must not end live delivery for good.
                log.exception("Could not read new alerts; trying again")

    async def _fan_out_new(self) -> None:
        while True:
            page = await asyncio.to_thread(self._store.alerts.since, self._seen_seq, _FETCH_LIMIT)
            for alert in page.alerts:
                for subscription in list(self._subscriptions):
                    subscription.offer(alert)
            # Rows the store could not serve are skipped too, so one cannot be read again and again.
            self._seen_seq = max(self._seen_seq, page.through_seq)
            if not page.more:
                return
