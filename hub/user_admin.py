"""Account administration: the one path used by /v1/admin and `vigil-hub user|group ...`.

Each change is checked (password policy, usernames, display names, the last admin), made in the
store, and written to the audit trail with who asked and from where, whatever the outcome.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from hub import passwords, totp
from hub.clock import rfc3339
from hub.password_policy import PasswordRefused, check_new_password
from hub.storage.accounts import (
    ROLES,
    LastAdmin,
    Role,
    UnknownUser,
    UserChange,
    UsernameTaken,
    UserSummary,
)
from hub.storage.groups import (
    GROUP_KINDS,
    Group,
    GroupExists,
    GroupKind,
    UnknownGroup,
    UserProfile,
)

if TYPE_CHECKING:
    from hub.storage import Store

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
DISPLAY_NAME_MAX = 200
GROUP_NAME_MAX = 64
GROUP_DESCRIPTION_MAX = 500
MEMBERS_MAX = 500
# A phone-tree entry as people write it: digits and the usual separators, nothing to execute.
PHONE_PATTERN = re.compile(r"^[0-9 +\-().]{3,40}$")
EMAIL_MAX = 254
# Plausible, not all of RFC 5322: an unquoted local part of its atext characters, then a
# dotted host name (IDNs in their xn-- form). The gateway decides the rest.
EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
# Explicit bidi controls: in a display name they would reorder the text around it (who
# acknowledged, the audit trail) to spoof another name.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


class AdminError(Exception):
    """A change that was not made; `code` and `status` for HTTP, the message for people."""

    status = 400
    code = "bad_request"


class InvalidAccountInput(AdminError):
    """A username, display name, role or password that breaks a rule."""

    status = 422
    code = "invalid_request"

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        if rule is not None:
            self.code = "password_refused"


class NoSuchUser(AdminError):
    """No account has that username."""

    status = 404
    code = "unknown_user"


class NoSuchGroup(AdminError):
    """No group has that name."""

    status = 404
    code = "unknown_group"


class ChangeRefused(AdminError):
    """The change conflicts with the hub's state (a taken name, the last admin, oneself)."""

    status = 409

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: a signed-in admin (`username`) or IT at the terminal (None)."""

    name: str
    source: str | None
    username: str | None = None


@dataclass(frozen=True)
class NewCredential:
    """An account and the otpauth URI of its new authenticator secret, shown once."""

    user: UserSummary
    otpauth_uri: str = field(repr=False)


def create_user(
    store: Store, actor: Actor, *, username: str, role: str, password: str, display_name: str
) -> NewCredential:
    """Add an account; answers its authenticator URI (the only time it is shown)."""
    with _audited(store, actor, "user.created", username, {"role": role}) as audit:
        _check_username(username)
        checked_role = _check_role(role)
        name = _check_display_name(display_name)
        password_hash = passwords.hash_password(_check_password(password, username))
        secret = totp.new_secret()
        try:
            record = store.accounts.create_user(
                username=username,
                display_name=name,
                role=checked_role,
                password_hash=password_hash,
                totp_secret=secret,
            )
        except UsernameTaken:
            raise ChangeRefused(
                "username_taken", f"A user named {username!r} already exists; pick another name."
            ) from None
        user = store.accounts.user_summary(username=record.username)
        assert user is not None
        audit.subject = user.username
        return NewCredential(user, totp.provisioning_uri(secret, user.username))


def disable_user(store: Store, actor: Actor, username: str) -> UserChange:
    """Stop a user signing in and end every session of theirs at once."""
    with _audited(store, actor, "user.disabled", username) as audit:
        _refuse_self(actor, username, "disable")
        change = _change(lambda: store.accounts.disable_user(username=username), username)
        return audit.done(change)


def enable_user(store: Store, actor: Actor, username: str) -> UserChange:
    """Let a disabled user sign in again."""
    with _audited(store, actor, "user.enabled", username) as audit:
        return audit.done(_change(lambda: store.accounts.enable_user(username=username), username))


def remove_user(store: Store, actor: Actor, username: str) -> UserChange:
    """Delete an account and its sessions; its acks and audit events keep the username."""
    with _audited(store, actor, "user.removed", username) as audit:
        _refuse_self(actor, username, "remove")
        change = _change(lambda: store.accounts.remove_user(username=username), username)
        store.groups.forget_user(change.user.username)
        return audit.done(change)


def set_password(store: Store, actor: Actor, username: str, password: str) -> UserChange:
    """Give a user a new password (it must pass the policy) and end their sessions."""
    with _audited(store, actor, "user.password_set", username) as audit:
        password_hash = passwords.hash_password(_check_password(password, username))
        return audit.done(
            _change(
                lambda: store.accounts.replace_password(
                    username=username, password_hash=password_hash
                ),
                username,
            )
        )


def reset_mfa(store: Store, actor: Actor, username: str) -> NewCredential:
    """Give a user a new authenticator secret, end their sessions; answers the new URI once."""
    with _audited(store, actor, "user.mfa_reset", username) as audit:
        secret = totp.new_secret()
        change = _change(
            lambda: store.accounts.replace_totp_secret(username=username, totp_secret=secret),
            username,
        )
        audit.done(change)
        return NewCredential(change.user, totp.provisioning_uri(secret, change.user.username))


def unlock_user(store: Store, actor: Actor, username: str) -> UserSummary:
    """Lift a lockout now."""
    with _audited(store, actor, "user.unlocked", username) as audit:
        user = _summary(store, username)
        store.accounts.unlock(user.id)
        audit.subject = user.username
        return _summary(store, username)


def revoke_sessions(store: Store, actor: Actor, username: str) -> UserChange:
    """End every session of a user at once; they may sign in again."""
    with _audited(store, actor, "user.sessions_revoked", username) as audit:
        return audit.done(
            _change(lambda: store.accounts.revoke_sessions(username=username), username)
        )


def find_user(store: Store, username: str) -> UserSummary:
    """One account; NoSuchUser when there is none."""
    return _summary(store, username)


def profile_of(store: Store, user: UserSummary) -> UserProfile:
    """A user's groups and call-out contact."""
    try:
        return store.groups.profile(user.username)
    except UnknownUser:
        # Removed a moment ago (the removal answers the account as it was): nothing to show.
        return UserProfile([], None, None)


