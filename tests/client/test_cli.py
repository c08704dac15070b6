"""The `vigil` command line as a user runs it: a real process against the real hub on 127.0.0.1,
with its settings, cache and outbox in tmp_path and the sign-in in the real keyring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from client.core.cache import Cache
from client.core.models import Alert
from hub.content_import import import_content
from hub.demo import demo_content_dir
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
from tests.vigil_cli import PROCESS_TIMEOUT, real_keyring, run_vigil


@dataclass
class Desk:
    """One agent's computer (dirs and policy in tmp_path) and the hub it talks to."""

    hub: EmbeddedHub
    env: dict[str, str]
    policy: Path
    agent_secret: str
    dispatcher_token: str

    def vigil(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return run_vigil(self.env, *args, stdin=stdin)

    def login(self) -> subprocess.CompletedProcess[str]:
        return self.vigil(
            "login",
            "--username",
            "amira",
            "--password-stdin",
            "--code",
            next_code(self.agent_secret),
            stdin=DEFAULT_PASSWORD + "\n",
        )

    def publish_alert(self) -> str:
        alert = publish_alert(
            self.hub.url, self.dispatcher_token, playbook_id="pb-video-visit-outage"
        )
        alert_id: str = alert["id"]
        return alert_id

    def acks_on_hub(self, alert_id: str) -> list[dict[str, object]]:
        response = requests.get(
            f"{self.hub.url}/v1/alerts/{alert_id}/acks",
            headers=auth_headers(self.dispatcher_token),
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 200, response.text
        acks: list[dict[str, object]] = response.json()["acks"]
        return acks


@pytest.fixture
def desk(hub: EmbeddedHub, tmp_path: Path) -> Desk:
    import_content(hub.store, hub.app.state.signer, demo_content_dir())
    agent_secret = create_user(hub.store, "amira", "agent", display_name="Amira Haddad")
    dispatcher_secret = create_user(hub.store, "dispatch", "dispatcher")
    dispatcher = sign_in_over_http(hub.url, "dispatch", DEFAULT_PASSWORD, dispatcher_secret)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"hub_url": hub.url}))
    env = {
        **os.environ,
        "VIGIL_CONFIG_DIR": str(tmp_path / "config"),
        "VIGIL_DATA_DIR": str(tmp_path / "data"),
        "VIGIL_POLICY": str(policy),
    }
    return Desk(hub, env, policy, agent_secret, dispatcher["access_token"])


