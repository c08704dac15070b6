"""The shift-readiness self-test: can an alert published now reach this agent, be seen, heard and
answered? Eight checks, each ok, warn or fail with a sentence a person understands; the device is
ready when none fails. The desktop's abilities (tray, notifications, sound) come from the UI as
plain values, so this module has no Qt.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from client.core.alert_stream import STREAM_PATH, StreamPhase
from client.core.errors import AuthRequired, HubError, RequestRefused
from client.core.vpn import VpnStatus
from client.core.vpn_gate import VpnMode

if TYPE_CHECKING:
    from client.core.hub_client import HubClient
    from client.core.services import CoreServices

log = logging.getLogger(__name__)

CheckStatus = Literal["ok", "warn", "fail"]
CHECK_NAMES = (
    "vpn",
    "hub",
    "stream",
    "notifications",
    "audio",
    "clock_skew",
    "cache_age",
    "pending_acks",
)
# What a failed check is called in "Not ready: ..." (the tray's one line).
PROBLEM_LABELS = {
    "vpn": "VPN",
    "hub": "hub",
    "stream": "alert stream",
    "notifications": "notifications",
    "audio": "alert sound",
    "clock_skew": "clock",
    "cache_age": "library sync",
    "pending_acks": "unsent answers",
}
READINESS_PATH = "/v1/readiness"
HEALTH_PATH = "/healthz"
READY_TEXT = "Ready for shift"
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)

HUB_SLOW_SECONDS = 2.0
CLOCK_WARN_SECONDS = 30.0
CLOCK_FAIL_SECONDS = 300.0
CACHE_WARN_AGE = timedelta(hours=24)
CACHE_FAIL_AGE = timedelta(days=7)
ACK_FAIL_AGE = timedelta(minutes=10)
# The hub refuses a report whose ran_at is further than this from its clock (the acks' rule), so
# an offline report older than this is not worth sending: the next run replaces it.
REPORT_MAX_AGE = timedelta(hours=23)
STREAM_PROBE_SECONDS = 10.0


@dataclass(frozen=True)
class Check:
    """One check's outcome: its name, ok/warn/fail, and one line for a person."""

    name: str
    status: CheckStatus
    detail: str


@dataclass(frozen=True)
class DesktopAbilities:
    """What the desktop reports: the tray and its notifications, a sound output, the tone file.

    `audio_output` is None where the system cannot tell whether an output device exists.
    """

    tray_available: bool
    supports_messages: bool
    audio_output: bool | None
    tone_readable: bool


@dataclass(frozen=True)
class HubProbe:
    """The hub's answer to a plain request: how long it took and the clocks (Unix seconds), or
    why there was none."""

    elapsed_seconds: float | None = None
    local_time: float | None = None
    hub_time: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class ReadinessInputs:
    """Everything the checks look at, gathered from the core and the desktop."""

    vpn_mode: VpnMode
    vpn: VpnStatus | None
    hub: HubProbe
    stream: StreamPhase | None
    stream_reason: str
    desktop: DesktopAbilities | None
    last_synced_at: datetime | None
    pending_acted_at: tuple[datetime | None, ...]
    rejected_acks: int


@dataclass(frozen=True)
class ReadinessReport:
    """One run of the self-test."""

    ran_at: datetime
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        """Ready for a shift: no check failed (warnings are worth reading, not blocking)."""
        return all(check.status != "fail" for check in self.checks)

    def summary(self) -> str:
        """One line: "Ready for shift", or "Not ready: <what failed>"."""
        failed = [PROBLEM_LABELS[check.name] for check in self.checks if check.status == "fail"]
        return READY_TEXT if not failed else "Not ready: " + ", ".join(failed)

    def to_wire(self) -> dict[str, Any]:
        """The body of POST /v1/readiness."""
        return {
            "ran_at": _rfc3339(self.ran_at),
            "checks": {c.name: {"status": c.status, "detail": c.detail} for c in self.checks},
        }


