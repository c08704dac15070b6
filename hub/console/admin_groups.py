"""The console's group pages (admins only): groups with their kind and members, and changes.

Every change goes through hub.user_admin, as /v1/admin and `vigil-hub group` do.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from hub import user_admin
from hub.console.admin_forms import refusal_errors
from hub.console.admin_users import user_path
from hub.console.pages import render, see_other
from hub.console.session import ConsoleAdmin, ConsoleRefusal, ConsoleSession
from hub.deps import StoreDep
from hub.storage import Store
from hub.storage.groups import GROUP_KINDS

router = APIRouter(prefix="/console/admin/groups")

FormText = Annotated[str, Form()]
NOTICES = {
    "created": "Group created.",
    "removed": "Group removed; alerts already sent to it keep their targets.",
    "added": "Members added.",
    "unchanged": "Nothing to change: it was already so.",
    "member_removed": "Member removed.",
}


def group_path(name: str) -> str:
    """The console page of one group."""
    return f"/console/admin/groups/{quote(name, safe='')}"


@router.get("", response_class=HTMLResponse)
def groups_page(request: Request, session: ConsoleAdmin, store: StoreDep) -> HTMLResponse:
    """Every group with its kind, member and agent counts, and the form to create one."""
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    return _groups_page(request, session, store, notice=notice)


@router.post("", response_class=HTMLResponse)
def create_group(
    request: Request,
    session: ConsoleAdmin,
    store: StoreDep,
    name: FormText = "",
    kind: FormText = "",
    description: FormText = "",
) -> Response:
    """Add an empty group of a kind (team, region or shift)."""
    try:
        group = user_admin.create_group(store, session.actor, name, kind, description)
    except user_admin.AdminError as exc:
        errors = refusal_errors(exc, ("name", "kind", "description"), "name")
        values = {"name": name, "kind": kind, "description": description}
        return _groups_page(
            request, session, store, errors=errors, values=values, status_code=exc.status
        )
    return see_other(f"{group_path(group.name)}?done=created")


@router.get("/{name}", response_class=HTMLResponse)
def group_page(request: Request, name: str, session: ConsoleAdmin, store: StoreDep) -> HTMLResponse:
    """One group: its members, a form to add some, a button to take each out."""
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    return _group_page(request, session, store, name, notice=notice)


@router.post("/{name}/members", response_class=HTMLResponse)
def add_members(
    request: Request,
    name: str,
    session: ConsoleAdmin,
    store: StoreDep,
    usernames: FormText = "",
) -> Response:
    """Put users (usernames separated by spaces or commas) in the group."""
    wanted = [item for item in re.split(r"[\s,]+", usernames) if item]
    try:
        added = user_admin.add_members(store, session.actor, name, wanted)
    except user_admin.AdminError as exc:
        if isinstance(exc, user_admin.NoSuchGroup):
            raise _missing(exc) from None
        errors = refusal_errors(exc, ("usernames",), "usernames")
        return _group_page(
            request,
            session,
            store,
            name,
            errors=errors,
            values={"usernames": usernames},
            status_code=exc.status,
        )
    return see_other(f"{group_path(name)}?done={'added' if added else 'unchanged'}")


@router.post("/{name}/members/remove", response_class=HTMLResponse)
def remove_member(
    request: Request,
    name: str,
    session: ConsoleAdmin,
    store: StoreDep,
    username: FormText = "",
) -> Response:
    """Take one user out of the group."""
    try:
        removed = user_admin.remove_members(store, session.actor, name, [username])
    except user_admin.AdminError as exc:
        if isinstance(exc, user_admin.NoSuchGroup):
            raise _missing(exc) from None
        errors = {"members": str(exc)}
        return _group_page(request, session, store, name, errors=errors, status_code=exc.status)
    return see_other(f"{group_path(name)}?done={'member_removed' if removed else 'unchanged'}")


@router.get("/{name}/remove", response_class=HTMLResponse)
def confirm_remove(
    request: Request, name: str, session: ConsoleAdmin, store: StoreDep
) -> HTMLResponse:
    """Ask before removing the group."""
    try:
        group = user_admin.find_group(store, name)
    except user_admin.AdminError as exc:
        raise _missing(exc) from None
    return render(
        request,
        "admin_group_remove.html",
        session,
        nav="groups",
        group=group,
        group_path=group_path(group.name),
    )


@router.post("/{name}/remove", response_class=HTMLResponse)
def remove_group(request: Request, name: str, session: ConsoleAdmin, store: StoreDep) -> Response:
    """Delete the group; alerts already sent to it keep their targets."""
    try:
        user_admin.remove_group(store, session.actor, name)
    except user_admin.AdminError as exc:
        raise _missing(exc) from None
    return see_other("/console/admin/groups?done=removed")


def _groups_page(
    request: Request,
    session: ConsoleSession,
    store: Store,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    counts = store.groups.agent_counts()
    rows = [
        {"group": group, "agents": counts.get(group.name, 0), "path": group_path(group.name)}
        for group in store.groups.all()
    ]
    return render(
        request,
        "admin_groups.html",
        session,
        status_code=status_code,
        nav="groups",
        rows=rows,
        kinds=sorted(GROUP_KINDS),
        notice=notice,
        errors=errors or {},
        values={"name": "", "kind": "team", "description": "", **(values or {})},
    )


def _group_page(
    request: Request,
    session: ConsoleSession,
    store: Store,
    name: str,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    try:
        group = user_admin.find_group(store, name)
    except user_admin.AdminError as exc:
        raise _missing(exc) from None
    members: list[dict[str, Any]] = [
        {"username": member, "path": user_path(member)} for member in group.members
    ]
    return render(
        request,
        "admin_group.html",
        session,
        status_code=status_code,
        nav="groups",
        group=group,
        group_path=group_path(group.name),
        members=members,
        agents=store.groups.agent_counts().get(group.name, 0),
        usernames=[user.username for user in store.accounts.list_users()],
        notice=notice,
        errors=errors or {},
        values={"usernames": "", **(values or {})},
    )


def _missing(exc: user_admin.AdminError) -> ConsoleRefusal:
    return ConsoleRefusal(404, "Not found", str(exc))
