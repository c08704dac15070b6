"""Every network fault the reliability tests inject, and what the client must show during it.

Most faults start the way a network change does: switched on, with the open connections cut, so
both the ack flush and the alert stream meet them on their next connection. The `*_open` faults
and `stream_goes_silent` instead hit the connections already open (a keep-alive connection, the
live stream): that is their point. `FaultProxy.clear()` plus
`Resolver.failing = False` ends any of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from tests.faultproxy import (
    DIRECTIONS,
    Bandwidth,
    Direction,
    FaultProxy,
    HttpAnswer,
    Latency,
    LimitData,
    ResetPeer,
    Resolver,
    Slicer,
    SlowClose,
    StallStream,
    Timeout,
    Toxic,
)

Starter = Callable[[FaultProxy, Resolver], None]


@dataclass(frozen=True)
class Fault:
    """A fault, and whether the ack flush and the alert stream must show it as broken.

    `flush_reason` is a phrase the sync status detail must contain while it lasts; `by_name`
    means the client must reach the hub by host name (the DNS fault).
    """

    name: str
    start: Starter
    breaks_flush: bool
    breaks_stream: bool
    flush_reason: str = ""
    by_name: bool = False


def _toxic(direction: Direction, make: Callable[[], Toxic], *, cut_open: bool = True) -> Starter:
    def start(proxy: FaultProxy, resolver: Resolver) -> None:
        proxy.set_toxic(direction, make())
        if cut_open:
            proxy.drop_connections()

    return start


def _answer(answer: HttpAnswer) -> Starter:
    def start(proxy: FaultProxy, resolver: Resolver) -> None:
        proxy.answer_with(answer)
        proxy.drop_connections()

    return start


def _refuse(proxy: FaultProxy, resolver: Resolver) -> None:
    proxy.refuse_connections()


def _stall_stream(proxy: FaultProxy, resolver: Resolver) -> None:
    proxy.set_toxic("downstream", StallStream("/v1/alerts/stream"))


def _dns_failure(proxy: FaultProxy, resolver: Resolver) -> None:
    resolver.failing = True
    # Open connections were resolved before; a network change that breaks DNS also ends them.
    proxy.drop_connections()


SERVER_ERROR = HttpAnswer(
    503,
    "Service Unavailable",
    "application/json",
    json.dumps({"error": "unavailable", "detail": "The hub is restarting."}).encode(),
)
# The start of a real answer, with a Content-Length promising far more than is sent.
TRUNCATED = HttpAnswer(
    200, "OK", "application/json", b'{"results": [{"ack_id": "', declared_length=4096
)
# What a Wi-Fi sign-in page (a captive portal) answers to every request.
NOT_JSON = HttpAnswer(
    200, "OK", "text/html", b"<html><body>Sign in to Hospital Guest Wi-Fi</body></html>"
)


def _toxic_faults() -> list[Fault]:
    faults = []
    for direction in DIRECTIONS:
        faults += [
            Fault(
                f"latency_jitter_{direction}",
                _toxic(direction, lambda: Latency(ms=150, jitter_ms=100)),
                breaks_flush=False,
                breaks_stream=False,
            ),
            Fault(
                f"bandwidth_{direction}",
                _toxic(direction, lambda: Bandwidth(kb_per_second=64)),
                breaks_flush=False,
                breaks_stream=False,
            ),
            Fault(
                f"slicer_{direction}",
                _toxic(direction, lambda: Slicer(average_size=32, size_variation=16, delay_us=200)),
                breaks_flush=False,
                breaks_stream=False,
            ),
            Fault(
                f"slow_close_{direction}",
                _toxic(direction, lambda: SlowClose(delay_ms=500)),
                breaks_flush=False,
                breaks_stream=False,
            ),
            Fault(
                f"timeout_{direction}",
                _toxic(direction, Timeout),
                breaks_flush=True,
                breaks_stream=True,
                flush_reason="stopped answering",
            ),
            Fault(
                f"reset_peer_{direction}",
                _toxic(direction, ResetPeer),
                breaks_flush=True,
                breaks_stream=True,
                flush_reason="failed or was lost",
            ),
            Fault(
                f"limit_data_{direction}",
                _toxic(direction, lambda: LimitData(limit=64)),
                breaks_flush=True,
                breaks_stream=True,
            ),
        ]
    return faults


# The same hub-side breakage hitting connections that are already open and idle or streaming: the
# pooled keep-alive connection of the next flush, and the live alert stream at its next heartbeat.
OPEN_CONNECTION_FAULTS = [
    Fault(
        "timeout_downstream_open",
        _toxic("downstream", Timeout, cut_open=False),
        breaks_flush=True,
        breaks_stream=True,
        flush_reason="stopped answering",
    ),
    Fault(
        "reset_peer_downstream_open",
        _toxic("downstream", ResetPeer, cut_open=False),
        breaks_flush=True,
        breaks_stream=True,
    ),
    Fault(
        "limit_data_downstream_open",
        _toxic("downstream", lambda: LimitData(limit=64), cut_open=False),
        breaks_flush=True,
        breaks_stream=True,
    ),
]

FAULTS: list[Fault] = [
    *_toxic_faults(),
    *OPEN_CONNECTION_FAULTS,
    Fault("connection_refused", _refuse, True, True, flush_reason="refused"),
    Fault("server_error_503", _answer(SERVER_ERROR), True, True, flush_reason="HTTP 503"),
    Fault("truncated_200", _answer(TRUNCATED), True, True, flush_reason="cut its answer short"),
    Fault("not_json_200", _answer(NOT_JSON), True, True, flush_reason="not valid JSON"),
    Fault("stream_goes_silent", _stall_stream, breaks_flush=False, breaks_stream=True),
    Fault("dns_failure", _dns_failure, True, True, flush_reason="DNS", by_name=True),
]


def end_faults(proxy: FaultProxy, resolver: Resolver) -> None:
    """End whatever fault is on."""
    resolver.failing = False
    proxy.clear()
