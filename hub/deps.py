"""FastAPI dependencies shared by every router: settings, store, and the signed-in user."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from anyio import CapacityLimiter, to_thread
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


# The dependencies that only read app state or an earlier dependency are `async def`: FastAPI
# runs a plain `def` dependency on the route thread pool, a thread hop per dependency per request,
# and under load each hop waits in that pool's queue behind every other request's.


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


async def get_current_user(grant: AccessGrantDep) -> User:
    """The signed-in user."""
    return User.from_record(grant.user)


CurrentUser = Annotated[User, Depends(get_current_user)]


def holding_role(user: User, role: Role) -> User:
    """`user` if they hold `role` (or a higher one); 403 otherwise."""
    if not user.has_role(role):
        raise ApiError(
            403,
            "forbidden",
            f"This needs the {role} role; you are signed in as {user.role}. "
            "Ask an admin if you need it.",
        )
    return user


def require_role(role: Role) -> Callable[[User], Awaitable[User]]:
    """A dependency that lets through users holding `role` (or a higher one); 403 otherwise."""

    async def check_role(user: CurrentUser) -> User:
        return holding_role(user, role)

    return check_role


AgentUser = Annotated[User, Depends(require_role("agent"))]

# Threads of their own for opening alert streams. When a hub process dies, its streams all
# reconnect to the others at once, while the agents' acknowledgements pour in; in the route
# thread pool's queue behind those, a stream took seconds to open, and an agent without a stream
# misses the next alert. The acknowledgements are kept on the laptops and sent again.
STREAM_OPENING_THREADS = 8


async def get_stream_opening_lane(request: Request) -> CapacityLimiter:
    """The limiter of the threads that open alert streams."""
    lane: CapacityLimiter = request.app.state.stream_opening
    return lane


StreamOpeningLane = Annotated[CapacityLimiter, Depends(get_stream_opening_lane)]


async def get_streaming_agent(
    store: StoreDep, settings: SettingsDep, bearer: BearerDep, lane: StreamOpeningLane
) -> AccessGrant:
    """The grant behind an alert stream's token, checked in the stream-opening threads; 401 as
    for any request, 403 unless the user is an agent."""
    grant = await to_thread.run_sync(
        partial(get_access_grant, store, settings, bearer), limiter=lane
    )
    holding_role(User.from_record(grant.user), "agent")
    return grant


StreamingAgentGrant = Annotated[AccessGrant, Depends(get_streaming_agent)]
DispatcherUser = Annotated[User, Depends(require_role("dispatcher"))]
AdminUser = Annotated[User, Depends(require_role("admin"))]
