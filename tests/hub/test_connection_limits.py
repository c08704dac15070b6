"""What clients can hold open on a real hub: idle and slow connections, requests in flight,
thousands of sockets against the open-file limit."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

import pytest
import requests

from hub.clock import SystemClock
from hub.config import HubSettings
from hub.connection_limits import ConnectionLimits, stream_cap
from hub.server import EmbeddedHub
from hub.storage import Store
from tests.hub.test_stream import SseReader
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    access_token,
    auth_headers,
    create_user,
    login,
    publish_alert,
    sign_in,
    wait_until,
    write_lock_held,
)

# A dropped connection must be dropped well within this; a kept one is still open after it.
DROP_BOUND_SECONDS = 5.0
IDLE_SOCKETS = 1_100
DEFAULT_SOFT_FD_LIMIT = 1_024
FAST = ConnectionLimits(header_timeout_seconds=1, body_timeout_seconds=1, keep_alive_seconds=1)


def connect(hub_url: str, bound: float = DROP_BOUND_SECONDS) -> socket.socket:
    """A raw connection to the hub whose reads give up after `bound` seconds."""
    host, port = hub_url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=bound)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the hub sends until it closes; fails when it keeps the connection open."""
    received = b""
    for _ in range(1_000):
        try:
            chunk = sock.recv(65_536)
        except TimeoutError:
            raise AssertionError(
                f"The hub kept the connection open for {sock.gettimeout()} s; got {received!r}"
            ) from None
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError("The hub sent too much")


def trickle(sock: socket.socket, data: bytes, every: float) -> bool:
    """Send one byte per `every` s, as a slowloris client does; False once the hub answered or
    hung up."""
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return False
        # Paces the bytes, and notices at once when the hub answers or closes.
        readable, _, _ = select.select([sock], [], [], every)
        if readable:
            return False
    return True


def answers_health_check(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=HTTP_TIMEOUT).ok
    except requests.RequestException:
        return False