def assert_one_clean_line(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


@real_keyring
@pytest.mark.keyring
def test_login_sync_search_read_and_acknowledge(desk: Desk) -> None:
    login = desk.login()
    assert login.returncode == 0, login.stderr
    assert "Signed in as Amira Haddad (amira)" in login.stdout
    assert DEFAULT_PASSWORD not in login.stdout + login.stderr
    alert_id = desk.publish_alert()

    sync = desk.vigil("sync")
    assert sync.returncode == 0, sync.stderr
    assert "Synced:" in sync.stdout

    search = desk.vigil("search", "video", "outage")
    assert search.returncode == 0, search.stderr
    assert "pb-video-visit-outage" in search.stdout
    playbook = desk.vigil("playbook", "pb-video-visit-outage")
    assert playbook.returncode == 0, playbook.stderr
    assert "Steps:" in playbook.stdout and "  1. " in playbook.stdout

    ack = desk.vigil("ack", alert_id, "--note", "Moved my 10:00 visits to phone")
    assert ack.returncode == 0, ack.stderr
    assert "Recorded" in ack.stdout and "Sent to the hub." in ack.stdout
    acks = desk.vigil("acks")
    assert acks.stdout.startswith("0 waiting to sync, 0 rejected.")
    on_hub = desk.acks_on_hub(alert_id)
    assert [(a["username"], a["action"], a["note"]) for a in on_hub] == [
        ("amira", "acknowledged", "Moved my 10:00 visits to phone")
    ]


@real_keyring
@pytest.mark.keyring
def test_ack_while_the_hub_is_down_is_queued_and_sent_once_on_sync(
    desk: Desk, start_hub: Callable[..., EmbeddedHub]
) -> None:
    assert desk.login().returncode == 0
    alert_id = desk.publish_alert()
    assert desk.vigil("sync").returncode == 0  # the alert reaches this computer first
    port = desk.hub.port
    desk.hub.stop()

    ack = desk.vigil("ack", alert_id, "--action", "escalated")
    assert ack.returncode == 0, ack.stderr
    assert "Recorded" in ack.stdout
    assert "Not sent yet" in ack.stderr and "cannot be reached" in ack.stderr
    waiting = desk.vigil("acks")
    assert waiting.stdout.startswith("1 waiting to sync, 0 rejected.")
    assert f"alert {alert_id}  escalated" in waiting.stdout

    desk.hub = start_hub(port=port)
    sync = desk.vigil("sync")
    assert sync.returncode == 0, sync.stderr
    assert desk.vigil("acks").stdout.startswith("0 waiting to sync, 0 rejected.")
    assert [a["action"] for a in desk.acks_on_hub(alert_id)] == ["escalated"]


@real_keyring
@pytest.mark.keyring
def test_rejected_ack_is_listed_with_its_reason(desk: Desk, tmp_path: Path) -> None:
    assert desk.login().returncode == 0
    # An alert this computer has but the hub does not (e.g. past its retention).
    unknown_to_hub = "5d0c1b7e-0000-4000-8000-000000000000"
    cache = Cache.open(tmp_path / "data" / "cache.sqlite3")
    cache.add_alerts(
        [
            Alert.from_json(
                {
                    "id": unknown_to_hub,
                    "seq": 1,
                    "severity": "major",
                    "title": "Old alert",
                    "body": "Gone from the hub.",
                    "issued_at": "2026-10-01T10:00:00.000Z",
                }
            )
        ]
    )
    cache.close()

    ack = desk.vigil("ack", unknown_to_hub)

    assert ack.returncode == 1
    assert "rejected" in ack.stderr
    listed = desk.vigil("acks")
    assert listed.stdout.startswith("0 waiting to sync, 1 rejected.")
    assert "rejected  " in listed.stdout


@real_keyring
@pytest.mark.keyring
def test_status_and_logout(desk: Desk) -> None:
    assert desk.login().returncode == 0
    status = desk.vigil("status")
    assert status.returncode == 0, status.stderr
    assert f"Hub:          {desk.hub.url} (set by IT policy)" in status.stdout
    assert "Connection:   reachable" in status.stdout
    assert "Signed in:    amira (saved sign-in)" in status.stdout

    logout = desk.vigil("logout")

    assert logout.returncode == 0, logout.stderr
    assert "Signed in:    not signed in" in desk.vigil("status").stdout
    after = desk.vigil("sync")
    assert after.returncode == 3
    assert_one_clean_line(after.stderr)


def test_wrong_code_is_one_clear_line_and_exit_3(desk: Desk) -> None:
    login = desk.vigil(
        "login", "--username", "amira", "--password-stdin", "--code", "12345", stdin="x\n"
    )
    assert login.returncode == 3
    assert_one_clean_line(login.stderr)

    wrong_password = desk.vigil(
        "login", "--username", "amira", "--password-stdin", "--code", "123456", stdin="nope\n"
    )
    assert wrong_password.returncode == 3
    assert_one_clean_line(wrong_password.stderr)


def test_commands_that_need_a_sign_in_say_so(desk: Desk) -> None:
    sync = desk.vigil("sync")

    assert sync.returncode == 3
    assert "vigil login" in sync.stderr
    assert_one_clean_line(sync.stderr)


def test_playbook_not_in_the_cache_is_exit_4(desk: Desk) -> None:
    result = desk.vigil("playbook", "pb-video-visit-outage")

    assert result.returncode == 4
    assert "vigil sync" in result.stderr
    assert_one_clean_line(result.stderr)


def test_malformed_policy_stops_with_its_message(desk: Desk) -> None:
    desk.policy.write_text('{"hub_url": "https://hub.example.org",}')

    result = desk.vigil("status")

    assert result.returncode == 6
    assert str(desk.policy) in result.stderr
    assert "line 1, column" in result.stderr
    assert_one_clean_line(result.stderr)


def test_help_documents_the_exit_codes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "client.launch", "--help"],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )

    assert result.returncode == 0
    assert "exit codes:" in result.stdout
    assert "3  sign-in needed" in result.stdout
