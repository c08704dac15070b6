"""One hub process SIGKILLed mid-incident behind the front door: 200 laptops streaming through
nginx, alerts published and acknowledged before and after the kill; what each laptop saw and what
the hub kept. Run by the failover test (correctness) and benchmark 16 (reconnect times)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.deploy.front_door import acks_of, close_front_door, open_front_door, publish
from tests.deploy.stream_fleet import StreamClient, StreamFleet
from tests.hubtools import wait_until

FLEET = 200
ALERTS_BEFORE = 2
ALERTS_AFTER = 2
CONNECT_ALL_SECONDS = 60.0
ACKED_WITHIN_SECONDS = 60.0


@dataclass
class FailoverRun:
    """What the laptops saw and the hub kept, around the moment one process was killed."""

    clients: list[StreamClient]
    expected: list[str]
    stored: dict[str, list[dict[str, Any]]]
    killed_at: float

    def broken(self) -> list[StreamClient]:
        """The laptops whose stream the kill ended."""
        return [c for c in self.clients if any(t >= self.killed_at for t in c.ended_at)]

    def reconnect_seconds(self) -> dict[str, float | None]:
        """For each broken stream, seconds from the kill until it was live again (None: never)."""
        back: dict[str, float | None] = {}
        for client in self.broken():
            after = [t - self.killed_at for t in client.connected_at if t >= self.killed_at]
            back[client.username] = min(after) if after else None
        return back


def run_failover(root: Path, database_url: str) -> FailoverRun:
    """Two processes on `database_url` behind nginx, FLEET laptops; the first process is
    SIGKILLed while the third alert's acks are on their way."""
    names = [f"laptop{n:03d}" for n in range(FLEET)]
    door = open_front_door(root, names, database_url)
    fleet = StreamFleet(door.proxy.https_port, door.proxy.tls.client_context(), door.agents)
    try:
        fleet.start()
        wait_until(
            lambda: all(c.connected_at for c in fleet.clients),
            timeout=CONNECT_ALL_SECONDS,
            interval=0.1,
        )
        alerts = [publish(door, f"Video visits down, part {n}") for n in range(ALERTS_BEFORE)]

        # Mid-incident: an alert is going out and its acks are on their way when one dies.
        alerts.append(publish(door, "Video visits down, the kill"))
        wait_until(
            lambda: sum(alerts[-1]["id"] in c.ack_ids for c in fleet.clients) >= FLEET // 4,
            timeout=30,
            interval=0.01,
        )
        killed_at = time.monotonic()
        door.hubs[0].kill()
        alerts += [publish(door, f"Video visits down, after {n}") for n in range(ALERTS_AFTER)]

        expected = [alert["id"] for alert in alerts]
        try:
            wait_until(
                lambda: all(len(c.ack_results) == len(expected) for c in fleet.clients),
                timeout=ACKED_WITHIN_SECONDS,
                interval=0.1,
            )
        except AssertionError:
            raise AssertionError(f"not every alert was acked: {fleet.summary()}") from None
        stored = {alert_id: acks_of(door, alert_id) for alert_id in expected}
    finally:
        fleet.stop()
        close_front_door(door)
    return FailoverRun(fleet.clients, expected, stored, killed_at)