def user_to_wire(user: UserSummary, now: float, profile: UserProfile) -> dict[str, Any]:
    """The admin API's user object: state, times, groups, contact; never a hash, secret or token."""
    if user.disabled_at is not None:
        status = "disabled"
    elif user.locked_until > now:
        status = "locked"
    else:
        status = "active"
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "roles": list(ROLES[: ROLES.index(user.role) + 1]),
        "status": status,
        "created_at": rfc3339(user.created_at),
        "disabled_at": None if user.disabled_at is None else rfc3339(user.disabled_at),
        "locked_until": rfc3339(user.locked_until) if user.locked_until > now else None,
        "active_sessions": user.active_sessions,
        "last_sign_in_at": None if user.last_sign_in_at is None else rfc3339(user.last_sign_in_at),
        "groups": list(profile.groups),
        "phone": profile.phone,
        "fallback_email": profile.fallback_email,
    }


def set_contact(
    store: Store, actor: Actor, username: str, changes: dict[str, str | None]
) -> UserSummary:
    """Set or clear (None) a user's phone and fallback email; only the fields given change."""
    detail: dict[str, str | int | None] = {
        field: "cleared" if value is None else "set" for field, value in changes.items()
    }
    with _audited(store, actor, "user.contact_set", username, detail) as audit:
        checked = {
            field: None if value is None else _check_contact(field, value)
            for field, value in changes.items()
        }
        user = _summary(store, username)
        try:
            store.groups.set_contact(user.username, checked)
        except UnknownUser:
            raise _no_such_user(username) from None
        audit.subject = user.username
        return user


