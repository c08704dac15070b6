"""/v1/admin: accounts, groups and the audit trail, for the admin role only."""

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
from hub.storage import Store
from hub.storage.accounts import Role, UserChange, UserSummary
from hub.storage.audit import AuditQuery
from hub.storage.groups import GroupKind, UserProfile
from hub.user_admin import (
    DISPLAY_NAME_MAX,
    GROUP_DESCRIPTION_MAX,
    GROUP_NAME_MAX,
    MEMBERS_MAX,
    USERNAME_PATTERN,
)

router = APIRouter(prefix="/v1/admin")

AUDIT_PAGE_DEFAULT = 100
AUDIT_PAGE_MAX = 1000

Username = Annotated[str, Path(pattern=USERNAME_PATTERN.pattern)]
GroupName = Annotated[str, Path(min_length=1, max_length=GROUP_NAME_MAX)]
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


class NewGroup(BaseModel):
    """A group to create; an alert's audience names groups."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=GROUP_NAME_MAX)]
    kind: GroupKind
    description: Annotated[str, Field(max_length=GROUP_DESCRIPTION_MAX)] = ""


class Members(BaseModel):
    """Usernames to add to a group."""

    model_config = ConfigDict(extra="forbid")

    usernames: Annotated[list[str], Field(min_length=1, max_length=MEMBERS_MAX)]


class Contact(BaseModel):
    """A user's call-out contact: each field given is set, or cleared with null."""

    model_config = ConfigDict(extra="forbid")

    phone: str | None = None
    fallback_email: str | None = None


@router.get("/users", responses=error_responses(401, 403))
def list_users(store: StoreDep, settings: SettingsDep, admin: AdminUser) -> dict[str, Any]:
    """Every account and its state, by username."""
    now = settings.clock.now()
    profiles = store.groups.profiles()
    return {
        "users": [
            user_admin.user_to_wire(
                user, now, profiles.get(user.username.lower(), UserProfile([], None, None))
            )
            for user in store.accounts.list_users()
        ]
    }


