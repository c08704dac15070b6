"""Live console views: a change signal every write wakes, and SSE streams of page fragments."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.config import HubSettings
from hub.console.pages import templates
from hub.console.session import ConsoleSession, session_alive
from hub.storage import Store

# Another hub process's writes, and time passing (an agent turning silent, an update falling
# overdue), are only seen by rendering again: this bounds how late they show.
RERENDER_SECONDS = 2.0
# A burst of acks wakes a view once: changes this close together make one render.
SETTLE_SECONDS = 0.1
# Sent while nothing changes, so proxies and the browser keep the stream open.
KEEPALIVE_SECONDS = 15.0
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ChangeSignal:
    """A counter of this process's writes that live views wait on."""

    def __init__(self) -> None:
        self.version = 0
        self._changed = asyncio.Event()

    def touch(self) -> None:
        """Something was written: wake every waiting view."""
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, after: int, timeout: float) -> int:
        """Wait until the version passes `after` or `timeout` runs out; answers the version."""
        if self.version == after:
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)
        return self.version


class ChangeMiddleware:
    """ASGI middleware: a successful write on /v1 or /console touches the change signal."""

    def __init__(self, app: ASGIApp, signal: ChangeSignal) -> None:
        self.app = app
        self.signal = signal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        status = 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            if status < 400:
                self.signal.touch()


def live_fragments(
    request: Request,
    session: ConsoleSession,
    render: Callable[[], Mapping[str, str]],
) -> StreamingResponse:
    """An SSE answer that sends each fragment `render` gives whenever its HTML changes.

    `render` runs in a thread and answers {event name: HTML}. The stream ends with a
    `session-ended` event once the console session does (signed out, disabled, idle, revoked).
    """
    signal: ChangeSignal = request.app.state.console_changes
    store: Store = request.app.state.store
    settings: HubSettings = request.app.state.settings

    async def events() -> AsyncIterator[str]:
        sent: dict[str, str] = {}
        version = signal.version
        idle = 0.0
        while True:
            record = await run_in_threadpool(store.console_sessions.get, session.id)
            if not session_alive(record, settings):
                ended = templates.get_template("_session_ended.html").render()
                yield _event("session-ended", ended)
                return
            fragments = await run_in_threadpool(render)
            changed = {name: html for name, html in fragments.items() if sent.get(name) != html}
            for name, html in changed.items():
                yield _event(name, html)
            sent.update(changed)
            if changed:
                idle = 0.0
            elif idle >= KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                idle = 0.0
            if await request.is_disconnected():
                return
            waited_from = asyncio.get_running_loop().time()
            new_version = await signal.wait(version, RERENDER_SECONDS)
            if new_version != version:
                await asyncio.sleep(SETTLE_SECONDS)
                version = signal.version
            idle += asyncio.get_running_loop().time() - waited_from

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _event(name: str, html: str) -> str:
    # SSE data lines cannot hold a newline: each line of the fragment is its own data line.
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {name}\n{lines}\n"