def create_group(store: Store, actor: Actor, name: str, kind: str, description: str = "") -> Group:
    """Add an empty group an alert can target."""
    with _audited(store, actor, "group.created", name, {"kind": kind}) as audit:
        _check_group_name(name)
        if kind not in GROUP_KINDS:
            raise InvalidAccountInput(f"kind: must be one of {', '.join(sorted(GROUP_KINDS))}.")
        text = _check_text("description", description, GROUP_DESCRIPTION_MAX, allow_blank=True)
        try:
            group = store.groups.create(name, cast(GroupKind, kind), text)
        except GroupExists:
            raise ChangeRefused(
                "group_exists", f"A group named {_quoted(name)} already exists; pick another name."
            ) from None
        audit.subject = group.name
        return group


def remove_group(store: Store, actor: Actor, name: str) -> Group:
    """Delete a group; alerts already sent to it keep their targets."""
    with _audited(store, actor, "group.removed", name) as audit:
        group = find_group(store, name)
        try:
            store.groups.remove(group.name)
        except UnknownGroup:
            raise _no_such_group(name) from None
        audit.subject = group.name
        return group


def add_members(store: Store, actor: Actor, name: str, usernames: Sequence[str]) -> list[str]:
    """Put existing users in a group; the ones that were not members already."""
    with _audited(store, actor, "group.members_added", name) as audit:
        _check_usernames(usernames)
        audit.subject = find_group(store, name).name
        try:
            added = store.groups.add_members(name, usernames)
        except UnknownGroup:
            raise _no_such_group(name) from None
        except UnknownUser as exc:
            raise _no_such_user(str(exc.args[0])) from None
        audit.detail["usernames"] = ", ".join(added)
        audit.outcome = "ok" if added else "no_change"
        return added


def remove_members(store: Store, actor: Actor, name: str, usernames: Sequence[str]) -> list[str]:
    """Take users out of a group; the ones that were members."""
    with _audited(store, actor, "group.members_removed", name) as audit:
        _check_usernames(usernames)
        audit.subject = find_group(store, name).name
        try:
            removed = store.groups.remove_members(name, usernames)
        except UnknownGroup:
            raise _no_such_group(name) from None
        audit.detail["usernames"] = ", ".join(removed)
        audit.outcome = "ok" if removed else "no_change"
        return removed


def find_group(store: Store, name: str) -> Group:
    """One group with its members; NoSuchGroup when there is none."""
    group = store.groups.get(name)
    if group is None:
        raise _no_such_group(name)
    return group


def group_to_wire(group: Group, agents: int) -> dict[str, Any]:
    """The admin API's group object: members by username, and how many enabled agents."""
    return {
        "name": group.name,
        "kind": group.kind,
        "description": group.description,
        "created_at": rfc3339(group.created_at),
        "members": list(group.members),
        "agents": agents,
    }


class _AuditEntry:
    """One change being made: recorded when it ends, with its outcome."""

    def __init__(self, subject: str, detail: dict[str, str | int | None]) -> None:
        self.subject = subject
        self.outcome = "ok"
        self.detail = detail

    def done(self, change: UserChange) -> UserChange:
        self.subject = change.user.username
        self.outcome = "ok" if change.changed else "no_change"
        if change.sessions_ended:
            self.detail["sessions_ended"] = change.sessions_ended
        return change


@contextmanager
def _audited(
    store: Store,
    actor: Actor,
    event: str,
    subject: str,
    detail: dict[str, str | int | None] | None = None,
) -> Iterator[_AuditEntry]:
    entry = _AuditEntry(subject, dict(detail or {}))
    try:
        yield entry
    except AdminError as exc:
        entry.outcome = exc.code
        if isinstance(exc, InvalidAccountInput) and exc.rule is not None:
            entry.detail["rule"] = exc.rule
        raise
    except BaseException:
        entry.outcome = "error"
        raise
    finally:
        store.audit.record(
            event,
            actor=actor.name,
            subject=entry.subject,
            source=actor.source,
            outcome=entry.outcome,
            detail=entry.detail,
        )


