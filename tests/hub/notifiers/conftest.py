"""Real receivers on 127.0.0.1 for the fallback channels: an SMTP server and an HTTP endpoint."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from hub.notifiers.notice import FallbackNotice

RELAY_USER = "vigil-relay"
RELAY_PASSWORD = "relay pass: 7f3a-not-in-any-log"


def make_notice(**changes: Any) -> FallbackNotice:
    """A critical alert's notice for agent jlee, with `changes` applied."""
    values: dict[str, Any] = {
        "alert_id": "a-1",
        "title": "Video visits down in the West region",
        "severity": "critical",
        "drill": False,
        "username": "jlee",
        "display_name": "J. Lee",
        "phone": "+1 555 123 4567",
        "fallback_email": "5551234567@sms-gateway.example.org",
        "issued_at": 1_700_000_000.0,
    }
    values.update(changes)
    return FallbackNotice(**values)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Mailbox:
    """What an SMTP server received: (envelope sender, recipients, raw message) per message."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self.lock:
            self.messages.append((envelope.mail_from or "", list(envelope.rcpt_tos), content))
        return "250 OK queued as test"

    def received(self) -> list[tuple[str, list[str], bytes]]:
        with self.lock:
            return list(self.messages)


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == RELAY_USER.encode()
        and auth_data.password == RELAY_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    """A running aiosmtpd server: where it listens and what it received."""

    host: str
    port: int
    mailbox: Mailbox


@pytest.fixture
def tls_ca() -> trustme.CA:
    """A private CA, as a hospital's internal one would be."""
    return trustme.CA(organization_name="Example Hospital IT")


@pytest.fixture
def ca_file(tls_ca: trustme.CA, tmp_path: Path) -> Path:
    """`tls_ca` as a PEM file, for --smtp-ca-file / --webhook-ca-file."""
    path = tmp_path / "hospital-ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return path


def server_tls_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    """A server-side TLS context with a certificate from `ca` for `names`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


@pytest.fixture
def start_smtp(tls_ca: trustme.CA) -> Iterator[Callable[..., SmtpServer]]:
    """Start SMTP servers on 127.0.0.1: mode "plain", "starttls" (required) or "tls".

    `cert_names` are the names on the server's certificate; all stop at teardown.
    """
    controllers: list[Controller] = []

    def start(
        mode: str = "plain", cert_names: tuple[str, ...] = ("127.0.0.1",), auth: bool = False
    ) -> SmtpServer:
        mailbox = Mailbox()
        port = free_port()
        options: dict[str, Any] = {}
        if mode == "starttls":
            options.update(
                tls_context=server_tls_context(tls_ca, *cert_names), require_starttls=True
            )
        if auth:
            options.update(authenticator=_authenticate)
        controller = Controller(
            mailbox,
            hostname="127.0.0.1",
            port=port,
            ssl_context=server_tls_context(tls_ca, *cert_names) if mode == "tls" else None,
            **options,
        )
        controller.start()
        controllers.append(controller)
        return SmtpServer("127.0.0.1", port, mailbox)

    yield start
    for controller in reversed(controllers):
        controller.stop()


@dataclass
class WebhookReceiver:
    """A running HTTP receiver: its URL, what it got (headers, body) and what it answers."""

    url: str
    requests: list[tuple[dict[str, str], bytes]]
    lock: threading.Lock

    def received(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return list(self.requests)


class _Receiver(ThreadingHTTPServer):
    # The default backlog of 5 resets some of 40 simultaneous connections.
    request_queue_size = 64


@pytest.fixture
def start_receiver(tls_ca: trustme.CA) -> Iterator[Callable[..., WebhookReceiver]]:
    """Start HTTP(S) receivers on 127.0.0.1 answering `status` (and `location` for 3xx)."""
    servers: list[ThreadingHTTPServer] = []
    threads: list[threading.Thread] = []

    def start(status: int = 204, location: str | None = None, tls: bool = False) -> WebhookReceiver:
        received: list[tuple[dict[str, str], bytes]] = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with lock:
                    received.append((dict(self.headers.items()), body))
                self.send_response(status)
                if location is not None:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        server = _Receiver(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        scheme = "http"
        if tls:
            context = server_tls_context(tls_ca, "127.0.0.1")
            server.socket = context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append(server)
        threads.append(thread)
        return WebhookReceiver(f"{scheme}://127.0.0.1:{server.server_port}/hook", received, lock)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=10)