def test_request_headers_sent_a_byte_a_second_are_dropped(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    hub = start_hub(limits=FAST)
    with closing(connect(hub.url)) as slow:
        still_open = trickle(
            slow, b"GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Pad: " + b"a" * 40, 0.2
        )
        answer = read_until_closed(slow)

        assert not still_open
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b'"request_timeout"' in answer
        assert requests.get(f"{hub.url}/healthz", timeout=HTTP_TIMEOUT).ok


def test_a_connection_that_never_sends_a_request_is_dropped(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    hub = start_hub(limits=FAST)
    with closing(connect(hub.url)) as idle:
        answer = read_until_closed(idle)

    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_body_sent_slowly_is_dropped_and_a_quick_one_is_answered(
    start_hub: Callable[..., EmbeddedHub], caplog: pytest.LogCaptureFixture
) -> None:
    hub = start_hub(limits=FAST)
    body = json.dumps(
        {"username": "ana", "password": "x" * 8, "device_id": "d", "device_name": "n"}
    ).encode()
    head = (
        b"POST /v1/auth/login HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with closing(connect(hub.url)) as slow:
        slow.sendall(head + body[:5])
        still_open = trickle(slow, body[5:], 0.2)
        answer = read_until_closed(slow)

    assert not still_open
    # Dropped mid-body: no answer at all, and no 5xx either.
    assert answer == b""
    quick = requests.post(
        f"{hub.url}/v1/auth/login",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=HTTP_TIMEOUT,
    )
    assert quick.status_code == 401
    assert quick.json()["error"] == "invalid_credentials"
    # The dropped request is no server error: nothing at ERROR in the hub's or uvicorn's log.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_an_idle_keep_alive_connection_is_closed(start_hub: Callable[..., EmbeddedHub]) -> None:
    hub = start_hub(limits=FAST)
    # Below uvicorn's default of 5 s: the hub's own keep-alive setting is what closes it.
    with closing(connect(hub.url, bound=3.0)) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
        answer = read_until_closed(conn)

    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b'{"status":"ok"}')


def test_connections_over_the_cap_get_503_and_the_cap_frees_up(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    hub = start_hub(limits=ConnectionLimits(max_connections=10, header_timeout_seconds=60))
    with ExitStack() as held:
        # Accepted in order: the hub has counted these ten before it sees the next one.
        for _ in range(10):
            held.enter_context(closing(connect(hub.url)))
        with closing(connect(hub.url)) as surplus:
            answer = read_until_closed(surplus)

    assert answer.startswith(b"HTTP/1.1 503 ")
    assert b'"overloaded"' in answer
    wait_until(lambda: answers_health_check(hub.url))


def test_alert_streams_leave_the_connections_kept_for_requests(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    limits = ConnectionLimits(
        max_connections=12, connections_kept_for_requests=4, header_timeout_seconds=60
    )
    hub = start_hub(limits=limits)
    agents = [access_token(hub.store, hub.url, f"agent{n}") for n in range(4)]
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    with ExitStack() as held:
        # Ten streams asked for, three per agent at most (within the per-user cap of five).
        answers = [
            held.enter_context(closing(ask_for_stream(hub, agents[n % len(agents)])))
            for n in range(10)
        ]
        live, refused = answers[:8], answers[8:]
        assert [answer.status_code for answer in live] == [200] * 8
        assert [
            (answer.status_code, answer.json()["error"], answer.headers["retry-after"])
            for answer in refused
        ] == [(503, "streams_full", "1")] * 2
        assert "another of the hub's addresses" in refused[0].json()["detail"]
        readers = [SseReader(answer) for answer in live]
        for reader in readers:
            reader.wait_until_live()

        # Every stream the hub allows is open: a dispatcher still gets in, and so does an agent.
        alert = publish_alert(hub.url, dispatcher, title="Phones down")
        for reader in readers:
            event = reader.next_event()
            assert (event.event, event.json()["id"]) == ("alert", alert["id"])
        assert login(hub.url, "agent0").status_code == 200

        # A stream that ends gives its place to the next one.
        live[0].close()
        wait_until(lambda: _stream_status(hub, agents[0]) == 200)


def ask_for_stream(hub: EmbeddedHub, token: str) -> requests.Response:
    """The hub's answer to a request for an alert stream, its body left unread."""
    return requests.get(
        f"{hub.url}/v1/alerts/stream",
        headers=auth_headers(token),
        stream=True,
        timeout=(HTTP_TIMEOUT, DROP_BOUND_SECONDS),
    )


def _stream_status(hub: EmbeddedHub, token: str) -> int:
    with ask_for_stream(hub, token) as answer:
        return answer.status_code


@pytest.mark.parametrize(
    ("max_connections", "kept", "streams"),
    [(10_000, 500, 9_500), (12, 4, 8), (100, 500, 50), (1, 500, 1), (10, 0, 10)],
)
def test_streams_get_the_connection_cap_less_those_kept_for_requests_at_most_half(
    max_connections: int, kept: int, streams: int
) -> None:
    limits = ConnectionLimits(connections_kept_for_requests=kept)
    assert stream_cap(limits, max_connections) == streams


@contextmanager
def request_waiting_for_its_body(hub: EmbeddedHub) -> Iterator[socket.socket]:
    """A request whose headers the hub has, still owing most of its body."""
    with closing(connect(hub.url)) as sock:
        sock.sendall(
            b"POST /v1/auth/login HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        yield sock


@contextmanager
def database_write_locked(hub: EmbeddedHub) -> Iterator[None]:
    """Another process holds the database's write lock: every write of the hub waits for it."""
    with write_lock_held(hub.settings):
        yield


def first_answer_with_status(url: str, status: int) -> requests.Response:
    """GET `url` until it answers `status`, for at most 5 s; the last answer."""
    answers = [requests.get(url, timeout=HTTP_TIMEOUT)]

    def answered() -> bool:
        if answers[-1].status_code != status:
            answers.append(requests.get(url, timeout=HTTP_TIMEOUT))
        return answers[-1].status_code == status

    # Within the hub's 10 s wait for the database lock, which the held sign-ins are in.
    with contextlib.suppress(AssertionError):
        wait_until(answered, timeout=5.0, interval=0.0)
    return answers[-1]


def login_as_a_client_does(url: str, username: str) -> requests.Response:
    """The password step, tried again after a 503 as Vigil does (a probe may have had the room)."""
    for _ in range(100):
        response = login(url, username)
        if response.status_code != 503:
            return response
        threading.Event().wait(float(response.headers["retry-after"]) / 100)
    return response


def test_requests_over_the_in_flight_limit_get_a_quick_503_and_the_room_comes_back(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    hub = start_hub(limits=ConnectionLimits(max_requests_in_flight=2))
    secrets = {name: create_user(hub.store, name) for name in ("ana", "bob")}

    with ThreadPoolExecutor(max_workers=2) as pool:
        with database_write_locked(hub):
            # Two sign-ins that must write their challenge: both wait for the lock, in flight.
            pending = [pool.submit(login_as_a_client_does, hub.url, name) for name in secrets]
            busy = first_answer_with_status(f"{hub.url}/healthz", 503)
        signed_in = [future.result() for future in pending]

    assert busy.status_code == 503
    assert busy.json()["error"] == "overloaded"
    assert busy.headers["retry-after"] == "1"
    # Nothing was lost: the held requests were answered once the lock went.
    assert [response.status_code for response in signed_in] == [200, 200]
    assert requests.get(f"{hub.url}/healthz", timeout=HTTP_TIMEOUT).ok


def test_live_streams_and_requests_still_sending_their_body_do_not_count_as_in_flight(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    hub = start_hub(limits=ConnectionLimits(max_requests_in_flight=2, body_timeout_seconds=60))
    agents = [access_token(hub.store, hub.url, f"agent{n}") for n in range(3)]
    with ExitStack() as held:
        for token in agents:
            stream = held.enter_context(closing(ask_for_stream(hub, token)))
            assert stream.status_code == 200
        for _ in range(3):
            held.enter_context(request_waiting_for_its_body(hub))

        # Three live streams and three slow bodies over a limit of two: requests still go through.
        assert requests.get(f"{hub.url}/healthz", timeout=HTTP_TIMEOUT).ok
        me = requests.get(f"{hub.url}/v1/me", headers=auth_headers(agents[0]), timeout=5)
        assert me.json()["username"] == "agent0"


@contextmanager
def open_file_limit(soft: int) -> Iterator[None]:
    """This process's soft limit on open files set to `soft` for the block, then put back."""
    old_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (old_soft, hard))


def test_the_embedded_hub_raises_the_open_file_limit_to_the_hard_limit(
    hub_settings: HubSettings,
) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2 * DEFAULT_SOFT_FD_LIMIT:
        pytest.skip(f"the hard open-file limit here is only {hard}")
    with open_file_limit(DEFAULT_SOFT_FD_LIMIT):
        hub = EmbeddedHub(hub_settings)
        try:
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
        finally:
            hub.stop()


@pytest.mark.slow
def test_eleven_hundred_idle_sockets_leave_healthz_and_a_signed_in_agent_answering(
    tmp_path: Path, hub_database: str | None
) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # The sockets of both ends live on this machine: the hub's in its own process, ours here.
    if hard < 2 * IDLE_SOCKETS + 200:
        pytest.skip(f"the hard open-file limit here is only {hard}")
    data = tmp_path / "hub-data"
    # The user goes where `vigil-hub serve` will look: on the PostgreSQL pass, that database.
    store = Store.open(hub_database or _prepared(data), SystemClock())
    secret = create_user(store, "ana")
    store.close()

    with open_file_limit(hard), serving(data) as url, ExitStack() as held:
        tokens = sign_in(url, "ana", DEFAULT_PASSWORD, secret)
        for _ in range(IDLE_SOCKETS):
            held.enter_context(closing(connect(url)))

        health = _get(f"{url}/healthz")
        me = _get(f"{url}/v1/me", headers=auth_headers(tokens["access_token"]))

    assert health.json() == {"status": "ok"}
    assert me.json()["username"] == "ana"


def _prepared(data: Path) -> Path:
    data.mkdir(mode=0o700)
    return data / "hub.sqlite3"


def _get(url: str, headers: dict[str, str] | None = None) -> requests.Response:
    try:
        response = requests.get(url, headers=headers, timeout=DROP_BOUND_SECONDS)
    except requests.RequestException as exc:
        raise AssertionError(f"The hub did not answer {url} with idle sockets held: {exc}") from exc
    assert response.status_code == 200, response.text
    return response


def _limit_open_files() -> None:
    # In the child, before exec: the common default soft limit, as on a stock server.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (DEFAULT_SOFT_FD_LIMIT, hard))


@contextmanager
def serving(data: Path) -> Iterator[str]:
    """`vigil-hub serve` in its own process with a 1,024 open-file soft limit; its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--port", "0", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=_limit_open_files,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith("Vigil hub on http://"), banner
        url = banner.split()[3]
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.parametrize(
    "bad",
    [
        {"max_connections": 0},
        {"max_requests_in_flight": -1},
        {"connections_kept_for_requests": -1},
        {"max_streams_per_user": 0},
        {"header_timeout_seconds": 0},
        {"body_timeout_seconds": float("nan")},
        {"keep_alive_seconds": -5},
    ],
)
def test_limits_that_would_refuse_everything_or_never_time_out_are_refused(
    bad: dict[str, float],
) -> None:
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"ConnectionLimits.{name} must be"):
        ConnectionLimits(**bad)
