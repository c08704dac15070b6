"""14. The console's live board: 10 open incidents of 1,000 agents each, rendered in the store,
and an update posted over HTTP reaching 10 open boards."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import requests

from hub.clock import SystemClock
from hub.config import HubSettings
from hub.console import incident_view
from hub.console.pages import templates
from hub.storage import Store
from tests.hubtools import auth_headers
from tests.perf.context import BenchContext
from tests.perf.procs import HubProcess, console_session
from tests.perf.stats import percentile

INCIDENTS = 10
AGENTS = 1_000
BOARDS = 10
# One update to each incident.
UPDATES_PER_RUN = INCIDENTS
RENDERS_PER_RUN = 5
GROUP = "board-west"
HTTP_TIMEOUT = 60.0
WAIT_SECONDS = 30.0


def fill_board(data_dir: Path) -> list[str]:
    """A hub database with the open incidents, half of each one's agents reached; their ids."""
    store = Store.open(HubSettings(data_dir=data_dir).database_path, SystemClock())
    try:
        names = [f"b{n:04d}" for n in range(AGENTS)]
        now = time.time()
        with store.db.write() as conn:
            conn.executemany(
                """
                INSERT INTO users (username, display_name, role, password_hash, totp_secret,
                    created_at)
                VALUES (?, ?, 'agent', 'never used', 'never used', ?)
                """,
                [(name, f"Agent {name}", now) for name in names],
            )
        store.groups.create(GROUP, "region")
        store.groups.add_members(GROUP, names)
        ids = []
        for number in range(INCIDENTS):
            alert, _ = store.alerts.publish(
                severity="critical" if number % 2 else "major",
                title=f"Incident {number}",
                body="Move today's visits to phone.",
                playbook_id=None,
                template_ids=[],
                requires_ack=True,
                expires_at=None,
                issued_by="dispatch1",
                audience=[GROUP],
            )
            ids.append(alert.id)
        received = round(time.time() * 1000)
        with store.db.write() as conn:
            conn.executemany(
                """
                INSERT INTO alert_receipts (alert_id, username, device_id, device_name,
                    received_at_ms, shown_at_ms, reported_at_ms)
                VALUES (?, ?, 'laptop', 'Laptop', ?, ?, ?)
                """,
                [
                    (alert_id, name, received, received, received)
                    for alert_id in ids
                    for name in names[::2]
                ],
            )
        return ids
    finally:
        store.close()


class BoardReader:
    """One open board: its live stream, read on a thread; when each `board` event arrived."""

    def __init__(self, url: str, cookies: Any) -> None:
        self._response = requests.get(
            f"{url}/console/board/live",
            cookies=cookies,
            headers={"Accept": "text/event-stream"},
            stream=True,
            timeout=HTTP_TIMEOUT,
        )
        self._response.raise_for_status()
        # (when, the fragment) of each board event.
        self.arrivals: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        event = ""
        data: list[str] = []
        try:
            for line in self._response.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    event, data = line.removeprefix("event: "), []
                elif line.startswith("data: "):
                    data.append(line.removeprefix("data: "))
                elif not line and event == "board":
                    with self._lock:
                        self.arrivals.append((time.perf_counter(), "\n".join(data)))
                    event = ""
        except (requests.RequestException, AttributeError, ValueError):
            # Closed by close(): the read ends.
            return

    def first_with(self, marker: str, count: int) -> float | None:
        """When the first board holding `marker` `count` times arrived, if one has."""
        with self._lock:
            for arrived, html in self.arrivals:
                if html.count(marker) == count:
                    return arrived
        return None

    def close(self) -> None:
        """Stop reading."""
        self._response.close()
        self._thread.join(timeout=5)


def board(ctx: BenchContext) -> dict[str, Any]:
    """A board render over 10 incidents of 1,000 agents, and a posted update reaching 10 boards."""
    renders: list[float] = []
    reached: list[float] = []
    for _ in range(ctx.runs):
        data = ctx.fresh_dir("board-hub")
        ids = fill_board(data)
        store = Store.open(HubSettings(data_dir=data).database_path, SystemClock())
        try:
            settings = HubSettings(data_dir=data)
            renders += [_render_once(store, settings) for _ in range(RENDERS_PER_RUN)]
        finally:
            store.close()
        hub = HubProcess(data, log=ctx.log("board-hub"))
        try:
            reached += _updates_reaching_boards(hub, ids)
        finally:
            hub.stop()
    return {
        "unit": "ms",
        "incidents": INCIDENTS,
        "agents": AGENTS,
        "boards": BOARDS,
        "render_p50": percentile(renders, 0.5),
        "render_max": max(renders),
        "reached_p50": percentile(reached, 0.5),
        "reached_p99": percentile(reached, 0.99),
        "reached_max": max(reached),
        "samples": {"render": renders, "reached": reached},
    }


def _render_once(store: Store, settings: HubSettings) -> float:
    started = time.perf_counter()
    context = {"board": incident_view.board(store, settings), "now": time.time()}
    html = templates.get_template("board_incidents.html").render(context)
    elapsed = (time.perf_counter() - started) * 1000
    if html.count("data-alert-id=") != INCIDENTS:
        raise RuntimeError("the board did not hold every open incident")
    return elapsed


def _updates_reaching_boards(hub: HubProcess, ids: list[str]) -> list[float]:
    """Post updates over HTTP; for each, the time from posting to each open board's new event."""
    console = console_session(hub.url, hub.info["dispatcher"], hub.info["dispatcher_secret"])
    headers = auth_headers(hub.dispatcher_token())
    readers = [BoardReader(hub.url, console.cookies) for _ in range(BOARDS)]
    reached: list[float] = []
    try:
        # Each update is the first of its incident: the boards showing it hold one more card
        # saying "Update 1".
        marker = "<span>Update 1</span>"
        _wait(lambda: all(r.first_with(marker, 0) for r in readers), "the first board render")
        for number in range(UPDATES_PER_RUN):
            started = time.perf_counter()
            response = requests.post(
                f"{hub.url}/v1/alerts/{ids[number % len(ids)]}/updates",
                json={"text": f"Update {number}"},
                headers=headers,
                timeout=HTTP_TIMEOUT,
            )
            response.raise_for_status()
            shown = number + 1
            _wait(
                lambda count=shown: all(r.first_with(marker, count) for r in readers),
                f"update {number} on every board",
            )
            reached += [
                ((reader.first_with(marker, shown) or started) - started) * 1000
                for reader in readers
            ]
    finally:
        for reader in readers:
            reader.close()
    return reached


def _wait(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not arrive within {WAIT_SECONDS:.0f} s")
        threading.Event().wait(0.005)
