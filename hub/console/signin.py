"""Console sign-in and sign-out: password, then authenticator code, with the client's rules.

The same throttles, lockout, audit and messages as the client's sign-in (hub/signin.py); only
dispatchers and admins get a console session.
"""

from __future__ import annotations

import asyncio
import hmac
import random
import secrets
from functools import partial
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub import signin
from hub.config import HubSettings
from hub.console.pages import render, see_other
from hub.console.session import (
    SESSION_COOKIE,
    ConsoleDispatcher,
    cookie_name,
    is_loopback_request,
    new_session_token,
)
from hub.deps import User, request_source
from hub.errors import ApiError
from hub.passwords import MAX_PASSWORD_LENGTH
from hub.storage import Store
from hub.tokens import token_hash

router = APIRouter(prefix="/console")

# The sign-in forms' own CSRF token (there is no session yet) and the second step's MFA token:
# each an HttpOnly, SameSite=Strict cookie that lives only as long as its step.
_SIGNIN_COOKIE = "vigil-console-signin"
_MFA_COOKIE = "vigil-console-mfa"
_SIGNIN_COOKIE_SECONDS = 1800
_MAX_USERNAME = 64
_MAX_CODE = 16


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str = "", signed_out: str = "") -> Response:
    """The password step's form."""
    notice = "You are signed out." if signed_out else ""
    return _password_form(request, next_url=_safe_next(next), notice=notice)


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    username: Annotated[str, Form(max_length=1000)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH * 4)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the password; on success the code step follows."""
    next_url = _safe_next(next)
    if not _signin_csrf_ok(request, csrf_token):
        return _password_form(
            request,
            next_url=next_url,
            username=username,
            error="This sign-in form had expired, so nothing was checked. Please try again.",
            status_code=403,
        )
    username = username.strip()
    if not username or not password:
        return _password_form(
            request,
            next_url=next_url,
            username=username,
            error="Enter your username and your password.",
            status_code=422,
        )
    if len(username) > _MAX_USERNAME or len(password) > MAX_PASSWORD_LENGTH:
        return _password_form(
            request,
            next_url=next_url,
            username=username[:_MAX_USERNAME],
            error="Wrong username or password.",
            status_code=401,
        )
    store: Store = request.app.state.store
    settings: HubSettings = request.app.state.settings
    guard: signin.SignInGuard = request.app.state.signin_guard
    address = request_source(request)
    try:
        signin.admit_attempt(guard, address=address, username=username)
    except ApiError as refusal:
        # As on the API: a throttled attempt waits on the loop before its answer.
        await asyncio.sleep(settings.signin_refusal_delay_seconds * random.uniform(0.5, 1.0))
        return _password_form(
            request, next_url=next_url, username=username, error=refusal.detail, status_code=429
        )
    try:
        issued = await run_in_threadpool(
            partial(
                signin.start_sign_in,
                store,
                settings,
                guard,
                username=username,
                password=password,
                address=address,
                device_id="console-" + secrets.token_hex(8),
                device_name=_device_name(request),
            )
        )
    except ApiError as refusal:
        return _password_form(
            request,
            next_url=next_url,
            username=username,
            error=refusal.detail,
            status_code=refusal.status,
        )
    response = see_other(
        "/console/sign-in/code" + (f"?next={quote(next_url)}" if next_url != "/console" else "")
    )
    _set_cookie(request, response, _MFA_COOKIE, issued.mfa_token, issued.expires_in)
    return response


@router.get("/sign-in/code", response_class=HTMLResponse)
def code_page(request: Request, next: str = "") -> Response:
    """The authenticator-code step's form."""
    if not request.cookies.get(cookie_name(request, _MFA_COOKIE)):
        return see_other("/console/sign-in")
    return _code_form(request, next_url=_safe_next(next))


