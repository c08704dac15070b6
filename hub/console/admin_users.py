"""The console's user pages (admins only): the users table, adding a user, one user's actions.

Every change goes through hub.user_admin, as /v1/admin and `vigil-hub user` do: the same rules,
the same audit, the same refusals, shown beside the form that asked.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from hub import user_admin
from hub.config import HubSettings
from hub.console.admin_forms import refusal_errors
from hub.console.enrolment import Enrolment, generated_password, tickets_of
from hub.console.pages import render, see_other
from hub.console.session import ConsoleAdmin, ConsoleRefusal, ConsoleSession
from hub.deps import SettingsDep, StoreDep
from hub.storage import Store
from hub.storage.accounts import ROLES
from hub.storage.groups import UserProfile

router = APIRouter(prefix="/console/admin/users")

FILTER_MAX = 100
FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
_NEW_USER_FIELDS = ("username", "display_name", "role", "password")
# What a redirect after a change may say: fixed texts chosen by key, so a link cannot make the
# console say anything else.
NOTICES = {
    "disabled": "Disabled: every session of theirs has ended and they cannot sign in.",
    "enabled": "Enabled: they may sign in again.",
    "unchanged": "Nothing to change: it was already so.",
    "password": "New password set; every session of theirs has ended.",
    "unlocked": "Unlocked: they may sign in again now.",
    "sessions": "Every session of theirs has ended; they may sign in again.",
    "groups": "Groups saved.",
    "contact": "Contact saved.",
    "removed": "User removed; their acknowledgements and audit events keep the username.",
}


def user_path(username: str) -> str:
    """The console page of one user."""
    return f"/console/admin/users/{quote(username, safe='@')}"


@router.get("", response_class=HTMLResponse)
def users_page(
    request: Request, session: ConsoleAdmin, store: StoreDep, settings: SettingsDep, q: str = ""
) -> HTMLResponse:
    """Every account with its state, narrowed by a filter over names, role, groups and phone."""
    query = q[:FILTER_MAX]
    now = settings.clock.now()
    profiles = store.groups.profiles()
    rows = []
    for user in store.accounts.list_users():
        profile = profiles.get(user.username.lower(), UserProfile([], None, None))
        wire = user_admin.user_to_wire(user, now, profile)
        if _matches(query, wire):
            rows.append({"user": user, "wire": wire, "path": user_path(user.username)})
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    return render(
        request, "admin_users.html", session, nav="users", rows=rows, q=query, notice=notice
    )


@router.get("/new", response_class=HTMLResponse)
def new_user_page(request: Request, session: ConsoleAdmin, store: StoreDep) -> HTMLResponse:
    """The add-user form."""
    return _new_user_form(
        request,
        session,
        store,
        {},
        {"username": "", "display_name": "", "role": "agent", "groups": []},
    )


@router.post("/new", response_class=HTMLResponse)
def add_user(
    request: Request,
    session: ConsoleAdmin,
    store: StoreDep,
    settings: SettingsDep,
    username: FormText = "",
    display_name: FormText = "",
    role: FormText = "",
    password: FormText = "",
    groups: FormList = [],  # noqa: B006 (FastAPI copies a form default per request)
) -> Response:
    """Add the account, put it in the groups chosen, then show its authenticator once."""
    values = {
        "username": username,
        "display_name": display_name,
        "role": role,
        "groups": groups,
    }
    generate = not password
    chosen = generated_password() if generate else password
    try:
        added = user_admin.create_user(
            store,
            session.actor,
            username=username,
            role=role,
            password=chosen,
            display_name=display_name or username,
        )
    except user_admin.AdminError as exc:
        errors = refusal_errors(exc, _NEW_USER_FIELDS, "form")
        if exc.code == "username_taken":
            errors = {"username": str(exc)}
        return _new_user_form(request, session, store, errors, values, status_code=exc.status)
    notes = []
    for group in dict.fromkeys(groups):
        try:
            user_admin.add_members(store, session.actor, group, [added.user.username])
        except user_admin.AdminError as exc:
            notes.append(f"Not added to a group: {exc}")
    enrolment = Enrolment(
        added.user.username,
        added.otpauth_uri,
        password=chosen if generate else None,
        notes=tuple(notes),
    )
    ticket = tickets_of(request).put(session.id, enrolment, settings.clock.now())
    return see_other(f"{user_path(added.user.username)}/enrolment/{ticket}")


@router.get("/{username}/enrolment/{ticket}", response_class=HTMLResponse)
def enrolment_page(
    request: Request,
    username: str,
    ticket: str,
    session: ConsoleAdmin,
    settings: SettingsDep,
) -> HTMLResponse:
    """The authenticator QR code (and a generated password), this once; then a notice it is gone."""
    enrolment = tickets_of(request).take(ticket, session.id, settings.clock.now())
    if enrolment is not None and enrolment.username.casefold() != username.casefold():
        enrolment = None
    response = render(
        request,
        "admin_enrolment.html",
        session,
        status_code=200 if enrolment is not None else 410,
        nav="users",
        username=username,
        user_path=user_path(username),
        enrolment=enrolment,
        qr=enrolment.qr_data_uri() if enrolment is not None else "",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/{username}", response_class=HTMLResponse)
def user_page(
    request: Request, username: str, session: ConsoleAdmin, store: StoreDep, settings: SettingsDep
) -> HTMLResponse:
    """One account: its state, groups and contact, and a form for each action."""
    notice = NOTICES.get(request.query_params.get("done", ""), "")
    return _user_detail(request, session, store, settings, username, notice=notice)


@router.post("/{username}/disable", response_class=HTMLResponse)
def disable(
    request: Request, username: str, session: ConsoleAdmin, store: StoreDep, settings: SettingsDep
) -> Response:
    """Stop the user signing in and end every session of theirs now."""
    try:
        change = user_admin.disable_user(store, session.actor, username)
    except user_admin.AdminError as exc:
        return _refused(request, session, store, settings, username, exc, "status")
    return see_other(_done(change.user.username, "disabled" if change.changed else "unchanged"))


@router.post("/{username}/enable", response_class=HTMLResponse)
def enable(
    request: Request, username: str, session: ConsoleAdmin, store: StoreDep, settings: SettingsDep
) -> Response:
    """Let a disabled user sign in again."""
    try:
        change = user_admin.enable_user(store, session.actor, username)
    except user_admin.AdminError as exc:
        return _refused(request, session, store, settings, username, exc, "status")
    return see_other(_done(change.user.username, "enabled" if change.changed else "unchanged"))


@router.post("/{username}/password", response_class=HTMLResponse)
def set_password(
    request: Request,
    username: str,
    session: ConsoleAdmin,
    store: StoreDep,
    settings: SettingsDep,
    password: FormText = "",
) -> Response:
    """Set a new password (the password rules apply) and end the user's sessions."""
    try:
        change = user_admin.set_password(store, session.actor, username, password)
    except user_admin.AdminError as exc:
        return _refused(request, session, store, settings, username, exc, "password")
    return see_other(_done(change.user.username, "password"))


