"""Many concurrent sign-in attempts with wrong passwords (asyncio, raw sockets), for the sign-in
flood benchmark.

Run as `python -m tests.perf.signin_flood --port P --concurrency N`. Each of N connections posts
wrong passwords to /v1/auth/login, one after the other on a keep-alive connection, each from its
own X-Forwarded-For address (the hub trusts 127.0.0.1 as its proxy in this benchmark, so no
per-address throttle holds them back: the worst case, a flood from many addresses). It prints
{"started": N} once every connection sent its first attempt, and on `stop` (or stdin closing)
{"answers": {status: count}, "p50_ms": ..., "p99_ms": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time

CONNECT_TIMEOUT = 20.0
ANSWER_TIMEOUT = 60.0
# Few usernames, so the per-username throttle is in the way too, as in a real guessing run.
USERNAMES = tuple(f"target{n}" for n in range(50))


class Flood:
    """The attacking connections and what they were answered."""

    def __init__(self, port: int, concurrency: int) -> None:
        self.port = port
        self.concurrency = concurrency
        self.stopping = False
        self.answers: dict[str, int] = {}
        self.latencies: list[float] = []
        self.first_sent = 0
        self.all_started = asyncio.Event()

    def request(self, worker: int, attempt: int) -> bytes:
        body = json.dumps(
            {
                "username": USERNAMES[(worker + attempt) % len(USERNAMES)],
                "password": f"wrong guess {worker}-{attempt}",
                "device_id": f"flood-{worker}",
                "device_name": "Flood",
            }
        ).encode()
        # 10.x.y.z addresses: every connection and attempt from a different one.
        n = worker * 65_536 + attempt
        address = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        head = (
            "POST /v1/auth/login HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.port}\r\n"
            "Content-Type: application/json\r\n"
            f"X-Forwarded-For: {address}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def attacker(self, worker: int) -> None:
        attempt = 0
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", self.port), CONNECT_TIMEOUT
        )
        try:
            while not self.stopping:
                start = time.perf_counter()
                writer.write(self.request(worker, attempt))
                if attempt == 0:
                    self.first_sent += 1
                    if self.first_sent == self.concurrency:
                        self.all_started.set()
                status = await asyncio.wait_for(_read_answer(reader), ANSWER_TIMEOUT)
                self.latencies.append((time.perf_counter() - start) * 1000)
                self.answers[status] = self.answers.get(status, 0) + 1
                # Refused or not, the next guess goes at once, as a guessing script's would.
                attempt += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _read_answer(reader: asyncio.StreamReader) -> str:
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1].decode()
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, int(fraction * len(ordered)) - 1))]


async def main_async(port: int, concurrency: int) -> None:
    flood = Flood(port, concurrency)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def wait_for_stop() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_stop, daemon=True).start()
    tasks = [asyncio.create_task(flood.attacker(n)) for n in range(concurrency)]
    await asyncio.wait_for(flood.all_started.wait(), CONNECT_TIMEOUT * 3)
    print(json.dumps({"started": concurrency}), flush=True)
    await stop.wait()
    flood.stopping = True
    done, _pending = await asyncio.wait(tasks, timeout=ANSWER_TIMEOUT)
    failed = sum(1 for task in done if task.exception() is not None)
    print(
        json.dumps(
            {
                "answers": flood.answers,
                "failed_connections": failed,
                "p50_ms": _percentile(flood.latencies, 0.5),
                "p99_ms": _percentile(flood.latencies, 0.99),
            }
        ),
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main_async(args.port, args.concurrency))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
