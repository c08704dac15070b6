"""One sign-in shared by every Vigil process of a profile: refreshes are serialised by the
profile lock, so commands started together never present one refresh token twice (which the
hub treats as theft), and a command killed at any moment leaves the agent signed in."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import keyring
import pytest
import requests

from client.core.auth import Authenticator
from client.core.hub_client import HubClient
from client.core.profile_lock import ProfileLock, ProfileLockTimeout
from client.core.token_vault import SERVICE, TokenVault
from hub.server import EmbeddedHub
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    auth_headers,
    create_user,
    next_code,
    publish_alert,
)
from tests.hubtools import sign_in as sign_in_over_http
from tests.vigil_cli import real_keyring, run_vigil, vigil_command

PROCESS_TIMEOUT = 90
PARALLEL = 8
KILLS = 20
PARALLEL_REQUESTS = 40


@dataclass
class Desk:
    hub: EmbeddedHub
    env: dict[str, str]
    secret: str
    dispatcher_token: str

    def command(self, *args: str) -> list[str]:
        return vigil_command(*args)

    def vigil(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return run_vigil(self.env, *args, stdin=stdin, timeout=PROCESS_TIMEOUT)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def login(self) -> None:
        result = self.vigil(
            "login",
            "--username",
            "agent",
            "--password-stdin",
            "--code",
            next_code(self.secret),
            stdin=DEFAULT_PASSWORD + "\n",
        )
        assert result.returncode == 0, result.stderr

    def forget_access_token(self) -> None:
        """Make the next command rotate the refresh token (as after 15 minutes)."""
        keyring.delete_password(SERVICE, f"{self.hub.url}|agent|access")

    def assert_still_signed_in(self) -> None:
        status = self.vigil("status")
        assert "Signed in:    agent (saved sign-in)" in status.stdout, status.stdout
        sync = self.vigil("sync")
        assert sync.returncode == 0, sync.stderr

    def acks_on_hub(self, alert_id: str) -> list[str]:
        response = requests.get(
            f"{self.hub.url}/v1/alerts/{alert_id}/acks",
            headers=auth_headers(self.dispatcher_token),
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 200, response.text
        return [ack["username"] for ack in response.json()["acks"]]


@pytest.fixture
def desk(hub: EmbeddedHub, tmp_path: Path) -> Desk:
    secret = create_user(hub.store, "agent", "agent")
    lead = create_user(hub.store, "lead", "dispatcher")
    token = sign_in_over_http(hub.url, "lead", DEFAULT_PASSWORD, lead)["access_token"]
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"hub_url": hub.url}))
    env = {
        **os.environ,
        "VIGIL_CONFIG_DIR": str(tmp_path / "config"),
        "VIGIL_DATA_DIR": str(tmp_path / "data"),
        "VIGIL_POLICY": str(policy),
    }
    return Desk(hub, env, secret, token)


@real_keyring
@pytest.mark.keyring
@pytest.mark.slow
def test_eight_commands_started_together_all_work_and_the_agent_stays_signed_in(
    desk: Desk,
) -> None:
    desk.login()
    alert_id = publish_alert(desk.hub.url, desk.dispatcher_token)["id"]
    # `vigil ack` takes only an alert this computer has.
    assert desk.vigil("sync").returncode == 0
    # Every one of them must refresh: none finds an access token to use.
    desk.forget_access_token()

    commands = [("ack", alert_id) if n % 2 else ("sync",) for n in range(PARALLEL)]
    started = [desk.start(*command) for command in commands]
    results = [process.communicate(timeout=PROCESS_TIMEOUT) for process in started]

    for process, command, (_out, err) in zip(started, commands, results, strict=True):
        assert process.returncode == 0, f"{command}: {err}"
        assert "Not sent yet" not in err, f"{command}: {err}"
    desk.assert_still_signed_in()
    assert desk.acks_on_hub(alert_id) == ["agent"] * (PARALLEL // 2)


@real_keyring
@pytest.mark.keyring
@pytest.mark.slow
def test_a_sync_killed_at_twenty_random_moments_leaves_the_agent_signed_in(
    desk: Desk,
) -> None:
    desk.login()
    publish_alert(desk.hub.url, desk.dispatcher_token)
    saved = keyring.get_password(SERVICE, f"{desk.hub.url}|agent")
    began = time.monotonic()
    whole = desk.vigil("sync")
    assert whole.returncode == 0, whole.stderr
    span = time.monotonic() - began
    moments = random.Random(20261203)

    for _ in range(KILLS):
        process = desk.start("sync")
        try:
            # Not a synchronisation: the kill lands at a random moment of the command's life.
            process.wait(timeout=moments.uniform(0.0, span))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
        process.communicate(timeout=PROCESS_TIMEOUT)

    # No kill could land inside a rotation: within the access token's life there was none.
    assert keyring.get_password(SERVICE, f"{desk.hub.url}|agent") == saved
    desk.assert_still_signed_in()


def test_a_lock_held_by_another_process_waits_then_names_the_file(tmp_path: Path) -> None:
    lock_file = tmp_path / "session.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from client.core.profile_lock import "
            "ProfileLock\nwith ProfileLock(Path(sys.argv[1])).held():\n"
            "    print('held', flush=True); sys.stdin.readline()",
            str(lock_file),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(ProfileLockTimeout) as caught,
            ProfileLock(lock_file, timeout=0.3).held(),
        ):
            pass
        assert str(lock_file) in caught.value.message
    finally:
        # Killed inside the lock: the OS releases it, so the next process is never blocked.
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=PROCESS_TIMEOUT)
    with ProfileLock(lock_file, timeout=5.0).held():
        assert lock_file.stat().st_mode & 0o777 == 0o600


def test_the_lock_is_reentrant_within_a_thread(tmp_path: Path) -> None:
    lock = ProfileLock(tmp_path / "session.lock", timeout=1.0)
    with lock.held(), lock.held():
        assert (tmp_path / "session.lock").exists()


@real_keyring
@pytest.mark.keyring
def test_forty_requests_at_once_from_two_app_instances_refresh_without_reuse(
    hub: EmbeddedHub, tmp_path: Path
) -> None:
    secret = create_user(hub.store, "amira", "agent")
    lock_file = tmp_path / "data" / "session.lock"
    clients: list[HubClient] = []

    def instance() -> Authenticator:
        client = HubClient(hub.url)
        clients.append(client)
        return Authenticator(
            client,
            TokenVault(client.base_url),
            device_id="laptop-1",
            device_name="Laptop",
            profile_lock=ProfileLock(lock_file),
        )

    first, second = instance(), instance()
    first.complete(first.begin("amira", DEFAULT_PASSWORD), next_code(secret))
    assert second.resume("amira") is not None
    # Both hold an access token the hub no longer takes: every request must refresh first.
    keyring.delete_password(SERVICE, f"{hub.url}|amira|access")
    for client in clients:
        client.set_access_token("revoked-or-expired")
    try:
        with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
            names = list(
                pool.map(
                    lambda n: clients[n % 2].get_json("/v1/me")["username"],
                    range(PARALLEL_REQUESTS),
                )
            )

        assert names == ["amira"] * PARALLEL_REQUESTS
        assert first.account is not None and second.account is not None
        assert instance().resume("amira") is not None
    finally:
        for client in clients:
            client.close()
