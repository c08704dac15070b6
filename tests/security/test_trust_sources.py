"""IT policy is the only source of security settings: the user's settings file and the environment
never widen what Vigil trusts. Real settings files, the real hub over TLS (trustme) on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from client.core.errors import SettingsError, UntrustedCertificate
from client.core.hub_client import HubClient
from client.core.paths import AppPaths
from client.core.policy import Policy
from client.core.settings import OPTIONS, Settings
from client.core.updates import UpdateChecker
from hub.config import HubSettings
from hub.server import EmbeddedHub

SECURITY_OPTIONS = ("ca_bundle", "allow_plain_http", "update_public_key", "content_key_id")
KEY_B64 = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "user-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def test_security_options_are_declared_policy_only() -> None:
    # hub_urls too: a backup address receives the agent's password and tokens.
    assert {o.name for o in OPTIONS if o.policy_only} == {*SECURITY_OPTIONS, "vpn_mode", "hub_urls"}


def test_security_settings_in_the_users_file_are_ignored_with_a_warning(
    paths: AppPaths, ca_file: Path
) -> None:
    saved = {
        "ca_bundle": str(ca_file),
        "allow_plain_http": True,
        "update_public_key": KEY_B64,
        "content_key_id": "0123456789abcdef",
        "sounds": False,
    }
    paths.config_dir.mkdir(parents=True)
    paths.settings_file.write_text(json.dumps(saved))

    settings = Settings.load(paths, Policy())

    assert [settings.get(name) for name in SECURITY_OPTIONS] == [None, False, None, None]
    assert settings.get("sounds") is False, "preferences still come from the user's file"
    for name in SECURITY_OPTIONS:
        assert any(name in warning and "IT policy" in warning for warning in settings.warnings)
    settings.save()
    assert set(json.loads(paths.settings_file.read_text())) & set(SECURITY_OPTIONS) == set()


@pytest.mark.parametrize(
    "name, value",
    [
        ("ca_bundle", "CA"),
        ("allow_plain_http", True),
        ("update_public_key", KEY_B64),
        ("content_key_id", "0123456789abcdef"),
    ],
)
def test_a_user_cannot_set_a_security_setting(
    paths: AppPaths, ca_file: Path, name: str, value: Any
) -> None:
    settings = Settings.load(paths, Policy())
    with pytest.raises(SettingsError, match="only your organisation's IT policy"):
        settings.set(name, str(ca_file) if value == "CA" else value)
    assert settings.get(name) in (None, False)


def test_the_policy_still_sets_them(paths: AppPaths, ca_file: Path) -> None:
    policy = Policy(
        values={"ca_bundle": str(ca_file), "allow_plain_http": True, "content_key_id": "ab" * 8}
    )
    paths.config_dir.mkdir(parents=True)
    paths.settings_file.write_text(json.dumps({"allow_plain_http": False}))

    settings = Settings.load(paths, policy)

    assert settings.get("ca_bundle") == str(ca_file)
    assert settings.get("allow_plain_http") is True
    assert settings.get("content_key_id") == "ab" * 8


def test_a_user_update_key_does_not_replace_the_built_in_one(paths: AppPaths) -> None:
    paths.config_dir.mkdir(parents=True)
    paths.settings_file.write_text(
        json.dumps({"hub_url": "https://hub.example.org", "update_public_key": KEY_B64})
    )
    settings = Settings.load(paths, Policy())

    # Not frozen: no built-in key, and the user's key is not taken in its place.
    assert UpdateChecker.from_settings(settings, paths) is None


@pytest.fixture
def tls_hub(hub_settings: HubSettings, tmp_path: Path) -> Iterator[tuple[EmbeddedHub, Path]]:
    ca = trustme.CA(organization_name="Not your IT")
    certificate = ca.issue_cert("127.0.0.1")
    chain, key, ca_pem = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    certificate.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in certificate.cert_chain_pems))
    ca.cert_pem.write_to_path(str(ca_pem))
    hub = EmbeddedHub(hub_settings, ssl_certfile=chain, ssl_keyfile=key).start()
    yield hub, ca_pem
    hub.stop()


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_a_ca_bundle_in_the_environment_never_makes_a_hub_trusted(
    tls_hub: tuple[EmbeddedHub, Path], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    hub, ca_pem = tls_hub
    monkeypatch.setenv(variable, str(ca_pem))
    client = HubClient(hub.url)
    try:
        with pytest.raises(UntrustedCertificate):
            client.get_json("/v1/keys", auth=False)
    finally:
        client.close()
    # The same CA from IT's policy is what makes it trusted.
    trusted = HubClient(hub.url, ca_bundle=str(ca_pem))
    try:
        assert trusted.get_json("/v1/keys", auth=False)["content_keys"]
    finally:
        trusted.close()


def test_a_proxy_from_the_environment_is_still_used(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    class Proxy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = json.dumps({"status": "ok"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    # Port 9 on loopback: nothing listens, so only the proxy can answer.
    client = HubClient("http://127.0.0.1:9")
    try:
        assert client.get_json("/healthz", auth=False) == {"status": "ok"}
        assert seen == ["http://127.0.0.1:9/healthz"]
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
