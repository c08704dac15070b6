"""HubClient: every failure reaches the caller as a typed error with a clear message, never a raw
traceback, and an expired access token is refreshed once without the caller noticing."""

from __future__ import annotations

import contextlib
import http.server
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import trustme

from client.core.errors import (
    AuthRequired,
    BadResponse,
    HubAddressError,
    HubOffline,
    RequestRefused,
    ServerError,
    UntrustedCertificate,
)
from client.core.hub_client import HubClient
from hub.clock import ManualClock
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, create_user, sign_in


@dataclass
class Canned:
    """What the canned server answers per path, and the request headers it saw."""

    url: str
    answers: dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]] = field(
        default_factory=dict
    )
    seen_headers: list[dict[str, str]] = field(default_factory=list)


def answer(status: int, body: bytes, content_type: str = "application/json") -> Callable[..., None]:
    def send(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return send


def cut_short(handler: http.server.BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "400")
    handler.end_headers()
    handler.wfile.write(b'{"cursor": 12, "more": false, "items": [{"kind": "play')
    handler.close_connection = True


def not_http(handler: http.server.BaseHTTPRequestHandler) -> None:
    handler.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    handler.close_connection = True


@contextlib.contextmanager
def serving(server: http.server.ThreadingHTTPServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def canned() -> Iterator[Canned]:
    """A tiny stdlib HTTP server on 127.0.0.1 that gives the answers a test sets up."""
    state = Canned(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            state.seen_headers.append(dict(self.headers))
            state.answers.get(self.path, answer(404, b'{"error": "not_found"}'))(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    with serving(server):
        yield state


@pytest.fixture
def clients() -> Iterator[Callable[..., HubClient]]:
    """Make HubClients that are closed at teardown."""
    made: list[HubClient] = []

    def make(url: str, **kwargs: object) -> HubClient:
        client = HubClient(url, **kwargs)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_calls_the_real_hub(hub: EmbeddedHub, clients: Callable[..., HubClient]) -> None:
    client = clients(hub.url)

    assert client.get_json("/healthz", auth=False) == {"status": "ok"}
    keys = client.get_json("/v1/keys", auth=False)
    assert keys["content_keys"][0]["algorithm"] == "Ed25519"


def test_stopped_hub_is_offline(hub: EmbeddedHub, clients: Callable[..., HubClient]) -> None:
    client = clients(hub.url)
    assert client.get_json("/healthz", auth=False) == {"status": "ok"}
    hub.stop()

    with pytest.raises(HubOffline) as raised:
        client.get_json("/healthz", auth=False)

    assert hub.url in raised.value.message
    assert "Check your network or VPN" in raised.value.message
    assert "cache" in raised.value.message


def test_nothing_listening_is_offline(clients: Callable[..., HubClient]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = clients(f"http://127.0.0.1:{port}")

    with pytest.raises(HubOffline, match="refused"):
        client.get_json("/healthz", auth=False)


def test_answer_that_is_not_json_is_a_bad_response(
    canned: Canned, clients: Callable[..., HubClient]
) -> None:
    canned.answers["/healthz"] = answer(200, b"<html>Welcome to nginx</html>", "text/html")

    with pytest.raises(BadResponse, match="not valid JSON"):
        clients(canned.url).get_json("/healthz", auth=False)


def test_answer_cut_short_is_a_bad_response(
    canned: Canned, clients: Callable[..., HubClient]
) -> None:
    canned.answers["/v1/content"] = cut_short

    with pytest.raises(BadResponse, match="cut its answer short"):
        clients(canned.url).get_json("/v1/content", auth=False)


def test_peer_that_does_not_speak_http_is_a_bad_response(
    canned: Canned, clients: Callable[..., HubClient]
) -> None:
    canned.answers["/healthz"] = not_http

    with pytest.raises(BadResponse, match="not like a Vigil hub"):
        clients(canned.url).get_json("/healthz", auth=False)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_failure_is_a_server_error(
    canned: Canned, clients: Callable[..., HubClient], status: int
) -> None:
    canned.answers["/healthz"] = answer(status, b"<h1>Bad gateway</h1>", "text/html")

    with pytest.raises(ServerError) as raised:
        clients(canned.url).get_json("/healthz", auth=False)

    assert raised.value.status == status
    assert f"HTTP {status}" in raised.value.message


def test_other_refusal_carries_status_code_and_detail(
    canned: Canned, clients: Callable[..., HubClient]
) -> None:
    canned.answers["/v1/updates/latest"] = answer(
        404, b'{"error": "no_update", "detail": "No update has been placed for linux."}'
    )

    with pytest.raises(RequestRefused) as raised:
        clients(canned.url).get_json("/v1/updates/latest", auth=False)

    assert (raised.value.status, raised.value.code) == (404, "no_update")
    assert raised.value.message == "No update has been placed for linux."


def test_user_agent_names_vigil(canned: Canned, clients: Callable[..., HubClient]) -> None:
    canned.answers["/healthz"] = answer(200, b'{"status": "ok"}')

    clients(canned.url).get_json("/healthz", auth=False)

    assert canned.seen_headers[0]["User-Agent"].startswith("Vigil/")


@pytest.mark.parametrize(
    "url", ["http://hub.example.org", "http://10.0.0.5:8600", "ftp://hub.example.org", "hub"]
)
def test_unsafe_or_invalid_hub_address_is_refused_before_any_traffic(url: str) -> None:
    # The constructor refuses before a session exists, so nothing can be sent.
    with pytest.raises(HubAddressError, match="not usable"):
        HubClient(url)


def test_plain_http_to_another_host_needs_allow_plain_http(
    clients: Callable[..., HubClient],
) -> None:
    client = clients("http://hub.lab.example:8600/", allow_plain_http=True)

    assert client.base_url == "http://hub.lab.example:8600"


def test_authenticated_call_without_sign_in_needs_auth(
    canned: Canned, clients: Callable[..., HubClient]
) -> None:
    with pytest.raises(AuthRequired, match="Sign in"):
        clients(canned.url).get_json("/v1/me")

    assert canned.seen_headers == []


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 with a certificate no system trusts; yields (url, its CA)."""
    ca = trustme.CA(organization_name="Vigil test hub")
    cert_path = tmp_path / "hub-ca.pem"
    ca.cert_pem.write_to_path(str(cert_path))

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            answer(200, b'{"status": "ok"}')(self)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    url = f"https://127.0.0.1:{server.server_address[1]}"
    with serving(server):
        yield url, cert_path


def test_untrusted_certificate_has_its_own_error(
    tls_server: tuple[str, Path], clients: Callable[..., HubClient]
) -> None:
    url, _ = tls_server

    with pytest.raises(UntrustedCertificate) as raised:
        clients(url).get_json("/healthz", auth=False)

    assert "not trusted" in raised.value.message
    assert "ca_bundle" in raised.value.message


def test_ca_bundle_from_it_makes_the_certificate_trusted(
    tls_server: tuple[str, Path], clients: Callable[..., HubClient]
) -> None:
    url, ca = tls_server

    assert clients(url, ca_bundle=str(ca)).get_json("/healthz", auth=False) == {"status": "ok"}


@pytest.fixture
def signed_in_client(
    manual_clock: ManualClock, hub: EmbeddedHub, clients: Callable[..., HubClient]
) -> tuple[HubClient, list[str]]:
    """A client signed in as an agent on a hub whose clock tests move; a refresher that rotates
    the refresh token and records each access token it hands out."""
    secret = create_user(hub.store, "amira", "agent")
    tokens = sign_in(hub.url, "amira", DEFAULT_PASSWORD, secret, at=manual_clock.now())
    client = clients(hub.url)
    client.set_access_token(tokens["access_token"])
    refresh_token = [tokens["refresh_token"]]
    handed_out: list[str] = []

    def refresher() -> str:
        pair = requests.post(
            f"{hub.url}/v1/auth/refresh", json={"refresh_token": refresh_token[0]}, timeout=10
        ).json()
        refresh_token[0] = pair["refresh_token"]
        handed_out.append(pair["access_token"])
        return str(pair["access_token"])

    client.refresher = refresher
    return client, handed_out


def test_expired_access_token_is_refreshed_transparently(
    manual_clock: ManualClock, signed_in_client: tuple[HubClient, list[str]]
) -> None:
    client, handed_out = signed_in_client
    manual_clock.advance(16 * 60)

    me = client.get_json("/v1/me")

    assert me["username"] == "amira"
    assert len(handed_out) == 1
    assert client.get_json("/v1/me")["username"] == "amira"
    assert len(handed_out) == 1


def test_parallel_calls_with_an_expired_token_refresh_once(
    manual_clock: ManualClock, signed_in_client: tuple[HubClient, list[str]]
) -> None:
    # Two refreshes of the same refresh token would look like a replay and end the sign-in.
    client, handed_out = signed_in_client
    manual_clock.advance(16 * 60)
    results: list[object] = []

    def call() -> None:
        try:
            results.append(client.get_json("/v1/me")["username"])
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert results == ["amira"] * 4
    assert len(handed_out) == 1


def test_refused_refresh_is_auth_required_without_the_token_in_it(
    manual_clock: ManualClock, signed_in_client: tuple[HubClient, list[str]]
) -> None:
    client, _ = signed_in_client
    client.set_access_token("expired-token-value-that-must-not-leak")

    def refresher() -> str:
        raise AuthRequired("Your sign-in has ended. Sign in again.", "refresh_reused")

    client.refresher = refresher

    with pytest.raises(AuthRequired) as raised:
        client.get_json("/v1/me")

    assert raised.value.code == "refresh_reused"
    assert "must-not-leak" not in str(raised.value)
