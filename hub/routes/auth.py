"""Sign-in (password, then TOTP), token refresh, logout, and the signed-in user."""

from __future__ import annotations

import asyncio
import random
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from hub import signin
from hub.clock import rfc3339
from hub.deps import AccessGrantDep, CurrentUser, SettingsDep, SourceAddress, StoreDep, User
from hub.errors import ApiError, error_responses
from hub.passwords import MAX_PASSWORD_LENGTH

router = APIRouter(prefix="/v1")


async def get_signin_guard(request: Request) -> signin.SignInGuard:
    """The app's sign-in throttles and hashing pool."""
    guard: signin.SignInGuard = request.app.state.signin_guard
    return guard


SignInGuardDep = Annotated[signin.SignInGuard, Depends(get_signin_guard)]

Username = Annotated[str, Field(min_length=1, max_length=64)]
Token = Annotated[str, Field(min_length=1, max_length=128)]


class LoginRequest(BaseModel):
    """The password step."""

    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
    device_id: Annotated[str, Field(min_length=1, max_length=128)]
    device_name: Annotated[str, Field(min_length=1, max_length=200)]


class MfaRequest(BaseModel):
    """The code step."""

    model_config = ConfigDict(extra="forbid")

    mfa_token: Token
    code: Annotated[str, Field(min_length=1, max_length=16)]


class RefreshRequest(BaseModel):
    """A refresh token to trade for a new pair."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: Token


@router.post("/auth/login", responses=error_responses(401, 413, 422, 429, 503))
async def login(
    body: LoginRequest,
    store: StoreDep,
    settings: SettingsDep,
    guard: SignInGuardDep,
    address: SourceAddress,
) -> dict[str, Any]:
    """Check the password; answers the MFA token for the code step."""
    try:
        signin.admit_attempt(guard, address=address, username=body.username)
    except ApiError:
        # Held on the event loop (no thread, no CPU) before the answer, so a guessing script's
        # loop slows to the hub's pace instead of spinning on instant refusals. Jittered, so
        # many refused together do not all come back for another try at the same moment.
        await asyncio.sleep(settings.signin_refusal_delay_seconds * random.uniform(0.5, 1.0))
        raise
    issued = await run_in_threadpool(
        partial(
            signin.start_sign_in,
            store,
            settings,
            guard,
            username=body.username,
            password=body.password,
            address=address,
            device_id=body.device_id,
            device_name=body.device_name,
        )
    )
    return {"mfa_token": issued.mfa_token, "methods": ["totp"], "expires_in": issued.expires_in}


@router.post("/auth/mfa", responses=error_responses(401, 413, 422, 429))
def mfa(
    body: MfaRequest, store: StoreDep, settings: SettingsDep, address: SourceAddress
) -> dict[str, Any]:
    """Check the TOTP code; answers the first access and refresh tokens."""
    pair, user = signin.finish_sign_in(
        store, settings, mfa_token=body.mfa_token, code=body.code, address=address
    )
    return {**_token_body(pair), "user": User.from_record(user).to_wire()}


@router.post("/auth/refresh", responses=error_responses(401, 413, 422))
def refresh(body: RefreshRequest, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    """Trade a refresh token for a new pair; the presented one dies."""
    return _token_body(signin.refresh(store, settings, refresh_token=body.refresh_token))


@router.post("/auth/logout", status_code=204, responses=error_responses(401, 413))
def logout(grant: AccessGrantDep, store: StoreDep) -> Response:
    """Revoke this access token and every token of its sign-in."""
    signin.sign_out(store, grant=grant)
    return Response(status_code=204)


@router.get("/me", responses=error_responses(401))
def me(user: CurrentUser) -> dict[str, Any]:
    """The signed-in user and every role they hold."""
    return user.to_wire()


def _token_body(pair: signin.TokenPair) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "bearer",
        "expires_in": pair.expires_in,
        "session_expires_at": rfc3339(pair.session_expires_at),
    }
