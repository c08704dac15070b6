"""The test bench of the reliability tests: a hub tuned for quick fault detection, a dispatcher
talking to it directly, and one agent's real client core talking to it through a FaultProxy.

Timeouts are scaled down from the product's defaults (hub heartbeat 15 s, client heartbeat
timeout 45 s, read timeout 20 s) so that each fault is detected and each recovery happens within
a second or two; the logic under test is the same.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from client.core.alert_stream import AlertStream, StreamPhase, StreamState
from client.core.backoff import Backoff
from client.core.cache import Cache
from client.core.content_verifier import ContentVerifier
from client.core.hub_client import HubClient
from client.core.models import Alert
from client.core.outbox import Outbox
from client.core.sync import ConnectionState, FixedSession, SyncEngine
from hub.config import HubSettings
from hub.server import EmbeddedHub
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    auth_headers,
    create_user,
    publish_alert,
    sign_in,
)

HEARTBEAT_SECONDS = 0.25
HEARTBEAT_TIMEOUT = 1.0
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 1.0
# Longer than any soak, so the agent's access token never expires mid-run (that is another test).
ACCESS_TOKEN_SECONDS = 4 * 3600


def fast_backoff() -> Backoff:
    """Retries after 50 ms growing to 400 ms: recoveries in well under a second."""
    return Backoff(first=0.05, factor=2.0, cap=0.4, jitter=0.2)


def start_hub(data_dir: Path) -> EmbeddedHub:
    """A real hub on 127.0.0.1 with a short stream heartbeat."""
    settings = HubSettings(
        data_dir=data_dir,
        heartbeat_seconds=HEARTBEAT_SECONDS,
        access_token_seconds=ACCESS_TOKEN_SECONDS,
    )
    return EmbeddedHub(settings).start()


class Dispatcher:
    """The dispatcher's side, straight to the hub (never through the proxy)."""

    def __init__(self, hub: EmbeddedHub) -> None:
        secret = create_user(hub.store, "dispatch", role="dispatcher")
        self.hub_url = hub.url
        self._token: str = sign_in(hub.url, "dispatch", DEFAULT_PASSWORD, secret)["access_token"]
        self._http = requests.Session()

    def publish(self, title: str) -> str:
        """Publish a critical alert; returns its id."""
        alert = publish_alert(
            self.hub_url, self._token, session=self._http, title=title, body="Details."
        )
        alert_id: str = alert["id"]
        return alert_id

    def acks_on_hub(self, alert_id: str) -> list[str]:
        """The ack ids the hub holds for an alert, one entry per stored ack."""
        response = self._http.get(
            f"{self.hub_url}/v1/alerts/{alert_id}/acks",
            headers=auth_headers(self._token),
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 200, response.text
        return [ack["ack_id"] for ack in response.json()["acks"]]

    def kept_alert_ids(self) -> list[str]:
        """Every alert the hub keeps (it keeps all of them for these short runs)."""
        response = self._http.get(
            f"{self.hub_url}/v1/alerts",
            params={"limit": 1000},
            headers=auth_headers(self._token),
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["more"] is False
        return [alert["id"] for alert in body["alerts"]]

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()


def agent_token(hub: EmbeddedHub) -> str:
    """Create the agent and sign it in; returns its access token."""
    secret = create_user(hub.store, "agent")
    token: str = sign_in(hub.url, "agent", DEFAULT_PASSWORD, secret)["access_token"]
    return token


def trust_on_first_use(keys: Any) -> ContentVerifier:
    """The verifier a client without a pinned key builds."""
    return ContentVerifier.from_keys_response(keys, None)


@dataclass
class DeskRecords:
    """What the agent's client saw: deliveries per alert id and every stream state, in order."""

    deliveries: Counter[str]
    stream_states: list[StreamState]


class AgentDesk:
    """One agent's client core, wired as CoreServices wires it: real HubClient, Cache, Outbox,
    SyncEngine and AlertStream, with fast retries and short timeouts."""

    def __init__(self, hub_url: str, token: str, data_dir: Path) -> None:
        # Plain http: the hub is on loopback, but a fault may name it `vigil-hub.invalid`.
        self.client = HubClient(
            hub_url,
            allow_plain_http=True,
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
        )
        self.client.set_access_token(token)
        self.cache = Cache.open(data_dir / "cache.sqlite3")
        self.outbox = Outbox.open(data_dir / "outbox.sqlite3")
        self.stream = AlertStream(
            self.client, self.cache, heartbeat_timeout=HEARTBEAT_TIMEOUT, backoff=fast_backoff()
        )
        self.engine = SyncEngine(
            self.client,
            self.cache,
            self.outbox,
            verifier_factory=trust_on_first_use,
            session=FixedSession("agent"),
            alert_catch_up=self.stream.catch_up,
            interval=300.0,
            backoff=fast_backoff(),
        )
        self._lock = threading.Lock()
        self._records = DeskRecords(Counter(), [])
        self.stream.alert_received.connect(self._on_alert)
        self.stream.state_changed.connect(self._on_stream_state)

    def start(self) -> None:
        """Start syncing and the alert stream."""
        self.engine.start()
        self.stream.start()

    def close(self) -> None:
        """Stop everything and close the files."""
        self.stream.stop()
        self.engine.stop()
        self.client.close()
        self.cache.close()
        self.outbox.close()

    def _on_alert(self, alert: Alert) -> None:
        with self._lock:
            self._records.deliveries[alert.id] += 1

    def _on_stream_state(self, state: StreamState) -> None:
        with self._lock:
            self._records.stream_states.append(state)

    def deliveries(self) -> Counter[str]:
        """How many times each alert reached the UI (alert_received)."""
        with self._lock:
            return Counter(self._records.deliveries)

    def delivered_ids(self) -> list[str]:
        """Every delivery, as a multiset of alert ids."""
        return list(self.deliveries().elements())

    def stream_state_count(self) -> int:
        """How many stream states were emitted so far (a mark to look after)."""
        with self._lock:
            return len(self._records.stream_states)

    def stream_phases_since(self, mark: int) -> list[StreamPhase]:
        """The stream phases emitted after `mark`."""
        with self._lock:
            return [state.phase for state in self._records.stream_states[mark:]]

    def record_ack(self, alert_id: str) -> str:
        """Acknowledge as the pop-up does; returns the ack id once it is on disk."""
        return self.outbox.record(alert_id, "acknowledged", author="agent").ack_id

    def recorded_acks(self, alert_id: str) -> list[str]:
        """Every ack the outbox holds for an alert."""
        return [ack.ack_id for ack in self.outbox.for_alert(alert_id)]

    def in_step(self) -> bool:
        """Online, no ack waiting and the stream connected."""
        status = self.engine.status
        return (
            status.state is ConnectionState.ONLINE
            and status.pending_acks == 0
            and self.stream.state.phase is StreamPhase.CONNECTED
        )
