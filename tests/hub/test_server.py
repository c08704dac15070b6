"""EmbeddedHub: known port before serving, prompt stop, restart on the same port."""

from __future__ import annotations

import gc
from collections.abc import Callable

import requests

from hub.config import HubSettings
from hub.garbage_collection import YOUNG_THRESHOLD, tune_for_fan_out
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, HTTP_TIMEOUT, auth_headers, create_user, sign_in


def test_the_port_is_known_before_start(hub_settings: HubSettings) -> None:
    hub = EmbeddedHub(hub_settings)
    try:
        assert hub.port > 0
        assert hub.url == f"http://127.0.0.1:{hub.port}"
        hub.start()
        assert requests.get(f"{hub.url}/healthz", timeout=HTTP_TIMEOUT).ok
    finally:
        hub.stop()


def test_a_hub_restarted_on_the_same_port_keeps_sign_ins_and_serves_at_once(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    first = start_hub()
    secret = create_user(first.store, "ada", "agent")
    tokens = sign_in(first.url, "ada", DEFAULT_PASSWORD, secret)
    headers = auth_headers(tokens["access_token"])
    with requests.get(
        f"{first.url}/v1/alerts/stream", headers=headers, stream=True, timeout=HTTP_TIMEOUT
    ) as stream:
        assert stream.status_code == 200
        first.stop()
        # Stopping ended the stream: reading it finishes (a hang would hit the read timeout).
        received = list(stream.iter_lines())
        assert not any(line.startswith(b"event: alert") for line in received)

    second = start_hub(port=first.port)

    assert second.url == first.url
    me = requests.get(f"{second.url}/v1/me", headers=headers, timeout=HTTP_TIMEOUT)
    assert me.status_code == 200
    assert me.json()["username"] == "ada"


def test_an_embedded_hub_leaves_its_host_processs_garbage_collector_as_it_was(
    hub_settings: HubSettings,
) -> None:
    # An EmbeddedHub shares its process with tests, the demo or a client: the fan-out setting
    # held every cycle of their garbage 70 times longer (the client's soak test caught it).
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, before[1], before[2])

        EmbeddedHub(hub_settings).stop()

        assert gc.get_threshold() == (700, before[1], before[2])
    finally:
        gc.set_threshold(*before)


def test_a_serving_hub_collects_young_garbage_rarely_enough_for_a_fan_out() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, before[1], before[2])
        tune_for_fan_out()
        # Python's default of 700 made full collections land in the middle of a fan-out.
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
        assert gc.isenabled()
    finally:
        gc.set_threshold(*before)
