"""CoreServices: everything built from settings and wired together, as the tray app uses it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from client.core.alert_stream import StreamPhase
from client.core.backoff import Backoff
from client.core.errors import SettingsError
from client.core.models import Alert
from client.core.paths import AppPaths
from client.core.policy import Policy, load_policy
from client.core.services import CoreServices
from client.core.settings import Settings
from client.core.sync import ConnectionState
from hub.content_import import import_content
from hub.demo import demo_content_dir
from hub.server import EmbeddedHub
from tests.hubtools import (
    DEFAULT_PASSWORD,
    create_user,
    next_code,
    publish_alert,
    sign_in,
    wait_until,
)

real_keyring = pytest.mark.skipif(
    os.environ.get("VIGIL_TEST_REAL_KEYRING") != "1",
    reason="needs a real Secret Service keyring: run the tests with scripts/test, which starts "
    "gnome-keyring on a private D-Bus session and sets VIGIL_TEST_REAL_KEYRING=1",
)


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")


@pytest.fixture
def services(hub: EmbeddedHub, paths: AppPaths, tmp_path: Path) -> Iterator[CoreServices]:
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"hub_url": hub.url}))
    built = CoreServices.build(paths, Settings.load(paths, load_policy(policy_file)))
    yield built
    built.close()


def test_no_hub_address_is_a_clear_settings_error(paths: AppPaths) -> None:
    with pytest.raises(SettingsError, match="no hub address"):
        CoreServices.build(paths, Settings.load(paths, Policy()))


@real_keyring
@pytest.mark.keyring
def test_signing_in_starts_sync_and_the_alert_stream(
    hub: EmbeddedHub, services: CoreServices
) -> None:
    import_content(hub.store, hub.app.state.signer, demo_content_dir())
    secret = create_user(hub.store, "amira", "agent")
    dispatcher = sign_in(
        hub.url, "dispatch", DEFAULT_PASSWORD, create_user(hub.store, "dispatch", "dispatcher")
    )
    received: list[Alert] = []
    services.alert_stream.alert_received.connect(received.append)
    services.start()

    challenge = services.auth.begin("amira", DEFAULT_PASSWORD)
    services.auth.complete(challenge, next_code(secret))

    wait_until(lambda: services.sync.status.state is ConnectionState.ONLINE, timeout=15)
    assert services.cache.playbook("pb-video-visit-outage") is not None
    published = publish_alert(
        hub.url, dispatcher["access_token"], severity="major", title="Phones down", body="Use chat."
    )
    wait_until(lambda: [a.id for a in received] == [published["id"]], timeout=15)

    services.close()
    services.close()


@real_keyring
@pytest.mark.keyring
def test_a_network_change_reconnects_the_stream_without_waiting_out_its_backoff(
    start_hub: Callable[..., EmbeddedHub], paths: AppPaths, tmp_path: Path
) -> None:
    first = start_hub()
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"hub_url": first.url}))
    services = CoreServices.build(paths, Settings.load(paths, load_policy(policy_file)))
    try:
        # A backoff far longer than the wait below: only the network change can reconnect in time.
        services.alert_stream._backoff = Backoff(first=300.0, cap=300.0)
        secret = create_user(first.store, "amira", "agent")
        services.start()
        services.auth.complete(services.auth.begin("amira", DEFAULT_PASSWORD), next_code(secret))
        connected = StreamPhase.CONNECTED
        wait_until(lambda: services.alert_stream.state.phase is connected, timeout=15)

        first.stop()
        wait_until(lambda: services.alert_stream.state.phase is not connected, timeout=15)
        start_hub(port=first.port)
        services.network.changed.emit(frozenset())

        wait_until(lambda: services.alert_stream.state.phase is connected, timeout=15)
    finally:
        services.close()


@real_keyring
@pytest.mark.keyring
def test_a_start_that_resumes_from_the_keyring_never_flashes_sign_in_needed_or_reconnects(
    hub: EmbeddedHub, paths: AppPaths, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"hub_url": hub.url}))
    secret = create_user(hub.store, "amira", "agent")
    first = CoreServices.build(paths, Settings.load(paths, load_policy(policy_file)))
    first.auth.complete(first.auth.begin("amira", DEFAULT_PASSWORD), next_code(secret))
    first.close()

    services = CoreServices.build(paths, Settings.load(paths, load_policy(policy_file)))
    phases: list[StreamPhase] = []
    states: list[ConnectionState] = []
    services.alert_stream.state_changed.connect(lambda state: phases.append(state.phase))
    services.sync.status_changed.connect(lambda status: states.append(status.state))
    try:
        services.start()
        assert services.auth.resume("amira") is not None
        wait_until(lambda: services.sync.status.state is ConnectionState.ONLINE, timeout=15)
        wait_until(lambda: StreamPhase.CONNECTED in phases, timeout=15)
        # Give a needless reconnect the chance to show: one more sync round trip.
        services.sync.sync_now()
    finally:
        services.close()

    assert ConnectionState.AUTH_NEEDED not in states
    assert StreamPhase.AUTH_NEEDED not in phases
    connected_at = phases.index(StreamPhase.CONNECTED)
    assert phases[connected_at + 1 :] == [StreamPhase.DISCONNECTED], phases