@router.post("/{username}/reset-mfa", response_class=HTMLResponse)
def reset_mfa(
    request: Request, username: str, session: ConsoleAdmin, store: StoreDep, settings: SettingsDep
) -> Response:
    """A new authenticator secret, shown once; the old codes stop working, sessions end."""
    try:
        reset = user_admin.reset_mfa(store, session.actor, username)
    except user_admin.AdminError as exc:
        return _refused(request, session, store, settings, username, exc, "mfa")
    enrolment = Enrolment(reset.user.username, reset.otpauth_uri)
    ticket = tickets_of(request).put(session.id, enrolment, settings.clock.now())
    return see_other(f"{user_path(reset.user.username)}/enrolment/{ticket}")


@router.post("/{username}/unlock", response_class=HTMLResponse)
def unlock(
    request: Request, username: str, session: ConsoleAdmin, store: StoreDep, settings: SettingsDep
) -> Response:
    """Lift a lockout now."""
    try:
        user = user_admin.unlock_user(store, session.actor, username)
    except user_admin.AdminError as exc:
        return _refused(request, session, store, settings, username, exc, "unlock")
    return see_other(_done(user.username, "unlocked"))


@router.post("/{username}/revoke-sessions", response_class=HTMLResponse)
def revoke_sessions(
    request: Request, username: str, session: ConsoleAdmin, store: StoreDep, settings: SettingsDep
) -> Response:
    """End every sign-in of the user now; they may sign in again."""
    try:
        change = user_admin.revoke_sessions(store, session.actor, username)
    except user_admin.AdminError as exc:
        return _refused(request, session, store, settings, username, exc, "sessions")
    return see_other(_done(change.user.username, "sessions"))


@router.post("/{username}/groups", response_class=HTMLResponse)
def set_groups(
    request: Request,
    username: str,
    session: ConsoleAdmin,
    store: StoreDep,
    settings: SettingsDep,
    groups: FormList = [],  # noqa: B006 (FastAPI copies a form default per request)
) -> Response:
    """Make the user a member of exactly the groups ticked: one audited change per group."""
    try:
        user = user_admin.find_user(store, username)
        current = {name.casefold(): name for name in user_admin.profile_of(store, user).groups}
        wanted = {name.casefold(): name for name in groups}
        for key, name in wanted.items():
            if key not in current:
                user_admin.add_members(store, session.actor, name, [user.username])
        for key, name in current.items():
            if key not in wanted:
                user_admin.remove_members(store, session.actor, name, [user.username])
    except user_admin.AdminError as exc:
        return _refused(request, session, store, settings, username, exc, "groups")
    return see_other(_done(user.username, "groups"))


