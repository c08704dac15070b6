"""A hub served by uvicorn in a background thread: for tests, the demo and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from hub.app import create_app, prepare_data_dir
from hub.broker import AlertBroker
from hub.config import HubSettings
from hub.connection_limits import (
    connection_cap,
    guarded_h11_protocol,
    raise_open_file_limit,
    stream_cap,
)
from hub.fallback import FallbackTask
from hub.notifiers import FallbackChannel
from hub.storage import Store

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 10.0
# Open SSE streams are ended by the broker first; this only bounds the stragglers.
GRACEFUL_SHUTDOWN_SECONDS = 1


class HubStartError(RuntimeError):
    """The embedded hub did not come up."""


class EmbeddedHub:
    """A real hub on a real socket, in this process.

    The socket is bound at construction, so `port` and `url` are known before `start()`; a new
    EmbeddedHub may bind the same port as soon as an old one has stopped.
    """

    def __init__(
        self,
        settings: HubSettings,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_level: str = "warning",
        ssl_certfile: Path | None = None,
        ssl_keyfile: Path | None = None,
        fallback_channels: Sequence[FallbackChannel] | None = None,
    ) -> None:
        self.settings = settings
        self.host = host
        self.scheme = "https" if ssl_certfile is not None else "http"
        max_connections = connection_cap(settings.limits, raise_open_file_limit())
        prepare_data_dir(settings)
        self.store = Store.open(settings.database, settings.clock)
        try:
            self.app = create_app(
                settings,
                self.store,
                fallback_channels=fallback_channels,
                max_connections=max_connections,
            )
            self._socket = _bind(host, port)
        except BaseException:
            self.store.close()
            raise
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn_config(
            self.app,
            settings,
            max_connections,
            log_level=log_level,
            log_config=None,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:51234 (https:// when serving TLS)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def broker(self) -> AlertBroker:
        """The app's alert broker."""
        broker: AlertBroker = self.app.state.broker
        return broker

    @property
    def fallback(self) -> FallbackTask:
        """The app's fallback task."""
        fallback: FallbackTask = self.app.state.fallback
        return fallback

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> EmbeddedHub:
        """Serve in a daemon thread; returns once requests are answered."""
        if self._thread is not None:
            raise RuntimeError("This hub was already started; make a new EmbeddedHub.")
        self._thread = threading.Thread(
            target=self._serve, name=f"vigil-hub-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self.stop()
                raise HubStartError("The hub stopped while starting; see the log above.")
            if time.monotonic() > deadline:
                self.stop()
                raise HubStartError(f"The hub did not start within {timeout:.0f} s.")
            self._thread.join(0.01)
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """End open streams, stop serving, close the socket and the store. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self.broker.close_streams()
            self._server.should_exit = True
            thread.join(timeout)
            if thread.is_alive():
                self._server.force_exit = True
                thread.join(timeout)
        self._socket.close()
        self.store.close()

    def __enter__(self) -> EmbeddedHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self) -> None:
        # uvicorn exits the process on a start-up failure; here that only ends this thread.
        with contextlib.suppress(SystemExit):
            asyncio.run(self._server.serve(sockets=[self._socket]))


def uvicorn_config(
    app: FastAPI, settings: HubSettings, max_connections: int, **options: Any
) -> uvicorn.Config:
    """uvicorn's settings for a hub: HTTP/1.1 only, at most `max_connections` connections (see
    `connection_cap`), with the hub's other connection limits.

    uvicorn's own `limit_concurrency` stays off: it counts idle connections and live streams,
    which the hub bounds itself (hub/connection_limits.py).
    """
    limits = settings.limits
    log.info(
        "Up to %d connections (%d of them alert streams), %d requests in flight, "
        "%d streams per user",
        max_connections,
        stream_cap(limits, max_connections),
        limits.max_requests_in_flight,
        limits.max_streams_per_user,
    )
    return uvicorn.Config(
        app,
        lifespan="on",
        ws="none",
        http=guarded_h11_protocol(limits, max_connections),
        timeout_keep_alive=limits.keep_alive_seconds,
        # uvicorn would believe X-Forwarded-For from 127.0.0.1; the hub reads forwarded headers
        # itself, from trusted proxies only (hub/client_address.py).
        proxy_headers=False,
        **options,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on accepted sockets whose listener
    # says proto TCP, and without it every keep-alive answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # Lets a restarted hub take the port while the old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock
