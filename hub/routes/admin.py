"""/v1/admin: accounts and the audit trail, for the admin role only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from hub import user_admin
from hub.deps import CURSOR_MAX, AdminUser, SettingsDep, StoreDep, User, request_source
from hub.errors import ApiError, error_responses
from hub.passwords import MAX_PASSWORD_LENGTH
from hub.storage.accounts import Role, UserChange
from hub.storage.audit import AuditQuery
from hub.user_admin import DISPLAY_NAME_MAX, USERNAME_PATTERN

router = APIRouter(prefix="/v1/admin")

AUDIT_PAGE_DEFAULT = 100
AUDIT_PAGE_MAX = 1000

Username = Annotated[str, Path(pattern=USERNAME_PATTERN.pattern)]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
_ANSWERS = error_responses(401, 403, 404, 409, 413, 422)
# An answer carrying an authenticator secret must not stay in any cache on the way.
_NO_STORE = {"Cache-Control": "no-store"}


def _time_text(value: object) -> object:
    # Pydantic would also take a bare number as Unix seconds; the protocol promises RFC 3339.
    if not isinstance(value, str) or re.fullmatch(r"\s*[+-]?[\d.]+(e[+-]?\d+)?\s*", value, re.I):
        raise ValueError("must be an RFC 3339 time such as 2026-12-03T10:00:00Z, or a date")
    return value


AuditTime = Annotated[
    datetime | None,
    BeforeValidator(_time_text),
    Query(description="An RFC 3339 time or a date; UTC when it has no offset."),
]


class NewUser(BaseModel):
    """An account to create; the display name defaults to the username."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, Field(pattern=USERNAME_PATTERN.pattern)]
    role: Role
    password: Password
    display_name: Annotated[str | None, Field(min_length=1, max_length=DISPLAY_NAME_MAX)] = None


class NewPassword(BaseModel):
    """A user's new password."""

    model_config = ConfigDict(extra="forbid")

    password: Password


@router.get("/users", responses=error_responses(401, 403))
def list_users(store: StoreDep, settings: SettingsDep, admin: AdminUser) -> dict[str, Any]:
    """Every account and its state, by username."""
    now = settings.clock.now()
    return {"users": [user_admin.user_to_wire(user, now) for user in store.accounts.list_users()]}


@router.get("/users/{username}", responses=_ANSWERS)
def show_user(
    username: Username, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> dict[str, Any]:
    """One account: never its password hash, authenticator secret or tokens."""
    with _answers():
        user = user_admin.find_user(store, username)
    return user_admin.user_to_wire(user, settings.clock.now())


@router.post("/users", status_code=201, responses=_ANSWERS)
def create_user(
    body: NewUser, request: Request, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> JSONResponse:
    """Add an account; answers the otpauth URI of its authenticator secret, this once only."""
    with _answers():
        added = user_admin.create_user(
            store,
            _actor(admin, request),
            username=body.username,
            role=body.role,
            password=body.password,
            display_name=body.display_name or body.username,
        )
    wire = user_admin.user_to_wire(added.user, settings.clock.now())
    return JSONResponse(
        {"user": wire, "otpauth_uri": added.otpauth_uri}, status_code=201, headers=_NO_STORE
    )


@router.post("/users/{username}/disable", responses=_ANSWERS)
def disable_user(
    username: Username, request: Request, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> dict[str, Any]:
    """Stop the user signing in and end every session of theirs now."""
    with _answers():
        change = user_admin.disable_user(store, _actor(admin, request), username)
    return _change_body(change, settings.clock.now())


@router.post("/users/{username}/enable", responses=_ANSWERS)
def enable_user(
    username: Username, request: Request, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> dict[str, Any]:
    """Let a disabled user sign in again."""
    with _answers():
        change = user_admin.enable_user(store, _actor(admin, request), username)
    return _change_body(change, settings.clock.now())


@router.delete("/users/{username}", responses=_ANSWERS)
def remove_user(
    username: Username, request: Request, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> dict[str, Any]:
    """Delete the account and its sessions; its acks and audit events keep the username."""
    with _answers():
        change = user_admin.remove_user(store, _actor(admin, request), username)
    return _change_body(change, settings.clock.now())


@router.post("/users/{username}/password", responses=_ANSWERS)
def set_password(
    username: Username,
    body: NewPassword,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    admin: AdminUser,
) -> dict[str, Any]:
    """Set a new password (it must pass the policy) and end the user's sessions."""
    with _answers():
        change = user_admin.set_password(store, _actor(admin, request), username, body.password)
    return _change_body(change, settings.clock.now())


@router.post("/users/{username}/reset-mfa", responses=_ANSWERS)
def reset_mfa(
    username: Username, request: Request, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> JSONResponse:
    """A new authenticator secret; answers its otpauth URI this once only, ends the sessions."""
    with _answers():
        reset = user_admin.reset_mfa(store, _actor(admin, request), username)
    wire = user_admin.user_to_wire(reset.user, settings.clock.now())
    return JSONResponse({"user": wire, "otpauth_uri": reset.otpauth_uri}, headers=_NO_STORE)


@router.post("/users/{username}/unlock", responses=_ANSWERS)
def unlock_user(
    username: Username, request: Request, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> dict[str, Any]:
    """Lift a lockout now."""
    with _answers():
        user = user_admin.unlock_user(store, _actor(admin, request), username)
    return {"user": user_admin.user_to_wire(user, settings.clock.now())}


@router.post("/users/{username}/revoke-sessions", responses=_ANSWERS)
def revoke_sessions(
    username: Username, request: Request, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> dict[str, Any]:
    """End every session of the user now; they may sign in again."""
    with _answers():
        change = user_admin.revoke_sessions(store, _actor(admin, request), username)
    return _change_body(change, settings.clock.now())


@router.get("/audit", responses=error_responses(401, 403, 422))
def audit(
    store: StoreDep,
    admin: AdminUser,
    since: AuditTime = None,
    until: AuditTime = None,
    user: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    event: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    after: Annotated[int, Query(ge=0, le=CURSOR_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=AUDIT_PAGE_MAX)] = AUDIT_PAGE_DEFAULT,
) -> dict[str, Any]:
    """Audit events, oldest first; page with `after` = the answer's `after` while `more`."""
    start = None if since is None else _timestamp(since)
    end = None if until is None else _timestamp(until)
    query = AuditQuery(since=start, until=end, user=user, event=event, after=after, limit=limit + 1)
    events = store.audit.query(query)
    page = events[:limit]
    return {
        "events": [item.to_wire() for item in page],
        "after": page[-1].id if page else after,
        "more": len(events) > limit,
    }


@contextmanager
def _answers() -> Iterator[None]:
    """Turns a refused account change into the protocol's error answer."""
    try:
        yield
    except user_admin.AdminError as exc:
        rule = exc.rule if isinstance(exc, user_admin.InvalidAccountInput) else None
        extra = {"rule": rule} if rule is not None else {}
        raise ApiError(exc.status, exc.code, str(exc), extra=extra) from None


def _timestamp(moment: datetime) -> float:
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def _actor(admin: User, request: Request) -> user_admin.Actor:
    return user_admin.Actor(
        name=admin.username, source=request_source(request), username=admin.username
    )


def _change_body(change: UserChange, now: float) -> dict[str, Any]:
    return {
        "user": user_admin.user_to_wire(change.user, now),
        "changed": change.changed,
        "sessions_ended": change.sessions_ended,
    }
