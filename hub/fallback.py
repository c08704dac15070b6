"""The fallback task: a target of an open critical alert whose devices reported no receipt in
time is marked unreachable once and sent a notice through every fallback channel, exactly once
across all hub processes on one data dir."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hub.notifiers import DeliveryOutcome, FallbackChannel, FallbackNotice
from hub.storage.delivery import NO_CHANNEL, DueFallback

if TYPE_CHECKING:
    from hub.storage import Store

log = logging.getLogger(__name__)

# How long a critical alert may go unreceived before its target is called out another way.
FALLBACK_AFTER_SECONDS = 120.0
PASS_SECONDS = 5.0
# Targets handled per pass: a slow channel or a huge audience never holds one pass for long.
PASS_LIMIT = 100
# What of a channel's own answer is kept and shown to dispatchers.
DETAIL_MAX = 500


class FallbackTask:
    """Every few seconds, marks and notifies the targets no critical alert reached in time."""

    def __init__(
        self,
        store: Store,
        channels: Sequence[FallbackChannel],
        *,
        fallback_after_seconds: float = FALLBACK_AFTER_SECONDS,
        pass_seconds: float = PASS_SECONDS,
        pass_limit: int = PASS_LIMIT,
    ) -> None:
        self._store = store
        self._channels = {channel.name: channel for channel in channels}
        self._after = fallback_after_seconds
        self._pass_seconds = pass_seconds
        self._pass_limit = pass_limit
        self._task: asyncio.Task[None] | None = None
        self._stopping = threading.Event()

    async def start(self) -> None:
        """Begin the passes; call from the app's event loop (the lifespan)."""
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="fallback")

    async def stop(self) -> None:
        """Stop after the notice being sent, if any; no new one is claimed."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def run_pass(self) -> int:
        """One pass (blocking): claim and send what is due, at most `pass_limit` targets; how
        many notices this call claimed."""
        names = list(self._channels) or [NO_CHANNEL]
        claimed_count = 0
        for due in self._store.delivery.due_fallbacks(self._after, self._pass_limit):
            if self._stopping.is_set():
                break
            claimed = self._store.delivery.claim_fallback(due.alert_id, due.username, names)
            for name in claimed:
                self._send(due, name)
            claimed_count += len(claimed)
        return claimed_count

    def _send(self, due: DueFallback, name: str) -> None:
        channel = self._channels.get(name)
        if channel is None:
            outcome = DeliveryOutcome(
                NO_CHANNEL, False, "No fallback channel is configured: call the agent."
            )
        else:
            outcome = _deliver(channel, _notice(due))
        self._store.delivery.record_fallback_outcome(
            due.alert_id,
            due.username,
            name,
            ok=outcome.ok,
            detail=outcome.detail[:DETAIL_MAX],
            sent=channel is not None,
        )
        # The channel's detail stays out of the audit: it may name an address or a gateway.
        self._store.audit.record(
            "fallback.sent",
            actor=None,
            subject=due.alert_id,
            source="hub",
            outcome="no_channel" if channel is None else ("ok" if outcome.ok else "failed"),
            detail={"username": due.username, "channel": name, "drill": due.drill},
        )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._pass_seconds)
            try:
                await asyncio.to_thread(self.run_pass)
            except Exception:
                # A locked or briefly unavailable database must not stop the fallback for good.
                log.exception("The fallback pass failed; trying again")


def _notice(due: DueFallback) -> FallbackNotice:
    return FallbackNotice(
        alert_id=due.alert_id,
        title=due.title,
        severity=due.severity,
        drill=due.drill,
        username=due.username,
        display_name=due.display_name,
        phone=due.phone,
        fallback_email=due.fallback_email,
        issued_at=due.issued_at,
    )


def _deliver(channel: FallbackChannel, notice: FallbackNotice) -> DeliveryOutcome:
    try:
        return channel.send(notice)
    except Exception as exc:
        # Channels promise never to raise; one that does must not stop the others. Its message
        # may hold a server's answer or credentials, so only the type is kept.
        log.error("Fallback channel %s raised %s", channel.name, type(exc).__name__)
        return DeliveryOutcome(channel.name, False, f"the channel failed ({type(exc).__name__})")
