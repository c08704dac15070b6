"""The README's demo on a machine without a display: the hub runs and the story plays out with
the `vigil` command line, ending with the agent's acknowledgement stored on the hub."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.clock import SystemClock
from hub.storage import Store
from hub.storage.alerts import Alert, StoredAck

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "scripts" / "demo.py"
DEMO_TIMEOUT = 240
CRITICAL_TITLE = "Video visits down in the West region"
VIDEO_PLAYBOOK = REPO / "resources" / "demo" / "playbooks" / "pb-video-visit-outage.json"

has_private_keyring = bool(shutil.which("dbus-daemon") and shutil.which("gnome-keyring-daemon"))
needs_a_keyring = pytest.mark.skipif(
    os.environ.get("VIGIL_TEST_REAL_KEYRING") != "1" and not has_private_keyring,
    reason="the demo keeps the sign-in in a keyring: run the tests with scripts/test, or install "
    "dbus and gnome-keyring so the demo can start its own",
)


@dataclass
class DemoRun:
    """One finished run of the demo program and the folder it kept its data in."""

    returncode: int
    output: str
    folder: Path


def run_demo(folder: Path, home: Path, env: Mapping[str, str] | None = None) -> DemoRun:
    """Run the demo headless and non-interactive, with the platform folders inside `home`."""
    environment = {
        key: value
        for key, value in (env if env is not None else os.environ).items()
        if key not in ("DISPLAY", "WAYLAND_DISPLAY") and not key.startswith("VIGIL_")
    }
    # The agent's own profile would be here: the demo must leave it alone.
    environment |= {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }
    result = subprocess.run(
        [sys.executable, str(DEMO), "--data", str(folder), "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        timeout=DEMO_TIMEOUT,
        cwd=REPO,
    )
    return DemoRun(result.returncode, result.stdout, folder)


@contextmanager
def hub_store(folder: Path) -> Iterator[Store]:
    store = Store.open(folder / "hub" / "hub.sqlite3", SystemClock())
    try:
        yield store
    finally:
        store.close()


def critical_alerts_and_acks(folder: Path) -> list[tuple[Alert, list[StoredAck]]]:
    """The demo's critical alerts (an update lowers the severity later) with their acks."""
    with hub_store(folder) as store:
        alerts = store.alerts.since(None, 100).alerts
        return [
            (alert, store.alerts.acks_for(alert.id))
            for alert in alerts
            if alert.title == CRITICAL_TITLE
        ]


def survey_count(folder: Path, alert_id: str) -> int:
    """How many survey answers the hub keeps for an alert."""
    with hub_store(folder) as store, store.db.read() as conn:
        return int(
            conn.execute(
                "SELECT COUNT(*) FROM survey_answers WHERE alert_id = ?", (alert_id,)
            ).fetchone()[0]
        )


@needs_a_keyring
def test_without_a_display_the_demo_says_so_and_walks_through_to_an_ack_on_the_hub(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    run = run_demo(tmp_path / "demo", home)

    assert run.returncode == 0, run.output
    assert "No graphical display here" in run.output
    assert "Traceback" not in run.output
    assert "| vigil login --username agent --password-stdin --code " in run.output
    for command in ("vigil sync", "vigil search video", "vigil alerts", "vigil ack"):
        assert f"$ {command}" in run.output
    assert "Signed in as Demo Agent (agent)." in run.output
    assert "Sent to the hub." in run.output

    [(alert, acks)] = critical_alerts_and_acks(run.folder)
    playbook = json.loads(VIDEO_PLAYBOOK.read_text(encoding="utf-8"))
    assert alert.playbook_id == "pb-video-visit-outage"
    assert alert.template_ids == playbook["data"]["template_ids"]
    assert [(ack.username, ack.action) for ack in acks] == [("agent", "acknowledged")]
    assert "1 synced" in run.output

    # The incident's life: two updates, a drill beside it, the offline agent paged with the title
    # only, the resolution, the survey answered once, and the report.
    assert [change.kind for change in alert.changes] == ["update", "update", "resolved"]
    assert alert.status == "resolved"
    assert "DRILL: no action with real patients" in run.output
    assert "Paging gateway received for sam@pager.example" in run.output
    assert "Open Vigil now." in run.output
    assert "RESOLVED" in run.output
    assert survey_count(run.folder, alert.id) == 1
    assert "$ vigil-hub report" in run.output
    # Nothing landed in the platform folders where the agent's real profile lives.
    assert not home.exists() or not any(home.rglob("*vigil*"))


@pytest.mark.skipif(not has_private_keyring, reason="needs dbus-daemon and gnome-keyring-daemon")
def test_the_demo_starts_its_own_keyring_and_runs_again_on_the_same_folder(
    tmp_path: Path,
) -> None:
    # No session bus at all: like a fresh server, where the demo brings a private keyring.
    env = {key: value for key, value in os.environ.items() if key != "DBUS_SESSION_BUS_ADDRESS"}
    folder = tmp_path / "demo"

    first = run_demo(folder, tmp_path / "home", env)
    second = run_demo(folder, tmp_path / "home", env)

    for run in (first, second):
        assert run.returncode == 0, run.output
        assert "the demo starts a private one" in run.output
    assert "Demo library: 0 playbooks and templates added or updated" in second.output
    runs = critical_alerts_and_acks(folder)
    assert len(runs) == 2
    for _alert, acks in runs:
        assert [(ack.username, ack.action) for ack in acks] == [("agent", "acknowledged")]
