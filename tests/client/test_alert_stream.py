"""AlertStream against a real hub on 127.0.0.1: live delivery, reconnects, catch-up, no doubles."""

from __future__ import annotations

import collections
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from client.core.alert_stream import AlertStream, StreamPhase, StreamState
from client.core.backoff import Backoff
from client.core.cache import Cache
from client.core.hub_client import HubClient
from client.core.models import Alert
from hub.alerts_service import publish_alert
from hub.clock import ManualClock
from hub.config import HubSettings
from hub.server import EmbeddedHub
from hub.storage import Store
from tests.hubtools import create_user, sign_in, wait_until

WAIT = 10.0


def fast_backoff() -> Backoff:
    # Small waits keep reconnect tests quick; the production defaults are tested in test_backoff.
    return Backoff(first=0.05, factor=2.0, cap=0.5, jitter=0.2)


class Recorder:
    """Collects what an AlertStream emits, with waits that have a deadline."""

    def __init__(self, stream: AlertStream) -> None:
        self.alerts: list[Alert] = []
        self.gaps: list[int] = []
        self.states: list[StreamState] = []
        self._lock = threading.Lock()
        stream.alert_received.connect(self._on_alert)
        stream.gap.connect(self._on_gap)
        stream.state_changed.connect(self._on_state)

    def _on_alert(self, alert: Alert) -> None:
        with self._lock:
            self.alerts.append(alert)

    def _on_gap(self, since: int) -> None:
        with self._lock:
            self.gaps.append(since)

    def _on_state(self, state: StreamState) -> None:
        with self._lock:
            self.states.append(state)

    def deliveries(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(alert.id for alert in self.alerts)

    def wait_for_alerts(self, *ids: str) -> None:
        wait_until(lambda: set(ids) <= set(self.deliveries()), timeout=WAIT)

    def count(self, phase: StreamPhase) -> int:
        with self._lock:
            return sum(1 for state in self.states if state.phase is phase)

    def wait_for_phase(self, phase: StreamPhase, times: int = 1) -> None:
        wait_until(lambda: self.count(phase) >= times, timeout=WAIT)


def publish(store: Store, settings: HubSettings, title: str) -> dict[str, Any]:
    return publish_alert(store, settings, severity="major", title=title, body=f"{title}: details")


def publish_live(hub: EmbeddedHub, title: str) -> dict[str, Any]:
    alert = publish(hub.store, hub.settings, title)
    # What POST /v1/alerts does after storing: wake the open streams now, not at the next poll.
    hub.broker.notify()
    return alert


@pytest.fixture
def agent_token(hub: EmbeddedHub) -> str:
    secret = create_user(hub.store, "alex", role="agent", password="pw-alex-123456")
    token: str = sign_in(hub.url, "alex", "pw-alex-123456", secret)["access_token"]
    return token


@pytest.fixture
def make_client() -> Iterator[Callable[[str, str | None], HubClient]]:
    clients: list[HubClient] = []

    def make(url: str, token: str | None) -> HubClient:
        client = HubClient(url, connect_timeout=2.0)
        client.set_access_token(token)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    opened = Cache.open(tmp_path / "cache.sqlite3")
    yield opened
    opened.close()


@pytest.fixture
def make_stream() -> Iterator[Callable[..., AlertStream]]:
    streams: list[AlertStream] = []

    def make(hub: HubClient, cache: Cache, **kwargs: Any) -> AlertStream:
        kwargs.setdefault("backoff", fast_backoff())
        stream = AlertStream(hub, cache, **kwargs)
        streams.append(stream)
        return stream

    yield make
    for stream in streams:
        stream.stop()


def test_an_alert_published_on_the_hub_reaches_the_stream_and_the_cache(
    hub: EmbeddedHub, agent_token: str, cache: Cache, make_client: Any, make_stream: Any
) -> None:
    stream = make_stream(make_client(hub.url, agent_token), cache)
    recorder = Recorder(stream)
    stream.start()
    recorder.wait_for_phase(StreamPhase.CONNECTED)

    published = publish_live(hub, "Video visits down in the West region")

    recorder.wait_for_alerts(published["id"])
    assert recorder.alerts[0].title == "Video visits down in the West region"
    assert recorder.alerts[0].seq == published["seq"]
    assert cache.alert(published["id"]) is not None
    assert stream.state == StreamState(StreamPhase.CONNECTED)


def test_alerts_kept_on_the_hub_before_start_arrive_once_by_catch_up(
    hub: EmbeddedHub, agent_token: str, cache: Cache, make_client: Any, make_stream: Any
) -> None:
    ids = [publish(hub.store, hub.settings, f"Earlier alert {n}")["id"] for n in range(3)]
    stream = make_stream(make_client(hub.url, agent_token), cache)
    recorder = Recorder(stream)
    stream.start()
    recorder.wait_for_alerts(*ids)
    later = publish_live(hub, "Live after catch-up")
    recorder.wait_for_alerts(later["id"])
    assert recorder.deliveries() == collections.Counter({**dict.fromkeys(ids, 1), later["id"]: 1})
    assert [alert.id for alert in recorder.alerts[:3]] == ids


def test_hub_restart_mid_stream_reconnects_and_delivers_missed_alerts_once(
    start_hub: Callable[..., EmbeddedHub],
    hub_settings: HubSettings,
    cache: Cache,
    make_client: Any,
    make_stream: Any,
) -> None:
    hub = start_hub()
    secret = create_user(hub.store, "alex", password="pw-alex-123456")
    token = sign_in(hub.url, "alex", "pw-alex-123456", secret)["access_token"]
    stream = make_stream(make_client(hub.url, token), cache)
    recorder = Recorder(stream)
    stream.start()
    recorder.wait_for_phase(StreamPhase.CONNECTED)
    before = publish_live(hub, "Before the restart")
    recorder.wait_for_alerts(before["id"])

    hub.stop()
    recorder.wait_for_phase(StreamPhase.DISCONNECTED)
    # Published while no hub is serving: straight into the hub's database.
    store = Store.open(hub_settings.database_path, hub_settings.clock)
    try:
        missed = [publish(store, hub_settings, f"While down {n}")["id"] for n in range(2)]
    finally:
        store.close()
    start_hub(port=hub.port)

    recorder.wait_for_alerts(*missed)
    recorder.wait_for_phase(StreamPhase.CONNECTED, times=2)
    after_restart = publish_from_another_process(hub_settings, "After the restart")
    recorder.wait_for_alerts(after_restart)
    assert set(recorder.deliveries().values()) == {1}
    assert len(recorder.deliveries()) == 4


def publish_from_another_process(settings: HubSettings, title: str) -> str:
    # The restarted hub polls its database for alerts from other processes; this is one of them.
    store = Store.open(settings.database_path, settings.clock)
    try:
        alert_id: str = publish(store, settings, title)["id"]
    finally:
        store.close()
    return alert_id


def test_a_new_stream_on_the_same_cache_does_not_redeliver(
    hub: EmbeddedHub, agent_token: str, tmp_path: Path, make_client: Any, make_stream: Any
) -> None:
    path = tmp_path / "restart-cache.sqlite3"
    first_cache = Cache.open(path)
    first = make_stream(make_client(hub.url, agent_token), first_cache)
    first_recorder = Recorder(first)
    first.start()
    seen = [publish_live(hub, f"Seen before quitting {n}")["id"] for n in range(2)]
    first_recorder.wait_for_alerts(*seen)
    first.stop()
    first_cache.close()

    # The app restarts: a new cache object on the same file, a new stream, the same hub.
    second_cache = Cache.open(path)
    try:
        second = make_stream(make_client(hub.url, agent_token), second_cache)
        second_recorder = Recorder(second)
        second.start()
        second_recorder.wait_for_phase(StreamPhase.CONNECTED)
        fresh = publish_live(hub, "After the app restarted")
        second_recorder.wait_for_alerts(fresh["id"])
        second.stop()
        assert second_recorder.deliveries() == collections.Counter({fresh["id"]: 1})
    finally:
        second_cache.close()


def test_alerts_past_retention_surface_as_one_gap(
    manual_clock: ManualClock,
    start_hub: Callable[..., EmbeddedHub],
    cache: Cache,
    make_client: Any,
    make_stream: Any,
) -> None:
    hub = start_hub(retention_days=0.001, access_token_seconds=3600)
    secret = create_user(hub.store, "alex", password="pw-alex-123456")
    token = sign_in(hub.url, "alex", "pw-alex-123456", secret, at=manual_clock.now())[
        "access_token"
    ]
    client = make_client(hub.url, token)
    first = make_stream(client, cache)
    first_recorder = Recorder(first)
    first.start()
    seen = publish_live(hub, "Seen")
    first_recorder.wait_for_alerts(seen["id"])
    first.stop()

    publish(hub.store, hub.settings, "Missed and then purged")
    manual_clock.advance(0.001 * 86400 + 10)
    kept = publish(hub.store, hub.settings, "Published after the purge")

    second = make_stream(client, cache)
    recorder = Recorder(second)
    second.start()
    recorder.wait_for_alerts(kept["id"])
    wait_until(lambda: recorder.gaps, timeout=WAIT)
    # Both the stream's replay and the catch-up report it; the user is told once.
    assert recorder.gaps == [seen["seq"]]
    assert recorder.deliveries() == collections.Counter({kept["id"]: 1})


def test_a_silent_connection_is_dead_after_the_heartbeat_timeout_and_reconnects(
    start_hub: Callable[..., EmbeddedHub], cache: Cache, make_client: Any, make_stream: Any
) -> None:
    # A hub that sends no heartbeat for a minute looks, to the client, like a dead connection.
    hub = start_hub(heartbeat_seconds=60)
    secret = create_user(hub.store, "alex", password="pw-alex-123456")
    token = sign_in(hub.url, "alex", "pw-alex-123456", secret)["access_token"]
    stream = make_stream(make_client(hub.url, token), cache, heartbeat_timeout=1.0)
    recorder = Recorder(stream)
    stream.start()
    recorder.wait_for_phase(StreamPhase.CONNECTED, times=2)
    reasons = [s.reason for s in recorder.states if s.phase is StreamPhase.DISCONNECTED]
    assert "no heartbeat" in reasons[0]
    # Still delivering on the new connection.
    alert = publish_live(hub, "After a dead connection")
    recorder.wait_for_alerts(alert["id"])


def test_heartbeats_keep_a_quiet_connection_open(
    start_hub: Callable[..., EmbeddedHub],
    cache: Cache,
    make_client: Any,
    make_stream: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = start_hub(heartbeat_seconds=0.1)
    secret = create_user(hub.store, "alex", password="pw-alex-123456")
    token = sign_in(hub.url, "alex", "pw-alex-123456", secret)["access_token"]
    caplog.set_level(logging.DEBUG, logger="client.core.alert_stream")
    stream = make_stream(make_client(hub.url, token), cache, heartbeat_timeout=1.0)
    recorder = Recorder(stream)
    stream.start()

    def heartbeats() -> int:
        return sum("comment: heartbeat" in record.getMessage() for record in caplog.records)

    # Fifteen heartbeats 0.1 s apart outlast the 1 s timeout: only they kept the connection.
    wait_until(lambda: heartbeats() >= 15, timeout=WAIT)
    assert recorder.count(StreamPhase.CONNECTED) == 1
    assert recorder.count(StreamPhase.DISCONNECTED) == 0


class SilentServer:
    """A loopback HTTP server whose stream sends its headers and then nothing, or given events.

    A stand-in where the real hub cannot go: it never falls silent mid-connection like a
    half-open TCP connection does, and never sends malformed events.
    """

    def __init__(
        self, stream_body: bytes = b"", content_type: bytes = b"text/event-stream"
    ) -> None:
        self._stream_body = stream_body
        self._content_type = content_type
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.streams_opened = 0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._done.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            # One request per connection: close after catch-up answers so requests reconnects.
            request = b""
            while b"\r\n\r\n" not in request:
                part = conn.recv(4096)
                if not part:
                    return
                request += part
            if request.startswith(b"GET /v1/alerts/stream"):
                with self._lock:
                    self.streams_opened += 1
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n" % self._content_type
                )
                if self._stream_body:
                    conn.sendall(b"%x\r\n%s\r\n" % (len(self._stream_body), self._stream_body))
                self._done.wait(WAIT)
            else:
                body = b'{"alerts": [], "last_seq": 0, "more": false, "gap": false}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )

    def opened(self) -> int:
        with self._lock:
            return self.streams_opened

    def close(self) -> None:
        self._done.set()
        self._server.close()
        for conn in self._connections:
            conn.close()


@pytest.fixture
def silent_server() -> Iterator[Callable[..., SilentServer]]:
    servers: list[SilentServer] = []

    def make(stream_body: bytes = b"", content_type: bytes = b"text/event-stream") -> SilentServer:
        server = SilentServer(stream_body, content_type)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_a_server_that_goes_silent_after_the_headers_is_detected_and_reconnected(
    silent_server: Callable[..., SilentServer],
    cache: Cache,
    make_client: Any,
    make_stream: Any,
) -> None:
    server = silent_server(b": connected\n\n")
    stream = make_stream(
        make_client(f"http://127.0.0.1:{server.port}", "token"), cache, heartbeat_timeout=1.0
    )
    recorder = Recorder(stream)
    stream.start()
    wait_until(lambda: server.opened() >= 2, timeout=WAIT)
    reasons = [s.reason for s in recorder.states if s.phase is StreamPhase.DISCONNECTED]
    assert reasons and "no heartbeat" in reasons[0]


def test_malformed_events_are_skipped_and_the_stream_goes_on(
    silent_server: Callable[..., SilentServer],
    cache: Cache,
    make_client: Any,
    make_stream: Any,
) -> None:
    good = {
        "id": "5f0c6a8e-2f0d-4a51-9c2e-0d8f7f7f1a01",
        "seq": 3,
        "severity": "critical",
        "title": "Phones down",
        "body": "Use the backup line.",
        "playbook_id": None,
        "template_ids": [],
        "requires_ack": True,
        "issued_at": "2026-11-27T10:42:00.123Z",
        "expires_at": None,
        "issued_by": "dispatch",
    }
    body = (
        b"id: 1\nevent: alert\ndata: {not json\n\n"
        b'id: 2\nevent: alert\ndata: {"id": "x", "seq": "two"}\n\n'
        b"event: surprise\ndata: ignored\n\n"
        + b"id: 3\nevent: alert\ndata: "
        + json.dumps(good).encode()
        + b"\n\n"
    )
    server = silent_server(body)
    stream = make_stream(make_client(f"http://127.0.0.1:{server.port}", "token"), cache)
    recorder = Recorder(stream)
    stream.start()
    recorder.wait_for_alerts(str(good["id"]))
    assert [alert.seq for alert in recorder.alerts] == [3]
    assert stream.state.phase is StreamPhase.CONNECTED


def test_a_page_that_is_not_an_event_stream_is_refused_and_retried(
    silent_server: Callable[..., SilentServer],
    cache: Cache,
    make_client: Any,
    make_stream: Any,
) -> None:
    # What a hotel Wi-Fi sign-in page does: 200 OK with HTML instead of the stream.
    server = silent_server(b"<html>Sign in to Wi-Fi</html>", content_type=b"text/html")
    stream = make_stream(make_client(f"http://127.0.0.1:{server.port}", "token"), cache)
    recorder = Recorder(stream)
    stream.start()
    wait_until(lambda: server.opened() >= 2, timeout=WAIT)
    reasons = [s.reason for s in recorder.states if s.phase is StreamPhase.DISCONNECTED]
    assert "text/html, not an alert stream" in reasons[0]
    assert recorder.count(StreamPhase.CONNECTED) == 0


def test_without_a_sign_in_it_waits_for_auth_and_resumes_when_told(
    hub: EmbeddedHub, agent_token: str, cache: Cache, make_client: Any, make_stream: Any
) -> None:
    client = make_client(hub.url, None)
    stream = make_stream(client, cache)
    recorder = Recorder(stream)
    stream.start()
    recorder.wait_for_phase(StreamPhase.AUTH_NEEDED)
    assert recorder.count(StreamPhase.CONNECTING) == 1

    client.set_access_token(agent_token)
    stream.resume()
    recorder.wait_for_phase(StreamPhase.CONNECTED)
    alert = publish_live(hub, "After signing in")
    recorder.wait_for_alerts(alert["id"])


def test_network_changed_cuts_the_backoff_wait_short(
    start_hub: Callable[..., EmbeddedHub], cache: Cache, make_client: Any, make_stream: Any
) -> None:
    hub = start_hub()
    secret = create_user(hub.store, "alex", password="pw-alex-123456")
    token = sign_in(hub.url, "alex", "pw-alex-123456", secret)["access_token"]
    port = hub.port
    hub.stop()
    # A 60 s wait after the first failure: only network_changed() can bring it back in time.
    stream = make_stream(
        make_client(hub.url, token), cache, backoff=Backoff(first=60, cap=60, jitter=0)
    )
    recorder = Recorder(stream)
    stream.start()
    recorder.wait_for_phase(StreamPhase.DISCONNECTED)
    start_hub(port=port)
    stream.network_changed()
    recorder.wait_for_phase(StreamPhase.CONNECTED)


def test_network_changed_while_connected_reconnects_at_once(
    hub: EmbeddedHub, agent_token: str, cache: Cache, make_client: Any, make_stream: Any
) -> None:
    stream = make_stream(
        make_client(hub.url, agent_token), cache, backoff=Backoff(first=60, cap=60, jitter=0)
    )
    recorder = Recorder(stream)
    stream.start()
    recorder.wait_for_phase(StreamPhase.CONNECTED)
    stream.network_changed()
    recorder.wait_for_phase(StreamPhase.CONNECTED, times=2)
    alert = publish_live(hub, "On the new connection")
    recorder.wait_for_alerts(alert["id"])


def test_stop_ends_a_read_blocked_on_a_quiet_connection(
    start_hub: Callable[..., EmbeddedHub], cache: Cache, make_client: Any, make_stream: Any
) -> None:
    hub = start_hub(heartbeat_seconds=60)
    secret = create_user(hub.store, "alex", password="pw-alex-123456")
    token = sign_in(hub.url, "alex", "pw-alex-123456", secret)["access_token"]
    stream = make_stream(make_client(hub.url, token), cache, heartbeat_timeout=60)
    recorder = Recorder(stream)
    stream.start()
    recorder.wait_for_phase(StreamPhase.CONNECTED)
    stream.stop()
    assert not [t for t in threading.enumerate() if t.name == "alert-stream"]
    assert stream.state == StreamState(StreamPhase.DISCONNECTED, "Stopped.")


def test_catch_up_on_demand_returns_only_alerts_new_to_the_cache(
    hub: EmbeddedHub, agent_token: str, cache: Cache, make_client: Any, make_stream: Any
) -> None:
    stream = make_stream(make_client(hub.url, agent_token), cache)
    recorder = Recorder(stream)
    first = [publish(hub.store, hub.settings, f"Batch one {n}")["id"] for n in range(2)]
    assert [alert.id for alert in stream.catch_up()] == first
    second = publish(hub.store, hub.settings, "Batch two")["id"]
    assert [alert.id for alert in stream.catch_up()] == [second]
    assert stream.catch_up() == []
    assert recorder.deliveries() == collections.Counter(dict.fromkeys([*first, second], 1))


RACED_ALERT = {
    "id": "5b0c7f0e-5a8e-4c43-9a51-8d7c8d0e2b11",
    "seq": 1,
    "severity": "critical",
    "title": "Published while the stream was starting",
    "body": "Use phones.",
    "playbook_id": None,
    "template_ids": [],
    "requires_ack": True,
    "issued_at": "2026-12-03T10:00:00.000Z",
    "expires_at": None,
    "issued_by": "dora",
}


class RacingServer(SilentServer):
    """Plays the start of a hub's stream: the answer's headers go out before the stream is
    subscribed to new alerts, and an alert is published in between. The client's first catch-up
    (made on the headers) is answered before it; only a later catch-up can hold it."""

    def __init__(self) -> None:
        self.catch_ups = 0
        self._first_catch_up = threading.Event()
        super().__init__()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                part = conn.recv(4096)
                if not part:
                    return
                request += part
            if request.startswith(b"GET /v1/alerts/stream"):
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                )
                self._first_catch_up.wait(WAIT)
                body = b": connected\n\n"
                conn.sendall(b"%x\r\n%s\r\n" % (len(body), body))
                self._done.wait(WAIT)
                return
            with self._lock:
                self.catch_ups += 1
                alerts = [] if self.catch_ups == 1 else [RACED_ALERT]
            answer = json.dumps(
                {"alerts": alerts, "last_seq": len(alerts), "more": False, "gap": False}
            ).encode()
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer)
            )
            self._first_catch_up.set()


def test_an_alert_published_while_the_hub_starts_the_stream_arrives_by_a_second_catch_up(
    cache: Cache, make_client: Any, make_stream: Any
) -> None:
    server = RacingServer()
    try:
        stream = make_stream(make_client(f"http://127.0.0.1:{server.port}", "token"), cache)
        recorder = Recorder(stream)
        stream.start()
        recorder.wait_for_alerts(str(RACED_ALERT["id"]))
        assert recorder.deliveries()[str(RACED_ALERT["id"])] == 1
        assert recorder.count(StreamPhase.DISCONNECTED) == 0
    finally:
        server.close()
