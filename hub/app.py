"""The hub's composition root: builds the FastAPI app from injected settings and store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from anyio import CapacityLimiter
from fastapi import FastAPI
from starlette.routing import NoMatchFound

from hub.audit_retention import purge_audit_events
from hub.broker import AlertBroker
from hub.config import HubSettings
from hub.connection_limits import RequestLimit, StreamLimit, stream_cap
from hub.console import install_console
from hub.deps import STREAM_OPENING_THREADS
from hub.errors import BodySizeLimit, install_error_handlers
from hub.fallback import FallbackTask
from hub.file_modes import ModeChange, make_private, restrict_umask
from hub.headers import SecurityHeaders
from hub.notifiers import FallbackChannel, channels_from_settings
from hub.routes import (
    acks,
    admin,
    alerts,
    auth,
    content,
    delivery,
    groups,
    incidents,
    meta,
    readiness,
    reports,
    surveys,
)
from hub.signin import SignInGuard
from hub.signing import KEY_FILENAME, ContentSigner
from hub.storage import Store

log = logging.getLogger(__name__)

# SQLite's companions of the database: the WAL, its shared-memory index, a rollback journal.
_DATABASE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def prepare_data_dir(settings: HubSettings) -> list[ModeChange]:
    """Make the data dir 0700 and its database and key files 0600, saying what had to change.

    It holds the TOTP seeds and the content key. Also sets the umask, so that every file the hub
    creates from now on (a new WAL, a new key) is private from the start.
    """
    restrict_umask()
    database = settings.database_path.name
    names = [database + suffix for suffix in _DATABASE_SUFFIXES] + [KEY_FILENAME]
    changes = make_private(settings.data_dir, names)
    for change in changes:
        log.warning("%s", change)
    return changes


# No route is named so: route names are Python identifiers.
_NO_ROUTE_NAME = "no route has this name"


def create_app(
    settings: HubSettings,
    store: Store | None = None,
    *,
    fallback_channels: Sequence[FallbackChannel] | None = None,
    max_connections: int | None = None,
) -> FastAPI:
    """A hub app; it opens (and later closes) its own store when none is given.

    `fallback_channels` reach agents a critical alert could not reach in time; by default the
    ones the settings configure. `max_connections` is the server's connection cap (default: the
    settings' own), of which alert streams leave some for requests.
    """
    prepare_data_dir(settings)
    owns_store = store is None
    app_store = Store.open(settings.database, settings.clock) if store is None else store
    signer = ContentSigner.load_or_create(settings.data_dir)
    broker = AlertBroker(app_store, settings)
    signin_guard = SignInGuard.from_settings(settings)
    channels = (
        channels_from_settings(settings.fallback)
        if fallback_channels is None
        else fallback_channels
    )
    fallback = FallbackTask(
        app_store, channels, fallback_after_seconds=settings.fallback.fallback_after_seconds
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.stream_opening = CapacityLimiter(STREAM_OPENING_THREADS)
        await broker.start()
        await fallback.start()
        audit_purge = asyncio.create_task(purge_audit_events(app_store, settings))
        try:
            yield
        finally:
            audit_purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await audit_purge
            await fallback.stop()
            await broker.stop()
            signin_guard.hashing.close()
            if owns_store:
                app_store.close()

    app = FastAPI(
        title="Vigil hub",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # The schema maps every route for whoever asks: served only where IT turned it on.
        openapi_url="/openapi.json" if settings.openapi else None,
    )
    app.state.settings = settings
    app.state.store = app_store
    app.state.signer = signer
    app.state.broker = broker
    app.state.fallback = fallback
    app.state.signin_guard = signin_guard
    install_error_handlers(app)
    # Before the limits below are added, so that they (and the security headers) wrap it too.
    install_console(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Added late, so it runs early: a busy hub answers 503 before doing any other work.
    app.add_middleware(
        RequestLimit,
        max_in_flight=settings.limits.max_requests_in_flight,
        max_body_bytes=settings.max_body_bytes,
    )
    # Runs before the request limit: a stream refused for want of room holds no place there.
    app.add_middleware(
        StreamLimit,
        max_streams=stream_cap(
            settings.limits,
            settings.limits.max_connections if max_connections is None else max_connections,
        ),
    )
    # Added after the request and stream limits, so it wraps their 503s and the size limit's 413.
    app.add_middleware(SecurityHeaders)
    for router in (
        meta.router,
        auth.router,
        content.router,
        alerts.router,
        acks.router,
        delivery.router,
    ):
        app.include_router(router)
    # After the alerts router: GET /v1/alerts/{alert_id} must not shadow /v1/alerts/stream.
    app.include_router(incidents.router)
    app.include_router(groups.router)
    app.include_router(admin.router)
    app.include_router(readiness.router)
    app.include_router(surveys.router)
    app.include_router(reports.router)
    _build_routes_now(app)
    return app


def _build_routes_now(app: FastAPI) -> None:
    """Build every route's request and response models now, on this one thread.

    FastAPI builds an included router's routes on the first request that reaches them instead:
    up to a tenth of a second on the event loop while a restarted hub's first requests wait.
    Two hubs in one process (the tests' embedded hubs) built on two event loops at once, and the
    process-wide `warnings.catch_warnings` FastAPI builds under let a pydantic warning through
    as an error: a cold hub answered 500 (`AttributeError: __pydantic_core_schema__`).
    """
    # Looking up a name no route has walks every route, building each on the way.
    with contextlib.suppress(NoMatchFound):
        app.url_path_for(_NO_ROUTE_NAME)
