"""FastAPI dependencies shared by every router: settings, store, and the signed-in user."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.client_address import source_address
from hub.config import HubSettings
from hub.errors import ApiError
from hub.signin import authenticate
from hub.storage import Store
from hub.storage.accounts import ROLES, AccessGrant, Role, UserRecord


@dataclass(frozen=True)
class User:
    """The signed-in user as routes see it; each role includes the ones before it."""

    id: int
    username: str
    display_name: str
    role: Role

    @classmethod
    def from_record(cls, record: UserRecord) -> User:
        """The public part of a stored user."""
        return cls(
            id=record.id,
            username=record.username,
            display_name=record.display_name,
            role=record.role,
        )

    @property
    def roles(self) -> list[Role]:
        """Every role held: a dispatcher is also an agent, an admin also a dispatcher."""
        return list(ROLES[: ROLES.index(self.role) + 1])

    def has_role(self, role: Role) -> bool:
        """Whether the user may act as `role`."""
        return role in self.roles

    def to_wire(self) -> dict[str, Any]:
        """The user object of the protocol."""
        return {
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
            "roles": self.roles,
        }


# The dependencies below that only read app state are `async def`: FastAPI runs a plain `def`
# dependency on the route thread pool, a thread hop per dependency per request.


async def get_settings(request: Request) -> HubSettings:
    """The settings the app was created with."""
    settings: HubSettings = request.app.state.settings
    return settings


async def get_store(request: Request) -> Store:
    """The app's store."""
    store: Store = request.app.state.store
    return store


SettingsDep = Annotated[HubSettings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]


def request_source(request: Request) -> str:
    """Where the request came from: the peer, or what the trusted proxies forwarded."""
    settings: HubSettings = request.app.state.settings
    header = settings.forwarded_header
    return source_address(
        request.client.host if request.client is not None else None,
        request.headers.getlist(header),
        header,
        settings.trusted_proxy_networks,
    )


async def get_source_address(request: Request) -> str:
    """The request's source address, as a dependency."""
    return request_source(request)


SourceAddress = Annotated[str, Depends(get_source_address)]

# Cursors and seqs are signed 64-bit integers, as SQLite (and most databases) store them; a larger
# `since` must be refused, not overflow in the store.
CURSOR_MAX = 2**63 - 1
SinceQuery = Annotated[int | None, Query(ge=0, le=CURSOR_MAX)]


# Declares the bearer scheme in the OpenAPI schema; the missing-token answer stays the hub's own.
_bearer = HTTPBearer(auto_error=False, description="The access token from sign-in or refresh.")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def get_access_grant(store: StoreDep, settings: SettingsDep, bearer: BearerDep) -> AccessGrant:
    """The grant behind the request's bearer token; 401 when there is none or it is dead."""
    token = bearer.credentials.strip() if bearer is not None else ""
    if not token:
        raise ApiError(
            401,
            "token_invalid",
            "This needs a signed-in user: send 'Authorization: Bearer <access_token>'.",
            {"WWW-Authenticate": "Bearer"},
        )
    return authenticate(store, settings, access_token=token)


AccessGrantDep = Annotated[AccessGrant, Depends(get_access_grant)]


def get_current_user(grant: AccessGrantDep) -> User:
    """The signed-in user."""
    return User.from_record(grant.user)


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_role(role: Role) -> Callable[[User], User]:
    """A dependency that lets through users holding `role` (or a higher one); 403 otherwise."""

    def check_role(user: CurrentUser) -> User:
        if not user.has_role(role):
            raise ApiError(
                403,
                "forbidden",
                f"This needs the {role} role; you are signed in as {user.role}. "
                "Ask an admin if you need it.",
            )
        return user

    return check_role


AgentUser = Annotated[User, Depends(require_role("agent"))]
DispatcherUser = Annotated[User, Depends(require_role("dispatcher"))]
AdminUser = Annotated[User, Depends(require_role("admin"))]
