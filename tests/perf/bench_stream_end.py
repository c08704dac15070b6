"""10. Stream end: a sign-in ends (signed out over HTTP, or its family revoked in the database by
another process, as `vigil-hub` does) → the hub ends the alert stream it had open."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import requests

from tests.hubtools import auth_headers
from tests.perf.context import BenchContext
from tests.perf.procs import HubProcess, sign_in_token
from tests.perf.stats import across_runs, distribution

# The hub process has eight agents; each signs in once per trial, half per way of ending.
TRIALS_PER_WAY = 4
READ_TIMEOUT = 10.0
MAX_READS = 1_000


def stream_end(ctx: BenchContext) -> dict[str, Any]:
    """Per run, a fresh hub; per trial, one agent's stream and the time until the hub ends it."""
    logout_runs: list[dict[str, Any]] = []
    revoked_runs: list[dict[str, Any]] = []
    for _ in range(ctx.runs):
        data = ctx.fresh_dir("hub")
        hub = HubProcess(data, log=ctx.log("stream-end-hub"))
        try:
            logout_runs.append(distribution([_logout(hub) for _ in range(TRIALS_PER_WAY)]))
            revoked_runs.append(
                distribution([_revoke_in_database(hub, data) for _ in range(TRIALS_PER_WAY)])
            )
        finally:
            hub.stop()
    return {
        "unit": "ms",
        "trials_per_run": TRIALS_PER_WAY,
        "logout_max": across_runs([run["max"] for run in logout_runs]),
        "revoked_max": across_runs([run["max"] for run in revoked_runs]),
        "clock": "time.monotonic() from just before the change to the end of the response",
    }


def _logout(hub: HubProcess) -> float:
    token = sign_in_token(hub.url, *hub.take_agent())
    with closing(_open_stream(hub.url, token)) as stream:
        lines = _lines_after_connected(stream)
        started = time.monotonic()
        requests.post(
            f"{hub.url}/v1/auth/logout", headers=auth_headers(token), timeout=READ_TIMEOUT
        ).raise_for_status()
        return _ms_until_end(lines, started)


def _revoke_in_database(hub: HubProcess, data: Path) -> float:
    username, secret = hub.take_agent()
    token = sign_in_token(hub.url, username, secret)
    with (
        closing(_open_stream(hub.url, token)) as stream,
        closing(sqlite3.connect(data / "hub.sqlite3", isolation_level=None)) as other,
    ):
        lines = _lines_after_connected(stream)
        started = time.monotonic()
        other.execute(
            "UPDATE token_families SET revoked_at = ?, revoked_reason = 'bench' "
            "WHERE user_id = (SELECT id FROM users WHERE username = ?)",
            (time.time(), username),
        )
        return _ms_until_end(lines, started)


def _open_stream(url: str, token: str) -> requests.Response:
    response = requests.get(
        f"{url}/v1/alerts/stream",
        headers=auth_headers(token),
        stream=True,
        timeout=(READ_TIMEOUT, READ_TIMEOUT),
    )
    response.raise_for_status()
    return response


def _lines_after_connected(stream: requests.Response) -> Iterator[str]:
    # One iterator for the whole stream: a second iter_lines() on a response starts mid-chunk.
    lines: Iterator[str] = stream.iter_lines(decode_unicode=True)
    for _ in range(MAX_READS):
        if next(lines) == ": connected":
            return lines
    raise RuntimeError("The stream never said it was live")


def _ms_until_end(lines: Iterator[str], started: float) -> float:
    seen_closed = False
    for _ in range(MAX_READS):
        line = next(lines, None)
        if line is None:
            if not seen_closed:
                raise RuntimeError("The stream ended without its closed event")
            return (time.monotonic() - started) * 1000
        seen_closed = seen_closed or line == "event: closed"
    raise RuntimeError(f"The stream went on for {MAX_READS} lines after its sign-in ended")
