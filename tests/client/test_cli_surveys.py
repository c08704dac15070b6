"""`vigil survey` and `vigil surveys` as a user runs them: a real process, the real hub on
127.0.0.1 and the sign-in in the real keyring."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def resolve(desk: Desk, alert_id: str) -> None:
    """Resolve the alert on the hub, and in the agent's cache as its sync stores a change."""
    resolved = desk.hub.store.alerts.change(alert_id, kind="resolved", text="Fixed", by="dispatch")
    desk.hub.broker.notify()
    # Until the cache replaces an alert by a later seq of it (an incident change), the test
    # writes what that sync stores.
    cache = Path(desk.env["VIGIL_DATA_DIR"]) / "cache.sqlite3"
    with sqlite3.connect(cache) as conn:
        conn.execute(
            "UPDATE alerts SET seq = ?, data = ? WHERE id = ?",
            (resolved.seq, json.dumps(resolved.to_wire()), alert_id),
        )
    conn.close()


@dataclass
class Desk:
    hub: EmbeddedHub
    env: dict[str, str]
    agent_secret: str
    dispatcher_token: str

    def vigil(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return run_vigil(self.env, *args, stdin=stdin)

    def surveys_on_hub(self, alert_id: str) -> list[dict[str, Any]]:
        response = requests.get(
            f"{self.hub.url}/v1/alerts/{alert_id}/surveys",
            headers=auth_headers(self.dispatcher_token),
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 200, response.text
        answers: list[dict[str, Any]] = response.json()["answers"]
        return answers


@pytest.fixture
def desk(hub: EmbeddedHub, tmp_path: Path) -> Desk:
    agent_secret = create_user(hub.store, "amira", "agent")
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
    return Desk(hub, env, agent_secret, dispatcher["access_token"])


@real_keyring
@pytest.mark.keyring
@pytest.mark.slow
def test_a_survey_listed_answered_and_sent_once_from_the_command_line(desk: Desk) -> None:
    login = desk.vigil(
        "login",
        "--username",
        "amira",
        "--password-stdin",
        "--code",
        next_code(desk.agent_secret),
        stdin=DEFAULT_PASSWORD + "\n",
    )
    assert login.returncode == 0, login.stderr
    alert_id = publish_alert(desk.hub.url, desk.dispatcher_token, title="<b>Phones</b> down")["id"]
    assert desk.vigil("sync").returncode == 0
    shown = desk.vigil("alerts")
    assert shown.returncode == 0 and alert_id in shown.stdout, shown.stderr
    early = desk.vigil("survey", alert_id, "--clarity", "4")
    assert early.returncode == 1 and "not resolved yet" in early.stderr, early.stderr

    resolve(desk, alert_id)
    pending = desk.vigil("surveys")
    assert pending.returncode == 0, pending.stderr
    assert f"waiting  alert {alert_id}  <b>Phones</b> down" in pending.stdout

    refused = desk.vigil("survey", alert_id, "--clarity", "9")
    assert refused.returncode == 1 and "1 to 5" in refused.stderr, refused.stderr
    answered = desk.vigil(
        "survey", alert_id, "--clarity", "4", "--templates", "2", "--comment", "Too long\u202e"
    )
    assert answered.returncode == 0, answered.stderr
    assert "Thank you" in answered.stdout and "Sent to the hub." in answered.stdout
    again = desk.vigil("survey", alert_id, "--clarity", "1")
    assert again.returncode == 1 and "already answered" in again.stderr, again.stderr
    assert "0 survey(s) waiting" in desk.vigil("surveys").stdout

    answers = desk.surveys_on_hub(alert_id)
    assert [(a["username"], a["clarity"], a["templates"], a["comment"]) for a in answers] == [
        ("amira", 4, 2, "Too long\u202e")
    ]


@real_keyring
@pytest.mark.keyring
@pytest.mark.slow
def test_a_survey_answered_while_the_hub_is_down_is_sent_by_the_next_sync(
    desk: Desk, start_hub: Callable[..., EmbeddedHub]
) -> None:
    login = desk.vigil(
        "login",
        "--username",
        "amira",
        "--password-stdin",
        "--code",
        next_code(desk.agent_secret),
        stdin=DEFAULT_PASSWORD + "\n",
    )
    assert login.returncode == 0, login.stderr
    alert_id = publish_alert(desk.hub.url, desk.dispatcher_token)["id"]
    assert desk.vigil("sync").returncode == 0
    assert desk.vigil("alerts").returncode == 0
    resolve(desk, alert_id)

    port = int(desk.hub.url.rsplit(":", 1)[1])
    desk.hub.stop()
    offline = desk.vigil("survey", alert_id, "--clarity", "3")
    assert offline.returncode == 0, offline.stderr
    assert "Thank you" in offline.stdout and "Not sent yet" in offline.stderr

    desk.hub = start_hub(port=port)
    assert desk.surveys_on_hub(alert_id) == []
    assert desk.vigil("sync").returncode == 0
    assert [a["clarity"] for a in desk.surveys_on_hub(alert_id)] == [3]