def _change(make: Callable[[], UserChange], username: str) -> UserChange:
    try:
        change = make()
    except UnknownUser:
        raise _no_such_user(username) from None
    except LastAdmin:
        raise ChangeRefused(
            "last_admin",
            f"{username!r} is the last enabled admin: add or enable another admin first.",
        ) from None
    return change


def _summary(store: Store, username: str) -> UserSummary:
    user = store.accounts.user_summary(username=username)
    if user is None:
        raise _no_such_user(username)
    return user


def _no_such_user(username: str) -> NoSuchUser:
    return NoSuchUser(f"There is no user named {_quoted(username)} on this hub.")


def _refuse_self(actor: Actor, username: str, verb: str) -> None:
    if actor.username is not None and actor.username.casefold() == username.casefold():
        raise ChangeRefused(
            "cannot_change_self", f"You cannot {verb} your own account; ask another admin."
        )


def _check_username(username: str) -> None:
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidAccountInput(
            f"username: {_quoted(username)} is not a valid username: use 1-64 letters, digits, "
            "'.', '_', '@' or '-'."
        )


def _check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise InvalidAccountInput(f"role: must be one of {', '.join(ROLES)}.")


def _check_group_name(name: str) -> None:
    if name != name.strip():
        raise InvalidAccountInput("name: starts or ends with a space; remove it.")
    if "/" in name:
        # The name is a path segment of the admin endpoints.
        raise InvalidAccountInput("name: holds '/'; use letters, digits, spaces or - instead.")
    _check_text("name", name, GROUP_NAME_MAX)


def _check_usernames(usernames: Sequence[str]) -> None:
    if not 1 <= len(usernames) <= MEMBERS_MAX:
        raise InvalidAccountInput(f"usernames: give 1 to {MEMBERS_MAX} usernames.")
    for username in usernames:
        _check_username(username)


def _check_contact(field: str, value: str) -> str:
    _check_text(field, value, EMAIL_MAX if field == "fallback_email" else 40)
    if field == "phone" and not (
        PHONE_PATTERN.fullmatch(value) and any(char.isdigit() for char in value)
    ):
        raise InvalidAccountInput(
            "phone: use 3 to 40 digits, spaces and + - ( ) . only, e.g. +1 (555) 010-2030."
        )
    if field == "fallback_email" and not EMAIL_PATTERN.fullmatch(value):
        raise InvalidAccountInput(
            "fallback_email: is not an email address like pager-1234@sms.example.org."
        )
    return value


def _check_text(field: str, value: str, most: int, *, allow_blank: bool = False) -> str:
    if len(value) > most or (not allow_blank and not value.strip()):
        least = 0 if allow_blank else 1
        raise InvalidAccountInput(f"{field}: use {least} to {most} characters.")
    for char in value:
        if char in _BIDI_CONTROLS or unicodedata.category(char) == "Cc":
            raise InvalidAccountInput(
                f"{field}: holds the control character U+{ord(char):04X}; "
                "use printable characters only."
            )
    return value


def _no_such_group(name: str) -> NoSuchGroup:
    return NoSuchGroup(f"There is no group named {_quoted(name)} on this hub.")


def _check_display_name(display_name: str) -> str:
    if not display_name.strip() or len(display_name) > DISPLAY_NAME_MAX:
        raise InvalidAccountInput(f"display_name: use 1 to {DISPLAY_NAME_MAX} characters.")
    for char in display_name:
        if char in _BIDI_CONTROLS or unicodedata.category(char) == "Cc":
            raise InvalidAccountInput(
                f"display_name: holds the control character U+{ord(char):04X}; "
                "use printable characters only."
            )
    return display_name


def _check_password(password: str, username: str) -> str:
    try:
        return check_new_password(password, username=username)
    except PasswordRefused as exc:
        raise InvalidAccountInput(f"password: {exc}", rule=exc.rule) from None


def _quoted(text: str) -> str:
    # repr() escapes control characters, so a hostile name cannot rewrite the line it is shown on;
    # bidi controls are printable to repr, so they are escaped by hand.
    quoted = repr(text[:80])
    return "".join(f"\\u{ord(char):04x}" if char in _BIDI_CONTROLS else char for char in quoted)
