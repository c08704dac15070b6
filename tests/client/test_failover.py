"""Client failover between two real hub processes on one hub (the same SQLite data folder).

The preferred address is a `vigil-hub serve` process, so it can be SIGKILLed mid-stream; the backup
is an embedded hub in this process. The backup publishes (a dispatcher's console); the preferred
sees those alerts by polling the shared database, as any second process does.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keyring
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from client.core.alert_stream import AlertStream, StreamPhase, StreamState
from client.core.auth import Authenticator
from client.core.backoff import Backoff
from client.core.cache import Cache
from client.core.errors import HubOffline, PolicyError, ServerError, SettingsError
from client.core.hub_address import check_hub_urls, same_address_key
from client.core.hub_client import HubClient
from client.core.hub_route import HubRoute, RouteChange
from client.core.models import Alert
from client.core.outbox import Outbox
from client.core.paths import AppPaths
from client.core.policy import Policy, load_policy
from client.core.profile_lock import ProfileLock
from client.core.settings import Settings
from client.core.status import AppStatus, stream_health, tray_look
from client.core.sync import FixedSession, SyncEngine
from client.core.token_vault import SERVICE, TokenVault
from hub.alerts_service import publish_alert
from hub.config import HubSettings
from hub.server import EmbeddedHub
from hub.storage import Store
from tests.faultproxy import FaultProxy, HttpAnswer
from tests.hubtools import (
    DEFAULT_PASSWORD,
    auth_headers,
    create_user,
    next_code,
    sign_in,
    wait_until,
)
from tests.reliability.bench import Dispatcher, trust_on_first_use
from tests.reliability.exactly_once import assert_exactly_once

WAIT = 15.0
ALERTS = 30
ACKS = 20
# Pacing, not synchronisation: alerts keep coming while the kill lands.
PUBLISH_EVERY = 0.03


def quick_probe() -> Backoff:
    # The production probe waits 15 s and more; these keep the return test short.
    return Backoff(first=0.2, factor=2.0, cap=0.8, jitter=0.2)


class HubProcess:
    """`vigil-hub serve` on 127.0.0.1 in its own process, for SIGKILL."""

    def __init__(self, data_dir: Path, port: int = 0, *options: str) -> None:
        serve = ["serve", "--port", str(port), "--data", str(data_dir), *options]
        self._process = subprocess.Popen(
            [sys.executable, "-m", "hub", *serve],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self._process.stdout is not None
        banner = self._process.stdout.readline()
        assert banner.startswith("Vigil hub on http://"), banner
        self.url = banner.split()[3]
        self.port = int(self.url.rsplit(":", 1)[1])
        # The banner comes before uvicorn serves: wait until it answers.
        wait_until(self._answers, timeout=WAIT)

    def _answers(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        """SIGKILL: no goodbye to open streams, the port simply refuses from now on."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(timeout=WAIT)
        if self._process.stdout is not None:
            self._process.stdout.close()


@pytest.fixture
def backup_hub(tmp_path: Path) -> Iterator[EmbeddedHub]:
    settings = HubSettings(data_dir=tmp_path / "hub-data", signin_refusal_delay_seconds=0)
    hub = EmbeddedHub(settings).start()
    yield hub
    hub.stop()


@pytest.fixture
def start_preferred(backup_hub: EmbeddedHub) -> Iterator[Callable[..., HubProcess]]:
    started: list[HubProcess] = []

    def start(port: int = 0, *options: str) -> HubProcess:
        process = HubProcess(backup_hub.settings.data_dir, port, *options)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def dispatcher(backup_hub: EmbeddedHub) -> Iterator[Dispatcher]:
    dispatcher = Dispatcher(backup_hub)
    yield dispatcher
    dispatcher.close()


@pytest.fixture
def agent_token(backup_hub: EmbeddedHub) -> str:
    secret = create_user(backup_hub.store, "agent")
    token: str = sign_in(backup_hub.url, "agent", DEFAULT_PASSWORD, secret)["access_token"]
    return token


