"""Many raw alert-stream clients through the front door (asyncio, TLS, HTTP/1.1 by hand), each
acknowledging every alert it gets with an ack id of its own, and reconnecting with Last-Event-ID
when its stream ends: what the failover test watches."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from client.core.alert_stream import RECONNECT_FIRST_SECONDS, RECONNECT_PLATEAU_SECONDS

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
# What the Vigil client waits before reconnecting after a stream ends (its first wait, then its
# plateau each time), and before retrying an ack (doubling up to the last); each wait scaled by
# 1 ± 0.2 at random, so that the clients do not retry in lockstep.
RECONNECT_PAUSES = (RECONNECT_FIRST_SECONDS, RECONNECT_PLATEAU_SECONDS)
ACK_RETRY_PAUSES = (0.1, 0.2, 0.4, 0.8, 1.6, 2.0)
JITTER = 0.2
ACK_ATTEMPTS = 40
# People answer an alert over a few seconds after it pops up, not all in the same millisecond.
ACK_SPREAD_SECONDS = 3.0
OPEN_AT_ONCE = 32
# A connection that failed, timed out, ended early or answered something unreadable.
_BROKEN = (OSError, TimeoutError, ValueError, EOFError, IndexError)


@dataclass
class StreamClient:
    """One laptop's view: the alerts its stream delivered, its acks and its reconnects."""

    username: str
    token: str
    alert_ids: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    ack_ids: dict[str, str] = field(default_factory=dict)
    ack_results: dict[str, str] = field(default_factory=dict)
    ack_attempts: int = 0
    connected_at: list[float] = field(default_factory=list)
    ended_at: list[float] = field(default_factory=list)
    last_event_id: int | None = None
    # The laptop's one keep-alive connection for its acks, as the client's HTTP session keeps.
    ack_connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    ack_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # What went wrong along the way (a few), for the failure message of a test.
    troubles: list[str] = field(default_factory=list)

    def note(self, trouble: str) -> None:
        """Keep a few of the connection failures seen."""
        if len(self.troubles) < 20:
            self.troubles.append(trouble)


