"""Liveness, netcheck and update manifests on a real hub."""

from __future__ import annotations

from collections.abc import Callable

import requests

from hub.server import EmbeddedHub
from tests.hubtools import HTTP_TIMEOUT


def test_healthz_answers_ok(hub: EmbeddedHub) -> None:
    response = requests.get(f"{hub.url}/healthz", timeout=HTTP_TIMEOUT)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_netcheck_without_vpn_ranges_says_null(hub: EmbeddedHub) -> None:
    response = requests.get(f"{hub.url}/v1/netcheck", timeout=HTTP_TIMEOUT)
    assert response.json() == {"client_ip": "127.0.0.1", "via_vpn": None}


def test_netcheck_says_whether_the_caller_is_in_a_vpn_range(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    inside = start_hub(vpn_cidrs=["10.8.0.0/16", "127.0.0.0/8"])
    outside = start_hub(vpn_cidrs=["10.8.0.0/16"])

    assert requests.get(f"{inside.url}/v1/netcheck", timeout=HTTP_TIMEOUT).json() == {
        "client_ip": "127.0.0.1",
        "via_vpn": True,
    }
    assert (
        requests.get(f"{outside.url}/v1/netcheck", timeout=HTTP_TIMEOUT).json()["via_vpn"] is False
    )


def test_no_manifest_is_404_no_update(hub: EmbeddedHub) -> None:
    response = requests.get(
        f"{hub.url}/v1/updates/latest", params={"platform": "linux-x86_64"}, timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 404
    assert response.json()["error"] == "no_update"


def test_a_placed_manifest_is_served_as_placed(hub: EmbeddedHub) -> None:
    updates = hub.settings.data_dir / "updates"
    updates.mkdir()
    manifest = (
        b'{"version": "1.2.0", "url": "https://example.invalid/vigil.tar.gz",\n "sig": "AA=="}'
    )
    (updates / "linux-x86_64.json").write_bytes(manifest)

    response = requests.get(
        f"{hub.url}/v1/updates/latest", params={"platform": "linux-x86_64"}, timeout=HTTP_TIMEOUT
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == manifest


def test_a_platform_that_could_leave_the_updates_folder_is_refused(hub: EmbeddedHub) -> None:
    (hub.settings.data_dir / "secret.json").write_text("{}")
    for platform in ("../secret", "Linux", ""):
        response = requests.get(
            f"{hub.url}/v1/updates/latest", params={"platform": platform}, timeout=HTTP_TIMEOUT
        )
        assert response.status_code == 422, platform
        assert response.json()["error"] == "invalid_request"
