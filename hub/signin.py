"""The sign-in rules: throttles, password then TOTP, lockout, token rotation with reuse
detection and a grace window, logout.

Every answer a caller can act on is an ApiError with the protocol's error code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hub import password_policy, passwords, token_seal, totp
from hub.config import HubSettings
from hub.errors import ApiError
from hub.hashing_pool import HashingBusy, HashingPool
from hub.storage import Store
from hub.storage.accounts import (
    AccessGrant,
    Family,
    IssuedTokens,
    LockoutRules,
    MfaOutcome,
    RefreshOutcome,
    UserRecord,
)
from hub.throttle import SignInThrottle
from hub.tokens import new_token, token_hash

# How soon to try again when every hashing worker is busy: the queue drains in well under that.
BUSY_RETRY_AFTER_SECONDS = 2


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


@dataclass(frozen=True)
class SignInGuard:
    """What stands before the password check: the throttles and the bounded hashing pool."""

    throttle: SignInThrottle
    hashing: HashingPool

    @classmethod
    def from_settings(cls, settings: HubSettings) -> SignInGuard:
        """The guard the settings describe."""
        return cls(
            throttle=SignInThrottle(
                address_burst=settings.signin_address_burst,
                address_per_minute=settings.signin_address_per_minute,
                username_burst=settings.signin_username_burst,
                username_per_minute=settings.signin_username_per_minute,
                total_burst=settings.signin_total_burst,
                total_per_minute=settings.signin_total_per_minute,
                clock=settings.clock,
            ),
            hashing=HashingPool(settings.hash_workers, settings.hash_queue),
        )


def admit_attempt(guard: SignInGuard, *, address: str, username: str) -> None:
    """Let a password attempt through the throttles, or refuse it: 429 too_many_attempts."""
    retry_after = guard.throttle.admit(address, username)
    if retry_after is not None:
        raise _too_many_attempts(retry_after)


def start_sign_in(
    store: Store,
    settings: HubSettings,
    guard: SignInGuard,
    *,
    username: str,
    password: str,
    address: str,
    device_id: str,
    device_name: str,
) -> MfaChallengeIssued:
    """Check the password of an attempt `admit_attempt` let through, and open the second step.

    The password never unlocks a locked user. Unknown usernames go the same way as known ones
    (throttle, count, lock, one hash), so no answer and no timing tells them apart.
    """
    password = password_policy.normalise(password)
    try:
        with guard.hashing.admitted():
            attempt = _reserve_attempt(store, settings, username, address, "password")
            user = store.accounts.find_user(username=username)
            if user is None or user.disabled_at is not None:
                # A disabled account answers exactly as an unknown one; only the audit says which.
                guard.hashing.burn_verification(password)
                right = False
                reason = "unknown_user" if user is None else "disabled"
            else:
                right = guard.hashing.verify(user.password_hash, password)
                reason = "password"
            if not right:
                known = None if user is None else user.username
                locked_until = _confirm_failure(store, settings, attempt, reason, known, address)
                raise _invalid_credentials(locked_until, settings)
            store.accounts.cancel_attempt(attempt_id=attempt.attempt_id)
            assert user is not None
            guard.throttle.succeeded(address, username)
            if passwords.needs_rehash(user.password_hash):
                store.accounts.set_password_hash(
                    user_id=user.id, password_hash=guard.hashing.hash(password)
                )
    except HashingBusy:
        raise ApiError(
            503,
            "sign_in_busy",
            "The hub is checking too many sign-ins at once. Try again in a few seconds.",
            {"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
            extra={"retry_after": BUSY_RETRY_AFTER_SECONDS},
        ) from None
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
    store: Store, settings: HubSettings, *, mfa_token: str, code: str, address: str
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
    attempt = _reserve_attempt(store, settings, user.username, address, "code")
    step = totp.matching_step(user.totp_secret, code, now)
    if step is None:
        locked_until = _confirm_failure(
            store, settings, attempt, "invalid_code", user.username, address
        )
        raise _invalid_code(locked_until, settings)
    access_token, refresh_token, issued = _new_pair(settings, now)
    outcome, family = store.accounts.complete_mfa(
        challenge_hash=challenge_hash,
        step=step,
        family_expires_at=now + settings.session_seconds,
        tokens=issued,
    )
    if outcome is MfaOutcome.CHALLENGE_GONE:
        # Not a guess at the code: someone else finished (or the token expired) meanwhile.
        store.accounts.cancel_attempt(attempt_id=attempt.attempt_id)
        raise _mfa_token_invalid()
    if outcome is MfaOutcome.CODE_ALREADY_USED:
        locked_until = _confirm_failure(
            store, settings, attempt, "code_already_used", user.username, address
        )
        raise ApiError(
            401,
            "code_already_used",
            "That code was already used to sign in. Wait for your authenticator app to show "
            "a new code, then enter it." + _lock_note(locked_until, settings),
        )
    if outcome is MfaOutcome.CODE_STALE:
        locked_until = _confirm_failure(
            store, settings, attempt, "stale_code", user.username, address
        )
        raise _invalid_code(locked_until, settings)
    assert family is not None
    _audit(store, user.username, address, "ok", event="signin.ok", device_id=challenge.device_id)
    pair = TokenPair(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=_expires_in(issued.access_expires_at, family, now),
        session_expires_at=family.expires_at,
    )
    return pair, user


def refresh(store: Store, settings: HubSettings, *, refresh_token: str) -> TokenPair:
    """Rotate a refresh token; a second use of one revokes its whole family.

    Within the grace window after a rotation, while its successor is unused, the same successor
    pair is answered again: the client lost the first answer and still holds the old token.
    """
    now = settings.clock.now()
    access_token, new_refresh_token, issued = _new_pair(settings, now)
    sealed = token_seal.seal(
        refresh_token,
        token_seal.SealedPair(
            access_token=access_token,
            refresh_token=new_refresh_token,
            access_expires_at=issued.access_expires_at,
        ),
    )
    result = store.accounts.rotate_refresh(
        refresh_hash=token_hash(refresh_token),
        tokens=issued,
        sealed_successor=sealed,
        grace_seconds=settings.refresh_grace_seconds,
    )
    if result.outcome is RefreshOutcome.REPLAYED_IN_GRACE:
        assert result.family is not None and result.sealed_successor is not None
        successor = token_seal.unseal(refresh_token, result.sealed_successor)
        if successor is not None:
            return TokenPair(
                access_token=successor.access_token,
                refresh_token=successor.refresh_token,
                expires_in=_expires_in(successor.access_expires_at, result.family, now),
                session_expires_at=result.family.expires_at,
            )
        # Sealed for another token: cannot happen unless the file was altered; revoke.
        store.accounts.revoke_family(family_id=result.family.id, reason="refresh_reused")
        raise _refresh_reused()
    if result.outcome is RefreshOutcome.UNKNOWN or result.outcome is RefreshOutcome.REVOKED:
        raise ApiError(
            401,
            "token_invalid",
            "This refresh token is not valid (unknown, or signed out). Sign in again.",
        )
    if result.outcome is RefreshOutcome.REUSED:
        raise _refresh_reused()
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


def _lockout_rules(settings: HubSettings) -> LockoutRules:
    return LockoutRules(
        threshold=settings.lockout_threshold,
        window_seconds=settings.lockout_window_seconds,
        lockout_seconds=settings.lockout_seconds,
        account_threshold=settings.account_lockout_threshold,
        account_window_seconds=settings.account_lockout_window_seconds,
    )


@dataclass(frozen=True)
class _Attempt:
    """A sign-in attempt counted before its check."""

    attempt_id: int
    may_lock: bool


def _reserve_attempt(
    store: Store, settings: HubSettings, username: str, address: str, step: str
) -> _Attempt:
    """Count the attempt before checking it; 429 locked_out when a lock (or the count) forbids."""
    reservation = store.accounts.reserve_attempt(
        username=username, address=address, step=step, rules=_lockout_rules(settings)
    )
    if reservation.attempt_id is not None:
        return _Attempt(reservation.attempt_id, reservation.may_lock)
    assert reservation.locked_until is not None
    # An unknown name is not kept: people type their password into the username box.
    known = store.accounts.find_user(username=username)
    _audit(store, None if known is None else known.username, address, "locked_out")
    retry_after = _retry_after(reservation.locked_until, settings.clock.now())
    raise ApiError(
        429,
        "locked_out",
        f"Too many failed sign-ins. Try again in {_minutes(retry_after)}.",
        {"Retry-After": str(retry_after)},
        extra={"retry_after": retry_after},
    )


def _confirm_failure(
    store: Store,
    settings: HubSettings,
    attempt: _Attempt,
    reason: str,
    username: str | None,
    address: str,
) -> float | None:
    """When the failed attempt reached a limit, lock; when the lock now holds ends, or None.

    `username` is the account's name, or None for a name that matches no account.
    """
    _audit(store, username, address, reason)
    if not attempt.may_lock:
        # Counted as a failure since its reservation: nothing more to write.
        return None
    locked_until = store.accounts.confirm_failure(
        attempt_id=attempt.attempt_id, reason=reason, rules=_lockout_rules(settings)
    )
    if locked_until is not None:
        _audit(store, username, address, "locked", event="signin.locked")
    return locked_until


def _audit(
    store: Store,
    username: str | None,
    address: str,
    outcome: str,
    *,
    event: str = "signin.failed",
    device_id: str | None = None,
) -> None:
    # Never the password or the code.
    detail = {} if device_id is None else {"device_id": device_id}
    store.audit.record(
        event, actor=username, subject=username, source=address, outcome=outcome, detail=detail
    )


def _too_many_attempts(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "too_many_attempts",
        f"Too many sign-in attempts from here. Try again in {retry_after} seconds.",
        {"Retry-After": str(retry_after)},
        extra={"retry_after": retry_after},
    )


def _refresh_reused() -> ApiError:
    return ApiError(
        401,
        "refresh_reused",
        "This refresh token was already used, so every token of this sign-in has been "
        "revoked in case it was copied. Sign in again.",
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