class Desk:
    """A client core on both addresses: hub client, cache, stream and sync, and what it saw."""

    def __init__(self, urls: list[str], token: str, data_dir: Path) -> None:
        self.hub = HubClient(urls, connect_timeout=2.0, probe_backoff=quick_probe())
        self.hub.set_access_token(token)
        self.cache = Cache.open(data_dir / "cache.sqlite3")
        self.outbox = Outbox.open(data_dir / "outbox.sqlite3")
        self.stream = AlertStream(self.hub, self.cache, current_user=lambda: "agent")
        self.sync = SyncEngine(
            self.hub,
            self.cache,
            self.outbox,
            verifier_factory=trust_on_first_use,
            session=FixedSession("agent"),
            alert_catch_up=self.stream.catch_up,
        )
        self._lock = threading.Lock()
        self.delivered: collections.Counter[str] = collections.Counter()
        # Every alert id offered to the cache (stream, replay and catch-up), doubles included.
        self.offered: collections.Counter[str] = collections.Counter()
        self.states: list[tuple[float, StreamState, str]] = []
        self.changes: list[RouteChange] = []
        self.stream.alert_received.connect(self._on_alert)
        self.stream.state_changed.connect(self._on_state)
        self.hub.route.changed.connect(self._on_route)
        # As CoreServices wires it: a receipt goes as soon as it is queued.
        self.stream.receipts_queued.connect(lambda _count: self.sync.request_flush())
        store = self.cache.store_alerts

        def counting_store(alerts: list[Alert], **kwargs: Any) -> Any:
            with self._lock:
                self.offered.update(alert.id for alert in alerts)
            return store(alerts, **kwargs)

        self.cache.store_alerts = counting_store  # type: ignore[method-assign]

    def _on_alert(self, alert: Alert) -> None:
        with self._lock:
            self.delivered[alert.id] += 1

    def _on_state(self, state: StreamState) -> None:
        with self._lock:
            self.states.append((time.monotonic(), state, self.hub.current_url))
        if state.phase is StreamPhase.CONNECTED:
            # As CoreServices wires it: a (re)connected stream syncs, acks included.
            self.sync.request_sync()

    def _on_route(self, change: RouteChange) -> None:
        with self._lock:
            self.changes.append(change)
        # As CoreServices wires it.
        self.stream.address_changed()

    def start(self) -> None:
        self.stream.start()
        self.sync.start()

    def connected_on(self, url: str, after: float = 0.0) -> float | None:
        """When the stream last connected through `url` after `after` (monotonic), or None."""
        with self._lock:
            times = [
                at
                for at, state, current in self.states
                if state.phase is StreamPhase.CONNECTED and current == url and at > after
            ]
        return times[-1] if times else None

    def phases_between(self, after: float, until: StreamPhase) -> list[StreamPhase]:
        """The stream's phases after `after` (monotonic), up to the first `until`."""
        phases: list[StreamPhase] = []
        with self._lock:
            for at, state, _ in self.states:
                if at <= after:
                    continue
                phases.append(state.phase)
                if state.phase is until:
                    break
        return phases

    def phase(self) -> StreamPhase:
        return self.stream.state.phase

    def has(self, ids: list[str]) -> bool:
        with self._lock:
            return set(ids) <= set(self.delivered)

    def close(self) -> None:
        self.sync.stop()
        self.stream.stop()
        self.hub.close()
        self.outbox.close()
        self.cache.close()


@pytest.fixture
def make_desk(tmp_path: Path) -> Iterator[Callable[[list[str], str], Desk]]:
    desks: list[Desk] = []

    def make(urls: list[str], token: str) -> Desk:
        folder = tmp_path / f"client-{len(desks)}"
        folder.mkdir()
        desk = Desk(urls, token, folder)
        desks.append(desk)
        return desk

    yield make
    for desk in desks:
        desk.close()


