"""The sign-in rules: password then TOTP, lockout, token rotation with reuse detection, logout.

Every answer a caller can act on is an ApiError with the protocol's error code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hub import password_policy, passwords, totp
from hub.config import HubSettings
from hub.errors import ApiError
from hub.storage import Store
from hub.storage.accounts import (
    AccessGrant,
    Family,
    IssuedTokens,
    MfaOutcome,
    RefreshOutcome,
    UserRecord,
)
from hub.tokens import new_token, token_hash


@dataclass(frozen=True)
class MfaChallengeIssued:
    """The answer to a correct password: the token for the second step."""

    mfa_token: str = field(repr=False)
    expires_in: int


@dataclass(frozen=True)
class TokenPair:
    """A fresh access/refresh pair and the absolute end of its family."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    session_expires_at: float


def start_sign_in(
    store: Store,
    settings: HubSettings,
    *,
    username: str,
    password: str,
    device_id: str,
    device_name: str,
    source: str | None = None,
) -> MfaChallengeIssued:
    """Check the password and open the second step; the password never unlocks a locked user."""
    password = password_policy.normalise(password)
    user = store.accounts.find_user(username=username)
    if user is None or user.disabled_at is not None:
        # A disabled account answers exactly as an unknown one; only the audit says which.
        passwords.burn_verification(password)
        # An unknown name is not kept: people type their password into the username box.
        _audit(
            store,
            None if user is None else user.username,
            source,
            "unknown_user" if user is None else "disabled",
        )
        raise _invalid_credentials(None, settings)
    _refuse_if_locked(user, settings, store, source)
    if not passwords.verify_password(user.password_hash, password):
        locked_until = _record_failure(store, settings, user, "password", source)
        raise _invalid_credentials(locked_until, settings)
    if passwords.needs_rehash(user.password_hash):
        store.accounts.set_password_hash(
            user_id=user.id, password_hash=passwords.hash_password(password)
        )
    mfa_token = new_token()
    store.accounts.create_challenge(
        token_hash=token_hash(mfa_token),
        user_id=user.id,
        device_id=device_id,
        device_name=device_name,
        expires_at=settings.clock.now() + settings.mfa_token_seconds,
    )
    return MfaChallengeIssued(mfa_token=mfa_token, expires_in=settings.mfa_token_seconds)


def finish_sign_in(
    store: Store, settings: HubSettings, *, mfa_token: str, code: str, source: str | None = None
) -> tuple[TokenPair, UserRecord]:
    """Check the TOTP code for an MFA token; on success open a token family."""
    challenge_hash = token_hash(mfa_token)
    now = settings.clock.now()
    challenge = store.accounts.get_challenge(token_hash=challenge_hash)
    if challenge is None or challenge.used or challenge.expires_at <= now:
        raise _mfa_token_invalid()
    user = store.accounts.get_user(user_id=challenge.user_id)
    if user is None:
        raise _mfa_token_invalid()
    _refuse_if_locked(user, settings, store, source)
    step = totp.matching_step(user.totp_secret, code, now)
    if step is None:
        locked_until = _record_failure(store, settings, user, "invalid_code", source)
        raise _invalid_code(locked_until, settings)
    access_token, refresh_token, issued = _new_pair(settings, now)
    outcome, family = store.accounts.complete_mfa(
        challenge_hash=challenge_hash,
        step=step,
        family_expires_at=now + settings.session_seconds,
        tokens=issued,
    )
    if outcome is MfaOutcome.CHALLENGE_GONE:
        raise _mfa_token_invalid()
    if outcome is MfaOutcome.CODE_ALREADY_USED:
        locked_until = _record_failure(store, settings, user, "code_already_used", source)
        raise ApiError(
            401,
            "code_already_used",
            "That code was already used to sign in. Wait for your authenticator app to show "
            "a new code, then enter it." + _lock_note(locked_until, settings),
        )
    if outcome is MfaOutcome.CODE_STALE:
        raise _invalid_code(_record_failure(store, settings, user, "stale_code", source), settings)
    assert family is not None
    _audit(store, user.username, source, "ok", event="signin.ok", device_id=challenge.device_id)
    pair = TokenPair(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=_expires_in(issued.access_expires_at, family, now),
        session_expires_at=family.expires_at,
    )
    return pair, user


