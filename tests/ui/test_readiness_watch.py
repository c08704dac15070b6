"""ReadinessWatch: when the tray app runs the self-test (hourly, after a sign-in, on request) on
real core services signed in to a real hub, with Qt's real timers and task runner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from client.controllers.readiness import ReadinessWatch
from client.controllers.tasks import TaskRunner
from client.core.alert_stream import StreamPhase, StreamState
from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.readiness import DesktopAbilities, ReadinessOutcome
from client.core.services import CoreServices
from client.core.settings import Settings
from client.core.sync import ConnectionState, SyncStatus
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, create_user, next_code
from tests.vigil_cli import real_keyring

pytestmark = [real_keyring, pytest.mark.keyring]

WAIT_MS = 15_000
DESKTOP = DesktopAbilities(
    tray_available=True, supports_messages=True, audio_output=True, tone_readable=True
)
ONLINE = SyncStatus(state=ConnectionState.ONLINE, last_synced_at=None, pending_acks=0, detail="")


@dataclass
class Host:
    """What the watch reads of CoreHost: the running core."""

    core: CoreServices | None


@pytest.fixture
def signed_in(hub: EmbeddedHub, tmp_path: Path) -> Iterator[CoreServices]:
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"hub_url": hub.url}))
    services = CoreServices.build(paths, Settings.load(paths, load_policy(policy_file)))
    secret = create_user(hub.store, "amira")
    services.auth.complete(services.auth.begin("amira", DEFAULT_PASSWORD), next_code(secret))
    yield services
    services.close()


@pytest.fixture
def tasks(qtbot: QtBot) -> Iterator[TaskRunner]:
    runner = TaskRunner()
    yield runner
    runner.shutdown()


def _watch(core: CoreServices | None, tasks: TaskRunner, **timing: int) -> ReadinessWatch:
    watch = ReadinessWatch(tasks, Host(core), desktop=lambda: DESKTOP, **timing)
    return watch


def test_it_runs_every_interval_and_reports_each_run(
    qtbot: QtBot, hub: EmbeddedHub, signed_in: CoreServices, tasks: TaskRunner
) -> None:
    watch = _watch(signed_in, tasks, interval_ms=100)
    outcomes: list[ReadinessOutcome] = []
    watch.outcome_changed.connect(outcomes.append)

    watch.start()
    qtbot.waitUntil(lambda: len(outcomes) >= 2, timeout=WAIT_MS)
    watch.stop()

    assert all(outcome.reported for outcome in outcomes)
    assert outcomes[1].report.ran_at > outcomes[0].report.ran_at
    # The core's stream was never started here: the check says so rather than guessing.
    statuses = {check.name: check.status for check in outcomes[0].report.checks}
    assert statuses["stream"] == "fail"
    assert [r.ready for r in hub.store.readiness.for_user("amira")] == [False]


def test_after_a_sign_in_it_waits_for_the_stream_and_a_sync_then_runs_at_once(
    qtbot: QtBot, signed_in: CoreServices, tasks: TaskRunner
) -> None:
    # A wait far longer than the test: only the stream and the sync can start this run.
    watch = _watch(signed_in, tasks, after_sign_in_ms=600_000)
    outcomes: list[ReadinessOutcome] = []
    watch.outcome_changed.connect(outcomes.append)

    watch.signed_in(None)
    watch.stream_changed(StreamState(StreamPhase.CONNECTED))
    assert outcomes == [] and watch.outcome is None
    watch.sync_changed(ONLINE)

    qtbot.waitUntil(lambda: len(outcomes) == 1, timeout=WAIT_MS)


def test_after_a_sign_in_a_stream_that_never_connects_is_reported_after_the_wait(
    qtbot: QtBot, signed_in: CoreServices, tasks: TaskRunner
) -> None:
    watch = _watch(signed_in, tasks, after_sign_in_ms=200)
    outcomes: list[ReadinessOutcome] = []
    watch.outcome_changed.connect(outcomes.append)

    watch.signed_in(None)
    watch.sync_changed(ONLINE)

    qtbot.waitUntil(lambda: len(outcomes) == 1, timeout=WAIT_MS)
    assert not outcomes[0].report.ready
    assert "alert stream" in outcomes[0].report.summary()


def test_a_request_during_a_run_runs_once_more_after_it_not_twice_at_once(
    qtbot: QtBot, signed_in: CoreServices, tasks: TaskRunner
) -> None:
    watch = _watch(signed_in, tasks)
    outcomes: list[ReadinessOutcome] = []
    watch.outcome_changed.connect(outcomes.append)

    for _ in range(5):
        watch.run_now()

    qtbot.waitUntil(lambda: len(outcomes) == 2, timeout=WAIT_MS)
    assert outcomes[1].report.ran_at > outcomes[0].report.ran_at


def test_without_a_core_nothing_runs(qtbot: QtBot, tasks: TaskRunner) -> None:
    watch = _watch(None, tasks)
    with qtbot.assertNotEmitted(watch.outcome_changed):
        watch.run_now()
    assert watch.outcome is None


def test_once_stopped_nothing_more_is_run_or_sent(
    qtbot: QtBot, signed_in: CoreServices, tasks: TaskRunner
) -> None:
    watch = _watch(signed_in, tasks, interval_ms=10)
    watch.start()
    watch.stop()
    # The app shuts the task runner down right after: submitting then would raise.
    tasks.shutdown()

    with qtbot.assertNotEmitted(watch.outcome_changed):
        watch.run_now()
        watch.signed_in(None)
        watch.stream_changed(StreamState(StreamPhase.CONNECTED))
        watch.sync_changed(ONLINE)
