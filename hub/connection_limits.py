"""Bounds on what clients may hold open: connections, requests in flight, read deadlines, fds.

uvicorn's own `limit_concurrency` counts every open connection, idle keep-alives and live alert
streams included, so 2,000 agents' streams would turn every sign-in into a 503. The hub instead
caps connections at accept, answers 503 when too many requests are being worked on (a stream stops
counting once it is live; the per-user stream cap bounds those), keeps some of its connections out
of reach of alert streams, and drops a connection whose request headers or body arrive too slowly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

# File descriptors kept for the hub's own use (SQLite connections of every worker thread, their
# WAL and SHM files, the key file, logs) when the connection cap is derived from the fd limit.
FD_RESERVE = 256
# Without a hard limit (RLIM_INFINITY) the soft limit is raised this far.
_UNLIMITED_FD_TARGET = 65_536
# One warning per this many seconds for each kind of refusal: a flood must not flood the log too.
_WARN_EVERY_SECONDS = 10.0

_BUSY_DETAIL = "The hub is handling too many requests right now; try again in a few seconds."
_FULL_DETAIL = "The hub has too many open connections right now; try again in a few seconds."
_STREAMS_FULL_DETAIL = (
    "This hub process holds as many alert streams as it can; connect to another of the hub's "
    "addresses, or try again in a few seconds."
)
# The alert stream's path: the one kind of request that holds its connection for hours.
ALERT_STREAM_PATH = "/v1/alerts/stream"


@dataclass(frozen=True)
class ConnectionLimits:
    """How much clients may hold open on the hub, and how long it waits for a request to arrive.

    A reverse proxy in front of the hub should use the same or tighter values (docs/deployment.md).
    """

    max_connections: int = 10_000
    # Connections alert streams may never take (at most half of max_connections): with every
    # agent's stream open, a dispatcher's publish, sign-ins and acknowledgements still get in.
    connections_kept_for_requests: int = 500
    max_requests_in_flight: int = 200
    max_streams_per_user: int = 5
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    keep_alive_seconds: int = 5

    def __post_init__(self) -> None:
        for name in ("max_connections", "max_requests_in_flight", "max_streams_per_user"):
            if getattr(self, name) < 1:
                raise ValueError(f"ConnectionLimits.{name} must be at least 1.")
        if self.connections_kept_for_requests < 0:
            raise ValueError("ConnectionLimits.connections_kept_for_requests must be at least 0.")
        for name in ("header_timeout_seconds", "body_timeout_seconds", "keep_alive_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ConnectionLimits.{name} must be more than 0 seconds.")


def raise_open_file_limit() -> int | None:
    """Raise this process's soft limit on open files to its hard limit; returns the soft limit.

    The default soft limit (often 1,024) is exhausted by that many idle sockets, after which the
    hub cannot even accept a health check. None where the platform has no such limit (Windows).
    """
    if sys.platform == "win32":
        return None
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _UNLIMITED_FD_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("Could not raise the open-file limit from %d to %d: %s", soft, target, exc)
    return None if soft == resource.RLIM_INFINITY else soft


def connection_cap(limits: ConnectionLimits, open_file_limit: int | None) -> int:
    """The connections the hub accepts at once: the configured cap, kept within the fd limit."""
    if open_file_limit is None:
        return limits.max_connections
    cap = min(limits.max_connections, max(1, open_file_limit - FD_RESERVE))
    if cap < limits.max_connections:
        log.warning(
            "Accepting at most %d connections: the open-file limit is %d (raise it to allow %d)",
            cap,
            open_file_limit,
            limits.max_connections,
        )
    return cap


def stream_cap(limits: ConnectionLimits, max_connections: int) -> int:
    """The alert streams one hub process holds at once: its connection cap less the connections
    kept for requests."""
    kept = min(limits.connections_kept_for_requests, max_connections // 2)
    return max(1, max_connections - kept)


class _Throttled:
    """Logs a warning at most once per interval, saying how many it held back meanwhile."""

    def __init__(self, message: str) -> None:
        self._message = message
        self._next = 0.0
        self._held = 0

    def warn(self, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return
        held, self._held = self._held, 0
        self._next = now + _WARN_EVERY_SECONDS
        if held:
            log.warning(self._message + " (and %d more since the last such message)", *args, held)
        else:
            log.warning(self._message, *args)


def guarded_h11_protocol(limits: ConnectionLimits, max_connections: int) -> type[Any]:
    """uvicorn's h11 protocol with a connection cap and header, body and keep-alive deadlines."""
    full = _Throttled("Refused a connection from %s: %d connections were open, the cap")
    slow = _Throttled("Dropped a connection from %s: its request %s did not arrive within %.0f s")
    refusal = _raw_response(503, "overloaded", _FULL_DETAIL)

    class GuardedH11Protocol(H11Protocol):
        """One HTTP/1.1 connection that may not hold the hub open by being slow or surplus."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._deadline: asyncio.TimerHandle | None = None
            self._awaiting: str | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                full.warn(_peer(self.client), len(self.connections) - 1)
                transport.write(refusal)
                transport.close()
                return
            self._watch_reads()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_deadline()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch_reads()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._watch_reads()

        def _watch_reads(self) -> None:
            # The deadline runs while the client owes us request headers (from the connection's
            # start or the last response's end) or a request body; never while we answer.
            awaiting: str | None = None
            if not self.transport.is_closing():
                if self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE:
                    awaiting = "headers"
                elif self.conn.their_state is h11.SEND_BODY:
                    awaiting = "body"
            if awaiting == self._awaiting:
                return
            self._cancel_deadline()
            self._awaiting = awaiting
            if awaiting is not None:
                seconds = (
                    limits.header_timeout_seconds
                    if awaiting == "headers"
                    else limits.body_timeout_seconds
                )
                self._deadline = self.loop.call_later(seconds, self._too_slow, awaiting, seconds)

        def _cancel_deadline(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            self._awaiting = None

        def _too_slow(self, awaiting: str, seconds: float) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            slow.warn(_peer(self.client), awaiting, seconds)
            if awaiting == "headers" and self.conn.their_state is h11.IDLE:
                # No request is under way, so an answer cannot get mixed into one.
                self.transport.write(_raw_response(408, "request_timeout", _slow_detail(seconds)))
            self.transport.close()

    return GuardedH11Protocol


class RequestLimit:
    """ASGI middleware: answers 503 at once while `max_in_flight` requests are being worked on.

    A request counts from the moment its body is in until its answer is sent: one still sending its
    body holds only its connection (dropped at the body deadline), never a place that answerable
    requests need. An alert stream stops counting once its response starts; from then on the
    per-user stream cap bounds it, so open streams never use up the room sign-ins need.
    """

    def __init__(self, app: ASGIApp, max_in_flight: int, max_body_bytes: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.max_body_bytes = max_body_bytes
        self.in_flight = 0
        self._busy = _Throttled("Answered 503 to %s: %d requests were in flight, the limit")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        early: list[Message] = []
        # A body declared too large is refused further in without being read at all.
        if not _declares_too_much(scope, self.max_body_bytes):
            early = await self._read_body(receive)
        if self.in_flight >= self.max_in_flight:
            self._busy.warn(_peer(scope.get("client")), self.in_flight)
            await _send_503(send, "overloaded", _BUSY_DETAIL)
            return
        self.in_flight += 1
        counted = True

        def release() -> None:
            nonlocal counted
            if counted:
                counted = False
                self.in_flight -= 1

        async def replaying_receive() -> Message:
            return early.pop(0) if early else await receive()

        async def releasing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and _is_event_stream(message):
                release()
            await send(message)

        try:
            await self.app(scope, replaying_receive, releasing_send)
        finally:
            release()

    async def _read_body(self, receive: Receive) -> list[Message]:
        # Stops past the body limit: the size check further in refuses such a body with 413.
        messages: list[Message] = []
        size = 0
        while size <= self.max_body_bytes:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        return messages


class StreamLimit:
    """ASGI middleware: answers a request for an alert stream 503 at once while `max_streams`
    are open (opening ones included), so streams never take the connections kept for requests.

    The client takes a 503 as the address being unavailable and moves to the hub's next address.
    """

    def __init__(self, app: ASGIApp, max_streams: int) -> None:
        self.app = app
        self.max_streams = max_streams
        self.streams = 0
        self._full = _Throttled("Answered 503 to a stream from %s: %d streams were open, the cap")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != ALERT_STREAM_PATH:
            await self.app(scope, receive, send)
            return
        if self.streams >= self.max_streams:
            self._full.warn(_peer(scope.get("client")), self.streams)
            await _send_503(send, "streams_full", _STREAMS_FULL_DETAIL)
            return
        self.streams += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.streams -= 1


def _declares_too_much(scope: Scope, max_bytes: int) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            digits = value.strip()
            # Length first: int() of thousands of digits is slow, then refused by Python.
            return bool(digits.isdigit() and (len(digits) > 18 or int(digits) > max_bytes))
    return False


def _is_event_stream(message: Message) -> bool:
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-type":
            return bool(value.split(b";")[0].strip().lower() == b"text/event-stream")
    return False


def _error_body(error: str, detail: str) -> bytes:
    return json.dumps({"error": error, "detail": detail}).encode()


async def _send_503(send: Send, error: str, detail: str) -> None:
    body = _error_body(error, detail)
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _raw_response(status: int, error: str, detail: str) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for use outside any request."""
    body = _error_body(error, detail)
    reason = {408: b"Request Timeout", 503: b"Service Unavailable"}[status]
    retry = b"retry-after: 1\r\n" if status == 503 else b""
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"%sconnection: close\r\n\r\n" % (status, reason, len(body), retry)
    )
    return head + body


def _slow_detail(seconds: float) -> str:
    return f"The request did not arrive within {seconds:.0f} s; send it again."


def _peer(client: object) -> str:
    if isinstance(client, tuple | list) and len(client) >= 2:
        return f"{client[0]}:{client[1]}"
    return "an unknown address"
