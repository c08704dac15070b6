"""A fault-injecting TCP proxy on 127.0.0.1 that tests put between the client and the hub.

It speaks toxiproxy's vocabulary: a *toxic* changes the bytes of one direction of every
connection, `upstream` (client to hub) or `downstream` (hub to client), and can be set or removed
while connections are open. Each toxic is one small class:

- Latency (with jitter), Bandwidth, Slicer (tiny fragments with delays): slow but correct.
- SlowClose: the close of a connection arrives late.
- Timeout: accept, then drop the data of that connection forever (a half-open connection).
- ResetPeer: the connection is reset (RST) when data passes.
- LimitData: the connection is closed once that many bytes have passed.
- StallStream: an HTTP-aware toxic; streams whose request path starts with a prefix go silent
  (the hub's event stream stops sending, heartbeats included) while other requests flow.

Beyond toxics: `refuse_connections()` closes the listening socket (connection refused until
`accept_connections()`), `answer_with(HttpAnswer(...))` makes the proxy itself answer every new
connection with a canned HTTP response instead of reaching the hub (a 5xx, or a 200 whose body is
cut short or is not JSON: the real hub never sends those, so the proxy fakes that one hop), and
`Resolver` makes a test host name fail to resolve on demand.

A dropped byte can never be followed by later bytes of the same connection (TCP does not lose a
byte in the middle of a stream), so a connection that loses data stays silent for good: the client
must notice and open a new one.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["upstream", "downstream"]
DIRECTIONS: tuple[Direction, ...] = ("upstream", "downstream")
LOOPBACK = "127.0.0.1"
READ_SIZE = 64 * 1024
CONNECT_TIMEOUT = 2.0
ACCEPT_POLL = 0.05
# Bounds for the proxy's own canned answers: a request head larger than this is not ours.
MAX_REQUEST_HEAD = 64 * 1024
ANSWER_IO_TIMEOUT = 5.0
_REQUEST_LINE = re.compile(rb"^[A-Z]+ (\S+) HTTP/1\.[01]\r\n")


class Connection:
    """One client connection and its connection to the hub, pumped by two threads."""

    def __init__(self, client: socket.socket, hub: socket.socket) -> None:
        self.client = client
        self.hub = hub
        self.ended = threading.Event()
        self.request_path = ""
        self._lock = threading.Lock()
        self._pumps_running = 2

    def end(self) -> None:
        """Close both sides with a normal FIN (idempotent); wakes both pumps."""
        with self._lock:
            if self.ended.is_set():
                return
            self.ended.set()
        for sock in (self.client, self.hub):
            _shutdown(sock, socket.SHUT_RDWR)

    def reset(self) -> None:
        """Abort both sides with a TCP reset (RST), as a peer that crashed would."""
        with self._lock:
            if self.ended.is_set():
                return
            self.ended.set()
        for sock in (self.client, self.hub):
            # Linger on with a zero timeout: close() then sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # Only wakes the pumps; nothing goes on the wire until the last pump closes.
            _shutdown(sock, socket.SHUT_RD)

    def pump_done(self) -> None:
        """Called by each pump as it exits; the last one closes both sockets."""
        with self._lock:
            self._pumps_running -= 1
            last = self._pumps_running == 0
        if last:
            self.client.close()
            self.hub.close()


class Link:
    """One direction of one connection: what toxics use to pass, delay or drop bytes."""

    def __init__(self, connection: Connection, direction: Direction) -> None:
        self.connection = connection
        self.direction = direction
        self.target = connection.hub if direction == "upstream" else connection.client
        self.sent = 0
        self.silenced = False

    def send(self, data: bytes) -> None:
        """Pass `data` on (nothing once the connection has ended)."""
        if not self.connection.ended.is_set():
            self.target.sendall(data)
            self.sent += len(data)

    def pause(self, seconds: float) -> None:
        """Wait, but no longer than the connection lives."""
        self.connection.ended.wait(max(0.0, seconds))

    def silence(self) -> None:
        """Drop everything this direction carries from now on, for good."""
        self.silenced = True


class Toxic:
    """Passes bytes on unchanged; subclasses change what passes."""

    def forward(self, data: bytes, link: Link) -> None:
        """Handle one chunk read from the source side."""
        link.send(data)

    def at_eof(self, link: Link) -> None:
        """The source side closed; runs before the proxy closes the connection."""


@dataclass
class Latency(Toxic):
    """Delay every chunk by `ms`, give or take up to `jitter_ms`."""

    ms: float
    jitter_ms: float = 0.0
    rng: random.Random | None = None

    def forward(self, data: bytes, link: Link) -> None:
        rng = self.rng or random
        link.pause((self.ms + rng.uniform(-self.jitter_ms, self.jitter_ms)) / 1000)
        link.send(data)


@dataclass
class Bandwidth(Toxic):
    """At most `kb_per_second` KB/s: send in tenth-of-a-second slices, pausing after each."""

    kb_per_second: float

    def forward(self, data: bytes, link: Link) -> None:
        rate = self.kb_per_second * 1000
        step = max(1, int(rate / 10))
        for start in range(0, len(data), step):
            piece = data[start : start + step]
            link.send(piece)
            link.pause(len(piece) / rate)


@dataclass
class Slicer(Toxic):
    """Cut every chunk into pieces of about `average_size` bytes, `delay_us` apart."""

    average_size: int
    size_variation: int = 0
    delay_us: int = 0
    rng: random.Random | None = None

    def forward(self, data: bytes, link: Link) -> None:
        rng = self.rng or random
        start = 0
        while start < len(data):
            size = max(
                1, self.average_size + rng.randint(-self.size_variation, self.size_variation)
            )
            link.send(data[start : start + size])
            start += size
            if start < len(data):
                link.pause(self.delay_us / 1_000_000)


@dataclass
class SlowClose(Toxic):
    """Hold the close of the connection back by `delay_ms` after the source side closed."""

    delay_ms: float

    def at_eof(self, link: Link) -> None:
        link.pause(self.delay_ms / 1000)


class Timeout(Toxic):
    """The connection stays open but carries nothing more in this direction, ever."""

    def forward(self, data: bytes, link: Link) -> None:
        link.silence()


class ResetPeer(Toxic):
    """Reset the connection (RST to both ends) as soon as data passes."""

    def forward(self, data: bytes, link: Link) -> None:
        link.connection.reset()


@dataclass
class LimitData(Toxic):
    """Pass at most `limit` bytes in this direction over the connection's life, then close it."""

    limit: int

    def forward(self, data: bytes, link: Link) -> None:
        room = max(0, self.limit - link.sent)
        link.send(data[:room])
        if len(data) >= room:
            link.connection.end()