@router.post("/{username}/contact", response_class=HTMLResponse)
def set_contact(
    request: Request,
    username: str,
    session: ConsoleAdmin,
    store: StoreDep,
    settings: SettingsDep,
    phone: FormText = "",
    fallback_email: FormText = "",
) -> Response:
    """Set the phone-tree entry and fallback email; an empty field clears it."""
    changes: dict[str, str | None] = {
        "phone": phone.strip() or None,
        "fallback_email": fallback_email.strip() or None,
    }
    try:
        user = user_admin.set_contact(store, session.actor, username, changes)
    except user_admin.AdminError as exc:
        errors = refusal_errors(exc, ("phone", "fallback_email"), "contact")
        values = {"phone": phone, "fallback_email": fallback_email}
        return _user_detail(
            request,
            session,
            store,
            settings,
            username,
            errors=errors,
            values=values,
            status_code=exc.status,
        )
    return see_other(_done(user.username, "contact"))


@router.get("/{username}/remove", response_class=HTMLResponse)
def confirm_remove(
    request: Request, username: str, session: ConsoleAdmin, store: StoreDep
) -> HTMLResponse:
    """Ask before removing the account."""
    try:
        user = user_admin.find_user(store, username)
    except user_admin.AdminError as exc:
        raise _missing(exc) from None
    return render(
        request,
        "admin_user_remove.html",
        session,
        nav="users",
        account=user,
        user_path=user_path(user.username),
        errors={},
    )


@router.post("/{username}/remove", response_class=HTMLResponse)
def remove(request: Request, username: str, session: ConsoleAdmin, store: StoreDep) -> Response:
    """Delete the account and its sessions."""
    try:
        user_admin.remove_user(store, session.actor, username)
    except user_admin.NoSuchUser as exc:
        raise _missing(exc) from None
    except user_admin.AdminError as exc:
        try:
            user = user_admin.find_user(store, username)
        except user_admin.NoSuchUser as gone:
            raise _missing(gone) from None
        return render(
            request,
            "admin_user_remove.html",
            session,
            status_code=exc.status,
            nav="users",
            account=user,
            user_path=user_path(user.username),
            errors={"remove": str(exc)},
        )
    return see_other("/console/admin/users?done=removed")


def _matches(query: str, wire: dict[str, Any]) -> bool:
    if not query.strip():
        return True
    needle = query.strip().casefold()
    haystack = [
        wire["username"],
        wire["display_name"],
        wire["role"],
        wire["status"],
        wire["phone"] or "",
        *wire["groups"],
    ]
    return any(needle in str(text).casefold() for text in haystack)


def _done(username: str, notice: str) -> str:
    return f"{user_path(username)}?done={notice}"


def _new_user_form(
    request: Request,
    session: ConsoleSession,
    store: Store,
    errors: dict[str, str],
    values: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "admin_user_new.html",
        session,
        status_code=status_code,
        nav="users",
        errors=errors,
        values=values,
        roles=ROLES,
        groups=[group.name for group in store.groups.all()],
    )


def _user_detail(
    request: Request,
    session: ConsoleSession,
    store: Store,
    settings: HubSettings,
    username: str,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    try:
        user = user_admin.find_user(store, username)
    except user_admin.AdminError as exc:
        raise _missing(exc) from None
    profile = user_admin.profile_of(store, user)
    member_of = {name.casefold() for name in profile.groups}
    wire = user_admin.user_to_wire(user, settings.clock.now(), profile)
    shown = {"phone": profile.phone or "", "fallback_email": profile.fallback_email or ""}
    return render(
        request,
        "admin_user.html",
        session,
        status_code=status_code,
        nav="users",
        account=user,
        wire=wire,
        user_path=user_path(user.username),
        is_self=user.username.casefold() == session.user.username.casefold(),
        all_groups=[
            {"name": group.name, "member": group.name.casefold() in member_of}
            for group in store.groups.all()
        ],
        notice=notice,
        errors=errors or {},
        values={**shown, **(values or {})},
    )


def _refused(
    request: Request,
    session: ConsoleSession,
    store: Store,
    settings: HubSettings,
    username: str,
    exc: user_admin.AdminError,
    action: str,
) -> HTMLResponse:
    if isinstance(exc, user_admin.NoSuchUser):
        raise _missing(exc) from None
    errors = refusal_errors(exc, (action,), action)
    return _user_detail(
        request, session, store, settings, username, errors=errors, status_code=exc.status
    )


def _missing(exc: user_admin.AdminError) -> ConsoleRefusal:
    return ConsoleRefusal(404, "Not found", str(exc))