def vpn_check(mode: VpnMode, status: VpnStatus | None) -> Check:
    """Off while the policy requires it fails (block) or warns (warn); not required is ok."""
    on = status.on if status is not None else None
    if on is True:
        return Check("vpn", "ok", "Connected to the company VPN.")
    if mode is VpnMode.OFF:
        return Check("vpn", "ok", "The VPN is not required here.")
    required = "required" if mode is VpnMode.BLOCK else "expected"
    state = "off" if on is False else "unknown (Vigil cannot tell)"
    text = f"The company VPN is {state} and your IT policy says it is {required}."
    if mode is VpnMode.BLOCK:
        return Check("vpn", "fail", text + " Connect to it before your shift.")
    return Check("vpn", "warn", text)


def hub_check(probe: HubProbe) -> Check:
    """Reachable and quick is ok; slower than HUB_SLOW_SECONDS warns; unreachable fails."""
    if probe.elapsed_seconds is None:
        # The client's errors already say "The hub at ... cannot be reached: why".
        return Check("hub", "fail", _line(probe.error or "The hub cannot be reached."))
    millis = round(probe.elapsed_seconds * 1000)
    if probe.elapsed_seconds > HUB_SLOW_SECONDS:
        return Check("hub", "warn", f"The hub answered, but slowly ({millis:,} ms).")
    return Check("hub", "ok", f"The hub answered in {millis:,} ms.")


def stream_check(phase: StreamPhase | None, reason: str = "") -> Check:
    """Connected now is ok; connecting warns; down, signed out or not running fails."""
    if phase is StreamPhase.CONNECTED:
        return Check("stream", "ok", "The alert stream is live: new alerts arrive at once.")
    if phase is StreamPhase.CONNECTING:
        return Check("stream", "warn", "The alert stream is connecting.")
    if phase is StreamPhase.AUTH_NEEDED:
        return Check("stream", "fail", "The alert stream needs you to sign in again.")
    why = f" {reason}" if reason else ""
    return Check("stream", "fail", _line(f"The alert stream is down: alerts wait.{why}"))


def notifications_check(desktop: DesktopAbilities | None) -> Check:
    """Notifications shown is ok; a tray without them warns; no tray at all fails."""
    if desktop is None:
        return Check("notifications", "warn", "Not checked here: run the check from the tray app.")
    if desktop.tray_available and desktop.supports_messages:
        return Check("notifications", "ok", "The desktop shows Vigil's notifications.")
    if desktop.tray_available:
        return Check(
            "notifications",
            "warn",
            "The desktop cannot show notifications: minor alerts appear only in the alerts list.",
        )
    return Check(
        "notifications",
        "fail",
        "No system tray or notifications on this desktop: only pop-up windows can reach you.",
    )


def audio_check(desktop: DesktopAbilities | None) -> Check:
    """An output device and a readable tone are ok; either missing fails; unknown device warns."""
    if desktop is None:
        return Check("audio", "warn", "Not checked here: run the check from the tray app.")
    if not desktop.tone_readable:
        return Check(
            "audio",
            "fail",
            "The alert tone file cannot be read: critical alerts would only beep. Tell IT.",
        )
    if desktop.audio_output is False:
        return Check("audio", "fail", "No sound output device: critical alerts would be silent.")
    if desktop.audio_output is None:
        return Check(
            "audio", "warn", "The alert tone is ready; this system cannot say if a speaker is."
        )
    return Check("audio", "ok", "A sound output and the alert tone are ready.")