@dataclass
class StallStream(Toxic):
    """HTTP-aware, downstream: a connection whose request path starts with `path_prefix` goes
    silent for good (the hub's stream stops, heartbeats too); other connections pass."""

    path_prefix: str

    def forward(self, data: bytes, link: Link) -> None:
        if link.connection.request_path.startswith(self.path_prefix):
            link.silence()
        else:
            link.send(data)


@dataclass(frozen=True)
class HttpAnswer:
    """A canned HTTP response the proxy gives instead of the hub's.

    `declared_length` larger than the body makes the answer cut short: the proxy closes the
    connection after sending fewer bytes than its Content-Length promised.
    """

    status: int
    reason: str
    content_type: str
    body: bytes
    declared_length: int | None = None

    def wire_bytes(self) -> bytes:
        """The response as sent: head, then body."""
        length = len(self.body) if self.declared_length is None else self.declared_length
        head = (
            f"HTTP/1.1 {self.status} {self.reason}\r\n"
            f"Content-Type: {self.content_type}\r\n"
            f"Content-Length: {length}\r\n"
            "Connection: close\r\n\r\n"
        )
        return head.encode("ascii") + self.body


class FaultProxy:
    """Forwards 127.0.0.1:`port` to `upstream`, with faults set and cleared at runtime."""

    def __init__(self, upstream: tuple[str, int], *, port: int = 0) -> None:
        self.upstream = upstream
        self.port = port
        self._lock = threading.Lock()
        self._toxics: dict[Direction, Toxic] = {}
        self._answer: HttpAnswer | None = None
        self._connections: set[Connection] = set()
        self._listener: socket.socket | None = None
        self._accepting = threading.Event()
        self._accept_thread: threading.Thread | None = None
        self.accepted = 0

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port> (valid once started)."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> FaultProxy:
        """Listen and accept connections; returns self."""
        self.accept_connections()
        return self

    def stop(self) -> None:
        """Stop listening and end every connection; safe to call twice."""
        self.refuse_connections()

    # Faults

    def set_toxic(self, direction: Direction, toxic: Toxic | None) -> None:
        """Apply `toxic` to one direction of every connection, open or new (None: remove it)."""
        with self._lock:
            if toxic is None:
                self._toxics.pop(direction, None)
            else:
                self._toxics[direction] = toxic

    def toxic(self, direction: Direction) -> Toxic:
        """The toxic in force for `direction` (a pass-through one when none is set)."""
        with self._lock:
            return self._toxics.get(direction) or _PASS

    def answer_with(self, answer: HttpAnswer | None) -> None:
        """Answer new connections with `answer` instead of the hub (None: reach the hub again)."""
        with self._lock:
            self._answer = answer

    def drop_connections(self) -> None:
        """End every open connection (as a network change does); new ones are accepted."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.end()

    def refuse_connections(self) -> None:
        """Close the listening socket and every connection: new connections are refused."""
        self._accepting.clear()
        thread, self._accept_thread = self._accept_thread, None
        if thread is not None:
            thread.join(5.0)
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self.drop_connections()

    def accept_connections(self) -> None:
        """Listen again on the same port (the first call picks a free one)."""
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self.port))
        listener.listen(64)
        # Accept polls with a short timeout so that refuse_connections() can stop it portably.
        listener.settimeout(ACCEPT_POLL)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._accepting.set()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, args=(listener,), name=f"faultproxy-{self.port}", daemon=True
        )
        self._accept_thread.start()

    def clear(self) -> None:
        """End every fault: no toxics, no canned answer, accepting connections."""
        with self._lock:
            self._toxics.clear()
            self._answer = None
        self.accept_connections()

    # Moving bytes

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._accepting.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self.accepted += 1
            with self._lock:
                answer = self._answer
            if answer is not None:
                target: Callable[..., None] = _serve_answer
                args: tuple[Any, ...] = (client, answer)
            else:
                target, args = self._open, (client,)
            threading.Thread(target=target, args=args, daemon=True).start()

    def _open(self, client: socket.socket) -> None:
        try:
            hub = socket.create_connection(self.upstream, timeout=CONNECT_TIMEOUT)
        except OSError:
            client.close()
            return
        hub.settimeout(None)
        connection = Connection(client, hub)
        with self._lock:
            self._connections.add(connection)
        threading.Thread(
            target=self._pump, args=(connection, "downstream", hub), daemon=True
        ).start()
        self._pump(connection, "upstream", client)

    def _pump(self, connection: Connection, direction: Direction, source: socket.socket) -> None:
        link = Link(connection, direction)
        try:
            while True:
                try:
                    data = source.recv(READ_SIZE)
                except OSError:
                    break
                if not data:
                    if not connection.ended.is_set():
                        self.toxic(direction).at_eof(link)
                    break
                if direction == "upstream":
                    _note_request(connection, data)
                if link.silenced:
                    continue
                try:
                    self.toxic(direction).forward(data, link)
                except OSError:
                    break
        finally:
            connection.end()
            with self._lock:
                self._connections.discard(connection)
            connection.pump_done()


_PASS = Toxic()


def _note_request(connection: Connection, data: bytes) -> None:
    # A request head arrives at the start of a chunk when nothing slices the upstream bytes;
    # the stall toxic, the one user of this, is never combined with a slicing one.
    match = _REQUEST_LINE.match(data)
    if match:
        connection.request_path = match.group(1).decode("ascii", "replace")


def _serve_answer(client: socket.socket, answer: HttpAnswer) -> None:
    """Read one request (head and Content-Length body), send `answer`, close gracefully."""
    client.settimeout(ANSWER_IO_TIMEOUT)
    try:
        received = b""
        while b"\r\n\r\n" not in received and len(received) < MAX_REQUEST_HEAD:
            chunk = client.recv(READ_SIZE)
            if not chunk:
                return
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        match = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
        remaining = (int(match.group(1)) if match else 0) - len(body)
        while remaining > 0:
            chunk = client.recv(min(READ_SIZE, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
        client.sendall(answer.wire_bytes())
        # FIN after the answer, then wait for the client to close: closing with unread bytes
        # would send RST, and the client could lose the answer it has not read yet.
        client.shutdown(socket.SHUT_WR)
        for _ in range(100):
            if not client.recv(READ_SIZE):
                break
    except OSError:
        pass
    finally:
        client.close()


def _shutdown(sock: socket.socket, how: int) -> None:
    # OSError: already disconnected, nothing left to wake or close.
    with contextlib.suppress(OSError):
        sock.shutdown(how)


class Resolver:
    """Resolves one test host name to 127.0.0.1, or fails like a DNS outage when `failing`.

    Installed in place of `socket.getaddrinfo` for the test (other names pass through). A fake,
    because the real resolver cannot be used: the system's resolver does not treat RFC 6761's
    `.invalid` specially and would send the query to the configured name server, off this
    computer, and it could not be made to answer again when the outage ends.
    """

    def __init__(self, name: str = "vigil-hub.invalid") -> None:
        self.name = name
        self.failing = False
        self._real = socket.getaddrinfo

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        """socket.getaddrinfo, with `name` answered here."""
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if isinstance(host, str) and host.lower().rstrip(".") == self.name:
            if self.failing:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            host = LOOPBACK
        return self._real(host, port, *args, **kwargs)