def _now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StreamFleet:
    """The clients, run on an event loop in a thread of their own until `stop()`."""

    def __init__(self, port: int, context: ssl.SSLContext, tokens: dict[str, str]) -> None:
        self.port = port
        self.context = context
        self.clients = [StreamClient(name, token) for name, token in tokens.items()]
        self._loop = asyncio.new_event_loop()
        self._stopping: asyncio.Event | None = None
        self._open_writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._run, name="stream-fleet", daemon=True)

    def summary(self) -> str:
        """Where the clients stand, for a failure message."""
        behind = [c for c in self.clients if len(c.ack_results) < len(c.ack_ids)]
        troubles = [t for c in self.clients for t in c.troubles]
        return (
            f"{len(self.clients)} clients; alerts held: "
            f"{sorted({len(c.alert_ids) for c in self.clients})}; "
            f"{len(behind)} with acks unanswered; troubles ({len(troubles)}): {troubles[:10]}"
        )

    def start(self) -> StreamFleet:
        """Open every stream (in the background)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every stream and wait for the loop to end."""
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(30)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        gate = asyncio.Semaphore(OPEN_AT_ONCE)
        acks: set[asyncio.Task[None]] = set()
        streams = [asyncio.create_task(self._stream(client, gate, acks)) for client in self.clients]
        await self._stopping.wait()
        for task in [*streams, *acks]:
            task.cancel()
        await asyncio.gather(*streams, *acks, return_exceptions=True)
        # Whatever a cancelled task left open is dropped, as a laptop switched off drops it.
        for writer in list(self._open_writers):
            writer.transport.abort()
        await asyncio.sleep(0)

    async def _open(self, request: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", self.port, ssl=self.context),
            CONNECT_TIMEOUT,
        )
        self._open_writers.add(writer)
        writer.write(request)
        return reader, writer

    async def _stream(
        self, client: StreamClient, gate: asyncio.Semaphore, acks: set[asyncio.Task[None]]
    ) -> None:
        opened = False
        failures = 0
        while True:
            headers = f"Authorization: Bearer {client.token}\r\nAccept: text/event-stream\r\n"
            if client.last_event_id is not None:
                headers += f"Last-Event-ID: {client.last_event_id}\r\n"
            request = (
                f"GET /v1/alerts/stream HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{headers}\r\n"
            ).encode()
            events = _EventReader(client, lambda alert_id: self._ack_later(client, alert_id, acks))
            writer = None
            try:
                # Only the first opening is paced; reconnects go at once, as a laptop's would.
                async with gate if not opened else contextlib.nullcontext():
                    reader, writer = await self._open(request)
                    await events.read(reader, until_connected=True)
                opened = True
                failures = 0
                await events.read(reader, until_connected=False)
            except _BROKEN as exc:
                client.note(f"stream: {exc!r}")
            finally:
                self._close(writer)
            if opened:
                client.ended_at.append(time.monotonic())
            await _pause(RECONNECT_PAUSES, failures)
            failures += 1

    def _close(self, writer: asyncio.StreamWriter | None) -> None:
        # Dropped, not closed politely: the TLS goodbye would only add waiting to the test.
        if writer is not None:
            writer.transport.abort()
            self._open_writers.discard(writer)

    def _ack_later(
        self, client: StreamClient, alert_id: str, acks: set[asyncio.Task[None]]
    ) -> None:
        if alert_id not in client.ack_ids:
            client.ack_ids[alert_id] = str(uuid.uuid4())
            task = asyncio.create_task(self._acknowledge(client, alert_id))
            acks.add(task)
            task.add_done_callback(acks.discard)

    async def _acknowledge(self, client: StreamClient, alert_id: str) -> None:
        ack = {
            "ack_id": client.ack_ids[alert_id],
            "alert_id": alert_id,
            "action": "acknowledged",
            "acted_at": _now_rfc3339(),
        }
        await asyncio.sleep(random.uniform(0, ACK_SPREAD_SECONDS))
        body = json.dumps({"acks": [ack]}).encode()
        request = (
            f"POST /v1/acks HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {client.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        for attempt in range(ACK_ATTEMPTS):
            client.ack_attempts += 1
            try:
                status, payload = await self._post(client, request)
                if status == 200:
                    client.ack_results[alert_id] = json.loads(payload)["results"][0]["status"]
                    return
                client.note(f"ack: {status} {payload[:200]!r}")
            except _BROKEN as exc:
                client.note(f"ack: {exc!r}")
            await _pause(ACK_RETRY_PAUSES, attempt)

    async def _post(self, client: StreamClient, request: bytes) -> tuple[int, bytes]:
        """Send one request on the laptop's keep-alive connection (opened anew when there is
        none or it was closed); its status and body."""
        async with client.ack_lock:
            if client.ack_connection is None:
                client.ack_connection = await self._open(b"")
            reader, writer = client.ack_connection
            try:
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
                status = int(head.split(b" ", 2)[1])
                headers = head.lower()
                if b"transfer-encoding: chunked" in headers:
                    payload = await _read_chunked(reader)
                else:
                    length = int(headers.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                    payload = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT)
            except BaseException:
                self._close(writer)
                client.ack_connection = None
                raise
            if b"connection: close" in headers:
                self._close(writer)
                client.ack_connection = None
            return status, payload


class _EventReader:
    """Reads one chunked event-stream response, noting each alert and ": connected"."""

    def __init__(self, client: StreamClient, on_alert: Callable[[str], None]) -> None:
        self._client = client
        self._on_alert = on_alert
        self._head_read = False
        self._buffer = b""
        self._event: dict[str, str] = {}

    async def read(self, reader: asyncio.StreamReader, *, until_connected: bool) -> None:
        """Read events until ": connected" (or, with until_connected false, the stream's end)."""
        if not self._head_read:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            status = int(head.split(b" ", 2)[1])
            if status != 200:
                raise ConnectionError(f"the stream was answered {status}")
            if b"transfer-encoding: chunked" not in head.lower():
                raise ValueError("the stream is not chunked")
            self._head_read = True
        while True:
            while b"\n" in self._buffer:
                line_bytes, self._buffer = self._buffer.split(b"\n", 1)
                if self._line(line_bytes.decode().rstrip("\r")) and until_connected:
                    return
            size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), READ_TIMEOUT)
            size = int(size_line.strip().split(b";")[0], 16)
            if size == 0:
                raise ConnectionError("the stream ended")
            chunk = await asyncio.wait_for(reader.readexactly(size + 2), READ_TIMEOUT)
            self._buffer += chunk[:-2]

    def _line(self, line: str) -> bool:
        # True for ": connected", the end of the replay.
        if line == ": connected":
            self._client.connected_at.append(time.monotonic())
            return True
        if line.startswith(":"):
            return False
        if line:
            name, _, value = line.partition(":")
            self._event[name] = value.removeprefix(" ")
            return False
        event, self._event = self._event, {}
        if event.get("event") == "alert":
            alert = json.loads(event["data"])
            seq = int(event["id"])
            self._client.alert_ids.append(alert["id"])
            self._client.seqs.append(seq)
            self._client.last_event_id = seq
            self._on_alert(alert["id"])
        return False


async def _pause(pauses: tuple[float, ...], failures: int) -> None:
    wait = pauses[min(failures, len(pauses) - 1)]
    await asyncio.sleep(wait * random.uniform(1 - JITTER, 1 + JITTER))


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    payload = b""
    while True:
        size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), READ_TIMEOUT)
        size = int(size_line.strip().split(b";")[0], 16)
        chunk = await asyncio.wait_for(reader.readexactly(size + 2), READ_TIMEOUT)
        if size == 0:
            return payload
        payload += chunk[:-2]