def clock_skew_check(probe: HubProbe) -> Check:
    """Within 30 s of the hub is ok, up to 5 min warns, beyond fails; no hub time warns."""
    if probe.hub_time is None or probe.local_time is None:
        return Check("clock_skew", "warn", "Not compared: the hub's time is not known.")
    skew = probe.local_time - probe.hub_time
    size = abs(skew)
    direction = "ahead of" if skew > 0 else "behind"
    text = f"This computer's clock is {_duration(size)} {direction} the hub's."
    if size > CLOCK_FAIL_SECONDS:
        return Check("clock_skew", "fail", text + " Fix the time or the time zone.")
    if size > CLOCK_WARN_SECONDS:
        return Check("clock_skew", "warn", text)
    return Check("clock_skew", "ok", "This computer's clock agrees with the hub's.")


def cache_age_check(last_synced_at: datetime | None, now: datetime) -> Check:
    """Synced within 24 h is ok, within 7 days warns; older or never fails."""
    if last_synced_at is None:
        return Check(
            "cache_age", "fail", "The library has never been synced on this computer: sync now."
        )
    # A clock set back makes the last sync look like it is in the future: that is "just now".
    age = max(now - last_synced_at, timedelta(0))
    text = f"The library was last synced {_duration(age.total_seconds())} ago."
    if age > CACHE_FAIL_AGE:
        return Check("cache_age", "fail", text + " Sync now.")
    if age > CACHE_WARN_AGE:
        return Check("cache_age", "warn", text)
    return Check("cache_age", "ok", text)


def pending_acks_check(
    pending_acted_at: Sequence[datetime | None], rejected: int, now: datetime
) -> Check:
    """None waiting is ok; any waiting warns; any older than 10 min, or rejected, fails.

    An answer whose time cannot be read counts as old: it has waited since nobody knows when.
    """
    if rejected:
        return Check(
            "pending_acks",
            "fail",
            f"The hub rejected {_count(rejected, 'answer')}: see the alerts list.",
        )
    if not pending_acted_at:
        return Check("pending_acks", "ok", "Every answer has reached the hub.")
    waiting = _count(len(pending_acted_at), "answer")
    if any(at is None or now - at > ACK_FAIL_AGE for at in pending_acted_at):
        return Check(
            "pending_acks",
            "fail",
            f"{waiting} waiting to reach the hub, some for over 10 minutes.",
        )
    return Check("pending_acks", "warn", f"{waiting} waiting to reach the hub.")


def evaluate(inputs: ReadinessInputs, now: datetime) -> ReadinessReport:
    """Every check on `inputs`, in the protocol's order."""
    return ReadinessReport(
        ran_at=now,
        checks=(
            vpn_check(inputs.vpn_mode, inputs.vpn),
            hub_check(inputs.hub),
            stream_check(inputs.stream, inputs.stream_reason),
            notifications_check(inputs.desktop),
            audio_check(inputs.desktop),
            clock_skew_check(inputs.hub),
            cache_age_check(inputs.last_synced_at, now),
            pending_acks_check(inputs.pending_acted_at, inputs.rejected_acks, now),
        ),
    )


def probe_hub(hub: HubClient) -> HubProbe:
    """Time a plain request to the hub and read its clock."""
    try:
        answer = hub.timed_get(HEALTH_PATH)
    except HubError as exc:
        return HubProbe(error=exc.message)
    return HubProbe(answer.elapsed_seconds, answer.local_time, answer.hub_time)


def probe_stream(hub: HubClient) -> tuple[StreamPhase, str]:
    """Open an alert stream and close it at once: for a process that runs none of its own."""
    try:
        response = hub.open_stream(
            STREAM_PATH,
            headers={"Accept": "text/event-stream"},
            read_timeout=STREAM_PROBE_SECONDS,
        )
    except AuthRequired:
        return StreamPhase.AUTH_NEEDED, ""
    except HubError as exc:
        return StreamPhase.DISCONNECTED, exc.message
    try:
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    finally:
        response.close()
    if content_type != "text/event-stream":
        return StreamPhase.DISCONNECTED, "The hub address did not answer with an alert stream."
    return StreamPhase.CONNECTED, ""


