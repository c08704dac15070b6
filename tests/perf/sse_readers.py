"""Many lightweight SSE readers in one process (asyncio, raw sockets), for the fan-out benchmark.

Run as `python -m tests.perf.sse_readers --port P --count N` with the access token in
$VIGIL_BENCH_TOKEN (kept out of the command line). It opens N streams to
/v1/alerts/stream, then prints {"connected": n, "failed": m, "refused": r}: a stream the hub
refused with 503 (too busy) is asked for again after the client's reconnect wait, up to
OPEN_ATTEMPTS times, and r counts those refusals. Commands on stdin, one per line:
  arm     answers {"armed": true}; each stream then notes the time.time() at which the next
          alert event reaches it; once all have (or after a timeout) it prints {"times": [...]}
Closing stdin ends it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import sys
import threading
import time

from client.core.alert_stream import RECONNECT_FIRST_SECONDS, RECONNECT_PLATEAU_SECONDS

CONNECT_CONCURRENCY = 32
CONNECT_TIMEOUT = 20.0
ROUND_TIMEOUT = 20.0
OPEN_ATTEMPTS = 10
# The client's first reconnect wait and its plateau.
REFUSED_WAIT_SECONDS = (RECONNECT_FIRST_SECONDS, RECONNECT_PLATEAU_SECONDS)


class Refused(ConnectionError):
    """The hub answered a stream's request 503: too busy for now, ask again later."""


class Readers:
    """The open streams and the round being timed."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.request = (
            "GET /v1/alerts/stream HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
        self.streams = 0
        self.refused = 0
        self.armed = False
        self.times: list[float] = []
        self.round_done: asyncio.Event | None = None

    def alert_arrived(self) -> None:
        """Note when an alert reached one stream, while a round is armed."""
        if self.armed:
            self.times.append(time.time())
            if len(self.times) >= self.streams and self.round_done is not None:
                self.round_done.set()

    async def open(self, gate: asyncio.Semaphore) -> StreamReader | None:
        """One live stream, asked for again after a wait each time the hub refuses it as busy;
        None if it could not be opened."""
        for _attempt in range(OPEN_ATTEMPTS):
            try:
                async with gate:
                    reader = await self._open_once()
            except Refused:
                self.refused += 1
                await asyncio.sleep(random.uniform(*REFUSED_WAIT_SECONDS))
                continue
            except (OSError, TimeoutError):
                return None
            self.streams += 1
            return reader
        return None

    async def _open_once(self) -> StreamReader:
        loop = asyncio.get_running_loop()
        _transport, reader = await asyncio.wait_for(
            loop.create_connection(lambda: StreamReader(self), "127.0.0.1", self.port),
            CONNECT_TIMEOUT,
        )
        reader.transport.write(self.request)
        try:
            await asyncio.wait_for(reader.connected, CONNECT_TIMEOUT)
        except BaseException:
            reader.transport.abort()
            raise
        return reader


class StreamReader(asyncio.Protocol):
    """One stream, read in the event loop's own callback: a laptop's arrival time is taken as
    its bytes arrive, not when a task gets round to them, and the 10,000 simulated laptops,
    which share the hub's cores here, cost as little of them as they can."""

    def __init__(self, readers: Readers) -> None:
        self._readers = readers
        self._seen = b""
        self.live = False
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.connected.done():
            self._seen += data
            if self._seen.startswith(b"HTTP/1.1 503 "):
                self.connected.set_exception(Refused("the hub was too busy to open the stream"))
            elif b": connected" in self._seen:
                self._seen = b""
                self.live = True
                self.connected.set_result(None)
            return
        if b"event: alert" in data:
            self._readers.alert_arrived()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.live:
            self._readers.streams -= 1
        elif not self.connected.done():
            self.connected.set_exception(ConnectionError("the stream ended before it was live"))


def say(message: dict[str, object]) -> None:
    print(json.dumps(message), flush=True)


async def run(port: int, token: str, count: int) -> None:
    readers = Readers(port, token)
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    opened = await asyncio.gather(*(readers.open(gate) for _ in range(count)))
    streams = [reader for reader in opened if reader is not None]
    say({"connected": len(streams), "failed": count - len(streams), "refused": readers.refused})
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.strip())
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read_stdin, daemon=True).start()
    while (line := await lines.get()) is not None:
        if line == "arm":
            readers.times = []
            readers.round_done = asyncio.Event()
            readers.armed = True
            say({"armed": True})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(readers.round_done.wait(), ROUND_TIMEOUT)
            readers.armed = False
            say({"times": readers.times, "streams": readers.streams})
    for stream in streams:
        stream.transport.abort()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(run(args.port, os.environ["VIGIL_BENCH_TOKEN"], args.count))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