def refresh(store: Store, settings: HubSettings, *, refresh_token: str) -> TokenPair:
    """Rotate a refresh token; a second use of one revokes its whole family."""
    now = settings.clock.now()
    access_token, new_refresh_token, issued = _new_pair(settings, now)
    result = store.accounts.rotate_refresh(refresh_hash=token_hash(refresh_token), tokens=issued)
    if result.outcome is RefreshOutcome.UNKNOWN or result.outcome is RefreshOutcome.REVOKED:
        raise ApiError(
            401,
            "token_invalid",
            "This refresh token is not valid (unknown, or signed out). Sign in again.",
        )
    if result.outcome is RefreshOutcome.REUSED:
        raise ApiError(
            401,
            "refresh_reused",
            "This refresh token was already used, so every token of this sign-in has been "
            "revoked in case it was copied. Sign in again.",
        )
    if result.outcome is RefreshOutcome.FAMILY_EXPIRED:
        raise ApiError(
            401,
            "session_expired",
            "Your sign-in has reached its maximum length (one shift). Sign in again.",
        )
    assert result.family is not None
    return TokenPair(
        access_token=access_token,
        refresh_token=new_refresh_token,
        expires_in=_expires_in(issued.access_expires_at, result.family, now),
        session_expires_at=result.family.expires_at,
    )


def authenticate(store: Store, settings: HubSettings, *, access_token: str) -> AccessGrant:
    """The grant behind a bearer token; 401 token_invalid or token_expired otherwise."""
    grant = store.accounts.find_access(access_hash=token_hash(access_token))
    if grant is None or grant.revoked:
        raise ApiError(
            401,
            "token_invalid",
            "The access token is not valid (unknown or signed out). Sign in again.",
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    now = settings.clock.now()
    # An access token never outlives its family's absolute lifetime.
    if min(grant.token_expires_at, grant.family_expires_at) <= now:
        raise ApiError(
            401,
            "token_expired",
            "The access token has expired. Get a new one with your refresh token.",
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return grant


def sign_out(store: Store, *, grant: AccessGrant) -> None:
    """Revoke the access token's whole family."""
    store.accounts.revoke_family(family_id=grant.family_id, reason="logout")


def _new_pair(settings: HubSettings, now: float) -> tuple[str, str, IssuedTokens]:
    access_token = new_token()
    refresh_token = new_token()
    issued = IssuedTokens(
        access_hash=token_hash(access_token),
        access_expires_at=now + settings.access_token_seconds,
        refresh_hash=token_hash(refresh_token),
    )
    return access_token, refresh_token, issued


def _expires_in(access_expires_at: float, family: Family, now: float) -> int:
    return max(0, math.floor(min(access_expires_at, family.expires_at) - now))


def _retry_after(locked_until: float, now: float) -> int:
    return max(1, math.ceil(locked_until - now))


def _minutes(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def _refuse_if_locked(
    user: UserRecord, settings: HubSettings, store: Store, source: str | None
) -> None:
    now = settings.clock.now()
    if user.locked_until > now:
        retry_after = _retry_after(user.locked_until, now)
        _audit(store, user.username, source, "locked_out")
        raise ApiError(
            429,
            "locked_out",
            f"Too many failed sign-ins. Try again in {_minutes(retry_after)}.",
            {"Retry-After": str(retry_after)},
            extra={"retry_after": retry_after},
        )


def _record_failure(
    store: Store, settings: HubSettings, user: UserRecord, reason: str, source: str | None
) -> float | None:
    locked_until = store.accounts.record_failure(
        user_id=user.id,
        reason=reason,
        threshold=settings.lockout_threshold,
        window_seconds=settings.lockout_window_seconds,
        lockout_seconds=settings.lockout_seconds,
    )
    _audit(store, user.username, source, reason)
    if locked_until is not None:
        _audit(store, user.username, source, "locked", event="signin.locked")
    return locked_until


def _audit(
    store: Store,
    username: str | None,
    source: str | None,
    outcome: str,
    *,
    event: str = "signin.failed",
    device_id: str | None = None,
) -> None:
    # Never the password or the code.
    detail = {} if device_id is None else {"device_id": device_id}
    store.audit.record(
        event, actor=username, subject=username, source=source, outcome=outcome, detail=detail
    )


def _lock_note(locked_until: float | None, settings: HubSettings) -> str:
    if locked_until is None:
        return ""
    retry_after = _retry_after(locked_until, settings.clock.now())
    return f" Too many failed sign-ins: this account is locked for {_minutes(retry_after)}."


def _invalid_credentials(locked_until: float | None, settings: HubSettings) -> ApiError:
    return ApiError(
        401,
        "invalid_credentials",
        "Wrong username or password. Check both and try again."
        + _lock_note(locked_until, settings),
    )


def _invalid_code(locked_until: float | None, settings: HubSettings) -> ApiError:
    return ApiError(
        401,
        "invalid_code",
        "That code is wrong or too old. Enter the code your authenticator app shows now."
        + _lock_note(locked_until, settings),
    )


def _mfa_token_invalid() -> ApiError:
    return ApiError(
        401,
        "mfa_token_invalid",
        "This sign-in has expired or was already completed. Start again with your password.",
    )