@router.post("/sign-in/code", response_class=HTMLResponse)
def submit_code(
    request: Request,
    code: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the code; on success open a console session for a dispatcher or admin."""
    next_url = _safe_next(next)
    mfa_token = request.cookies.get(cookie_name(request, _MFA_COOKIE), "")
    if not _signin_csrf_ok(request, csrf_token):
        return _code_form(
            request,
            next_url=next_url,
            error="This sign-in form had expired, so nothing was checked. Please try again.",
            status_code=403,
        )
    if not mfa_token:
        return _password_form(
            request,
            next_url=next_url,
            error="Your sign-in took too long. Enter your password again.",
            status_code=401,
        )
    code = "".join(code.split())
    if not code or len(code) > _MAX_CODE:
        return _code_form(
            request,
            next_url=next_url,
            error="Enter the 6-digit code your authenticator app shows.",
            status_code=422,
        )
    store: Store = request.app.state.store
    settings: HubSettings = request.app.state.settings
    address = request_source(request)
    try:
        pair, record = signin.finish_sign_in(
            store, settings, mfa_token=mfa_token, code=code, address=address
        )
    except ApiError as refusal:
        if refusal.error == "mfa_token_invalid":
            response = _password_form(
                request,
                next_url=next_url,
                error=refusal.detail,
                status_code=refusal.status,
            )
            _delete_cookie(request, response, _MFA_COOKIE)
            return response
        return _code_form(request, next_url=next_url, error=refusal.detail, status_code=401)
    grant = store.accounts.find_access(access_hash=token_hash(pair.access_token))
    assert grant is not None
    user = User.from_record(record)
    if not user.has_role("dispatcher"):
        store.accounts.revoke_family(family_id=grant.family_id, reason="console_refused")
        store.audit.record(
            "console.refused",
            actor=user.username,
            subject=user.username,
            source=address,
            outcome="refused",
            detail={"role": user.role},
        )
        response = render(
            request,
            "signin_refused.html",
            None,
            status_code=403,
            role=user.role,
        )
        _delete_cookie(request, response, _MFA_COOKIE)
        return response
    session_token = new_session_token()
    store.console_sessions.create(token_hash=token_hash(session_token), family_id=grant.family_id)
    store.audit.record(
        "console.signin",
        actor=user.username,
        subject=user.username,
        source=address,
        outcome="ok",
        detail={"device_id": grant.device_id},
    )
    signed_in = see_other(next_url)
    lifetime = max(1, int(grant.family_expires_at - settings.clock.now()))
    _set_cookie(request, signed_in, SESSION_COOKIE, session_token, lifetime)
    _delete_cookie(request, signed_in, _MFA_COOKIE)
    _delete_cookie(request, signed_in, _SIGNIN_COOKIE)
    return signed_in


@router.post("/sign-out")
def sign_out(request: Request, session: ConsoleDispatcher) -> RedirectResponse:
    """End this console session and the sign-in behind it."""
    store: Store = request.app.state.store
    store.console_sessions.end(session.id, reason="logout")
    store.audit.record(
        "console.signout",
        actor=session.user.username,
        subject=session.user.username,
        source=session.source,
        outcome="ok",
        detail={},
    )
    response = see_other("/console/sign-in?signed_out=1")
    _delete_cookie(request, response, SESSION_COOKIE)
    return response


def _password_form(
    request: Request,
    *,
    next_url: str,
    username: str = "",
    error: str = "",
    notice: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    token = _signin_token(request)
    response = render(
        request,
        "signin.html",
        None,
        status_code=status_code,
        signin_csrf=token,
        next_url=next_url,
        username=username,
        error=error,
        notice=notice,
    )
    _keep_signin_token(request, response, token)
    return response


def _code_form(
    request: Request, *, next_url: str, error: str = "", status_code: int = 200
) -> HTMLResponse:
    token = _signin_token(request)
    response = render(
        request,
        "signin_code.html",
        None,
        status_code=status_code,
        signin_csrf=token,
        next_url=next_url,
        error=error,
    )
    _keep_signin_token(request, response, token)
    return response


def _signin_token(request: Request) -> str:
    return request.cookies.get(cookie_name(request, _SIGNIN_COOKIE)) or secrets.token_urlsafe(32)


def _keep_signin_token(request: Request, response: Response, token: str) -> None:
    _set_cookie(request, response, _SIGNIN_COOKIE, token, _SIGNIN_COOKIE_SECONDS)


def _signin_csrf_ok(request: Request, presented: str) -> bool:
    expected = request.cookies.get(cookie_name(request, _SIGNIN_COOKIE), "")
    return bool(expected) and bool(presented) and hmac.compare_digest(expected, presented)


def _set_cookie(request: Request, response: Response, base: str, value: str, seconds: int) -> None:
    # Secure everywhere but plain HTTP on this computer (a browser would drop it there).
    response.set_cookie(
        cookie_name(request, base),
        value,
        max_age=seconds,
        path="/",
        httponly=True,
        samesite="strict",
        secure=not is_loopback_request(request),
    )


def _delete_cookie(request: Request, response: Response, base: str) -> None:
    response.delete_cookie(
        cookie_name(request, base),
        path="/",
        httponly=True,
        samesite="strict",
        secure=not is_loopback_request(request),
    )


def _safe_next(value: str) -> str:
    # Only back into the console: never to another site (//evil, https://evil, /\evil).
    if value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console"


def _device_name(request: Request) -> str:
    agent = request.headers.get("user-agent", "")
    browser = "Chrome" if "Chrome/" in agent else "Firefox" if "Firefox/" in agent else "browser"
    return f"Dispatcher console ({browser})"
