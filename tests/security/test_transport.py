"""Transport security against the real hub served over TLS on 127.0.0.1 with test certificates
(trustme): only IT's CA (from the policy) is trusted, names are checked, and plain http:// to
another computer is refused before any packet is sent.

The plain-http address rules on their own are in tests/client/test_hub_client.py and
tests/client/test_policy_settings.py; these tests add the real hub, real TLS and the policy path.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from client.core.errors import HubAddressError, PolicyError, UntrustedCertificate
from client.core.hub_client import HubClient
from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.services import CoreServices
from client.core.settings import Settings
from hub.config import HubSettings
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, create_user, next_code


@dataclass
class TlsHub:
    """A hub serving HTTPS with a certificate from a test CA; `ca_file` is that CA in PEM."""

    hub: EmbeddedHub
    ca_file: Path


def _serve_tls(settings: HubSettings, tmp_path: Path, names: list[str]) -> tuple[EmbeddedHub, Path]:
    ca = trustme.CA(organization_name="Vigil test IT")
    certificate = ca.issue_cert(*names)
    chain, key, ca_file = (
        tmp_path / "hub-chain.pem",
        tmp_path / "hub-key.pem",
        tmp_path / "it-ca.pem",
    )
    certificate.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in certificate.cert_chain_pems))
    ca.cert_pem.write_to_path(str(ca_file))
    hub = EmbeddedHub(settings, ssl_certfile=chain, ssl_keyfile=key).start()
    return hub, ca_file


@pytest.fixture
def tls_hub(hub_settings: HubSettings, tmp_path: Path) -> Iterator[TlsHub]:
    hub, ca_file = _serve_tls(hub_settings, tmp_path, ["127.0.0.1", "localhost"])
    yield TlsHub(hub, ca_file)
    hub.stop()


@pytest.fixture
def clients() -> Iterator[Callable[..., HubClient]]:
    made: list[HubClient] = []

    def make(url: str, **kwargs: Any) -> HubClient:
        client = HubClient(url, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def write_policy(tmp_path: Path, policy: dict[str, Any]) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    return path


def test_the_hub_certificate_from_an_unknown_ca_is_refused(
    tls_hub: TlsHub, clients: Callable[..., HubClient]
) -> None:
    assert tls_hub.hub.url.startswith("https://127.0.0.1:")

    with pytest.raises(UntrustedCertificate) as raised:
        clients(tls_hub.hub.url).get_json("/healthz", auth=False)

    assert "not trusted" in raised.value.message
    assert "ca_bundle" in raised.value.message


def test_a_bundle_from_another_ca_does_not_make_the_hub_trusted(
    tls_hub: TlsHub, tmp_path: Path, clients: Callable[..., HubClient]
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA(organization_name="Someone else").cert_pem.write_to_path(str(other))

    with pytest.raises(UntrustedCertificate):
        clients(tls_hub.hub.url, ca_bundle=str(other)).get_json("/healthz", auth=False)


def test_a_certificate_for_another_name_is_refused(
    hub_settings: HubSettings, tmp_path: Path, clients: Callable[..., HubClient]
) -> None:
    hub, ca_file = _serve_tls(hub_settings, tmp_path, ["vigil-hub.example.org"])
    try:
        with pytest.raises(UntrustedCertificate):
            clients(hub.url, ca_bundle=str(ca_file)).get_json("/healthz", auth=False)
    finally:
        hub.stop()


def test_it_ca_bundle_from_the_policy_is_trusted_for_a_whole_sign_in(
    tls_hub: TlsHub, tmp_path: Path
) -> None:
    secret = create_user(tls_hub.hub.store, "amira")
    policy = load_policy(
        write_policy(tmp_path, {"hub_url": tls_hub.hub.url, "ca_bundle": str(tls_hub.ca_file)})
    )
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    services = CoreServices.build(paths, Settings.load(paths, policy))
    try:
        challenge = services.auth.begin("amira", DEFAULT_PASSWORD)
        account = services.auth.complete(challenge, next_code(secret))
        assert account.username == "amira"
        assert services.hub.get_json("/v1/me")["username"] == "amira"
        services.auth.sign_out()
    finally:
        services.close()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records every name lookup and connection attempt (and stops it); a test asserts none."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> Any:
        attempts.append(args)
        raise OSError("this test allows no network traffic")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.mark.parametrize(
    "url", ["http://vigil-hub.invalid", "http://vigil-hub.invalid:8600/", "http://192.0.2.10"]
)
def test_plain_http_to_another_computer_is_refused_before_any_traffic(
    tmp_path: Path, no_network: list[object], url: str
) -> None:
    with pytest.raises(HubAddressError, match="plain http://"):
        HubClient(url)
    with pytest.raises(PolicyError, match="plain http://"):
        load_policy(write_policy(tmp_path, {"hub_url": url}))

    assert no_network == []


def test_plain_http_is_used_only_when_the_policy_allows_it(
    tmp_path: Path, no_network: list[object]
) -> None:
    policy = load_policy(
        write_policy(tmp_path, {"hub_url": "http://vigil-hub.invalid", "allow_plain_http": True})
    )
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    services = CoreServices.build(paths, Settings.load(paths, policy))
    try:
        assert services.hub.base_url == "http://vigil-hub.invalid"
    finally:
        services.close()
    assert no_network == []
