"""What the board and incident page tests set up on the console's hub: a group of agents with a
dispatcher's token, receipts written straight to the store, and a console session for an agent."""

from __future__ import annotations

import functools
import secrets
import time
import uuid
from typing import Any

from playwright.sync_api import Page

from hub import passwords, totp
from hub.console.session import csrf_token_for
from hub.storage import Store
from hub.storage.accounts import Role
from hub.storage.delivery import NewReceipt
from hub.tokens import token_hash
from tests.console.conftest import ConsoleHub
from tests.hubtools import DEFAULT_PASSWORD, publish_alert, sign_in

DAY_MS = 86_400_000


@functools.cache
def _password_hash() -> str:
    # One hash for every user the tests make: each costs a second of CPU on a busy machine.
    return passwords.hash_password(DEFAULT_PASSWORD)


def add_user(store: Store, username: str, role: Role) -> str:
    """A user with the default password, straight into the store; its TOTP secret."""
    secret = totp.new_secret()
    store.accounts.create_user(
        username=username,
        display_name=username.title(),
        role=role,
        password_hash=_password_hash(),
        totp_secret=secret,
    )
    return secret


class Team:
    """A region group of agents made for one test, and a dispatcher's token to publish with."""

    def __init__(self, console_hub: ConsoleHub, size: int = 2) -> None:
        self.store = console_hub.store
        tag = uuid.uuid4().hex[:6]
        self.base_url = console_hub.base_url
        self.group = f"West {tag}"
        self.store.groups.create(self.group, "region")
        self.agents = [f"a{index:02d}-{tag}" for index in range(size)]
        self.secrets = {name: add_user(self.store, name, "agent") for name in self.agents}
        self.store.groups.add_members(self.group, self.agents)
        dispatcher = f"disp-{tag}"
        secret = add_user(self.store, dispatcher, "dispatcher")
        tokens = sign_in(self.base_url, dispatcher, DEFAULT_PASSWORD, secret)
        self.token: str = tokens["access_token"]

    def publish(self, **fields: Any) -> str:
        """Publish to this group (over the API, as a dispatcher); the alert's id."""
        alert = publish_alert(self.base_url, self.token, audience=[self.group], **fields)
        return str(alert["id"])

    def receipt(self, username: str, alert_id: str) -> None:
        """A device of `username` reports the alert received: straight into the store, since a
        sign-in per agent would cost a password hash each."""
        [result] = self.store.delivery.record_receipts(
            username,
            (f"{username}-laptop", "Laptop"),
            [NewReceipt(alert_id, round(time.time() * 1000), None)],
            clock_skew_ms=DAY_MS,
            sees_all=False,
        )
        assert result.status == "accepted", result


def agent_console_cookie(console_hub: ConsoleHub, page: Page) -> str:
    """Give the page a console session of the agent avery, as if sign-in had let an agent in
    (every board and incident route must still refuse); the session's CSRF token."""
    user = console_hub.users["avery"]
    tokens = sign_in(console_hub.base_url, user.username, user.password, user.totp_secret)
    grant = console_hub.store.accounts.find_access(access_hash=token_hash(tokens["access_token"]))
    assert grant is not None
    cookie = secrets.token_urlsafe(32)
    console_hub.store.console_sessions.create(
        token_hash=token_hash(cookie), family_id=grant.family_id
    )
    page.context.add_cookies(
        [{"name": "vigil-console", "value": cookie, "url": console_hub.base_url}]
    )
    return csrf_token_for(cookie)
