"""Every network fault, during an ack flush and during the alert stream: the client shows the
right state within 5 s, recovers by itself when the fault ends, and loses and doubles nothing.

The client core is real (HubClient, Cache, Outbox, SyncEngine, AlertStream, wired as the app
wires them) and reaches a real hub through a FaultProxy on 127.0.0.1. Acks are counted on the hub
through the dispatcher's GET /v1/alerts/{id}/acks; alerts by deliveries per id on the client.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.core.alert_stream import StreamPhase
from client.core.sync import ConnectionState
from hub.server import EmbeddedHub
from tests.faultproxy import FaultProxy, Resolver
from tests.hubtools import wait_until
from tests.reliability.bench import AgentDesk, Dispatcher
from tests.reliability.exactly_once import assert_exactly_once
from tests.reliability.faults import FAULTS, Fault, end_faults

SHOWN_WITHIN = 5.0
# Recovery waits out at most one read or heartbeat timeout (1 s) and one retry (under 0.5 s).
RECOVERED_WITHIN = 10.0
ACKS_DURING_FAULT = 3


@pytest.fixture
def proxy(shared_hub: EmbeddedHub) -> Iterator[FaultProxy]:
    started = FaultProxy((shared_hub.host, shared_hub.port)).start()
    yield started
    started.stop()


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    fake = Resolver()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


def _failed_reconnect_since(desk: AgentDesk, mark: int) -> bool:
    """The stream went from connecting to disconnected after `mark`: a reconnect failed."""
    phases = desk.stream_phases_since(mark)
    return any(
        before is StreamPhase.CONNECTING and after is StreamPhase.DISCONNECTED
        for before, after in itertools.pairwise(phases)
    )


def _during_flush(
    desk: AgentDesk, fault: Fault, proxy: FaultProxy, resolver: Resolver, alert_id: str
) -> None:
    fault.start(proxy, resolver)
    for _ in range(ACKS_DURING_FAULT):
        desk.record_ack(alert_id)
    if fault.breaks_flush:
        try:
            wait_until(
                lambda: desk.engine.status.state is ConnectionState.OFFLINE, timeout=SHOWN_WITHIN
            )
        except AssertionError:
            raise AssertionError(f"still {desk.engine.status}") from None
        status = desk.engine.status
        assert status.pending_acks == ACKS_DURING_FAULT
        assert fault.flush_reason in status.detail, status.detail
        # Acknowledging while offline still works: it is on disk, waiting.
        desk.record_ack(alert_id)
    else:
        wait_until(
            lambda: (
                desk.engine.status.state is ConnectionState.ONLINE
                and desk.engine.status.pending_acks == 0
            ),
            timeout=SHOWN_WITHIN,
        )


def _during_stream(
    desk: AgentDesk, fault: Fault, proxy: FaultProxy, resolver: Resolver, dispatcher: Dispatcher
) -> None:
    mark = desk.stream_state_count()
    fault.start(proxy, resolver)
    published = dispatcher.publish(f"{fault.name} during the stream")
    if fault.breaks_stream:
        wait_until(lambda: _failed_reconnect_since(desk, mark), timeout=SHOWN_WITHIN)
        assert StreamPhase.CONNECTED not in desk.stream_phases_since(mark)
        assert desk.stream.state.reason, "a disconnected stream says why"
    else:
        wait_until(
            lambda: (
                desk.deliveries()[published] == 1
                and desk.stream.state.phase is StreamPhase.CONNECTED
            ),
            timeout=SHOWN_WITHIN,
        )


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
@pytest.mark.parametrize("phase", ["ack_flush", "alert_stream"])
def test_fault_is_shown_then_recovered_with_nothing_lost_or_doubled(
    phase: str,
    fault: Fault,
    proxy: FaultProxy,
    resolver: Resolver,
    dispatcher: Dispatcher,
    agent_access_token: str,
    tmp_path: Path,
) -> None:
    hub_url = f"http://{resolver.name}:{proxy.port}" if fault.by_name else proxy.url
    desk = AgentDesk(hub_url, agent_access_token, tmp_path)
    try:
        desk.start()
        alert_id = dispatcher.publish(f"{fault.name} during {phase}")
        wait_until(lambda: desk.in_step() and desk.deliveries()[alert_id] == 1, timeout=10)

        if phase == "ack_flush":
            _during_flush(desk, fault, proxy, resolver, alert_id)
        else:
            _during_stream(desk, fault, proxy, resolver, dispatcher)

        end_faults(proxy, resolver)
        after = dispatcher.publish(f"after {fault.name}")
        desk.record_ack(alert_id)
        wait_until(
            lambda: desk.in_step() and desk.deliveries()[after] == 1, timeout=RECOVERED_WITHIN
        )

        assert_exactly_once(
            "acks (outbox vs hub)", desk.recorded_acks(alert_id), dispatcher.acks_on_hub(alert_id)
        )
        assert_exactly_once(
            "alerts (hub vs deliveries)", dispatcher.kept_alert_ids(), desk.delivered_ids()
        )
    finally:
        end_faults(proxy, resolver)
        desk.close()
