"""Many lightweight SSE readers in one process (asyncio, raw sockets), for the fan-out benchmark.

Run as `python -m tests.perf.sse_readers --port P --count N` with the access token in
$VIGIL_BENCH_TOKEN (kept out of the command line). It opens N streams to
/v1/alerts/stream, then prints {"connected": n, "failed": m}. Commands on stdin, one per line:
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
import resource
import sys
import threading
import time

CONNECT_CONCURRENCY = 32
CONNECT_TIMEOUT = 20.0
ROUND_TIMEOUT = 20.0
CHUNK = 16 * 1024


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
        self.armed = False
        self.times: list[float] = []
        self.round_done: asyncio.Event | None = None

    async def open(
        self, gate: asyncio.Semaphore
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        async with gate:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port), CONNECT_TIMEOUT
                )
                writer.write(self.request)
                seen = b""
                while b": connected" not in seen:
                    chunk = await asyncio.wait_for(reader.read(CHUNK), CONNECT_TIMEOUT)
                    if not chunk:
                        return None
                    seen += chunk
            except (OSError, TimeoutError):
                return None
        self.streams += 1
        return reader, writer

    async def listen(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The writer is kept referenced here: a collected StreamWriter closes its connection.
        while True:
            chunk = await reader.read(CHUNK)
            if not chunk:
                self.streams -= 1
                writer.close()
                return
            if self.armed and b"event: alert" in chunk:
                self.times.append(time.time())
                if len(self.times) >= self.streams and self.round_done is not None:
                    self.round_done.set()


def say(message: dict[str, object]) -> None:
    print(json.dumps(message), flush=True)


async def run(port: int, token: str, count: int) -> None:
    readers = Readers(port, token)
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    opened = await asyncio.gather(*(readers.open(gate) for _ in range(count)))
    listeners = [asyncio.create_task(readers.listen(*pair)) for pair in opened if pair is not None]
    say({"connected": len(listeners), "failed": count - len(listeners)})
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
    for task in listeners:
        task.cancel()


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