def publish_steadily(dispatcher: Dispatcher, count: int, ids: list[str]) -> threading.Thread:
    def run() -> None:
        for number in range(count):
            ids.append(dispatcher.publish(f"Outage update {number}"))
            threading.Event().wait(PUBLISH_EVERY)

    thread = threading.Thread(target=run, name="publisher", daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_sigkill_of_the_preferred_mid_stream_loses_and_doubles_no_alert_nor_ack(
    backup_hub: EmbeddedHub,
    start_preferred: Callable[..., HubProcess],
    dispatcher: Dispatcher,
    agent_token: str,
    make_desk: Callable[[list[str], str], Desk],
) -> None:
    preferred = start_preferred()
    desk = make_desk([preferred.url, backup_hub.url], agent_token)
    desk.start()
    wait_until(lambda: desk.connected_on(preferred.url) is not None, timeout=WAIT)
    first = dispatcher.publish("Video visits down in the West region")
    wait_until(lambda: desk.has([first]), timeout=WAIT)

    ids: list[str] = [first]
    publisher = publish_steadily(dispatcher, ALERTS, ids)
    recorded: list[str] = []
    wait_until(lambda: len(ids) >= ALERTS // 3, timeout=WAIT)
    for _ in range(ACKS // 2):
        recorded.append(desk.outbox.record(first, "acknowledged", author="agent").ack_id)
    killed_at = time.monotonic()
    preferred.kill()
    # Acks recorded while the client is switching.
    for _ in range(ACKS - ACKS // 2):
        recorded.append(desk.outbox.record(first, "acknowledged", author="agent").ack_id)
    wait_until(lambda: desk.connected_on(backup_hub.url, killed_at) is not None, timeout=WAIT)
    publisher.join(WAIT)
    assert not publisher.is_alive()
    wait_until(lambda: desk.has(ids), timeout=WAIT)
    wait_until(lambda: desk.outbox.counts().pending_for("agent") == 0, timeout=WAIT)

    # One reconnect: the stream lost the preferred, and its next attempt (after the first,
    # sub-second wait) reached the backup, without waiting out a longer backoff or trying the
    # dead address twice. How many seconds that takes is benchmarked, not asserted here.
    assert (
        desk.phases_between(killed_at, StreamPhase.CONNECTED).count(StreamPhase.DISCONNECTED) == 1
    ), desk.states
    assert desk.hub.current_url == backup_hub.url
    assert [(c.previous, c.current) for c in desk.changes] == [(preferred.url, backup_hub.url)]
    # The log names the address and why (a refused connect or the dropped keep-alive), nothing
    # more: no token, no request.
    assert desk.changes[0].reason in {
        f"{preferred.url} failed: the connection was refused",
        f"{preferred.url} failed: the connection failed or was lost",
    }
    assert_exactly_once("alerts (published vs delivered)", ids, list(desk.delivered.elements()))
    assert sorted(alert.id for alert in desk.cache.alerts()) == sorted(ids)
    # The replay on the backup and the catch-up both offered alerts the client already had:
    # the cache's dedupe by seq, not luck, kept them single.
    assert max(desk.offered.values()) >= 2, desk.offered
    assert_exactly_once("acks (outbox vs hub)", recorded, dispatcher.acks_on_hub(first))
    # Delivery receipts follow the address in use too: every alert's receipt reached the hub.
    wait_until(lambda: desk.cache.unsent_receipts(author="agent") == [], timeout=WAIT)
    receipts = [desk.cache.receipt(alert_id, author="agent") for alert_id in ids]
    assert all(r is not None and r.received_sent and r.refused is None for r in receipts)


@pytest.mark.slow
def test_the_client_goes_back_to_the_preferred_once_it_answers_again(
    backup_hub: EmbeddedHub,
    start_preferred: Callable[..., HubProcess],
    dispatcher: Dispatcher,
    agent_token: str,
    make_desk: Callable[[list[str], str], Desk],
) -> None:
    preferred = start_preferred()
    desk = make_desk([preferred.url, backup_hub.url], agent_token)
    desk.start()
    wait_until(lambda: desk.connected_on(preferred.url) is not None, timeout=WAIT)
    killed_at = time.monotonic()
    preferred.kill()
    wait_until(lambda: desk.connected_on(backup_hub.url, killed_at) is not None, timeout=WAIT)
    assert desk.hub.route.on_backup

    back_at = time.monotonic()
    again = start_preferred(preferred.port)
    wait_until(lambda: desk.connected_on(again.url, back_at) is not None, timeout=WAIT)
    assert not desk.hub.route.on_backup
    assert [c.current for c in desk.changes] == [backup_hub.url, preferred.url]
    assert "answers" in desk.changes[-1].reason

    # The stream really is on the preferred now: an alert published while the backup is gone
    # (straight into the shared database, as `vigil-hub alert publish` does) still arrives.
    backup_hub.stop()
    store = Store.open(backup_hub.settings.database_path, backup_hub.settings.clock)
    try:
        alert = publish_alert(
            store, backup_hub.settings, severity="major", title="Phones back", body="Details."
        )
    finally:
        store.close()
    wait_until(lambda: desk.has([alert["id"]]), timeout=WAIT)
    assert desk.delivered[alert["id"]] == 1


@pytest.mark.slow
def test_a_preferred_full_of_streams_sends_the_stream_to_the_backup_and_loses_nothing(
    backup_hub: EmbeddedHub,
    start_preferred: Callable[..., HubProcess],
    dispatcher: Dispatcher,
    agent_token: str,
    make_desk: Callable[[list[str], str], Desk],
) -> None:
    # Two connections: room for one stream, the other kept for requests.
    preferred = start_preferred(0, "--max-connections", "2")
    secret = create_user(backup_hub.store, "other")
    other = sign_in(backup_hub.url, "other", DEFAULT_PASSWORD, secret)["access_token"]
    with requests.get(
        f"{preferred.url}/v1/alerts/stream",
        headers=auth_headers(other),
        stream=True,
        timeout=(WAIT, WAIT),
    ) as held:
        assert held.status_code == 200
        desk = make_desk([preferred.url, backup_hub.url], agent_token)
        desk.start()
        wait_until(lambda: desk.connected_on(backup_hub.url) is not None, timeout=WAIT)
        assert "HTTP 503" in desk.changes[0].reason
        first = dispatcher.publish("Phones down")
        wait_until(lambda: desk.has([first]), timeout=WAIT)

    # The other agent's stream ended: the place is free, and the agent's stream takes it.
    freed_at = time.monotonic()
    wait_until(lambda: desk.connected_on(preferred.url, freed_at) is not None, timeout=WAIT)
    second = dispatcher.publish("Phones back")
    wait_until(lambda: desk.has([second]), timeout=WAIT)
    assert (desk.delivered[first], desk.delivered[second]) == (1, 1)


@pytest.mark.slow
def test_both_addresses_down_says_unreachable_then_recovers(
    start_preferred: Callable[..., HubProcess],
    agent_token: str,
    make_desk: Callable[[list[str], str], Desk],
) -> None:
    # Two `vigil-hub serve` processes this time, so both can die at once the hard way.
    preferred, backup = start_preferred(), start_preferred()
    desk = make_desk([preferred.url, backup.url], agent_token)
    desk.start()
    wait_until(lambda: desk.connected_on(preferred.url) is not None, timeout=WAIT)

    killed_at = time.monotonic()
    preferred.kill()
    backup.kill()
    wait_until(lambda: desk.phase() is StreamPhase.DISCONNECTED, timeout=WAIT)
    wait_until(
        lambda: (
            desk.phases_between(killed_at, StreamPhase.CONNECTED).count(StreamPhase.DISCONNECTED)
            >= 3
        ),
        timeout=WAIT,
    )
    # Three reconnect attempts, each trying both addresses once, plus sync's own backed-off
    # tries: a handful of switches, not a storm of retries without a wait.
    assert len(desk.changes) <= 20, len(desk.changes)
    down = tray_look(look_of(desk), now=datetime.now(UTC))
    assert down.icon == "unreachable"
    assert down.tooltip.startswith("Hub unreachable at any of its 2 addresses")
    assert "Connected" not in down.tooltip

    back_at = time.monotonic()
    # The backup comes back first (same port, same data): the client uses it, and says so.
    start_preferred(backup.port)
    wait_until(lambda: desk.connected_on(backup.url, back_at) is not None, timeout=WAIT)
    wait_until(lambda: desk.phase() is StreamPhase.CONNECTED, timeout=WAIT)
    up = tray_look(look_of(desk), now=datetime.now(UTC))
    assert up.icon == "connected"
    assert up.tooltip.startswith(f"Connected (backup hub {backup.url})")


def look_of(desk: Desk) -> AppStatus:
    """What the tray would be given for this desk (as StatusPresenter gathers it)."""
    route = desk.hub.route
    return AppStatus(
        connection="online",
        signed_in_user="agent",
        stream=stream_health(desk.phase(), "starting"),
        backup_hub=desk.hub.current_url if route.on_backup else None,
        hub_addresses=len(route.urls),
    )


# Requests on their own: which failures move to the next address, and which are sent again.


@pytest.fixture
def front(hub: EmbeddedHub) -> Iterator[FaultProxy]:
    """A second address of `hub` (a proxy in front of it), listed first: the preferred."""
    proxy = FaultProxy((hub.host, hub.port)).start()
    yield proxy
    proxy.stop()


def closed_port_url() -> str:
    """A loopback address where nothing listens: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def an_ack(tmp_path: Path, alert_id: str) -> dict[str, Any]:
    outbox = Outbox.open(tmp_path / "outbox.sqlite3")
    try:
        body: dict[str, Any] = outbox.record(alert_id, "acknowledged", author="agent").to_json()
        return body
    finally:
        outbox.close()


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_get_answered_502_503_or_504_is_sent_again_at_once_to_the_next_address(
    hub: EmbeddedHub, front: FaultProxy, status: int
) -> None:
    client = HubClient([front.url, hub.url])
    try:
        front.answer_with(HttpAnswer(status, "Unavailable", "text/html", b"<h1>down</h1>"))
        keys = client.get_json("/v1/keys", auth=False)
        assert keys["content_keys"], keys
        assert client.current_url == hub.url
        assert client.route.on_backup and client.route.backup_number() == 1
    finally:
        client.close()


def test_a_500_is_the_hubs_own_error_and_moves_nothing(hub: EmbeddedHub, front: FaultProxy) -> None:
    # Every address shares one database: a hub bug answers the same everywhere.
    client = HubClient([front.url, hub.url])
    try:
        front.answer_with(HttpAnswer(500, "Internal Server Error", "text/plain", b"boom"))
        with pytest.raises(ServerError):
            client.get_json("/v1/keys", auth=False)
        assert client.current_url == front.url
    finally:
        client.close()


def test_a_post_the_hub_may_have_received_is_not_sent_twice_by_the_client(
    hub: EmbeddedHub, front: FaultProxy, tmp_path: Path
) -> None:
    dispatcher = Dispatcher(hub)
    secret = create_user(hub.store, "agent")
    token = sign_in(hub.url, "agent", DEFAULT_PASSWORD, secret)["access_token"]
    alert_id = dispatcher.publish("Phones down")
    client = HubClient([front.url, hub.url])
    client.set_access_token(token)
    ack = an_ack(tmp_path, alert_id)
    try:
        front.answer_with(HttpAnswer(504, "Gateway Timeout", "text/plain", b""))
        with pytest.raises(ServerError, match="HTTP 504"):
            client.post_json("/v1/acks", {"acks": [ack]})
        # Not resent here: the caller's own retry decides (the outbox's, idempotent by ack id).
        assert dispatcher.acks_on_hub(alert_id) == []
        assert client.current_url == hub.url
        client.post_json("/v1/acks", {"acks": [ack]})
        assert dispatcher.acks_on_hub(alert_id) == [ack["ack_id"]]
    finally:
        client.close()
        dispatcher.close()


def test_a_post_that_never_left_this_computer_goes_to_the_next_address_at_once(
    hub: EmbeddedHub, tmp_path: Path
) -> None:
    dispatcher = Dispatcher(hub)
    secret = create_user(hub.store, "agent")
    token = sign_in(hub.url, "agent", DEFAULT_PASSWORD, secret)["access_token"]
    alert_id = dispatcher.publish("Phones down")
    dead = closed_port_url()
    client = HubClient([dead, hub.url])
    client.set_access_token(token)
    ack = an_ack(tmp_path, alert_id)
    try:
        answer = client.post_json("/v1/acks", {"acks": [ack]})
        assert answer["results"][0]["status"] in ("accepted", "duplicate"), answer
        assert dispatcher.acks_on_hub(alert_id) == [ack["ack_id"]]
        assert client.current_url == hub.url
    finally:
        client.close()
        dispatcher.close()


def test_every_address_down_tries_each_once_and_says_the_hub_cannot_be_reached() -> None:
    first, second = closed_port_url(), closed_port_url()
    client = HubClient([first, second])
    changes: list[RouteChange] = []
    client.route.changed.connect(changes.append)
    try:
        with pytest.raises(HubOffline, match="connection was refused"):
            client.get_json("/v1/keys", auth=False)
        assert [(c.previous, c.current) for c in changes] == [(first, second), (second, first)]
        assert client.current_url == first
    finally:
        client.close()


def test_forty_requests_failing_at_once_move_the_route_once() -> None:
    route = HubRoute(["https://hub-a.example.org", "https://hub-b.example.org"])
    changes: list[RouteChange] = []
    route.changed.connect(changes.append)
    barrier = threading.Barrier(40)

    def fail() -> None:
        barrier.wait(WAIT)
        route.failed("https://hub-a.example.org", "the connection was refused")

    threads = [threading.Thread(target=fail) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert len(changes) == 1
    assert route.current == "https://hub-b.example.org"


def test_the_preferred_is_probed_with_growing_waits_until_it_answers() -> None:
    answers = iter([False, False, False, True])
    probed: list[tuple[float, str]] = []
    probe_done = threading.Event()

    def probe(url: str) -> bool:
        probed.append((time.monotonic(), url))
        answered = next(answers)
        if answered:
            probe_done.set()
        return answered

    route = HubRoute(
        ["https://hub-a.example.org", "https://hub-b.example.org"],
        probe=probe,
        probe_backoff=Backoff(first=0.02, factor=2.0, cap=1.0, jitter=0.0),
    )
    try:
        route.failed("https://hub-a.example.org", "the connection was refused")
        assert probe_done.wait(WAIT)
        wait_until(lambda: not route.on_backup, timeout=WAIT)
        assert [url for _, url in probed] == ["https://hub-a.example.org"] * 4
        gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(probed)]
        # Each wait at least doubles (jitter off): no storm of probes.
        assert gaps[1] >= 0.04 - 0.005 and gaps[2] >= 0.08 - 0.005, gaps
    finally:
        route.close()


def test_a_preferred_that_fails_again_soon_after_returning_keeps_the_grown_probe_waits() -> None:
    now = [1000.0]
    backoff = Backoff(first=1.0, factor=2.0, cap=64.0, jitter=0.0)
    route = HubRoute(
        ["https://a.example.org", "https://b.example.org"],
        probe_backoff=backoff,
        clock=lambda: now[0],
    )
    route.failed("https://a.example.org", "refused")
    # Four probes found the preferred still down (what the probe thread takes from the backoff).
    for _ in range(4):
        backoff.next_delay()
    route.preferred_answered()
    now[0] += 30.0
    route.failed("https://a.example.org", "refused")
    assert backoff.next_delay() == 16.0
    route.preferred_answered()
    now[0] += 3600.0
    route.failed("https://a.example.org", "refused")
    assert backoff.next_delay() == 1.0


# IT's list of addresses in the policy.


def policy_file(tmp_path: Path, content: dict[str, Any]) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def settings_under(tmp_path: Path, policy: dict[str, Any]) -> Settings:
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    return Settings.load(paths, load_policy(policy_file(tmp_path, policy)))


def test_a_policy_lists_the_addresses_preferred_first_and_locks_the_preferred(
    tmp_path: Path,
) -> None:
    settings = settings_under(
        tmp_path,
        {"hub_urls": ["https://hub-a.example.org/", "https://HUB-B.example.org:8443/vigil"]},
    )
    assert settings.hub_addresses() == (
        "https://hub-a.example.org",
        "https://HUB-B.example.org:8443/vigil",
    )
    assert settings.get("hub_url") == "https://hub-a.example.org"
    assert settings.is_locked("hub_url") and settings.is_locked("hub_urls")
    with pytest.raises(SettingsError, match="IT policy"):
        settings.set("hub_urls", ["https://evil.example.org"])


def test_a_single_hub_url_still_works_alone_and_beside_a_list_that_starts_with_it(
    tmp_path: Path,
) -> None:
    alone = settings_under(tmp_path, {"hub_url": "https://hub-a.example.org"})
    assert alone.hub_addresses() == ("https://hub-a.example.org",)
    both = settings_under(
        tmp_path,
        {
            "hub_url": "https://hub-a.example.org",
            "hub_urls": ["https://hub-a.example.org", "https://hub-b.example.org"],
        },
    )
    assert both.hub_addresses() == ("https://hub-a.example.org", "https://hub-b.example.org")


def test_the_users_settings_file_cannot_add_a_hub_address(tmp_path: Path) -> None:
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    paths.settings_file.parent.mkdir(parents=True)
    paths.settings_file.write_text(
        json.dumps({"hub_url": "https://hub-a.example.org", "hub_urls": ["https://evil.example"]})
    )
    settings = Settings.load(paths, Policy())
    assert settings.hub_addresses() == ("https://hub-a.example.org",)
    assert any("only your IT policy" in warning for warning in settings.warnings)


def test_the_environment_never_widens_the_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Proxies and CA bundles from the environment are the usual ways to widen trust.
    for name in ("VIGIL_HUB_URL", "VIGIL_HUB_URLS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, "https://evil.example.org")
    settings = settings_under(tmp_path, {"hub_urls": ["https://hub-a.example.org"]})
    assert settings.hub_addresses() == ("https://hub-a.example.org",)
    client = HubClient(settings.hub_addresses())
    try:
        assert client.route.urls == ("https://hub-a.example.org",)
    finally:
        client.close()


HOSTILE_LISTS: list[tuple[str, Any, str]] = [
    ("empty list", [], "'hub_urls' must list at least one hub address"),
    ("a string", "https://hub-a.example.org", "'hub_urls' must be a list"),
    ("an object", {"a": "https://hub-a.example.org"}, "'hub_urls' must be a list"),
    (
        "100 entries",
        [f"https://hub-{n}.example.org" for n in range(100)],
        "'hub_urls' lists 100 addresses; at most 8",
    ),
    (
        "plain http to another computer",
        ["https://hub-a.example.org", "http://hub-b.example.org"],
        "'hub_urls' entry 2 ('http://hub-b.example.org') uses plain http://",
    ),
    (
        "the same address twice",
        ["https://hub-a.example.org", "https://hub-a.example.org/"],
        "'hub_urls' entry 2 ('https://hub-a.example.org/') is the same address as entry 1",
    ),
    (
        "the same address in other words",
        ["https://hub-a.example.org", "https://HUB-A.example.org:443"],
        "entry 2 ('https://HUB-A.example.org:443') is the same address as entry 1",
    ),
    (
        "a right-to-left override",
        ["https://hub-a.example.org", "https://hub-b.\u202egro.elpmaxe"],
        "'hub_urls' entry 2 ('https://hub-b.\\u202egro.elpmaxe') contains control or invisible",
    ),
    (
        "a zero-width space",
        ["https://hub\u200b-a.example.org"],
        "entry 1 ('https://hub\\u200b-a.example.org') contains control or invisible",
    ),
    ("a number", ["https://hub-a.example.org", 8600], "'hub_urls' entry 2 must be a URL"),
    ("null inside", [None], "'hub_urls' entry 1 must be a URL"),
    (
        "HTML",
        ["<script>alert(1)</script>"],
        "'hub_urls' entry 1 ('<script>alert(1)</script>') must be a URL such as",
    ),
    (
        "a password in the address",
        ["https://it:secret@hub-a.example.org"],
        "entry 1 ('https://…@hub-a.example.org') must not contain a user name or password",
    ),
    (
        "a password holding @ and :",
        ["https://it:s3cr@t:x@hub-a.example.org/vigil"],
        "entry 1 ('https://…@hub-a.example.org/vigil') must not contain a user name or",
    ),
    ("empty text", [""], "'hub_urls' entry 1 ('') must be a URL"),
    (
        "huge",
        ["https://" + "a" * 100_000 + ".example.org"],
        "'hub_urls' entry 1 ('https://aaaaaaaa",
    ),
    (
        "a label longer than DNS allows",
        ["https://hub-a.example.org", "https://" + "b" * 64 + ".example.org"],
        "entry 2 ('https://bbbbbbbb",
    ),
]


@pytest.mark.parametrize(
    ("content", "message"),
    [(content, message) for _, content, message in HOSTILE_LISTS],
    ids=[name for name, _, _ in HOSTILE_LISTS],
)
def test_a_hostile_list_is_refused_naming_the_entry(
    tmp_path: Path, content: Any, message: str
) -> None:
    with pytest.raises(PolicyError) as refused:
        load_policy(policy_file(tmp_path, {"hub_urls": content}))
    assert message in refused.value.message
    assert str(tmp_path / "policy.json") in refused.value.message
    # A refused password is not repeated where the error is shown and logged.
    assert "secret" not in refused.value.message and "s3cr" not in refused.value.message
    # Never echoed whole: a huge value is cut short in the message.
    assert len(refused.value.message) < 1_000


def test_a_hub_url_that_disagrees_with_the_lists_first_entry_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="must be the first entry of 'hub_urls'"):
        load_policy(
            policy_file(
                tmp_path,
                {
                    "hub_url": "https://hub-b.example.org",
                    "hub_urls": ["https://hub-a.example.org", "https://hub-b.example.org"],
                },
            )
        )


def test_plain_http_is_allowed_to_loopback_and_everywhere_only_when_it_allows_it(
    tmp_path: Path,
) -> None:
    local = settings_under(tmp_path, {"hub_urls": ["http://127.0.0.1:8600", "http://[::1]:8601"]})
    assert local.hub_addresses() == ("http://127.0.0.1:8600", "http://[::1]:8601")
    lab = settings_under(
        tmp_path,
        {"hub_urls": ["http://hub-a.lab", "http://hub-b.lab"], "allow_plain_http": True},
    )
    assert lab.hub_addresses() == ("http://hub-a.lab", "http://hub-b.lab")


def test_a_single_hub_url_with_a_right_to_left_override_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="'hub_url' contains control or invisible"):
        load_policy(policy_file(tmp_path, {"hub_url": "https://hub\u202e.example.org"}))


real_keyring = pytest.mark.skipif(
    os.environ.get("VIGIL_TEST_REAL_KEYRING") != "1",
    reason="needs a real Secret Service keyring: run the tests with scripts/test, which starts "
    "gnome-keyring on a private D-Bus session and sets VIGIL_TEST_REAL_KEYRING=1",
)


@real_keyring
@pytest.mark.keyring
def test_a_switch_keeps_the_agent_signed_in_and_the_refresh_follows_the_address_in_use(
    hub: EmbeddedHub, front: FaultProxy, tmp_path: Path
) -> None:
    secret = create_user(hub.store, "amira", "agent")
    client = HubClient([front.url, hub.url])
    # The sign-in is the hub's, stored under its preferred address, whichever address served it.
    vault = TokenVault(client.base_url)
    auth = Authenticator(
        client,
        vault,
        device_id="5d0c3c1e-0d7e-4b9a-a2f4-2f1f0b7f6c11",
        device_name="Test laptop",
        profile_lock=ProfileLock(tmp_path / "session.lock"),
    )
    signed_out: list[str] = []
    auth.signed_out.connect(signed_out.append)
    try:
        auth.complete(auth.begin("amira", DEFAULT_PASSWORD), next_code(secret))
        saved = keyring.get_password(SERVICE, f"{front.url}|amira")
        assert saved

        front.refuse_connections()
        # An access token the hub no longer takes: the next call must refresh, on the backup.
        client.set_access_token("expired-access-token")
        assert client.get_json("/v1/me")["username"] == "amira"

        assert client.current_url == hub.url
        assert auth.account is not None and signed_out == []
        rotated = keyring.get_password(SERVICE, f"{front.url}|amira")
        assert rotated and rotated != saved
        assert keyring.get_password(SERVICE, f"{hub.url}|amira") is None
    finally:
        auth.sign_out()
        client.close()


_ADDRESS_PARTS = st.sampled_from(
    [
        "https://hub-a.example.org",
        "https://HUB-A.example.org:443/",
        "http://127.0.0.1:8600",
        "http://hub-b.example.org",
        "https://hub-c.example.org/vigil",
        "https://u:p@hub.example.org",
        "https://hub\u202e.example.org",
        "<b>hub</b>",
        "",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_ADDRESS_PARTS, st.text(max_size=40), st.integers()), max_size=12))
def test_any_list_is_either_a_clean_list_of_distinct_addresses_or_refused_by_entry(
    urls: list[Any],
) -> None:
    try:
        checked = check_hub_urls(urls, allow_plain_http=False)
    except ValueError as exc:
        text = str(exc)
        assert text.startswith(("entry ", "must ", "lists ")), text
        if text.startswith("entry "):
            number = int(text.split()[1])
            assert 1 <= number <= len(urls)
        assert len(text) < 400
        return
    assert 1 <= len(checked) <= 8
    assert len({same_address_key(url) for url in checked}) == len(checked)
    assert all(url.startswith(("https://", "http://127.0.0.1")) for url in checked), checked
