"""Shared test code for talking to a real hub: users, TOTP codes, sign-in and publishing over
HTTP."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pyotp
import requests

from hub import passwords, totp
from hub.config import HubSettings
from hub.database_url import DATABASE_ENV
from hub.storage import Store
from hub.storage.accounts import Role
from hub.storage.db import WRITE_LOCK_KEY, open_database

DEFAULT_PASSWORD = "correct horse battery staple"
HTTP_TIMEOUT = 10.0

# The last TOTP step each secret signed in with, so that two sign-ins within one 30 s step use
# different (still valid) codes instead of tripping the hub's replay protection.
_used_steps: dict[str, int] = {}
_used_steps_lock = threading.Lock()


def create_user(
    store: Store,
    username: str,
    role: Role = "agent",
    password: str = DEFAULT_PASSWORD,
    display_name: str | None = None,
) -> str:
    """Add a user straight into the hub's store; returns its TOTP secret."""
    secret = totp.new_secret()
    store.accounts.create_user(
        username=username,
        display_name=display_name or username.title(),
        role=role,
        password_hash=passwords.hash_password(password),
        totp_secret=secret,
    )
    return secret


def current_code(secret: str, clock_time: float) -> str:
    """The code an authenticator app shows at `clock_time` (Unix seconds)."""
    return pyotp.TOTP(secret).at(clock_time)


def next_code(secret: str, clock_time: float | None = None) -> str:
    """A code the hub will accept at `clock_time` that this process has not used yet.

    Uses the current step, or the next one (the hub accepts one step ahead) when the current one
    was already used; fails when both were.
    """
    now = time.time() if clock_time is None else clock_time
    step = totp.time_step(now)
    with _used_steps_lock:
        chosen = max(step, _used_steps.get(secret, step - 1) + 1)
        if chosen > step + totp.WINDOW_STEPS:
            raise AssertionError(
                "Every code the hub would accept right now was already used for this user; "
                "move the hub's ManualClock 30 s on, or use another user."
            )
        _used_steps[secret] = chosen
    return pyotp.TOTP(secret).at(chosen * totp.STEP_SECONDS)


def auth_headers(token: str) -> dict[str, str]:
    """The Authorization header for an access token."""
    return {"Authorization": f"Bearer {token}"}


def login(
    base_url: str,
    username: str,
    password: str = DEFAULT_PASSWORD,
    device_id: str = "test-device",
    device_name: str = "Test laptop",
) -> requests.Response:
    """The password step, as the raw response."""
    return requests.post(
        f"{base_url}/v1/auth/login",
        json={
            "username": username,
            "password": password,
            "device_id": device_id,
            "device_name": device_name,
        },
        timeout=HTTP_TIMEOUT,
    )


def submit_code(base_url: str, mfa_token: str, code: str) -> requests.Response:
    """The code step, as the raw response."""
    return requests.post(
        f"{base_url}/v1/auth/mfa",
        json={"mfa_token": mfa_token, "code": code},
        timeout=HTTP_TIMEOUT,
    )


def sign_in(
    base_url: str,
    username: str,
    password: str,
    secret: str,
    at: float | None = None,
    device_id: str = "test-device",
) -> dict[str, Any]:
    """Both sign-in steps over HTTP; returns the token response (access_token, refresh_token...).

    `at` is the hub's clock time when the hub runs on a ManualClock.
    """
    response = login(base_url, username, password, device_id=device_id)
    assert response.status_code == 200, response.text
    mfa_token = response.json()["mfa_token"]
    response = submit_code(base_url, mfa_token, next_code(secret, at))
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def access_token(
    store: Store, base_url: str, username: str, role: Role = "agent", at: float | None = None
) -> str:
    """A new user of `role`, added to the store and signed in over HTTP: its access token."""
    secret = create_user(store, username, role)
    token: str = sign_in(base_url, username, DEFAULT_PASSWORD, secret, at=at)["access_token"]
    return token


def publish_alert(
    base_url: str, token: str, *, session: requests.Session | None = None, **fields: Any
) -> dict[str, Any]:
    """Publish an alert as a dispatcher (asserting the hub took it); the hub's alert object.

    `fields` go into the body over a critical alert with a title and body of its own. The answer's
    `targeted` count is dropped, so the object compares equal to the alert as agents get it.
    """
    body = {
        "severity": "critical",
        "title": "Video visits down in the West region",
        "body": "Move today's visits to phone.",
        **fields,
    }
    response = (session or requests).post(
        f"{base_url}/v1/alerts", json=body, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 201, response.text
    alert: dict[str, Any] = response.json()
    alert.pop("targeted", None)
    return alert


def wait_until(
    condition: Callable[[], object], timeout: float = 5.0, interval: float = 0.02
) -> None:
    """Poll `condition` until it is true; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"Condition not met within {timeout} s")
        threading.Event().wait(interval)


def stored_bytes(store: Store, settings: HubSettings) -> bytes:
    """Everything a hub has stored, as bytes to search for secrets: the SQLite file and its
    WAL, or every row of every table in its PostgreSQL database."""
    if settings.database_url is None:
        return b"".join(
            path.read_bytes() for path in settings.data_dir.glob(settings.database_path.name + "*")
        )
    with store.db.read() as conn:
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]
        return "\n".join(
            str(row[0])
            for table in tables
            for row in conn.execute(f"SELECT t::text FROM {table} t")
        ).encode()


def settings_for(data_dir: Path, **overrides: Any) -> HubSettings:
    """Settings for a hub in `data_dir` whose state is where vigil-hub commands run by this test
    keep it: the PostgreSQL database of that pass, or the folder's SQLite file."""
    return HubSettings(
        data_dir=data_dir, database_url=os.environ.get(DATABASE_ENV) or None, **overrides
    )


def other_process_rows(settings: HubSettings, sql: str) -> list[tuple[Any, ...]]:
    """Run one statement on a connection of its own, as another process would; its rows."""
    db = open_database(settings.database)
    try:
        with db.write() as conn:
            cursor = conn.execute(sql)
            try:
                return [tuple(row) for row in cursor.fetchall()]
            except (sqlite3.ProgrammingError, psycopg.ProgrammingError):
                # A statement that returns no rows (DELETE, UPDATE).
                return []
    finally:
        db.close()


@contextmanager
def write_lock_held(settings: HubSettings) -> Iterator[None]:
    """Another process holds the database's write lock: every write of the hub waits for it."""
    if settings.database_url is None:
        with closing(sqlite3.connect(settings.database_path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                other.execute("ROLLBACK")
        return
    with psycopg.connect(settings.database_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (WRITE_LOCK_KEY,))
        try:
            yield
        finally:
            other.execute("SELECT pg_advisory_unlock(%s)", (WRITE_LOCK_KEY,))


Result = TypeVar("Result")


def at_once(calls: Sequence[Callable[[], Result]], timeout: float = 20) -> list[Result]:
    """Run the calls at the same moment, each on a thread of its own (a barrier releases them
    together); their results in order."""
    barrier = threading.Barrier(len(calls), timeout=timeout)

    def run(call: Callable[[], Result]) -> Result:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))
