"""The shift-readiness self-test in the core: each check's ok/warn/fail bounds, the one-line
summary, and reports reaching a real hub (or waiting for it) on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from client.core.alert_stream import StreamPhase
from client.core.hub_client import HubClient
from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.readiness import (
    CHECK_NAMES,
    Check,
    DesktopAbilities,
    HubProbe,
    ReadinessInputs,
    ReadinessReport,
    ReadinessReporter,
    audio_check,
    cache_age_check,
    clock_skew_check,
    evaluate,
    gather,
    hub_check,
    notifications_check,
    pending_acks_check,
    probe_hub,
    probe_stream,
    run_readiness,
    stream_check,
    vpn_check,
)
from client.core.services import CoreServices
from client.core.settings import Settings
from client.core.vpn import VpnStatus
from client.core.vpn_gate import VpnMode, VpnRequired, vpn_gate
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, access_token, create_user, next_code, wait_until
from tests.vigil_cli import real_keyring

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
DESKTOP = DesktopAbilities(
    tray_available=True, supports_messages=True, audio_output=True, tone_readable=True
)


def _vpn(on: bool | None) -> VpnStatus:
    return VpnStatus(on=on, evidence="interface", detail="test")


@pytest.mark.parametrize(
    ("mode", "on", "status"),
    [
        (VpnMode.OFF, False, "ok"),
        (VpnMode.OFF, None, "ok"),
        (VpnMode.WARN, True, "ok"),
        (VpnMode.WARN, False, "warn"),
        (VpnMode.WARN, None, "warn"),
        (VpnMode.BLOCK, True, "ok"),
        (VpnMode.BLOCK, False, "fail"),
        (VpnMode.BLOCK, None, "fail"),
    ],
)
def test_vpn_off_fails_only_where_it_is_required(
    mode: VpnMode, on: bool | None, status: str
) -> None:
    assert vpn_check(mode, _vpn(on)).status == status


def test_vpn_not_checked_yet_counts_as_unknown() -> None:
    assert vpn_check(VpnMode.BLOCK, None).status == "fail"
    assert "unknown" in vpn_check(VpnMode.BLOCK, None).detail


@pytest.mark.parametrize(
    ("elapsed", "status"),
    [(0.0, "ok"), (0.05, "ok"), (2.0, "ok"), (2.001, "warn"), (30.0, "warn"), (None, "fail")],
)
def test_hub_is_timed(elapsed: float | None, status: str) -> None:
    check = hub_check(HubProbe(elapsed_seconds=elapsed, error="the connection was refused"))
    assert check.status == status
    if elapsed is None:
        assert "the connection was refused" in check.detail
    else:
        assert f"{round(elapsed * 1000):,} ms" in check.detail


@pytest.mark.parametrize(
    ("phase", "status"),
    [
        (StreamPhase.CONNECTED, "ok"),
        (StreamPhase.CONNECTING, "warn"),
        (StreamPhase.DISCONNECTED, "fail"),
        (StreamPhase.AUTH_NEEDED, "fail"),
        (None, "fail"),
    ],
)
def test_stream_is_ok_only_while_live(phase: StreamPhase | None, status: str) -> None:
    assert stream_check(phase, "The hub closed the alert stream.").status == status


@pytest.mark.parametrize(
    ("tray", "messages", "status"),
    [(True, True, "ok"), (True, False, "warn"), (False, False, "fail"), (False, True, "fail")],
)
def test_notifications_follow_what_the_desktop_reports(
    tray: bool, messages: bool, status: str
) -> None:
    desktop = DesktopAbilities(tray, messages, audio_output=True, tone_readable=True)
    assert notifications_check(desktop).status == status


@pytest.mark.parametrize(
    ("output", "tone", "status"),
    [
        (True, True, "ok"),
        (None, True, "warn"),
        (False, True, "fail"),
        (True, False, "fail"),
        (None, False, "fail"),
    ],
)
def test_audio_needs_an_output_and_a_readable_tone(
    output: bool | None, tone: bool, status: str
) -> None:
    desktop = DesktopAbilities(True, True, audio_output=output, tone_readable=tone)
    assert audio_check(desktop).status == status


def test_without_a_desktop_notifications_and_audio_warn_not_fail() -> None:
    assert notifications_check(None).status == "warn"
    assert audio_check(None).status == "warn"


@pytest.mark.parametrize(
    ("skew", "status"),
    [
        (0.0, "ok"),
        (30.0, "ok"),
        (-30.0, "ok"),
        (30.5, "warn"),
        (-30.5, "warn"),
        (300.0, "warn"),
        (-300.0, "warn"),
        (300.5, "fail"),
        (-300.5, "fail"),
        (-86_400.0 * 365 * 2000, "fail"),
        (86_400.0 * 365 * 8000, "fail"),
    ],
)
def test_clock_skew_bounds(skew: float, status: str) -> None:
    hub_time = NOW.timestamp()
    check = clock_skew_check(
        HubProbe(elapsed_seconds=0.01, local_time=hub_time + skew, hub_time=hub_time)
    )
    assert check.status == status
    if status != "ok":
        assert ("ahead of" if skew > 0 else "behind") in check.detail


def test_clock_skew_without_the_hubs_time_warns() -> None:
    assert clock_skew_check(HubProbe(error="offline")).status == "warn"


@pytest.mark.parametrize(
    ("age", "status"),
    [
        (timedelta(0), "ok"),
        (timedelta(hours=-5), "ok"),
        (timedelta(hours=24), "ok"),
        (timedelta(hours=24, seconds=1), "warn"),
        (timedelta(days=7), "warn"),
        (timedelta(days=7, seconds=1), "fail"),
        (NOW - datetime(1, 1, 1, tzinfo=UTC), "fail"),
        (NOW - datetime(9999, 12, 31, tzinfo=UTC), "ok"),
    ],
)
def test_cache_age_bounds(age: timedelta, status: str) -> None:
    assert cache_age_check(NOW - age, NOW).status == status


def test_a_library_never_synced_fails() -> None:
    check = cache_age_check(None, NOW)
    assert (check.status, check.detail) == (
        "fail",
        "The library has never been synced on this computer: sync now.",
    )


@pytest.mark.parametrize(
    ("ages", "rejected", "status"),
    [
        ((), 0, "ok"),
        ((timedelta(0),), 0, "warn"),
        ((timedelta(minutes=10),), 0, "warn"),
        ((timedelta(minutes=10), timedelta(minutes=10, seconds=1)), 0, "fail"),
        ((timedelta(minutes=-30),), 0, "warn"),
        ((None,), 0, "fail"),
        ((), 1, "fail"),
        ((timedelta(0),), 3, "fail"),
    ],
)
def test_pending_acks_bounds(
    ages: tuple[timedelta | None, ...], rejected: int, status: str
) -> None:
    acted_at = tuple(None if age is None else NOW - age for age in ages)
    assert pending_acks_check(acted_at, rejected, NOW).status == status


def _inputs(**changes: object) -> ReadinessInputs:
    base: dict[str, object] = {
        "vpn_mode": VpnMode.BLOCK,
        "vpn": _vpn(True),
        "hub": HubProbe(0.02, NOW.timestamp(), NOW.timestamp()),
        "stream": StreamPhase.CONNECTED,
        "stream_reason": "",
        "desktop": DESKTOP,
        "last_synced_at": NOW - timedelta(minutes=5),
        "pending_acted_at": (),
        "rejected_acks": 0,
    }
    base.update(changes)
    return ReadinessInputs(**base)  # type: ignore[arg-type]


def test_all_checks_run_in_the_protocols_order_and_all_ok_is_ready() -> None:
    report = evaluate(_inputs(), NOW)

    assert tuple(check.name for check in report.checks) == CHECK_NAMES
    assert {check.status for check in report.checks} == {"ok"}
    assert report.ready
    assert report.summary() == "Ready for shift"


def test_warnings_are_still_ready_and_failures_are_named() -> None:
    warned = evaluate(_inputs(pending_acted_at=(NOW,), stream=StreamPhase.CONNECTING), NOW)
    failed = evaluate(_inputs(vpn=_vpn(False), stream=StreamPhase.DISCONNECTED), NOW)

    assert warned.ready and warned.summary() == "Ready for shift"
    assert not failed.ready
    assert failed.summary() == "Not ready: VPN, alert stream"


def test_the_wire_form_is_what_the_hub_takes() -> None:
    report = evaluate(_inputs(), datetime(2026, 12, 3, 9, 0, 0, 123_456, tzinfo=UTC))

    wire = report.to_wire()

    assert wire["ran_at"] == "2026-12-03T09:00:00.123Z"
    assert set(wire["checks"]) == set(CHECK_NAMES)
    assert wire["checks"]["vpn"] == {"status": "ok", "detail": "Connected to the company VPN."}


def test_a_hostile_reason_becomes_one_short_plain_line() -> None:
    check = stream_check(StreamPhase.DISCONNECTED, "evil\u202e\n\x00" + "x" * 10_000)

    assert len(check.detail) == 300
    assert "\u202e" not in check.detail and "\n" not in check.detail
    assert "\x00" not in check.detail


@pytest.fixture
def hub_client(hub: EmbeddedHub) -> Iterator[HubClient]:
    client = HubClient(hub.url)
    client.set_access_token(access_token(hub.store, hub.url, "amira"))
    yield client
    client.close()


def test_the_hub_probe_times_the_answer_and_reads_the_hubs_clock(hub_client: HubClient) -> None:
    probe = probe_hub(hub_client)

    assert probe.error is None
    assert probe.elapsed_seconds is not None and probe.elapsed_seconds < 10
    assert probe.hub_time is not None and probe.local_time is not None
    # The Date header has whole seconds: same clock here, so at most about a second apart.
    assert clock_skew_check(probe).status == "ok"


def test_the_stream_probe_opens_a_real_stream(hub: EmbeddedHub, hub_client: HubClient) -> None:
    assert probe_stream(hub_client) == (StreamPhase.CONNECTED, "")
    signed_out = HubClient(hub.url)
    try:
        phase, _reason = probe_stream(signed_out)
    finally:
        signed_out.close()
    assert phase is StreamPhase.AUTH_NEEDED


def test_a_report_reaches_the_hub(hub: EmbeddedHub, hub_client: HubClient) -> None:
    reporter = ReadinessReporter(hub_client)
    report = evaluate(_inputs(vpn=_vpn(False)), datetime.now(UTC))

    outcome = reporter.report(report)

    assert outcome.reported and outcome.problem is None
    assert reporter.unsent is None
    [kept] = hub.store.readiness.for_user("amira")
    assert kept.ready is False
    assert kept.checks["vpn"]["status"] == "fail"


def test_offline_the_report_waits_and_goes_at_the_next_contact(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    first = start_hub()
    port = first.port
    client = HubClient(first.url)
    client.set_access_token(access_token(first.store, first.url, "amira"))
    reporter = ReadinessReporter(client)
    first.stop()
    report = evaluate(_inputs(hub=HubProbe(error="refused")), datetime.now(UTC))
    try:
        outcome = reporter.report(report)

        assert not outcome.reported
        assert outcome.problem is not None and "cannot be reached" in outcome.problem
        assert reporter.unsent == report

        again = start_hub(port=port)
        flushed = reporter.flush()

        assert flushed is not None and flushed.reported
        assert reporter.unsent is None
        assert reporter.flush() is None
        [kept] = again.store.readiness.for_user("amira")
        assert kept.checks["hub"]["status"] == "fail"
    finally:
        client.close()


def test_a_report_the_hub_refuses_is_dropped_not_retried(
    hub: EmbeddedHub, hub_client: HubClient
) -> None:
    reporter = ReadinessReporter(hub_client)
    stale = ReadinessReport(datetime(1, 1, 1, tzinfo=UTC), (Check("vpn", "ok", "On."),))

    outcome = reporter.report(stale)

    assert not outcome.reported
    assert outcome.problem is not None and "ran_at" in outcome.problem.lower()
    assert reporter.unsent is None
    assert hub.store.readiness.for_user("amira") == []


def test_a_waiting_report_older_than_the_hub_takes_is_dropped_unsent(
    hub: EmbeddedHub, hub_client: HubClient
) -> None:
    reporter = ReadinessReporter(hub_client)
    hub.stop()
    old = evaluate(_inputs(), datetime.now(UTC))
    reporter.report(old)

    assert reporter.flush(now=old.ran_at + timedelta(hours=23, seconds=1)) is None
    assert reporter.unsent is None


@real_keyring
@pytest.mark.keyring
def test_the_core_gathers_every_input_and_reports_from_a_signed_in_device(
    hub: EmbeddedHub, tmp_path: Path
) -> None:
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"hub_url": hub.url}))
    services = CoreServices.build(paths, Settings.load(paths, load_policy(policy_file)))
    try:
        secret = create_user(hub.store, "amira", "agent")
        services.start()
        services.auth.complete(services.auth.begin("amira", DEFAULT_PASSWORD), next_code(secret))
        wait_until(lambda: services.sync.status.last_synced_at is not None, timeout=15)
        connected = StreamPhase.CONNECTED
        wait_until(lambda: services.alert_stream.state.phase is connected, timeout=15)
        reporter = ReadinessReporter(services.hub)

        inputs = gather(services, DESKTOP, username="amira", stream_runs_here=True)
        outcome = run_readiness(
            services, reporter, DESKTOP, username="amira", stream_runs_here=True
        )

        assert inputs.stream is StreamPhase.CONNECTED
        assert inputs.hub.elapsed_seconds is not None
        assert inputs.pending_acted_at == () and inputs.rejected_acks == 0
        assert outcome.reported, outcome.problem
        statuses = {check.name: check.status for check in outcome.report.checks}
        assert statuses["hub"] == statuses["stream"] == statuses["cache_age"] == "ok"
        [kept] = hub.store.readiness.for_user("amira")
        assert kept.device_id == services.settings.get("device_id")
    finally:
        services.close()


def test_off_the_vpn_in_block_mode_the_report_still_goes_but_sync_waits(
    hub: EmbeddedHub, hub_client: HubClient
) -> None:
    gate = vpn_gate(VpnMode.BLOCK, _vpn(False))
    hub_client.request_gate = gate.check_request
    reporter = ReadinessReporter(hub_client)

    outcome = reporter.report(evaluate(_inputs(vpn=_vpn(False)), datetime.now(UTC)))

    assert outcome.reported, outcome.problem
    assert hub.store.readiness.for_user("amira")[0].checks["vpn"]["status"] == "fail"
    with pytest.raises(VpnRequired):
        hub_client.get_json("/v1/content")
