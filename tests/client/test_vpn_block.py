"""The policy's VPN block mode against the real hub on 127.0.0.1 (its VPN ranges decide the VPN
state through /v1/netcheck): off the VPN, sign-in and sync wait and the library is closed, while
alerts still arrive and acknowledgements still reach the hub. And a sign-out made while the hub
is unreachable revokes the sign-in at the next contact."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from client.core.errors import HubOffline, PolicyError
from client.core.outbox import OutboxFlusher
from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.services import CoreServices
from client.core.settings import Settings
from client.core.vpn import VpnStatus
from client.core.vpn_gate import BANNER, UNKNOWN_BANNER, VpnMode, VpnRequired, vpn_gate
from hub.content_import import import_content
from hub.demo import demo_content_dir
from hub.server import EmbeddedHub
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    auth_headers,
    create_user,
    next_code,
    publish_alert,
    sign_in,
)
from tests.vigil_cli import real_keyring

OFF_VPN_RANGES = ["10.8.0.0/16"]  # the hub sees 127.0.0.1: not VPN traffic
ON_VPN_RANGES = ["127.0.0.0/8"]


def build_core(tmp_path: Path, hub: EmbeddedHub, mode: str | None) -> CoreServices:
    policy: dict[str, Any] = {"hub_url": hub.url}
    if mode is not None:
        policy["vpn"] = {"mode": mode}
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(policy))
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    core = CoreServices.build(paths, Settings.load(paths, load_policy(policy_file)))
    core.vpn.check()
    return core


@pytest.fixture
def off_vpn(start_hub: Callable[..., EmbeddedHub]) -> EmbeddedHub:
    hub = start_hub(vpn_cidrs=OFF_VPN_RANGES)
    import_content(hub.store, hub.app.state.signer, demo_content_dir())
    return hub


@pytest.fixture
def blocked(off_vpn: EmbeddedHub, tmp_path: Path) -> Iterator[CoreServices]:
    core = build_core(tmp_path, off_vpn, "block")
    yield core
    core.close()


@pytest.mark.parametrize(
    "mode, on, library_open",
    [
        (VpnMode.OFF, False, True),
        (VpnMode.WARN, False, True),
        (VpnMode.BLOCK, True, True),
        (VpnMode.BLOCK, False, False),
        (VpnMode.BLOCK, None, False),
    ],
)
def test_the_gate_closes_only_in_block_mode_off_the_vpn(
    mode: VpnMode, on: bool | None, library_open: bool
) -> None:
    gate = vpn_gate(mode, VpnStatus(on, "hub", "detail"))

    assert (gate.library_open, gate.hub_open) == (library_open, library_open)
    assert (gate.banner is None) == library_open
    if not library_open:
        assert gate.banner == (BANNER if on is False else UNKNOWN_BANNER)
        assert "VPN" in gate.banner and "Critical alerts still pop up" in gate.banner
    assert vpn_gate(VpnMode.BLOCK, None).banner == UNKNOWN_BANNER


def test_off_the_vpn_sign_in_and_sync_wait_but_alerts_and_acks_flow(
    blocked: CoreServices, off_vpn: EmbeddedHub
) -> None:
    assert blocked.vpn_gate.library_open is False
    assert blocked.settings.vpn_mode() is VpnMode.BLOCK
    create_user(off_vpn.store, "agent")
    dispatcher = create_user(off_vpn.store, "dispatch", role="dispatcher")
    dispatcher_token = sign_in(off_vpn.url, "dispatch", DEFAULT_PASSWORD, dispatcher)

    with pytest.raises(VpnRequired, match="Waiting for the company VPN"):
        blocked.auth.begin("agent", DEFAULT_PASSWORD)
    # The agent signed in earlier (a saved sign-in): alerts and acks go through.
    secret = create_user(off_vpn.store, "amira")
    blocked.hub.set_access_token(
        sign_in(off_vpn.url, "amira", DEFAULT_PASSWORD, secret)["access_token"]
    )
    alert_id = publish_alert(off_vpn.url, dispatcher_token["access_token"])["id"]

    with pytest.raises(HubOffline, match="VPN"):
        blocked.sync.sync_now()
    assert blocked.cache.playbooks() == [], "no content was fetched off the VPN"
    blocked.alert_stream.catch_up()
    assert blocked.cache.alert(alert_id) is not None, "the alert still arrives"
    blocked.outbox.record(alert_id, "acknowledged", author="amira")
    # The hub client holds amira's token as a saved sign-in would; her acks go out through it.
    OutboxFlusher(blocked.outbox, blocked.hub, author="amira").flush()

    acks = requests.get(
        f"{off_vpn.url}/v1/alerts/{alert_id}/acks",
        headers=auth_headers(dispatcher_token["access_token"]),
        timeout=HTTP_TIMEOUT,
    ).json()["acks"]
    assert [(a["username"], a["action"]) for a in acks] == [("amira", "acknowledged")]


def test_on_the_vpn_block_mode_lets_everything_through(
    start_hub: Callable[..., EmbeddedHub], tmp_path: Path
) -> None:
    hub = start_hub(vpn_cidrs=ON_VPN_RANGES)
    import_content(hub.store, hub.app.state.signer, demo_content_dir())
    secret = create_user(hub.store, "amira")
    core = build_core(tmp_path, hub, "block")
    try:
        assert core.vpn_gate.library_open
        challenge = core.auth.begin("amira", DEFAULT_PASSWORD)
        core.auth.complete(challenge, next_code(secret))
        core.sync.sync_now()
        assert core.cache.playbooks()
    finally:
        core.close()


def test_vpn_required_true_still_means_warn(off_vpn: EmbeddedHub, tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"hub_url": off_vpn.url, "vpn": {"required": True}}))
    paths = AppPaths(config_dir=tmp_path / "c", data_dir=tmp_path / "d")

    settings = Settings.load(paths, load_policy(policy))

    assert settings.vpn_mode() is VpnMode.WARN
    policy.write_text(json.dumps({"hub_url": off_vpn.url, "vpn": {"mode": "lockdown"}}))
    with pytest.raises(PolicyError, match=r"'vpn\.mode' must be one of off, warn, block"):
        load_policy(policy)


@real_keyring
@pytest.mark.keyring
def test_a_sign_out_made_offline_revokes_the_sign_in_at_the_next_contact(
    start_hub: Callable[..., EmbeddedHub], tmp_path: Path
) -> None:
    hub = start_hub()
    secret = create_user(hub.store, "amira")
    core = build_core(tmp_path, hub, None)
    try:
        challenge = core.auth.begin("amira", DEFAULT_PASSWORD)
        core.auth.complete(challenge, next_code(secret))
        core.settings.set("last_username", "amira")
        saved = core.vault.load("amira")
        assert saved is not None
        port = hub.port
        hub.stop()

        core.auth.sign_out()

        offline = core.auth.offline_sign_outs
        assert offline is not None and offline.waiting("amira")
        assert core.vault.load("amira") is None, "forgotten on this computer at once"
        assert core.flush_sign_outs() is False, "still queued while the hub is away"

        hub = start_hub(port=port)
        assert core.flush_sign_outs() is True
        assert not offline.waiting("amira")
        refused = requests.post(
            f"{hub.url}/v1/auth/refresh", json={"refresh_token": saved}, timeout=HTTP_TIMEOUT
        )
        assert refused.status_code == 401, "the old sign-in no longer works on the hub"
    finally:
        core.close()
