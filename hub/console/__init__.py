"""The dispatcher console: browser pages the hub serves at /console, on the hub's own services."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from hub.console import (
    admin_audit,
    admin_groups,
    admin_users,
    approvals,
    board,
    compose,
    incident,
    reports,
    signin,
)
from hub.console.live import ChangeMiddleware, ChangeSignal
from hub.console.pages import STATIC_DIR, render
from hub.console.session import ConsoleRedirect, ConsoleRefusal
from hub.errors import describe_validation_errors

# Each page's router; a new page adds its router here.
PAGE_ROUTERS: tuple[APIRouter, ...] = (
    signin.router,
    board.router,
    incident.router,
    compose.router,
    approvals.router,
    reports.router,
    admin_users.router,
    admin_groups.router,
    admin_audit.router,
)

CONSOLE_PREFIX = "/console"


class ConsoleStatic(StaticFiles):
    """The console's CSS, scripts and vendored libraries: revalidated, never served stale."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        return response


def install_console(app: FastAPI) -> None:
    """Serve the console from `app`: its pages, static files, live signal and error pages."""
    signal = ChangeSignal()
    app.state.console_changes = signal
    app.add_middleware(ChangeMiddleware, signal=signal)
    for router in PAGE_ROUTERS:
        # HTML pages, not the API: the OpenAPI schema (and the API fuzzer) leave them out.
        app.include_router(router, include_in_schema=False)
    app.mount(
        f"{CONSOLE_PREFIX}/static", ConsoleStatic(directory=STATIC_DIR), name="console-static"
    )
    app.add_exception_handler(ConsoleRedirect, _redirect)
    app.add_exception_handler(ConsoleRefusal, _refusal)
    json_http_handler = app.exception_handlers[HTTPException]
    json_validation_handler = app.exception_handlers[RequestValidationError]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if not _is_console(request):
            return await _answer(json_http_handler(request, exc))
        if exc.status_code == 404:
            return _error_page(request, 404, "Not found", "There is no such page in the console.")
        if exc.status_code == 405:
            return _error_page(request, 405, "Not allowed", "This page cannot be opened that way.")
        return _error_page(request, exc.status_code, "Refused", str(exc.detail))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not _is_console(request):
            return await _answer(json_validation_handler(request, exc))
        return _error_page(
            request,
            422,
            "Not accepted",
            describe_validation_errors(exc.errors()) + " Nothing was changed.",
        )

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


async def _answer(answer: Response | Awaitable[Response]) -> Response:
    # Starlette's handler type allows plain functions too; the hub's own are all async.
    return await answer if inspect.isawaitable(answer) else answer


def _is_console(request: Request) -> bool:
    path = request.url.path
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


async def _redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleRedirect)
    if request.headers.get("accept", "").startswith("text/event-stream"):
        # A live view whose session ended: 204 tells the browser's EventSource not to reconnect.
        return Response(status_code=204)
    if request.headers.get("HX-Request") == "true":
        # htmx follows this header with a full page load; a 303 would be swapped into the page.
        return JSONResponse({}, status_code=401, headers={"HX-Redirect": exc.url})
    return RedirectResponse(exc.url, status_code=303)


async def _refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleRefusal)
    return _error_page(request, exc.status, exc.title, exc.message)


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    return render(
        request, "error.html", None, status_code=status, error_title=title, message=message
    )