def gather(
    services: CoreServices,
    desktop: DesktopAbilities | None,
    *,
    username: str | None,
    stream_runs_here: bool,
) -> ReadinessInputs:
    """Read every input from the core (blocking: the hub is asked). `stream_runs_here` says the
    services hold the live stream (the tray app); otherwise a stream is opened to test it."""
    vpn = services.vpn.status or services.vpn.check()
    hub = probe_hub(services.hub)
    if stream_runs_here:
        state = services.alert_stream.state
        phase, reason = state.phase, state.reason
    else:
        phase, reason = probe_stream(services.hub)
    outbox = services.outbox
    pending = outbox.pending(limit=10_000, author=username) if username is not None else []
    return ReadinessInputs(
        vpn_mode=services.settings.vpn_mode(),
        vpn=vpn,
        hub=hub,
        stream=phase,
        stream_reason=reason,
        desktop=desktop,
        last_synced_at=services.sync.status.last_synced_at,
        pending_acted_at=tuple(_parse_time(record.acted_at) for record in pending),
        rejected_acks=len(outbox.rejected()),
    )


@dataclass(frozen=True)
class ReadinessOutcome:
    """A run's report and whether the hub has it (`problem`: why not, None when it has)."""

    report: ReadinessReport
    reported: bool
    problem: str | None = None


class ReadinessReporter:
    """Sends reports to the hub; the latest one the hub could not take waits for the next
    contact. Safe to use from several threads."""

    def __init__(self, hub: HubClient) -> None:
        self._hub = hub
        self._lock = threading.Lock()
        self._unsent: ReadinessReport | None = None

    @property
    def unsent(self) -> ReadinessReport | None:
        """The report waiting for the hub, if one does."""
        return self._unsent

    def report(self, report: ReadinessReport) -> ReadinessOutcome:
        """Send `report` (it replaces any waiting one); offline it waits for `flush`."""
        with self._lock:
            self._unsent = report
            return self._send_waiting()

    def flush(self, now: datetime | None = None) -> ReadinessOutcome | None:
        """Send the waiting report, if any and not too old to matter (then it is dropped)."""
        with self._lock:
            waiting = self._unsent
            if waiting is None:
                return None
            if (now or datetime.now(UTC)) - waiting.ran_at > REPORT_MAX_AGE:
                self._unsent = None
                return None
            return self._send_waiting()

    def _send_waiting(self) -> ReadinessOutcome:
        report = self._unsent
        assert report is not None
        try:
            self._hub.post_json(READINESS_PATH, report.to_wire())
        except RequestRefused as exc:
            # The hub read it and said no: sending it again would be refused again.
            self._unsent = None
            log.warning("The hub refused the readiness report: %s", exc.message)
            return ReadinessOutcome(report, reported=False, problem=exc.message)
        except HubError as exc:
            return ReadinessOutcome(report, reported=False, problem=exc.message)
        self._unsent = None
        return ReadinessOutcome(report, reported=True)


def run_readiness(
    services: CoreServices,
    reporter: ReadinessReporter,
    desktop: DesktopAbilities | None,
    *,
    username: str | None,
    stream_runs_here: bool,
) -> ReadinessOutcome:
    """Gather, check and report once (blocking: run it off the UI thread)."""
    inputs = gather(services, desktop, username=username, stream_runs_here=stream_runs_here)
    report = evaluate(inputs, datetime.now(UTC))
    return reporter.report(report)


def _rfc3339(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return _count(round(seconds), "second")
    if seconds < 7200:
        return _count(round(seconds / 60), "minute")
    if seconds < 172_800:
        return _count(round(seconds / 3600), "hour")
    return _count(round(seconds / 86_400), "day")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _line(text: str) -> str:
    """One line of plain text, at most 300 characters: the hub's rules for a detail."""
    printable = "".join(
        c for c in text if c not in BIDI_CONTROLS and unicodedata.category(c) != "Cc"
    )
    line = " ".join(printable.split())
    return line if len(line) <= 300 else line[:299] + "…"
