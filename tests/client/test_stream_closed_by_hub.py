"""The client's alert stream when the hub closes it with a reason: it reconnects and loses
nothing."""

from __future__ import annotations

import collections
import threading
from contextlib import ExitStack, closing
from pathlib import Path

import requests

from client.core.alert_stream import AlertStream, StreamPhase, StreamState
from client.core.backoff import Backoff
from client.core.cache import Cache
from client.core.hub_client import HubClient
from client.core.models import Alert
from hub.alerts_service import publish_alert
from hub.server import EmbeddedHub
from tests.hubtools import HTTP_TIMEOUT, auth_headers, create_user, sign_in, wait_until

STREAM_CAP = 5


def test_a_client_whose_stream_the_hub_replaced_reconnects_and_gets_the_next_alert(
    hub: EmbeddedHub, tmp_path: Path
) -> None:
    secret = create_user(hub.store, "alex", password="pw-alex-123456")
    token = sign_in(hub.url, "alex", "pw-alex-123456", secret)["access_token"]
    user = hub.store.accounts.find_user(username="alex")
    assert user is not None
    states: list[StreamState] = []
    alerts: list[Alert] = []
    lock = threading.Lock()

    def connected_count() -> int:
        with lock:
            return sum(state.phase is StreamPhase.CONNECTED for state in states)

    cache = Cache.open(tmp_path / "cache.sqlite3")
    client = HubClient(hub.url, connect_timeout=2.0)
    client.set_access_token(token)
    stream = AlertStream(client, cache, backoff=Backoff(first=0.05, factor=2.0, cap=0.5))
    stream.state_changed.connect(lambda state: _locked_append(lock, states, state))
    stream.alert_received.connect(lambda alert: _locked_append(lock, alerts, alert))
    with ExitStack() as cleanup:
        cleanup.callback(cache.close)
        cleanup.callback(client.close)
        cleanup.callback(stream.stop)
        stream.start()
        wait_until(lambda: connected_count() == 1, timeout=10)

        # The same user opens five more streams elsewhere: the client's, the oldest, is closed.
        for _ in range(STREAM_CAP):
            other = requests.get(
                f"{hub.url}/v1/alerts/stream",
                headers=auth_headers(token),
                stream=True,
                timeout=HTTP_TIMEOUT,
            )
            cleanup.enter_context(closing(other))
            assert other.status_code == 200
        wait_until(lambda: connected_count() == 2, timeout=10)
        assert hub.broker.open_streams_of(user.id) == STREAM_CAP

        alert = publish_alert(
            hub.store, hub.settings, severity="major", title="Phones down", body="Use chat."
        )
        hub.broker.notify()
        wait_until(lambda: len(alerts) >= 1, timeout=10)

    assert collections.Counter(received.id for received in alerts) == {alert["id"]: 1}
    # Replaced, not signed out: the client never asked for a new sign-in.
    assert all(state.phase is not StreamPhase.AUTH_NEEDED for state in states)


def _locked_append(lock: threading.Lock, items: list[object], item: object) -> None:
    with lock:
        items.append(item)
