"""The hub's error type and the handlers that turn every failure into JSON `{error, detail}`."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg.errors
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.headers import HSTS, NO_STORE, SECURITY_HEADERS

logger = logging.getLogger(__name__)

# Error codes for the HTTP errors that Starlette and FastAPI raise themselves.
_HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "token_invalid",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}
_MAX_REPORTED_PROBLEMS = 5
# The methods a 405 answer's Allow header may list.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_NOT_AN_OBJECT = {"model_attributes_type", "model_type", "dict_type"}
# What each error status means, for the OpenAPI schema.
_ERROR_MEANINGS = {
    401: "Not signed in: no, unknown, expired or revoked token, or failed credentials.",
    403: "The signed-in user's role may not call this.",
    404: "No such resource.",
    409: "The change conflicts with the hub's state (a taken name, the last admin, oneself).",
    413: "The request body or batch is too large.",
    422: "The request is malformed: unknown fields, wrong types, missing fields.",
    429: "Too many sign-in attempts (too_many_attempts) or failures (locked_out): try again "
    "after retry_after seconds.",
    503: "The hub is checking too many sign-ins at once (sign_in_busy): try again after "
    "retry_after seconds.",
}


class ErrorBody(BaseModel):
    """The body of every error answer: a code clients branch on, a sentence they show."""

    model_config = ConfigDict(extra="allow")

    error: str
    detail: str
    retry_after: int | None = None


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the error answers a route gives, for its `responses=`."""
    return {
        status: {"model": ErrorBody, "description": _ERROR_MEANINGS[status]} for status in statuses
    }


class ApiError(Exception):
    """A failure the caller can act on: answered as `{error, detail}` with `status`.

    `extra` adds fields to the body (such as `retry_after`); it never replaces error or detail.
    """

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


class BodyTooLarge(HTTPException):
    """A request body over the hub's limit.

    An HTTPException, because FastAPI's body reader passes those on instead of answering 400.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"The request body is larger than {limit:,} bytes. Send less data at once.",
        )


def error_response(
    status: int,
    error: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """The JSON body every error of the hub has."""
    body = {**(extra or {}), "error": error, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """Say which fields are wrong and why, without echoing the values sent (they may be secrets)."""
    problems = []
    for item in errors[:_MAX_REPORTED_PROBLEMS]:
        location = [str(part) for part in item.get("loc", ()) if part != "body"]
        if item.get("type") == "json_invalid":
            problems.append("the body is not valid JSON")
        elif not location and item.get("type") in _NOT_AN_OBJECT:
            problems.append(
                "the body must be a JSON object, sent with Content-Type: application/json"
            )
        else:
            where = ".".join(location) or "body"
            problems.append(f"{where}: {item.get('msg', 'invalid')}")
    if len(errors) > _MAX_REPORTED_PROBLEMS:
        problems.append(f"and {len(errors) - _MAX_REPORTED_PROBLEMS} more")
    return "Invalid request: " + "; ".join(problems) + "."


async def _api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.error, exc.detail, exc.headers, exc.extra)


async def _validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid_request", describe_validation_errors(exc.errors()))


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI's answer to a body that is not UTF-8; JSON must be UTF-8 (RFC 8259), so this is
        # invalid JSON like any other.
        return error_response(
            422, "invalid_request", "Invalid request: the body is not valid JSON (not UTF-8)."
        )
    if status == 404:
        detail = f"There is no {request.url.path} on this hub. Check the address."
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}."
        # Starlette names only the first route matching the path; list every route's methods.
        headers["Allow"] = ", ".join(_allowed_methods(request))
    elif isinstance(exc.detail, str) and exc.detail:
        detail = exc.detail
    else:
        detail = "The request could not be handled."
    error = _HTTP_ERROR_CODES.get(status, "http_error")
    return error_response(status, error, detail, headers)


def _allowed_methods(request: Request) -> list[str]:
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def _unhandled_error_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    # Starlette answers this one outside every middleware, so it gets the headers here.
    headers = {**SECURITY_HEADERS, **NO_STORE}
    if request.url.scheme == "https":
        headers["Strict-Transport-Security"] = HSTS
    return error_response(
        500,
        "internal_error",
        "The hub hit an unexpected error and changed nothing. Try again; tell IT if it persists.",
        headers,
    )


# How soon to try again when the database stayed locked: other writers finish well within that.
DATABASE_BUSY_RETRY_SECONDS = 2


async def _database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, (sqlite3.OperationalError, psycopg.errors.LockNotAvailable))
    message = str(exc).lower()
    busy = isinstance(exc, psycopg.errors.LockNotAvailable)
    if not busy and "locked" not in message and "busy" not in message:
        raise exc
    # Every write begins by taking the lock (BEGIN IMMEDIATE), so a write that could not take it
    # within the busy timeout changed nothing: the caller may simply send it again.
    logger.warning("Database busy on %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503,
        "hub_busy",
        "The hub's database is busy with other writes and changed nothing. Try again in a few "
        "seconds.",
        {"Retry-After": str(DATABASE_BUSY_RETRY_SECONDS)},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of `app` JSON `{error, detail}`, including oversized bodies."""
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(sqlite3.OperationalError, _database_error_handler)
    app.add_exception_handler(psycopg.errors.LockNotAvailable, _database_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(HTTPException, _http_error_handler)
    app.add_exception_handler(Exception, _unhandled_error_handler)


class BodySizeLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, by Content-Length or by counting chunks."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.max_bytes:
            await self._refuse(send)
            return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            # Reached only when the body was read outside FastAPI's own error handling.
            if response_started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"error": "too_large", "detail": BodyTooLarge(self.max_bytes).detail}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
