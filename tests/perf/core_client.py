"""The client core, signed in to a benchmark hub, without Qt: for the core-only benchmarks."""

from __future__ import annotations

from pathlib import Path

from client.core.auth import Authenticator
from client.core.cache import Cache
from client.core.hub_client import HubClient
from client.core.outbox import Outbox
from client.core.token_vault import TokenVault
from tests.hubtools import DEFAULT_PASSWORD, next_code


def signed_in_hub(url: str, username: str, secret: str) -> tuple[HubClient, Authenticator]:
    """A HubClient for `url` signed in as `username` (tokens in the session's keyring)."""
    hub = HubClient(url)
    auth = Authenticator(hub, TokenVault(url), device_id=f"bench-{username}", device_name="bench")
    auth.complete(auth.begin(username, DEFAULT_PASSWORD), next_code(secret))
    return hub, auth


def open_stores(data_dir: Path) -> tuple[Cache, Outbox]:
    """A cache and an outbox in `data_dir` (created as needed)."""
    return Cache.open(data_dir / "cache.sqlite3"), Outbox.open(data_dir / "outbox.sqlite3")
