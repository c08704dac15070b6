"""The outbox: an ack is on disk before record() returns, every hub answer is applied per item,
rejected acks are kept, and a disk that refuses writes is a clear error with nothing claimed."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from client.core.errors import BadResponse, HubOffline, OutboxError
from client.core.hub_client import HubClient
from client.core.outbox import AckResult, AckState, Outbox, OutboxCounts, OutboxFlusher

ALERT = "6f1c1f7e-8f0e-4d57-9a39-0b4b3e1f2a10"


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    opened = Outbox.open(tmp_path / "outbox.sqlite3")
    yield opened
    opened.close()


def test_recorded_ack_is_on_disk_when_record_returns(tmp_path: Path) -> None:
    path = tmp_path / "data" / "outbox.sqlite3"
    outbox = Outbox.open(path)
    ack = outbox.record(ALERT, "escalated", "Called the shift lead", author="agent")

    # A second, independent connection sees it at once: it is committed, not just buffered.
    with sqlite3.connect(path) as other:
        rows = other.execute("SELECT ack_id, state FROM acks").fetchall()
    assert rows == [(ack.ack_id, "pending")]
    outbox.close()

    reopened = Outbox.open(path)
    assert reopened.get(ack.ack_id) == ack
    assert reopened.pending() == [ack]
    assert ack.acted_at.endswith("Z")
    assert ack.to_json() == {
        "ack_id": ack.ack_id,
        "alert_id": ALERT,
        "action": "escalated",
        "note": "Called the shift lead",
        "acted_at": ack.acted_at,
    }
    reopened.close()


@pytest.mark.parametrize(
    ("alert_id", "action", "note", "message"),
    [
        (ALERT, "ignored", None, "Unknown action"),
        (ALERT, "acknowledged", "x" * 2001, "at most 2000"),
        ("", "acknowledged", None, "alert's id"),
    ],
)
def test_bad_ack_is_refused_and_nothing_recorded(
    outbox: Outbox, alert_id: str, action: str, note: str | None, message: str
) -> None:
    with pytest.raises(OutboxError, match=message):
        outbox.record(alert_id, action, note, author="agent")

    assert outbox.counts() == OutboxCounts(0, 0, 0)


def test_counts_and_events_follow_each_change(outbox: Outbox) -> None:
    seen_counts: list[OutboxCounts] = []
    seen_acks: list[str] = []
    outbox.changed.connect(seen_counts.append)
    outbox.recorded.connect(lambda ack: seen_acks.append(ack.ack_id))

    first = outbox.record(ALERT, "acknowledged", author="agent")
    second = outbox.record(ALERT, "unable", "No phone line", author="agent")
    outbox.apply_results([AckResult(first.ack_id, "accepted")])

    assert seen_acks == [first.ack_id, second.ack_id]
    assert seen_counts == [
        OutboxCounts(1, 0, 0, (("agent", 1),)),
        OutboxCounts(2, 0, 0, (("agent", 2),)),
        OutboxCounts(1, 1, 0, (("agent", 1),)),
    ]
    assert [a.ack_id for a in outbox.for_alert(ALERT)] == [first.ack_id, second.ack_id]


def test_results_mark_synced_and_rejected_acks_are_kept(outbox: Outbox) -> None:
    accepted = outbox.record(ALERT, "acknowledged", author="agent")
    duplicate = outbox.record(ALERT, "acknowledged", author="agent")
    refused = outbox.record("not-an-alert", "acknowledged", author="agent")
    untouched = outbox.record(ALERT, "escalated", author="agent")

    outbox.apply_results(
        [
            AckResult(accepted.ack_id, "accepted"),
            AckResult(duplicate.ack_id, "duplicate"),
            AckResult(refused.ack_id, "rejected", "unknown_alert", "No such alert."),
        ]
    )
    # A later answer cannot move an ack that the hub already settled.
    outbox.apply_results([AckResult(refused.ack_id, "accepted")])

    assert outbox.counts() == OutboxCounts(1, 2, 1, (("agent", 1),))
    assert outbox.pending() == [untouched]
    (kept,) = outbox.rejected()
    assert (kept.ack_id, kept.state, kept.error, kept.detail) == (
        refused.ack_id,
        AckState.REJECTED,
        "unknown_alert",
        "No such alert.",
    )
    synced = outbox.get(duplicate.ack_id)
    assert synced is not None
    assert synced.state is AckState.SYNCED


def test_full_disk_is_a_clear_error_and_nothing_is_claimed(tmp_path: Path) -> None:
    """A full disk cannot be made here without privileges, so the database is capped instead:
    `PRAGMA max_page_count` makes SQLite answer "database or disk is full" exactly as it does
    when the disk itself is full."""
    outbox = Outbox.open(tmp_path / "outbox.sqlite3")
    outbox.record(ALERT, "acknowledged", author="agent")
    pages = outbox._conn.execute("PRAGMA page_count").fetchone()[0]
    outbox._conn.execute(f"PRAGMA max_page_count = {pages}")

    recorded: list[str] = []
    with pytest.raises(OutboxError, match="could NOT be saved") as caught:
        for _ in range(100):
            recorded.append(outbox.record(ALERT, "acknowledged", "n" * 2000, author="agent").ack_id)

    assert "full" in caught.value.message
    assert outbox.counts().pending == 1 + len(recorded)
    outbox.close()
    reopened = Outbox.open(tmp_path / "outbox.sqlite3")
    assert reopened.counts().pending == 1 + len(recorded)
    reopened.record(ALERT, "acknowledged", author="agent")  # room again once the disk has space
    reopened.close()


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root writes through read-only permissions; see the full-disk test"
)
def test_read_only_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    Outbox.open(path).close()
    path.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(OutboxError):
            outbox = Outbox.open(path)
            try:
                outbox.record(ALERT, "acknowledged", author="agent")
            finally:
                outbox.close()
    finally:
        tmp_path.chmod(0o755)
        path.chmod(0o644)


class StandInHub:
    """A loopback HTTP server answering POST /v1/acks with what each test scripts.

    The real hub always answers per the protocol, so it cannot produce the malformed answers
    these tests need; the client side (HubClient, Outbox, OutboxFlusher) is all real.
    """

    def __init__(self, answer: Callable[[list[dict[str, Any]]], Any]) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                acks = json.loads(self.rfile.read(length))["acks"]
                stand_in.batches.append(acks)
                body = json.dumps(answer(acks)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.client = HubClient(
            f"http://127.0.0.1:{self.server.server_address[1]}", allow_plain_http=True
        )
        self.client.set_access_token("stand-in-token")

    def close(self) -> None:
        self.client.close()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def stand_in_hub() -> Iterator[Callable[[Callable[[list[dict[str, Any]]], Any]], StandInHub]]:
    started: list[StandInHub] = []

    def start(answer: Callable[[list[dict[str, Any]]], Any]) -> StandInHub:
        started.append(StandInHub(answer))
        return started[-1]

    yield start
    for hub in started:
        hub.close()


def test_flush_sends_batches_of_at_most_500(outbox: Outbox, stand_in_hub: Any) -> None:
    hub = stand_in_hub(
        lambda acks: {"results": [{"ack_id": a["ack_id"], "status": "accepted"} for a in acks]}
    )
    for _ in range(1203):
        outbox.record(ALERT, "acknowledged", author="agent")

    report = OutboxFlusher(outbox, hub.client, author="agent").flush()

    assert [len(batch) for batch in hub.batches] == [500, 500, 203]
    assert (report.sent, report.synced, report.pending, report.error) == (1203, 1203, 0, None)
    assert outbox.counts() == OutboxCounts(0, 1203, 0)


def test_acks_without_a_per_item_answer_stay_pending(outbox: Outbox, stand_in_hub: Any) -> None:
    # The hub answers for the first ack only, and with a status it does not define for another.
    def answer(acks: list[dict[str, Any]]) -> Any:
        return {
            "results": [
                {"ack_id": acks[0]["ack_id"], "status": "accepted"},
                {"ack_id": acks[1]["ack_id"], "status": "maybe"},
                "garbage",
            ]
        }

    hub = stand_in_hub(answer)
    acks = [outbox.record(ALERT, "acknowledged", author="agent") for _ in range(3)]

    report = OutboxFlusher(outbox, hub.client, author="agent").flush()

    assert isinstance(report.error, BadResponse)
    assert report.retry
    assert len(hub.batches) == 1
    assert [a.ack_id for a in outbox.pending()] == [acks[1].ack_id, acks[2].ack_id]
    assert outbox.counts() == OutboxCounts(2, 1, 0, (("agent", 2),))


@pytest.mark.parametrize("body", [None, [], {"results": "all good"}, {"status": "ok"}])
def test_malformed_hub_answer_marks_nothing(outbox: Outbox, stand_in_hub: Any, body: Any) -> None:
    hub = stand_in_hub(lambda acks: body)
    outbox.record(ALERT, "acknowledged", author="agent")

    report = OutboxFlusher(outbox, hub.client, author="agent").flush()

    assert isinstance(report.error, BadResponse)
    assert outbox.counts() == OutboxCounts(1, 0, 0, (("agent", 1),))


def test_unreachable_hub_leaves_everything_pending(outbox: Outbox) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on `port` now: connections are refused.
    hub = HubClient(f"http://127.0.0.1:{port}", allow_plain_http=True, connect_timeout=2.0)
    hub.set_access_token("unused")
    outbox.record(ALERT, "acknowledged", author="agent")

    report = OutboxFlusher(outbox, hub, author="agent").flush()

    assert isinstance(report.error, HubOffline)
    assert report.retry
    assert (report.sent, report.pending) == (0, 1)
    hub.close()