@router.get("/users/{username}", responses=_ANSWERS)
def show_user(
    username: Username, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> dict[str, Any]:
    """One account: never its password hash, authenticator secret or tokens."""
    with _answers():
        user = user_admin.find_user(store, username)
    return _user_wire(store, user, settings.clock.now())


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
    wire = _user_wire(store, added.user, settings.clock.now())
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
    return _change_body(store, change, settings.clock.now())


@router.post("/users/{username}/enable", responses=_ANSWERS)
def enable_user(
    username: Username, request: Request, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> dict[str, Any]:
    """Let a disabled user sign in again."""
    with _answers():
        change = user_admin.enable_user(store, _actor(admin, request), username)
    return _change_body(store, change, settings.clock.now())


@router.delete("/users/{username}", responses=_ANSWERS)
def remove_user(
    username: Username, request: Request, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> dict[str, Any]:
    """Delete the account and its sessions; its acks and audit events keep the username."""
    with _answers():
        change = user_admin.remove_user(store, _actor(admin, request), username)
    return _change_body(store, change, settings.clock.now())


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
    return _change_body(store, change, settings.clock.now())


@router.post("/users/{username}/reset-mfa", responses=_ANSWERS)
def reset_mfa(
    username: Username, request: Request, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> JSONResponse:
    """A new authenticator secret; answers its otpauth URI this once only, ends the sessions."""
    with _answers():
        reset = user_admin.reset_mfa(store, _actor(admin, request), username)
    wire = _user_wire(store, reset.user, settings.clock.now())
    return JSONResponse({"user": wire, "otpauth_uri": reset.otpauth_uri}, headers=_NO_STORE)


@router.post("/users/{username}/unlock", responses=_ANSWERS)
def unlock_user(
    username: Username, request: Request, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> dict[str, Any]:
    """Lift a lockout now."""
    with _answers():
        user = user_admin.unlock_user(store, _actor(admin, request), username)
    return {"user": _user_wire(store, user, settings.clock.now())}


@router.post("/users/{username}/revoke-sessions", responses=_ANSWERS)
def revoke_sessions(
    username: Username, request: Request, store: StoreDep, settings: SettingsDep, admin: AdminUser
) -> dict[str, Any]:
    """End every session of the user now; they may sign in again."""
    with _answers():
        change = user_admin.revoke_sessions(store, _actor(admin, request), username)
    return _change_body(store, change, settings.clock.now())


@router.post("/users/{username}/contact", responses=_ANSWERS)
def set_contact(
    username: Username,
    body: Contact,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    admin: AdminUser,
) -> dict[str, Any]:
    """Set or clear (null) the user's phone and fallback email; fields left out stay."""
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    with _answers():
        user = user_admin.set_contact(store, _actor(admin, request), username, changes)
    return {"user": _user_wire(store, user, settings.clock.now())}


@router.get("/groups", responses=error_responses(401, 403))
def list_groups(store: StoreDep, admin: AdminUser) -> dict[str, Any]:
    """Every group with its members, by name."""
    counts = store.groups.agent_counts()
    return {
        "groups": [
            user_admin.group_to_wire(group, counts.get(group.name, 0))
            for group in store.groups.all()
        ]
    }


@router.get("/groups/{name}", responses=_ANSWERS)
def show_group(name: GroupName, store: StoreDep, admin: AdminUser) -> dict[str, Any]:
    """One group with its members."""
    with _answers():
        group = user_admin.find_group(store, name)
    return {"group": _group_wire(store, group.name)}


@router.post("/groups", status_code=201, responses=_ANSWERS)
def create_group(
    body: NewGroup, request: Request, store: StoreDep, admin: AdminUser
) -> dict[str, Any]:
    """Add an empty group of a kind (team, region or shift)."""
    with _answers():
        group = user_admin.create_group(
            store, _actor(admin, request), body.name, body.kind, body.description
        )
    return {"group": _group_wire(store, group.name)}


@router.delete("/groups/{name}", responses=_ANSWERS)
def remove_group(
    name: GroupName, request: Request, store: StoreDep, admin: AdminUser
) -> dict[str, Any]:
    """Delete a group; alerts already sent to it keep their targets."""
    with _answers():
        group = user_admin.remove_group(store, _actor(admin, request), name)
    return {"group": user_admin.group_to_wire(group, 0)}


@router.post("/groups/{name}/members", responses=_ANSWERS)
def add_members(
    name: GroupName, body: Members, request: Request, store: StoreDep, admin: AdminUser
) -> dict[str, Any]:
    """Put existing users in a group: `{group, added}` (the ones not members before)."""
    with _answers():
        added = user_admin.add_members(store, _actor(admin, request), name, body.usernames)
        group = user_admin.find_group(store, name)
    return {"group": _group_wire(store, group.name), "added": added}


@router.delete("/groups/{name}/members/{username}", responses=_ANSWERS)
def remove_member(
    name: GroupName, username: Username, request: Request, store: StoreDep, admin: AdminUser
) -> dict[str, Any]:
    """Take one user out of a group: `{group, removed}` (empty when they were not in it)."""
    with _answers():
        removed = user_admin.remove_members(store, _actor(admin, request), name, [username])
        group = user_admin.find_group(store, name)
    return {"group": _group_wire(store, group.name), "removed": removed}


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


def _user_wire(store: Store, user: UserSummary, now: float) -> dict[str, Any]:
    return user_admin.user_to_wire(user, now, user_admin.profile_of(store, user))


def _group_wire(store: Store, name: str) -> dict[str, Any]:
    group = user_admin.find_group(store, name)
    return user_admin.group_to_wire(group, store.groups.agent_counts().get(group.name, 0))


def _change_body(store: Store, change: UserChange, now: float) -> dict[str, Any]:
    return {
        "user": _user_wire(store, change.user, now),
        "changed": change.changed,
        "sessions_ended": change.sessions_ended,
    }
