"""No secret leaves where it belongs: a whole session (sign in, sync, live alert, ack, token
refresh, sign out) at DEBUG level for every logger, then every log line, every file in the config
and data dirs (cache, outbox, settings) and the stderr of CLI runs (one forced to crash with a
traceback) are searched for the password, the TOTP secret and every token the hub issued."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.services import CoreServices
from client.core.settings import Settings
from hub import signin
from hub.alerts_service import publish_alert
from hub.clock import ManualClock
from hub.server import EmbeddedHub
from tests.client.test_auth import real_keyring
from tests.hubtools import create_user, next_code, wait_until

PASSWORD = "Saguaro-lantern 7731 quietly"
CLI_TIMEOUT = 60


@dataclass
class IssuedSecrets:
    """Every secret of the session, taken from the hub side as it hands them out."""

    password: str
    totp_secret: str
    tokens: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return [self.password, self.totp_secret, *self.tokens]


@pytest.fixture
def issued(hub: EmbeddedHub, monkeypatch: pytest.MonkeyPatch) -> IssuedSecrets:
    """The user's secrets, and every MFA, access and refresh token the hub issues from now on."""
    secrets = IssuedSecrets(PASSWORD, create_user(hub.store, "amira", password=PASSWORD))
    start, finish, rotate = signin.start_sign_in, signin.finish_sign_in, signin.refresh

    def recording_start(*args: Any, **kwargs: Any) -> signin.MfaChallengeIssued:
        issued = start(*args, **kwargs)
        secrets.tokens.append(issued.mfa_token)
        return issued

    def recording_finish(*args: Any, **kwargs: Any) -> Any:
        pair, user = finish(*args, **kwargs)
        secrets.tokens += [pair.access_token, pair.refresh_token]
        return pair, user

    def recording_refresh(*args: Any, **kwargs: Any) -> signin.TokenPair:
        pair = rotate(*args, **kwargs)
        secrets.tokens += [pair.access_token, pair.refresh_token]
        return pair

    monkeypatch.setattr(signin, "start_sign_in", recording_start)
    monkeypatch.setattr(signin, "finish_sign_in", recording_finish)
    monkeypatch.setattr(signin, "refresh", recording_refresh)
    return secrets


@pytest.fixture
def debug_log() -> Iterator[list[str]]:
    """Every log record of every logger at DEBUG, formatted with tracebacks."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    old_root = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in [*levels, "urllib3", "requests", "keyring", "client", "hub", "vigil"]:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(old_root)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def leaks(secrets: IssuedSecrets, text: str | bytes) -> list[str]:
    """Which secrets appear in `text` (as text, or as the bytes a file holds)."""
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    return [secret[:6] + "…" for secret in secrets.all() if secret.encode() in data]


def files_under(*folders: Path) -> dict[Path, bytes]:
    return {
        path: path.read_bytes()
        for folder in folders
        for path in folder.rglob("*")
        if path.is_file()
    }


def test_a_whole_session_at_debug_level_leaks_no_secret(
    hub: EmbeddedHub,
    manual_clock: ManualClock,
    issued: IssuedSecrets,
    debug_log: list[str],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"hub_url": hub.url}))
    services = CoreServices.build(paths, Settings.load(paths, load_policy(policy_file)))
    try:
        challenge = services.auth.begin("amira", PASSWORD)
        services.auth.complete(challenge, next_code(issued.totp_secret, manual_clock.now()))
        services.start()
        alert = publish_alert(
            hub.store, hub.settings, severity="critical", title="Video down", body="Use phones."
        )
        hub.broker.notify()
        wait_until(lambda: services.cache.alert(alert["id"]) is not None, timeout=10)
        services.outbox.record(alert["id"], "acknowledged", "On it", author="amira")
        services.sync.flush_now()
        assert not services.outbox.pending()
        manual_clock.advance(16 * 60)
        services.sync.sync_now()
        services.auth.sign_out()
    finally:
        services.close()

    assert len(issued.tokens) >= 5, "sign-in and a refresh should have issued tokens"
    assert [line for line in debug_log if leaks(issued, line)] == []
    assert any("urllib3" in line for line in debug_log), "HTTP debug logging was not captured"
    assert any("signed in as amira" in line for line in debug_log)
    output = capfd.readouterr()
    assert leaks(issued, output.out + output.err) == []
    stored = files_under(paths.config_dir, paths.data_dir)
    assert paths.cache_db in stored and paths.outbox_db in stored
    assert {
        str(path): leaks(issued, data) for path, data in stored.items() if leaks(issued, data)
    } == {}


def run_cli(paths: AppPaths, *args: str, stdin: str = "", code: str | None = None) -> str:
    """One `vigil --debug ...` in a subprocess; returns its stdout and stderr together."""
    env = {
        **os.environ,
        "VIGIL_CONFIG_DIR": str(paths.config_dir),
        "VIGIL_DATA_DIR": str(paths.data_dir),
        "VIGIL_POLICY": str(paths.config_dir / "no-policy.json"),
    }
    # `code` runs before the CLI in the same interpreter: used to force a crash.
    program = f"{code or ''}\nimport sys\nfrom client.cli import main\nsys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", program, "--debug", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    return done.stdout + done.stderr


@real_keyring
@pytest.mark.keyring
def test_cli_runs_and_a_crash_traceback_leak_no_secret(
    hub: EmbeddedHub, manual_clock: ManualClock, issued: IssuedSecrets, tmp_path: Path
) -> None:
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    alert = publish_alert(hub.store, hub.settings, severity="major", title="Phones", body="Chat")
    code = next_code(issued.totp_secret, manual_clock.now())
    crash = (
        "import client.core.sync as sync\n"
        "def crash(self, *args, **kwargs):\n"
        "    raise RuntimeError('forced failure in the middle of a sync')\n"
        "sync.SyncEngine.sync_now = crash\n"
    )

    outputs = [
        run_cli(
            paths,
            "login",
            "--hub",
            hub.url,
            "--username",
            "amira",
            "--password-stdin",
            "--code",
            code,
            stdin=PASSWORD + "\n",
        ),
        run_cli(paths, "sync"),
        run_cli(paths, "ack", alert["id"], "--note", "On it"),
        run_cli(paths, "sync", code=crash),
        run_cli(paths, "sync"),
        run_cli(paths, "logout"),
    ]

    assert "forced failure" in outputs[3] and "Traceback" in outputs[3], outputs[3]
    assert len(issued.tokens) >= 3, outputs[0]
    assert {n: leaks(issued, text) for n, text in enumerate(outputs) if leaks(issued, text)} == {}
    stored = files_under(paths.config_dir, paths.data_dir)
    assert {
        str(path): leaks(issued, data) for path, data in stored.items() if leaks(issued, data)
    } == {}
