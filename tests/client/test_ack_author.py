"""An acknowledgement belongs to the person who made it: the real `vigil` command as a process,
the real hub on 127.0.0.1 and the real keyring. Acks need a known signed-in user, carry their
author in the outbox, and reach the hub only with their author's sign-in."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

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
from tests.vigil_cli import real_keyring, run_vigil


@dataclass
class Profile:
    """One computer's Vigil profile (settings, cache, outbox) shared by two people."""

    hub: EmbeddedHub
    env: dict[str, str]
    data_dir: Path
    secrets: dict[str, str]
    dispatcher_token: str

    def vigil(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return run_vigil(self.env, *args, stdin=stdin)

    def login(self, username: str) -> subprocess.CompletedProcess[str]:
        return self.vigil(
            "login",
            "--username",
            username,
            "--password-stdin",
            "--code",
            next_code(self.secrets[username]),
            stdin=DEFAULT_PASSWORD + "\n",
        )

    def acks_on_hub(self, alert_id: str) -> list[tuple[str, str]]:
        response = requests.get(
            f"{self.hub.url}/v1/alerts/{alert_id}/acks",
            headers=auth_headers(self.dispatcher_token),
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 200, response.text
        return [(a["username"], a["ack_id"]) for a in response.json()["acks"]]

    def outbox_rows(self) -> list[tuple[str, str | None, str]]:
        with sqlite3.connect(self.data_dir / "outbox.sqlite3") as conn:
            rows = conn.execute("SELECT alert_id, author, state FROM acks ORDER BY seq")
            return [(a, b, c) for a, b, c in rows]


@pytest.fixture
def profile(hub: EmbeddedHub, tmp_path: Path) -> Profile:
    secrets = {
        "agent": create_user(hub.store, "agent", "agent"),
        "dispatcher": create_user(hub.store, "dispatcher", "dispatcher"),
    }
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
    return Profile(hub, env, tmp_path / "data", secrets, token)


def test_ack_while_signed_out_is_refused_and_nothing_is_recorded(profile: Profile) -> None:
    alert_id = publish_alert(profile.hub.url, profile.dispatcher_token)["id"]

    refused = profile.vigil("ack", alert_id)

    assert refused.returncode == 3
    assert "Not signed in, so nothing was recorded" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "Recorded" not in refused.stdout
    listed = profile.vigil("acks")
    assert listed.stdout.startswith("0 waiting to sync, 0 rejected.")


@real_keyring
@pytest.mark.keyring
@pytest.mark.slow
def test_an_ack_waits_for_its_author_and_never_goes_out_under_the_next_user(
    profile: Profile, start_hub: Callable[..., EmbeddedHub]
) -> None:
    alert_id = publish_alert(profile.hub.url, profile.dispatcher_token)["id"]
    assert profile.login("agent").returncode == 0
    # `vigil ack` takes only an alert this computer has.
    assert profile.vigil("sync").returncode == 0
    port = profile.hub.port
    profile.hub.stop()

    ack = profile.vigil("ack", alert_id, "--note", "Calling the patients back")
    assert ack.returncode == 0, ack.stderr
    assert "by agent" in ack.stdout and "Not sent yet" in ack.stderr
    logout = profile.vigil("logout")
    assert logout.returncode == 0, logout.stderr
    assert profile.outbox_rows() == [(alert_id, "agent", "pending")]

    profile.hub = start_hub(port=port)
    assert profile.login("dispatcher").returncode == 0
    sync = profile.vigil("sync")
    assert sync.returncode == 0, sync.stderr
    assert "1 acknowledgement by agent waits for agent to sign in." in sync.stdout
    second = profile.vigil("sync")
    assert second.returncode == 0, second.stderr
    # The dispatcher's sign-in sent nothing of agent's: the hub has no ack, under any name.
    assert profile.acks_on_hub(alert_id) == []
    assert profile.outbox_rows() == [(alert_id, "agent", "pending")]
    held = profile.vigil("acks")
    assert "1 acknowledgement by agent waits for agent to sign in." in held.stdout
    assert "by agent" in held.stdout
    status = profile.vigil("status")
    assert "1 acknowledgement by agent waits for agent to sign in" in status.stdout

    assert profile.login("agent").returncode == 0
    back = profile.vigil("sync")
    assert back.returncode == 0, back.stderr
    assert "Acknowledgements: 1 sent, 0 rejected, 0 waiting." in back.stdout
    assert [name for name, _ in profile.acks_on_hub(alert_id)] == ["agent"]
    assert profile.outbox_rows() == [(alert_id, "agent", "synced")]
