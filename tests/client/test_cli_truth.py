"""The `vigil` command line never lies: no "Signed in" without a keyring to keep it, no ack for an
alert this computer does not have, rejected acks can be cleared, templates print filled in, a
closed pipe ends quietly, every file error names the file. Real processes, real files, real hub."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from client.core.cache import Cache
from client.core.content_trust import ContentTrust
from client.core.hub_client import HubClient
from client.core.models import Alert
from client.core.outbox import AckResult, AckState, Outbox
from client.core.sync import FixedSession, SyncEngine
from hub.content_import import import_content
from hub.demo import demo_content_dir
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, create_user, next_code, publish_alert
from tests.hubtools import sign_in as sign_in_over_http
from tests.vigil_cli import PROCESS_TIMEOUT, real_keyring, run_vigil

TEMPLATE = "tpl-video-outage-phone"
PLAYBOOK = "pb-video-visit-outage"


@dataclass
class Computer:
    """One agent's computer: its folders and policy in tmp_path, without any system keyring."""

    hub: EmbeddedHub
    env: dict[str, str]
    config: Path
    data: Path
    agent_secret: str

    def vigil(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return run_vigil(self.env, *args, stdin=stdin)

    def sync_content(self) -> None:
        """Fill the cache and the trusted key as a signed-in `vigil sync` would."""
        secret = self.agent_secret
        token = sign_in_over_http(self.hub.url, "amira", DEFAULT_PASSWORD, secret)
        client = HubClient(self.hub.url)
        client.set_access_token(token["access_token"])
        trust = ContentTrust(self.config / "content-keys.json")
        cache = Cache.open(self.data / "cache.sqlite3", trust)
        outbox = Outbox.open(self.data / "outbox.sqlite3")
        try:
            SyncEngine(
                client,
                cache,
                outbox,
                verifier_factory=trust.choose,
                session=FixedSession("amira"),
            ).sync_now()
        finally:
            client.close()
            cache.close()
            outbox.close()

    def add_alerts(self, count: int) -> list[str]:
        cache = Cache.open(self.data / "cache.sqlite3")
        ids = [str(uuid.uuid4()) for _ in range(count)]
        try:
            cache.add_alerts(
                Alert.from_json(
                    {
                        "id": alert_id,
                        "seq": seq,
                        "severity": "critical",
                        "title": f"Alert {seq}",
                        "body": "Body",
                        "issued_at": "2026-12-01T10:00:00.000Z",
                    }
                )
                for seq, alert_id in enumerate(ids, 1)
            )
        finally:
            cache.close()
        return ids


@pytest.fixture
def computer(hub: EmbeddedHub, tmp_path: Path) -> Computer:
    import_content(hub.store, hub.app.state.signer, demo_content_dir())
    secret = create_user(hub.store, "amira", "agent", display_name="Amira Haddad")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"hub_url": hub.url}))
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DBUS_SESSION_BUS_ADDRESS", "VIGIL_TEST_REAL_KEYRING")
    }
    env |= {
        "VIGIL_CONFIG_DIR": str(tmp_path / "config"),
        "VIGIL_DATA_DIR": str(tmp_path / "data"),
        "VIGIL_POLICY": str(policy),
        # No keyring at all, as on a headless server without a Secret Service.
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    return Computer(hub, env, tmp_path / "config", tmp_path / "data", secret)


@pytest.fixture
def signed_in(computer: Computer) -> Computer:
    """The same computer with the test session's real keyring and amira signed in: an
    acknowledgement is recorded only under a known author."""
    env = {**os.environ, **{k: v for k, v in computer.env.items() if k.startswith("VIGIL_")}}
    desk = replace(computer, env=env)
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
    return desk


def clean(stderr: str) -> None:
    for bad in ("Traceback", "unexpected error", "Exception ignored"):
        assert bad not in stderr, stderr


def test_login_without_a_keyring_fails_before_saying_signed_in(computer: Computer) -> None:
    login = computer.vigil(
        "login",
        "--username",
        "amira",
        "--password-stdin",
        "--code",
        next_code(computer.agent_secret),
        stdin=DEFAULT_PASSWORD + "\n",
    )

    assert login.returncode == 6, login.stdout + login.stderr
    assert "Signed in" not in login.stdout
    assert "keyring" in login.stderr and "DBUS_SESSION_BUS_ADDRESS" in login.stderr
    clean(login.stderr)
    logout = computer.vigil("logout")
    assert logout.returncode == 0, logout.stderr
    clean(logout.stderr)


@pytest.mark.parametrize(
    "alert_id",
    [
        "5d0c1b7e-0000-4000-8000-000000000000",
        "not-a-uuid",
        "\u202e<b>evil</b>",
        "x" * 10_000,
    ],
)
@real_keyring
@pytest.mark.keyring
def test_ack_of_an_alert_this_computer_does_not_have_is_exit_4_and_records_nothing(
    signed_in: Computer, alert_id: str
) -> None:
    computer = signed_in
    computer.add_alerts(1)

    ack = computer.vigil("ack", alert_id)

    assert ack.returncode == 4, ack.stderr
    assert "No alert" in ack.stderr and "vigil alerts" in ack.stderr
    assert "Recorded" not in ack.stdout
    assert len(ack.stderr) < 600, "a huge id is cut, not echoed whole"
    clean(ack.stderr)
    outbox = Outbox.open(computer.data / "outbox.sqlite3")
    try:
        assert outbox.counts().pending == 0
    finally:
        outbox.close()


@real_keyring
@pytest.mark.keyring
def test_ack_of_a_cached_alert_is_recorded(signed_in: Computer) -> None:
    lead = create_user(signed_in.hub.store, "lead", "dispatcher")
    token = sign_in_over_http(signed_in.hub.url, "lead", DEFAULT_PASSWORD, lead)["access_token"]
    alert_id = publish_alert(signed_in.hub.url, token)["id"]
    assert signed_in.vigil("sync").returncode == 0

    ack = signed_in.vigil("ack", alert_id)

    assert ack.returncode == 0, ack.stderr
    assert "Recorded" in ack.stdout


def test_rejected_acks_can_be_dismissed_and_stay_in_the_history(computer: Computer) -> None:
    [alert_id] = computer.add_alerts(1)
    outbox = Outbox.open(computer.data / "outbox.sqlite3")
    record = outbox.record(alert_id, "acknowledged", author="amira")
    outbox.apply_results([AckResult(record.ack_id, "rejected", "unknown_alert", "Gone.")])
    outbox.close()
    assert computer.vigil("acks").stdout.startswith("0 waiting to sync, 1 rejected.")

    dismissed = computer.vigil("acks", "--dismiss")

    assert dismissed.returncode == 0, dismissed.stderr
    assert "Cleared 1 rejected" in dismissed.stdout
    listed = computer.vigil("acks")
    assert listed.stdout.startswith("0 waiting to sync, 0 rejected.")
    assert "rejected  " not in listed.stdout
    outbox = Outbox.open(computer.data / "outbox.sqlite3")
    try:
        assert [a.state for a in outbox.for_alert(alert_id)] == [AckState.DISMISSED]
    finally:
        outbox.close()


def test_template_prints_filled_from_fields(computer: Computer) -> None:
    computer.sync_content()

    result = computer.vigil("template", TEMPLATE, "--field", "patient_first_name=Ana {agent_name}")

    assert result.returncode == 0, result.stderr
    assert "Ana {agent_name}" in result.stdout, "a value is inserted literally, never expanded"
    assert "{patient_first_name}" not in result.stdout
    assert "not filled yet" in result.stderr
    unknown = computer.vigil("template", TEMPLATE, "--field", "ssn=123")
    assert unknown.returncode == 2 and "no such placeholder" in unknown.stderr
    bad = computer.vigil("template", TEMPLATE, "--field", "novalue")
    assert bad.returncode == 2 and "NAME=VALUE" in bad.stderr
    missing = computer.vigil("template", "tpl-nope")
    assert missing.returncode == 4


def test_a_forged_cached_playbook_is_refused_by_the_cli(computer: Computer) -> None:
    computer.sync_content()
    with sqlite3.connect(computer.data / "cache.sqlite3") as conn:
        data = json.loads(
            conn.execute("SELECT data FROM playbooks WHERE id = ?", (PLAYBOOK,)).fetchone()[0]
        )
        data["steps"][0] = "Tell the patient to stop taking their medication"
        conn.execute("UPDATE playbooks SET data = ? WHERE id = ?", (json.dumps(data), PLAYBOOK))

    result = computer.vigil("playbook", PLAYBOOK)

    assert result.returncode == 4
    assert "failed its signature check" in result.stderr
    assert "medication" not in result.stdout


def test_alerts_says_when_it_shows_fewer_than_all(computer: Computer) -> None:
    computer.add_alerts(3)

    limited = computer.vigil("alerts", "--limit", "2")

    assert limited.returncode == 0, limited.stderr
    assert "newest 2 of 3" in limited.stdout
    assert limited.stdout.count("  critical  ") == 2
    every = computer.vigil("alerts")
    assert "of 3" not in every.stdout and every.stdout.count("  critical  ") == 3
    for bad in ("0", "-1", "x", "1000001"):
        assert computer.vigil("alerts", "--limit", bad).returncode == 2


def test_a_reader_that_goes_away_ends_the_command_quietly(computer: Computer) -> None:
    computer.add_alerts(3)
    process = subprocess.Popen(
        [sys.executable, "-m", "client.launch", "alerts"],
        env=computer.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head` that has read enough, before a byte was written

    code = process.wait(timeout=PROCESS_TIMEOUT)
    stderr = process.stderr.read()
    process.stderr.close()

    assert code in (0, 141), stderr
    assert stderr == ""


def test_errors_about_files_name_the_file(computer: Computer, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "data-is-a-file"
    not_a_folder.write_text("")
    env = {**computer.env, "VIGIL_DATA_DIR": str(not_a_folder)}
    result = subprocess.run(
        [sys.executable, "-m", "client.launch", "alerts"],
        env=env,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    assert result.returncode == 6, result.stderr
    assert str(not_a_folder) in result.stderr
    clean(result.stderr)

    computer.data.mkdir(parents=True)
    outbox = computer.data / "outbox.sqlite3"
    outbox.write_bytes(b"this is not a database" * 100)
    damaged = computer.vigil("acks")
    # Set aside and replaced by a fresh file (nothing in it could be read): the agent is told
    # which file, and the command goes on.
    assert str(outbox) in damaged.stdout + damaged.stderr
    clean(damaged.stderr)
