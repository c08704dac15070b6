"""Account administration: the one path used by /v1/admin/users and `vigil-hub user ...`.

Each change is checked (password policy, usernames, display names, the last admin), made in the
store, and written to the audit trail with who asked and from where, whatever the outcome.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from hub.storage import Store

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
DISPLAY_NAME_MAX = 200
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
        return audit.done(_change(lambda: store.accounts.remove_user(username=username), username))


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


def user_to_wire(user: UserSummary, now: float) -> dict[str, Any]:
    """The admin API's user object: state and times, never a hash, secret or token."""
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
