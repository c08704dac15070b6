"""The fault proxy itself: each toxic does what its name says, faults switch on and off at
runtime, and nothing but 127.0.0.1 is involved."""

from __future__ import annotations

import random
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.faultproxy import (
    Bandwidth,
    Connection,
    FaultProxy,
    HttpAnswer,
    Latency,
    LimitData,
    Link,
    ResetPeer,
    Resolver,
    Slicer,
    SlowClose,
    StallStream,
    Timeout,
)

IO_TIMEOUT = 5.0


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        for _ in range(10_000):
            try:
                data = self.request.recv(65536)
                if not data:
                    return
                self.request.sendall(data)
            except ConnectionError:
                # The reset test resets this side too: that is the point, not an error.
                return


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    host, port = server.server_address[:2]
    yield str(host), int(port)
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo: tuple[str, int]) -> Iterator[FaultProxy]:
    started = FaultProxy(echo).start()
    yield started
    started.stop()


def connect(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=IO_TIMEOUT)
    return sock


def receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def packet_link() -> Iterator[tuple[Link, socket.socket]]:
    """A Link whose target keeps message boundaries, so each send() can be seen on its own."""
    client, client_peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    hub, hub_peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    yield Link(Connection(client, hub), "upstream"), hub_peer
    for sock in (client, client_peer, hub, hub_peer):
        sock.close()


def packets(peer: socket.socket) -> list[bytes]:
    peer.settimeout(0.2)
    received: list[bytes] = []
    for _ in range(100_000):
        try:
            received.append(peer.recv(65536))
        except TimeoutError:
            return received
    return received


def test_bytes_pass_both_ways_and_the_proxy_listens_on_loopback_only(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"hello hub")
        assert receive(sock, 9) == b"hello hub"
    assert proxy.url.startswith("http://127.0.0.1:")


def test_refused_while_closed_then_accepted_again_on_the_same_port(proxy: FaultProxy) -> None:
    port = proxy.port
    proxy.refuse_connections()
    with pytest.raises(ConnectionRefusedError):
        connect(proxy)
    proxy.accept_connections()
    assert proxy.port == port
    with connect(proxy) as sock:
        sock.sendall(b"back")
        assert receive(sock, 4) == b"back"


def test_latency_delays_each_chunk_by_at_least_the_latency_less_jitter(
    proxy: FaultProxy,
) -> None:
    proxy.set_toxic("downstream", Latency(ms=150, jitter_ms=50, rng=random.Random(1)))
    with connect(proxy) as sock:
        started = time.monotonic()
        sock.sendall(b"ping")
        assert receive(sock, 4) == b"ping"
        assert time.monotonic() - started >= 0.1


def test_bandwidth_sends_tenth_of_a_second_slices(
    packet_link: tuple[Link, socket.socket],
) -> None:
    link, peer = packet_link
    Bandwidth(kb_per_second=10).forward(b"x" * 2500, link)
    assert [len(p) for p in packets(peer)] == [1000, 1000, 500]


def test_slicer_cuts_into_small_pieces_that_add_up(
    packet_link: tuple[Link, socket.socket],
) -> None:
    link, peer = packet_link
    data = bytes(range(256)) * 4
    Slicer(average_size=16, size_variation=4, delay_us=100, rng=random.Random(7)).forward(
        data, link
    )
    pieces = packets(peer)
    assert b"".join(pieces) == data
    assert all(1 <= len(p) <= 20 for p in pieces) and len(pieces) >= 1024 // 20


def test_limit_data_passes_exactly_the_limit_then_closes(proxy: FaultProxy) -> None:
    proxy.set_toxic("downstream", LimitData(limit=10))
    with connect(proxy) as sock:
        sock.sendall(b"0123456789abcdef")
        assert receive(sock, 16) == b"0123456789"


def test_timeout_keeps_the_connection_open_and_silent_even_after_it_is_removed(
    proxy: FaultProxy,
) -> None:
    proxy.set_toxic("upstream", Timeout())
    with connect(proxy) as sock:
        sock.sendall(b"lost")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        proxy.set_toxic("upstream", None)
        sock.sendall(b"also lost")
        with pytest.raises(TimeoutError):
            sock.recv(10)
    with connect(proxy) as fresh:
        fresh.sendall(b"new")
        assert receive(fresh, 3) == b"new"


def test_reset_peer_resets_the_connection(proxy: FaultProxy) -> None:
    proxy.set_toxic("upstream", ResetPeer())
    with connect(proxy) as sock:
        sock.sendall(b"boom")
        with pytest.raises(ConnectionResetError):
            receive(sock, 4)


def test_slow_close_holds_the_close_back(proxy: FaultProxy) -> None:
    proxy.set_toxic("upstream", SlowClose(delay_ms=200))
    with connect(proxy) as sock:
        sock.sendall(b"bye")
        assert receive(sock, 3) == b"bye"
        started = time.monotonic()
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(10) == b""
        assert time.monotonic() - started >= 0.15


def test_drop_connections_ends_open_ones_and_accepts_new_ones(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"up")
        assert receive(sock, 2) == b"up"
        proxy.drop_connections()
        assert sock.recv(10) == b""
    with connect(proxy) as fresh:
        fresh.sendall(b"ok")
        assert receive(fresh, 2) == b"ok"


def test_canned_answers_replace_the_hub_for_new_connections(proxy: FaultProxy) -> None:
    proxy.answer_with(HttpAnswer(503, "Service Unavailable", "application/json", b'{"e":1}'))
    answer = requests.post(f"{proxy.url}/v1/acks", json={"acks": []}, timeout=IO_TIMEOUT)
    assert (answer.status_code, answer.json()) == (503, {"e": 1})

    proxy.answer_with(
        HttpAnswer(200, "OK", "application/json", b'{"results": [', declared_length=400)
    )
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(f"{proxy.url}/v1/keys", timeout=IO_TIMEOUT)

    proxy.clear()
    with connect(proxy) as sock:
        sock.sendall(b"echo again")
        assert receive(sock, 10) == b"echo again"


def test_stall_stream_silences_only_the_stream_path(proxy: FaultProxy) -> None:
    proxy.set_toxic("downstream", StallStream("/v1/alerts/stream"))
    with connect(proxy) as other:
        other.sendall(b"GET /v1/keys HTTP/1.1\r\n\r\n")
        assert receive(other, 25) == b"GET /v1/keys HTTP/1.1\r\n\r\n"
    with connect(proxy) as stream:
        stream.sendall(b"GET /v1/alerts/stream HTTP/1.1\r\n\r\n")
        stream.settimeout(0.3)
        with pytest.raises(TimeoutError):
            stream.recv(10)


def test_resolver_fails_on_demand_and_leaves_other_names_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolver = Resolver()
    monkeypatch.setattr(socket, "getaddrinfo", resolver.getaddrinfo)
    assert socket.getaddrinfo("vigil-hub.invalid", 80)[0][4][0] == "127.0.0.1"
    resolver.failing = True
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("vigil-hub.invalid", 80)
    assert socket.getaddrinfo("127.0.0.1", 80)[0][4][0] == "127.0.0.1"
