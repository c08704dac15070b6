"""`vigil-hub serve` in OS processes of its own, for tests that need real processes (no shared
module state, no shared GIL): behind nginx, or racing on one PostgreSQL database."""

from __future__ import annotations

import http.client
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hub import passwords, totp
from hub.clock import SystemClock
from hub.config import HubSettings
from hub.storage import Store
from hub.storage.accounts import IssuedTokens, Role
from hub.tokens import new_token, token_hash
from tests.hubtools import DEFAULT_PASSWORD, wait_until

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
LOOPBACK_PROXY = "127.0.0.1/32"

_LISTENING = re.compile(r"Vigil hub on http://127\.0\.0\.1:(\d+)")


class HubServer:
    """`vigil-hub serve --port 0` in its own process, on `data_dir` (and `database_url`)."""

    def __init__(
        self,
        data_dir: Path,
        log: Path,
        *,
        database_url: str | None = None,
        trusted_proxies: Sequence[str] = (LOOPBACK_PROXY,),
        wait_healthy: bool = True,
    ) -> None:
        """Start it and wait until it listens; with `wait_healthy`, until /healthz answers too.

        Without it, the hub has answered no request at all: its socket listens (connections
        queue) before it prints its port, so a test's first requests meet a cold process.
        """
        self.log_path = log
        self._log = log.open("w")
        database = ["--database", database_url] if database_url is not None else []
        proxies = [option for cidr in trusted_proxies for option in ("--trusted-proxy", cidr)]
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "hub", "serve", "--data", str(data_dir), *database),
                *("--port", "0", *proxies, "--log-level", "warning"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=REPO,
        )
        try:
            self.port = self._read_port()
            if wait_healthy:
                wait_until(self._healthy, timeout=START_TIMEOUT, interval=0.05)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        """The process's own http:// base URL."""
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        """What the process wrote to stderr so far, for failure messages."""
        return self.log_path.read_text(errors="replace")

    def _read_port(self) -> int:
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        # The hub prints two lines at start; the first names its port.
        for _ in range(100):
            line = self.process.stdout.readline()
            if not line or time.monotonic() > deadline:
                break
            found = _LISTENING.search(line)
            if found:
                return int(found.group(1))
        raise AssertionError(f"the hub did not say where it listens; see {self._log.name}")

    def _healthy(self) -> bool:
        assert self.process.poll() is None, f"the hub ended; see {self._log.name}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def kill(self) -> None:
        """SIGKILL: the process dies mid-whatever, as in a crash or an OOM kill."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT)
        self._log.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not end in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()


@dataclass(frozen=True)
class SignedIn:
    """The tokens of one sign-in written straight into the database."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)


def add_signed_in_users(
    data_dir: Path, names: list[str], role: Role = "agent", *, database_url: str | None = None
) -> dict[str, str]:
    """Users added to the hub's database, each with one sign-in: {username: access token}."""
    sessions = add_signed_in_sessions(data_dir, names, role, database_url=database_url)
    return {name: session.access_token for name, session in sessions.items()}


def add_signed_in_sessions(
    data_dir: Path, names: list[str], role: Role = "agent", *, database_url: str | None = None
) -> dict[str, SignedIn]:
    """Users added to the hub's database, each with one sign-in: {username: its tokens}.

    The sign-in is written as the MFA step writes it, without hashing a password per user:
    two hundred argon2 checks would take the tests' whole time budget.
    """
    clock = SystemClock()
    settings = HubSettings(data_dir=data_dir, database_url=database_url, clock=clock)
    store = Store.open(settings.database, clock)
    sessions: dict[str, SignedIn] = {}
    try:
        password_hash = passwords.hash_password(DEFAULT_PASSWORD)
        for name in names:
            user = store.accounts.create_user(
                username=name,
                display_name=name.title(),
                role=role,
                password_hash=password_hash,
                totp_secret=totp.new_secret(),
            )
            now = clock.now()
            challenge = new_token()
            store.accounts.create_challenge(
                token_hash=token_hash(challenge),
                user_id=user.id,
                device_id=f"{name}-laptop",
                device_name=f"{name}'s laptop",
                expires_at=now + 300,
            )
            session = SignedIn(access_token=new_token(), refresh_token=new_token())
            store.accounts.complete_mfa(
                challenge_hash=token_hash(challenge),
                step=totp.time_step(now),
                family_expires_at=now + 3600,
                tokens=IssuedTokens(
                    access_hash=token_hash(session.access_token),
                    access_expires_at=now + 3600,
                    refresh_hash=token_hash(session.refresh_token),
                ),
            )
            sessions[name] = session
    finally:
        store.close()
    return sessions
