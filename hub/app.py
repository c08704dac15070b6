"""The hub's composition root: builds the FastAPI app from injected settings and store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hub.broker import AlertBroker
from hub.config import HubSettings
from hub.errors import BodySizeLimit, install_error_handlers
from hub.routes import acks, alerts, auth, content, meta
from hub.signin import SignInGuard
from hub.signing import ContentSigner
from hub.storage import Store


def prepare_data_dir(settings: HubSettings) -> None:
    """Create the data dir readable by its owner only (it holds keys and password hashes)."""
    if not settings.data_dir.exists():
        settings.data_dir.mkdir(mode=0o700, parents=True)
        settings.data_dir.chmod(0o700)


def create_app(settings: HubSettings, store: Store | None = None) -> FastAPI:
    """A hub app; it opens (and later closes) its own store when none is given."""
    prepare_data_dir(settings)
    owns_store = store is None
    app_store = Store.open(settings.database_path, settings.clock) if store is None else store
    signer = ContentSigner.load_or_create(settings.data_dir)
    broker = AlertBroker(app_store, settings)
    signin_guard = SignInGuard.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await broker.start()
        try:
            yield
        finally:
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
    )
    app.state.settings = settings
    app.state.store = app_store
    app.state.signer = signer
    app.state.broker = broker
    app.state.signin_guard = signin_guard
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    for router in (meta.router, auth.router, content.router, alerts.router, acks.router):
        app.include_router(router)
    return app
