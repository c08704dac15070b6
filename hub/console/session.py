"""Who is using the console: the session cookie, its timeouts, roles and CSRF check.

Every console route takes `ConsoleDispatcher` or `ConsoleAdmin`; for a form post that also checks
the CSRF token, so no route can forget it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from hub.alerts_service import Caller
from hub.config import HubSettings
from hub.deps import User, request_source
from hub.storage import Store
from hub.storage.accounts import Role
from hub.storage.console_sessions import ConsoleSessionRecord
from hub.tokens import token_hash
from hub.user_admin import Actor

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Activity is written at most this often: a page load per second must not be a write per second.
TOUCH_EVERY_SECONDS = 30.0
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ConsoleRedirect(Exception):
    """Send the browser elsewhere (to sign in, mostly); htmx requests get HX-Redirect."""

    def __init__(self, url: str, *, notice: str | None = None) -> None:
        super().__init__(url)
        self.url = url
        self.notice = notice


class ConsoleRefusal(Exception):
    """A request the console answers with an error page: 403 (role, CSRF), 404, 409..."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(f"{status} {title}: {message}")
        self.status = status
        self.title = title
        self.message = message


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in console user, as pages see them."""

    id: int
    user: User
    csrf_token: str = field(repr=False)
    family_id: int
    created_at: float
    last_seen_at: float
    expires_at: float
    source: str

    @property
    def caller(self) -> Caller:
        """The user acting for themselves, for the alert services and their audit."""
        return Caller.user(self.user.username, self.source)

    @property
    def actor(self) -> Actor:
        """The user as an admin acting, for the account services and their audit."""
        return Actor(name=self.user.username, source=self.source, username=self.user.username)

    @property
    def is_admin(self) -> bool:
        """Whether the admin pages are open to this user."""
        return self.user.has_role("admin")


def new_session_token() -> str:
    """A fresh, unguessable session token for the cookie."""
    return secrets.token_urlsafe(32)


def csrf_token_for(session_token: str) -> str:
    """The CSRF token of a session: derived from its secret cookie, so nothing extra is stored."""
    return hmac.new(session_token.encode(), b"vigil-console-csrf", hashlib.sha256).hexdigest()


def is_loopback_request(request: Request) -> bool:
    """Whether the browser reached the hub over plain HTTP on this computer (the demo, tests)."""
    if request.url.scheme == "https":
        return False
    host = (request.url.hostname or "").strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_name(request: Request, base: str) -> str:
    """The cookie's name: `__Host-` prefixed (Secure, this host only) unless loopback HTTP."""
    return base if is_loopback_request(request) else f"__Host-{base}"


SESSION_COOKIE = "vigil-console"


def session_cookie_name(request: Request) -> str:
    """The name of the session cookie for this request's origin."""
    return cookie_name(request, SESSION_COOKIE)


def sign_in_url(request: Request) -> str:
    """The sign-in page, coming back to this page afterwards."""
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return "/console/sign-in?next=" + quote(target, safe="/")


def require_console_role(role: Role) -> Callable[[Request], Awaitable[ConsoleSession]]:
    """A dependency: the console session of a user holding `role`, with CSRF checked on posts."""

    async def console_session(request: Request) -> ConsoleSession:
        token = request.cookies.get(session_cookie_name(request), "")
        store: Store = request.app.state.store
        settings: HubSettings = request.app.state.settings
        record = await run_in_threadpool(_live_record, store, settings, token) if token else None
        if record is None:
            raise ConsoleRedirect(sign_in_url(request))
        csrf = csrf_token_for(token)
        if request.method not in _SAFE_METHODS:
            await _check_csrf(request, csrf)
        user = User.from_record(record.user)
        if not user.has_role(role):
            raise ConsoleRefusal(
                403,
                "Not for this account",
                f"This page needs the {role} role; you are signed in as {user.role}.",
            )
        if settings.clock.now() - record.last_seen_at >= TOUCH_EVERY_SECONDS and not _is_live(
            request
        ):
            await run_in_threadpool(store.console_sessions.touch, record.id)
        return ConsoleSession(
            id=record.id,
            user=user,
            csrf_token=csrf,
            family_id=record.family_id,
            created_at=record.created_at,
            last_seen_at=record.last_seen_at,
            expires_at=record.expires_at,
            source=request_source(request),
        )

    return console_session


ConsoleDispatcher = Annotated[ConsoleSession, Depends(require_console_role("dispatcher"))]
ConsoleAdmin = Annotated[ConsoleSession, Depends(require_console_role("admin"))]


def session_alive(record: ConsoleSessionRecord | None, settings: HubSettings) -> bool:
    """Whether a stored session may still be used: sign-in held, not idle, not expired."""
    if record is None or record.revoked:
        return False
    now = settings.clock.now()
    return now < record.expires_at and now - record.last_seen_at < settings.console_idle_seconds


def _live_record(store: Store, settings: HubSettings, token: str) -> ConsoleSessionRecord | None:
    record = store.console_sessions.find(token_hash=token_hash(token))
    if record is not None and not session_alive(record, settings):
        store.console_sessions.end(record.id, reason="console_timeout")
        return None
    return record


def _is_live(request: Request) -> bool:
    # An open live view is not someone at the keyboard: it must not hold the session open.
    return request.headers.get("accept", "").startswith("text/event-stream")


async def _check_csrf(request: Request, expected: str) -> None:
    presented = request.headers.get(CSRF_HEADER, "")
    if not presented:
        form = await request.form()
        value = form.get(CSRF_FIELD, "")
        presented = value if isinstance(value, str) else ""
    if not presented or not hmac.compare_digest(presented, expected):
        raise ConsoleRefusal(
            403,
            "Form expired",
            "This form was not sent from this console session (its security token is missing "
            "or out of date), so nothing was changed. Reload the page and try again.",
        )
