"""`vigil readiness` as a user runs it: a real process against the real hub on 127.0.0.1; it prints
every check, reports to the hub, and exits 0 when ready and 1 when not (never the hub's 5)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from client.core.readiness import CHECK_NAMES
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, create_user, next_code
from tests.vigil_cli import real_keyring, run_vigil

pytestmark = [real_keyring, pytest.mark.keyring, pytest.mark.slow]


def _env(hub: EmbeddedHub, tmp_path: Path) -> dict[str, str]:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"hub_url": hub.url}))
    return {
        **os.environ,
        "VIGIL_CONFIG_DIR": str(tmp_path / "config"),
        "VIGIL_DATA_DIR": str(tmp_path / "data"),
        "VIGIL_POLICY": str(policy),
    }


def _login(env: dict[str, str], secret: str) -> None:
    done = run_vigil(
        env,
        "login",
        "--username",
        "amira",
        "--password-stdin",
        "--code",
        next_code(secret),
        stdin=DEFAULT_PASSWORD + "\n",
    )
    assert done.returncode == 0, done.stderr


def _statuses(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    lines = [line.split() for line in done.stdout.splitlines()]
    return {words[1]: words[0] for words in lines if len(words) > 2 and words[1] in CHECK_NAMES}


def test_signed_in_and_synced_is_ready_and_reported(hub: EmbeddedHub, tmp_path: Path) -> None:
    env = _env(hub, tmp_path)
    _login(env, create_user(hub.store, "amira"))
    assert run_vigil(env, "sync").returncode == 0

    done = run_vigil(env, "readiness")

    assert done.returncode == 0, done.stdout + done.stderr
    statuses = _statuses(done)
    assert list(statuses) == list(CHECK_NAMES)
    assert {name: statuses[name] for name in ("vpn", "hub", "stream", "cache_age")} == {
        "vpn": "ok",
        "hub": "ok",
        "stream": "ok",
        "cache_age": "ok",
    }
    # A terminal cannot see the desktop: it says so, and that does not block readiness.
    assert statuses["notifications"] == statuses["audio"] == "warn"
    assert "Ready for shift." in done.stdout
    assert "Reported to the hub." in done.stdout
    [kept] = hub.store.readiness.for_user("amira")
    assert kept.ready is True
    assert kept.checks["audio"]["status"] == "warn"


def test_never_synced_is_not_ready_and_says_what(hub: EmbeddedHub, tmp_path: Path) -> None:
    env = _env(hub, tmp_path)
    _login(env, create_user(hub.store, "amira"))

    done = run_vigil(env, "readiness")

    assert done.returncode == 1, done.stdout + done.stderr
    assert _statuses(done)["cache_age"] == "fail"
    assert "Not ready: library sync." in done.stdout
    assert "never been synced" in done.stdout
    # Not ready is still reported: the dispatcher must see it.
    assert [r.ready for r in hub.store.readiness.for_user("amira")] == [False]


def test_with_the_hub_gone_it_is_not_ready_and_nothing_is_reported(
    start_hub: Callable[..., EmbeddedHub], tmp_path: Path
) -> None:
    hub = start_hub()
    env = _env(hub, tmp_path)
    _login(env, create_user(hub.store, "amira"))
    assert run_vigil(env, "sync").returncode == 0
    hub.stop()

    done = run_vigil(env, "readiness")

    assert done.returncode == 1, done.stdout + done.stderr
    statuses = _statuses(done)
    assert statuses["hub"] == statuses["stream"] == "fail"
    assert statuses["clock_skew"] == "warn"
    assert "Not ready: hub, alert stream." in done.stdout
    assert "not reported to the hub" in done.stderr
    assert "Traceback" not in done.stderr


def test_signed_out_it_is_not_ready_and_says_sign_in(hub: EmbeddedHub, tmp_path: Path) -> None:
    env = _env(hub, tmp_path)

    done = run_vigil(env, "readiness")

    assert done.returncode == 1, done.stdout + done.stderr
    assert _statuses(done)["stream"] == "fail"
    assert "sign in" in done.stdout.lower()
    assert "not reported to the hub" in done.stderr
    assert hub.store.readiness.for_user("amira") == []
