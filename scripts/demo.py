"""The demo: an embedded hub with demo data, the tray app signed in to it, and sample alerts.

Run it through scripts/demo, which sets up the .venv first. On a machine without a graphical
display the same story runs as a terminal walk-through with the `vigil` command line.

Everything the demo keeps (the hub's data and the client's own settings, cache and outbox) lives
in one demo folder, so it never touches the agent's real Vigil profile; running it again reuses it.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import math
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import keyring
import keyring.core
import platformdirs
import pyotp
from demo_relay import PagingRelay
from keyring.backends import SecretService

from client.core.errors import VigilError
from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.services import CoreServices
from client.core.settings import Settings
from hub import totp
from hub.alerts_service import (
    AlertDraft,
    AlertUpdateDraft,
    Caller,
    close_alert,
    publish_draft,
    update_alert,
)
from hub.config import FallbackSettings, HubSettings
from hub.demo import DEMO_GROUP, DemoCredentials, DemoUser, load_demo
from hub.server import EmbeddedHub

DEFAULT_PORT = 8600
LOOPBACK_AS_VPN = ("127.0.0.0/8", "::1/128")
CRITICAL_ALERT_DELAY = 5.0
MINOR_ALERT_DELAY = 25.0
ALERT_LIFETIME = timedelta(hours=2)
# A tray app that ends this soon after start did not start at all (e.g. Qt's platform plugin).
APP_START_GRACE = 8.0
APP_STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0
KEYRING_START_TIMEOUT = 10.0
CODE_PRINT_MINUTES = 10
DISPATCHER = "dispatcher"
AGENT = "agent"
CRITICAL_PLAYBOOK = "pb-video-visit-outage"
MINOR_PLAYBOOK = "pb-payment-verification-outage"
ACK_NOTE = "On it: moving West video visits to phone."
DRILL_ACK_NOTE = "Drill: checklist followed, no patients contacted."
# The shortest wait the hub allows before it calls out an agent the alert did not reach.
FALLBACK_AFTER_SECONDS = 10
FALLBACK_WAIT_SECONDS = 60.0
NEXT_UPDATE = timedelta(minutes=30)
UPDATES = (
    (
        "Vendor confirms the outage. Phone visits only until 10:00; do not reschedule patients "
        "who can take a phone visit.",
        None,
    ),
    (
        "Vendor is restoring service region by region. Keep phone visits until we resolve this "
        "alert; new video visits may fail.",
        "major",
    ),
)
RESOLUTION = "Video visits are back in every West state since 09:52. Resume video visits."
SURVEY_COMMENT = "The phone script worked; patients asked for a call-back number."
# In the tray app: the incident's life after the critical alert appears (seconds).
DRILL_AFTER = 30.0
UPDATE_AFTERS = (45.0, 75.0)
RESOLVE_AFTER = 105.0


class DemoFailed(Exception):
    """The demo cannot go on; the message says why and what to do."""


class TrayAppDidNotStart(Exception):
    """The tray app ended right after it started (its log says why)."""


def say(text: str = "") -> None:
    """One line for the person watching the demo."""
    print(text, flush=True)


def has_display() -> bool:
    """Whether a graphical session is there for the tray app (X11 or Wayland)."""
    if sys.platform != "linux":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@dataclass(frozen=True)
class DemoProfile:
    """The demo folder: the hub's data, and a client profile of its own."""

    root: Path

    @classmethod
    def default_root(cls) -> Path:
        """The platform's data folder for the demo."""
        return Path(platformdirs.user_data_dir("vigil-demo", appauthor=False))

    @property
    def hub_dir(self) -> Path:
        return self.root / "hub"

    @property
    def paths(self) -> AppPaths:
        return AppPaths(config_dir=self.root / "client" / "config", data_dir=self.root / "client")

    @property
    def policy_file(self) -> Path:
        return self.root / "policy.json"

    @property
    def app_log(self) -> Path:
        return self.root / "tray-app.log"

    def prepare(self, hub_url: str) -> None:
        """Create the folders and point the demo policy at this run's hub (locked, as IT would)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.paths.config_dir.mkdir(parents=True, exist_ok=True)
        # Plain http is allowed to loopback without allow_plain_http, so the policy needs no more.
        self.policy_file.write_text(f'{{\n  "hub_url": "{hub_url}"\n}}\n', encoding="utf-8")

    def environment(self) -> dict[str, str]:
        """What makes `vigil` use the demo profile instead of the agent's own."""
        return {
            "VIGIL_CONFIG_DIR": str(self.paths.config_dir),
            "VIGIL_DATA_DIR": str(self.paths.data_dir),
            "VIGIL_POLICY": str(self.policy_file),
        }


class PrivateKeyring:
    """A throwaway Secret Service (gnome-keyring on a private D-Bus) for machines without one.

    It holds only this run's demo sign-in and is gone when the demo stops.
    """

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[Any]] = []
        self._store: Path | None = None
        # The private D-Bus address, once started: another terminal needs it to reach the keyring.
        self.bus_address: str | None = None

    @staticmethod
    def possible() -> bool:
        return bool(shutil.which("dbus-daemon") and shutil.which("gnome-keyring-daemon"))

    def start(self) -> None:
        bus = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self._processes.append(bus)
        assert bus.stdout is not None
        address = bus.stdout.readline().strip()
        if not address:
            raise DemoFailed("dbus-daemon did not start, so the demo has no keyring.")
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
        self.bus_address = address
        self._store = Path(tempfile.mkdtemp(prefix="vigil-demo-keyring-"))
        # Its keyring file and control socket go in the temporary folder, nowhere else.
        folders = {"XDG_DATA_HOME": self._store / "data", "XDG_RUNTIME_DIR": self._store / "run"}
        for folder in folders.values():
            folder.mkdir(mode=0o700)
        daemon = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=os.environ | {name: str(folder) for name, folder in folders.items()},
            start_new_session=True,
        )
        self._processes.append(daemon)
        assert daemon.stdin is not None
        # The unlock password only protects this temporary keyring, deleted when the demo ends.
        daemon.stdin.write(b"vigil-demo-throwaway-keyring")
        daemon.stdin.close()
        self._wait_until_serving(daemon)
        # keyring settled on "none" at the first check; point it at the new Secret Service.
        keyring.set_keyring(SecretService.Keyring())

    def _wait_until_serving(self, daemon: subprocess.Popen[Any]) -> None:
        # Until our daemon owns the name, D-Bus would start a second, locked one on first use.
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        deadline = time.monotonic() + KEYRING_START_TIMEOUT
        with open_dbus_connection(bus="SESSION") as connection:
            while time.monotonic() < deadline:
                reply = connection.send_and_get_reply(
                    message_bus.NameHasOwner("org.freedesktop.secrets"), timeout=2
                )
                if reply.body[0]:
                    return
                if daemon.poll() is not None:
                    break
                time.sleep(0.05)
        raise DemoFailed("gnome-keyring-daemon did not start, so the demo has no keyring.")

    def stop(self) -> None:
        for process in reversed(self._processes):
            stop_process(process, signal.SIGTERM, timeout=5)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        self._processes = []
        if self._store is not None:
            shutil.rmtree(self._store, ignore_errors=True)
            self._store = None


def stop_process(process: subprocess.Popen[Any], first: signal.Signals, timeout: float) -> int:
    """Ask a child to stop with `first`, then terminate and kill it; returns its exit code."""
    for sig in (first, signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    return process.wait()


def keyring_works() -> bool:
    """Whether a usable system keyring (e.g. the Secret Service) is there for the sign-in."""
    keyring.core.init_backend()
    return bool(keyring.get_keyring().priority > 0)


@dataclass
class DemoHub:
    """The embedded hub with the demo data, and what a dispatcher does on it."""

    hub: EmbeddedHub
    credentials: DemoCredentials
    relay: PagingRelay
    published: list[dict[str, Any]] = field(default_factory=list)
    critical: dict[str, Any] | None = None

    @classmethod
    def start(cls, data_dir: Path, port: int) -> DemoHub:
        relay = PagingRelay()
        relay.start()
        # The hub counts this computer's own connections as VPN traffic, so the tray shows the
        # VPN as on (checked by the hub), as on an agent's laptop at work. Agents a critical
        # alert does not reach are paged through the demo's own mail relay.
        settings = HubSettings(
            data_dir=data_dir,
            vpn_cidrs=list(LOOPBACK_AS_VPN),
            fallback=FallbackSettings(
                smtp_url=relay.url,
                smtp_from="vigil-hub@demo.example",
                fallback_after_seconds=FALLBACK_AFTER_SECONDS,
            ),
        )
        try:
            return cls._start(settings, port, relay)
        except BaseException:
            relay.stop()
            raise

    @classmethod
    def _start(cls, settings: HubSettings, port: int, relay: PagingRelay) -> DemoHub:
        try:
            hub = EmbeddedHub(settings, port=port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or port == 0:
                raise
            say(f"Port {port} is taken; the demo hub takes a free port instead.")
            hub = EmbeddedHub(settings, port=0)
        try:
            credentials = load_demo(hub.store, hub.app.state.signer, settings)
            hub.start()
        except BaseException:
            hub.stop()
            raise
        return cls(hub, credentials, relay)

    @property
    def url(self) -> str:
        return self.hub.url

    def user(self, username: str) -> DemoUser:
        for user in self.credentials.users:
            if user.username == username:
                return user
        raise DemoFailed(f"The demo data has no user {username!r}.")

    def fresh_code(self, username: str) -> tuple[str, float]:
        """A code the hub accepts now and has not seen, and the time it stops being accepted.

        The hub refuses a code twice, so after a recent sign-in this is the next step's code
        (the hub accepts one step ahead); when both were used it waits for a new step.
        """
        record = self.hub.store.accounts.find_user(username=username)
        if record is None:
            raise DemoFailed(f"The demo user {username!r} is missing on the hub.")
        step = max(totp.time_step(time.time()), record.totp_last_step + 1)
        usable_from = (step - totp.WINDOW_STEPS) * totp.STEP_SECONDS
        if usable_from > time.time():
            wait = usable_from - time.time()
            say(f"Waiting {math.ceil(wait)} s for a fresh authenticator code…")
            time.sleep(wait)
        code = pyotp.TOTP(self.user(username).totp_secret).at(step * totp.STEP_SECONDS)
        return code, (step + totp.WINDOW_STEPS + 1) * totp.STEP_SECONDS

    def publish(
        self,
        severity: str,
        playbook_id: str,
        title: str,
        body: str,
        *,
        drill: bool = False,
        audience: list[str] | None = None,
        next_update: bool = False,
    ) -> dict[str, Any]:
        """Publish an alert as the demo dispatcher, linked to a playbook and its templates."""
        playbook = self.hub.store.content.get("playbook", playbook_id)
        data = playbook.data if playbook is not None else None
        now = datetime.now(UTC)
        draft = AlertDraft.model_validate(
            {
                "severity": severity,
                "title": title,
                "body": body,
                "playbook_id": playbook_id,
                "template_ids": list(data.get("template_ids", [])) if data else [],
                "expires_at": now + ALERT_LIFETIME,
                "drill": drill,
                "audience": audience,
                "next_update_by": now + NEXT_UPDATE if next_update else None,
            }
        )
        published = publish_draft(
            self.hub.store, self.hub.settings, draft, issued_by=DISPATCHER, caller=self._caller
        )
        alert = published.alert
        if alert is None:
            raise DemoFailed(
                "This demo hub holds live critical alerts for a second dispatcher's approval; "
                "turn that off (vigil-hub settings set require-approval off) or use a new folder."
            )
        self.hub.app.state.broker.notify()
        self.published.append(alert)
        kind = "DRILL " if drill else ""
        to = f"the {', '.join(audience)} group" if audience else "every agent"
        say(
            f"Dispatcher published a {kind}{severity} alert to {to} ({published.targeted} agents): "
            f"{title!r} (id {alert['id']})."
        )
        return alert

    @property
    def _caller(self) -> Caller:
        return Caller(username=DISPATCHER, actor=DISPATCHER, source="demo")

    def publish_critical(self) -> dict[str, Any]:
        since = datetime.now().astimezone().strftime("%H:%M")
        self.critical = self.publish(
            "critical",
            CRITICAL_PLAYBOOK,
            "Video visits down in the West region",
            f"Since {since}, patients in CA, OR, WA, NV and AZ cannot join video visits (vendor "
            "incident). Move every West video visit in the next 60 minutes to phone with the "
            "scripts below; reschedule only when the patient cannot take a phone visit. "
            "Next update in 30 minutes.",
            audience=[DEMO_GROUP],
            next_update=True,
        )
        return self.critical

    def publish_drill(self) -> dict[str, Any]:
        return self.publish(
            "major",
            CRITICAL_PLAYBOOK,
            "Quarterly outage drill: video platform",
            "Exercise: walk through the video-outage playbook as if video visits were down. "
            "Do not contact patients; acknowledge when you reached the end of the checklist.",
            drill=True,
        )

    def post_update(self, number: int) -> dict[str, Any]:
        """The dispatcher's update `number` (1 or 2) to the critical alert."""
        critical = self._open_critical()
        text, severity = UPDATES[number - 1]
        draft = AlertUpdateDraft.model_validate(
            {
                "text": text,
                "severity": severity,
                "next_update_by": datetime.now(UTC) + NEXT_UPDATE,
            }
        )
        alert = update_alert(self.hub.store, self.hub.settings, critical["id"], draft, self._caller)
        self.hub.app.state.broker.notify()
        say(f"Dispatcher posted update {number} to the critical alert: {text!r}")
        return alert

    def resolve(self) -> dict[str, Any]:
        """The dispatcher resolves the critical alert with a closing note."""
        critical = self._open_critical()
        alert = close_alert(self.hub.store, critical["id"], "resolved", RESOLUTION, self._caller)
        self.hub.app.state.broker.notify()
        say(f"Dispatcher resolved the critical alert: {RESOLUTION!r}")
        return alert

    def _open_critical(self) -> dict[str, Any]:
        if self.critical is None:
            raise DemoFailed("The critical alert was not published.")
        return self.critical

    def show_pages(self) -> int:
        """Print the fallback notices the paging relay received since the last call."""
        notices = self.relay.new_notices()
        for notice in notices:
            say(f"Paging gateway received for {notice.to}: {notice.subject!r}")
            say(f"  {notice.text}")
        return len(notices)

    def wait_for_page(self, timeout: float) -> None:
        """Wait (bounded) until an agent the critical alert missed is paged, and show it."""
        say(
            f"Sam Rivera (West region) is offline: after {FALLBACK_AFTER_SECONDS} s without a "
            "delivery receipt the hub pages Sam through the fallback channel."
        )
        deadline = time.monotonic() + timeout
        while not self.show_pages():
            if time.monotonic() >= deadline:
                raise DemoFailed(
                    f"No fallback notice reached the paging relay within {timeout:g} s."
                )
            time.sleep(0.2)

    def print_report(self) -> None:
        """The KPI report as `vigil-hub report` prints it: live alerts, then drills apart."""
        live = ["report", "--data", str(self.hub.settings.data_dir), "--format", "csv"]
        for command in (live, [*live, "--drill"]):
            self._report(command)

    def _report(self, command: list[str]) -> None:
        say()
        say(f"$ vigil-hub {shlex.join(command)}")
        result = subprocess.run(
            [sys.executable, "-m", "hub", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=CLI_TIMEOUT,
        )
        for line in result.stdout.rstrip().splitlines():
            say(f"  {line}")
        if result.returncode != 0:
            raise DemoFailed(f"`vigil-hub report` failed (exit code {result.returncode}).")

    def publish_minor(self) -> dict[str, Any]:
        return self.publish(
            "minor",
            MINOR_PLAYBOOK,
            "Insurance eligibility checks are slow",
            "Eligibility checks take up to 2 minutes (clearinghouse delay). Do not turn patients "
            "away: mark the visit 'eligibility pending' and continue the intake.",
        )

    def stop(self) -> None:
        self.hub.stop()
        self.relay.stop()


def print_sign_in(demo: DemoHub) -> None:
    """The demo agent's credentials, so a newcomer can sign in (again) by hand."""
    agent = demo.user(AGENT)
    say("Demo agent, to sign in by hand:")
    say(f"  username:     {agent.username}")
    say(f"  password:     {agent.password or '(changed since the demo made it; not shown)'}")
    say(f"  TOTP secret:  {agent.totp_secret}  (add it to an authenticator app, or use:)")
    print_code(demo)


def print_code(demo: DemoHub, username: str = AGENT) -> None:
    code, until = demo.fresh_code(username)
    left = max(0, int(until - time.time()))
    say(f"  code now:     {code[:3]} {code[3:]}  (accepted for {left} s)")


def print_console(demo: DemoHub) -> None:
    """Where the dispatcher console is and how to sign in to it."""
    say(f"Dispatcher console: open {demo.url}/console in a browser and sign in as")
    for username in (DISPATCHER, "admin"):
        user = demo.user(username)
        say(
            f"  {user.username} ({user.role}), password {user.password or '(changed)'}, "
            f"TOTP secret {user.totp_secret}"
        )
    say("  (add the secret to an authenticator app; the demo also prints codes on request)")


def auto_sign_in(demo: DemoHub, profile: DemoProfile) -> None:
    """Sign the demo profile in through the client core; the tray app resumes from the keyring."""
    agent = demo.user(AGENT)
    if agent.password is None:
        raise DemoFailed(
            "The demo agent's password was changed, so the demo cannot sign in by itself. "
            "Sign in by hand, or start over with a new folder: scripts/demo --data NEW_DIR."
        )
    settings = Settings.load(profile.paths, load_policy(profile.policy_file))
    services = CoreServices.build(profile.paths, settings)
    try:
        challenge = services.auth.begin(agent.username, agent.password)
        code, _until = demo.fresh_code(AGENT)
        account = services.auth.complete(challenge, code)
        settings.set("last_username", account.username)
        # A demo profile must never add itself to the agent's autostart entries.
        settings.set("start_at_login", False)
        settings.save()
    finally:
        services.close()
    say(f"Signed the tray app in as {account.display_name} ({account.username}).")


class Walkthrough:
    """The demo's story in a terminal: each `vigil` command, then what it printed."""

    def __init__(self, demo: DemoHub, profile: DemoProfile) -> None:
        self.demo = demo
        self.env = os.environ | profile.environment()

    def vigil(self, *args: str, stdin: str | None = None, shown: str | None = None) -> str:
        say()
        say(f"$ {shown or 'vigil ' + shlex.join(args)}")
        result = subprocess.run(
            [sys.executable, "-m", "client.launch", *args],
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            timeout=CLI_TIMEOUT,
        )
        for line in result.stdout.rstrip().splitlines():
            say(f"  {line}")
        if result.returncode != 0:
            raise DemoFailed(
                f"`vigil {args[0]}` failed (exit code {result.returncode}); see above."
            )
        return result.stdout

    def run(self) -> None:
        agent = self.demo.user(AGENT)
        if agent.password is None:
            raise DemoFailed(
                "The demo agent's password was changed, so the walk-through cannot sign in. "
                "Start over with a new folder: scripts/demo --data NEW_DIR."
            )
        say("The walk-through below uses the vigil command with the demo profile.")
        self.vigil("status")
        code, _until = self.demo.fresh_code(AGENT)
        login = ("login", "--username", agent.username, "--password-stdin", "--code", code)
        self.vigil(
            *login,
            stdin=agent.password + "\n",
            shown=f"echo {shlex.quote(agent.password)} | vigil {shlex.join(login)}",
        )
        self.vigil("sync")
        self.vigil("search", "video")
        self.vigil("playbook", CRITICAL_PLAYBOOK)
        say()
        critical = self.demo.publish_critical()
        self.demo.publish_minor()
        self.vigil("sync")
        self.vigil("alerts")
        self.vigil("ack", critical["id"], "--note", ACK_NOTE)
        self.vigil("acks")
        self.vigil("status")
        say()
        acks = self.demo.hub.store.alerts.acks_for(critical["id"])
        if not acks:
            raise DemoFailed("The hub has no acknowledgement of the critical alert.")
        ack = acks[-1]
        received = datetime.fromtimestamp(ack.received_at_ms / 1000).astimezone()
        say(
            f"The hub has it: {ack.username} {ack.action} the critical alert "
            f"(received at {received:%H:%M:%S}, note {ack.note!r})."
        )
        self.incident(critical["id"])

    def incident(self, critical_id: str) -> None:
        """The rest of the incident: updates, a drill beside it, the offline agent paged,
        resolution, the survey and the report."""
        say()
        self.demo.post_update(1)
        self.vigil("sync")
        self.vigil("alert", critical_id)
        say()
        drill = self.demo.publish_drill()
        self.vigil("sync")
        self.vigil("alerts")
        self.vigil("ack", drill["id"], "--note", DRILL_ACK_NOTE)
        say()
        self.demo.wait_for_page(FALLBACK_WAIT_SECONDS)
        say()
        self.demo.post_update(2)
        self.demo.resolve()
        self.vigil("sync")
        self.vigil("alert", critical_id)
        self.vigil("surveys")
        survey = ("--clarity", "5", "--templates", "4", "--comment", SURVEY_COMMENT)
        self.vigil("survey", critical_id, *survey)
        self.vigil("sync")
        self.demo.print_report()


@dataclass
class Timeline:
    """Things to do at given times after a start, in order."""

    start: float = field(default_factory=time.monotonic)
    steps: list[tuple[float, Callable[[], object]]] = field(default_factory=list)

    def at(self, seconds: float, action: Callable[[], object]) -> None:
        self.steps.append((self.start + seconds, action))
        self.steps.sort(key=lambda step: step[0])

    def run_due(self) -> None:
        while self.steps and self.steps[0][0] <= time.monotonic():
            _when, action = self.steps.pop(0)
            action()

    def next_time(self) -> float:
        return self.steps[0][0] if self.steps else math.inf


class Keyboard:
    """Enter on the terminal, when there is one: the demo then prints a fresh code."""

    def __init__(self) -> None:
        self.open = sys.stdin is not None and sys.stdin.isatty()

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` s; True when the person pressed Enter."""
        if not self.open:
            time.sleep(max(0.0, timeout))
            return False
        ready, _, _ = select.select([sys.stdin], [], [], max(0.0, timeout))
        if not ready:
            return False
        if sys.stdin.readline() == "":
            self.open = False
            return False
        return True


def run_tray_app(demo: DemoHub, profile: DemoProfile, args: argparse.Namespace) -> int:
    """Run the tray app on the demo profile while alerts arrive; returns when it ends."""
    env = os.environ | profile.environment()
    say(f"Starting the tray app (its log: {profile.app_log}).")
    with profile.app_log.open("wb") as log:
        # Its own session: Ctrl+C reaches the demo, which then stops the app in order.
        app = subprocess.Popen(
            [sys.executable, "-m", "client.app"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    timeline = Timeline()
    timeline.at(args.alert_delay, demo.publish_critical)
    timeline.at(args.alert_delay + MINOR_ALERT_DELAY - CRITICAL_ALERT_DELAY, demo.publish_minor)
    timeline.at(args.alert_delay + DRILL_AFTER, demo.publish_drill)
    for number, after in enumerate(UPDATE_AFTERS, start=1):
        timeline.at(args.alert_delay + after, functools.partial(demo.post_update, number))
    timeline.at(args.alert_delay + RESOLVE_AFTER, demo.resolve)
    timeline.at(args.alert_delay + RESOLVE_AFTER + 5, demo.print_report)
    if not args.auto_sign_in:
        for minute_step in range(1, CODE_PRINT_MINUTES * 2):
            timeline.at(_seconds_to_next_step(minute_step), lambda: print_code(demo))
    deadline = timeline.start + args.exit_after if args.exit_after else math.inf
    keyboard = Keyboard()
    if keyboard.open:
        say("Press Enter here for a fresh authenticator code; Ctrl+C stops the demo.")
    else:
        say("Quit the tray app (or press Ctrl+C here) to stop the demo.")
    try:
        while True:
            status = app.poll()
            if status is not None:
                if status != 0 and time.monotonic() - timeline.start < APP_START_GRACE:
                    _explain_app_failure(status, profile)
                    raise TrayAppDidNotStart
                say("The tray app was closed.")
                return status
            if time.monotonic() >= deadline:
                say(f"{args.exit_after:g} s are up.")
                break
            timeline.run_due()
            demo.show_pages()
            timeout = min(timeline.next_time(), deadline, time.monotonic() + 0.5)
            if keyboard.wait(timeout - time.monotonic()):
                print_code(demo)
    finally:
        if app.poll() is None:
            say("Stopping the tray app…")
            stop_process(app, signal.SIGINT, APP_STOP_TIMEOUT)
    return 0


def _seconds_to_next_step(steps_ahead: int) -> float:
    # Just after the code changes, counted from now.
    now = time.time()
    return (totp.time_step(now) + steps_ahead) * totp.STEP_SECONDS - now + 0.5


def _explain_app_failure(status: int, profile: DemoProfile) -> None:
    say(f"The tray app could not start (exit code {status}). The end of its log:")
    with contextlib.suppress(OSError):
        for line in profile.app_log.read_text(errors="replace").splitlines()[-15:]:
            say(f"  {line}")
    say(
        "If Qt could not load its platform plugin, run scripts/bootstrap as root to install the "
        "Debian libraries Qt needs, then run scripts/demo again."
    )


def keep_hub_running(
    demo: DemoHub, profile: DemoProfile, exit_after: float | None, bus_address: str | None = None
) -> None:
    """Serve until Ctrl+C (or `exit_after` s), showing how to use the hub from a terminal; with
    the demo's private keyring, how another terminal reaches it (its D-Bus address)."""
    say()
    say(f"The demo hub keeps running at {demo.url}. Try the vigil command in another terminal:")
    environment = profile.environment()
    if bus_address:
        # The sign-in lives in this run's private keyring, reachable only on its own D-Bus.
        environment["DBUS_SESSION_BUS_ADDRESS"] = bus_address
    for name, value in environment.items():
        say(f"  export {name}={shlex.quote(value)}")
    say("  .venv/bin/vigil status")
    say(
        "Press Enter here for fresh authenticator codes (agent, dispatcher, admin); Ctrl+C "
        "stops the demo."
    )
    deadline = time.monotonic() + exit_after if exit_after else math.inf
    keyboard = Keyboard()
    while time.monotonic() < deadline:
        if keyboard.wait(min(deadline - time.monotonic(), 3600)):
            for username in (AGENT, DISPATCHER, "admin"):
                say(f"{username}:")
                print_code(demo, username)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl+C (SIGINT) and SIGTERM both stop the demo cleanly."""

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous_term = signal.signal(signal.SIGTERM, on_term)
    # A shell starts background jobs with SIGINT ignored; the demo must still stop on it.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/demo",
        description="Vigil's demo: an embedded hub with demo data, the tray app signed in to it, "
        "and a sample crisis alert. Without a display, a walk-through with the vigil command.",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"the demo folder, kept between runs (default: {DemoProfile.default_root()})",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="the hub's port on 127.0.0.1 (0: any free)"
    )
    parser.add_argument(
        "--no-auto-sign-in",
        dest="auto_sign_in",
        action="store_false",
        help="leave the sign-in to you: the demo prints the username, password and codes",
    )
    parser.add_argument(
        "--walkthrough-only",
        action="store_true",
        help="run the terminal walk-through even with a display, then exit",
    )
    parser.add_argument(
        "--alert-delay",
        type=float,
        default=CRITICAL_ALERT_DELAY,
        metavar="SECONDS",
        help="when the critical alert is published after the tray app starts (default: 5)",
    )
    parser.add_argument(
        "--exit-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop by itself after this long (default: run until Ctrl+C or the app quits)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit status."""
    args = _parser().parse_args(argv)
    profile = DemoProfile((args.data or DemoProfile.default_root()).resolve())
    private_keyring = PrivateKeyring()
    demo: DemoHub | None = None
    with interruptible():
        try:
            demo = DemoHub.start(profile.hub_dir, args.port)
            profile.prepare(demo.url)
            say(f"Vigil demo hub: {demo.url} (data and demo profile in {profile.root})")
            say(_content_line(demo))
            print_console(demo)
            graphical = has_display() and not args.walkthrough_only
            if not has_display():
                say(
                    "No graphical display here (neither DISPLAY nor WAYLAND_DISPLAY is set), so "
                    "the tray app cannot open. The hub runs all the same, and the story plays out "
                    "with the vigil command in this terminal instead."
                )
            has_keyring = _ensure_keyring(private_keyring)
            if graphical:
                return _graphical(demo, profile, args, has_keyring)
            if not has_keyring:
                raise DemoFailed(
                    "The walk-through needs a system keyring to keep the sign-in between "
                    "commands, and there is none. Install one (as root: apt-get install "
                    "gnome-keyring dbus, or run scripts/bootstrap as root) and run the demo again."
                )
            Walkthrough(demo, profile).run()
            if sys.stdin is not None and sys.stdin.isatty() and not args.walkthrough_only:
                keep_hub_running(demo, profile, args.exit_after, private_keyring.bus_address)
            return 0
        except DemoFailed as exc:
            say(f"demo: {exc}")
            return 1
        except VigilError as exc:
            say(f"demo: {exc.message}")
            return 1
        except KeyboardInterrupt:
            say()
            say("Stopping the demo…")
            return 130
        finally:
            if demo is not None:
                demo.stop()
                say("The demo hub stopped.")
            private_keyring.stop()


def _content_line(demo: DemoHub) -> str:
    content = demo.credentials.content
    return (
        f"Demo library: {len(content.changed)} playbooks and templates added or updated, "
        f"{len(content.unchanged)} already current."
    )


def _ensure_keyring(private_keyring: PrivateKeyring) -> bool:
    if keyring_works():
        return True
    if not PrivateKeyring.possible():
        say(
            "No system keyring (Secret Service) here, and gnome-keyring is not installed to start "
            "a private one. Vigil keeps sign-ins only in the keyring, so you will sign in by hand."
        )
        return False
    say("No system keyring here; the demo starts a private one for this run.")
    private_keyring.start()
    return True


def _graphical(
    demo: DemoHub, profile: DemoProfile, args: argparse.Namespace, has_keyring: bool
) -> int:
    if args.auto_sign_in and has_keyring:
        auto_sign_in(demo, profile)
    else:
        args.auto_sign_in = False
    print_sign_in(demo)
    say(
        f"A critical alert for the West region arrives {args.alert_delay:g} s after the tray app "
        f"starts, and a minor one a little later; a drill runs beside it. Two updates follow, "
        f"the offline agent Sam is paged, and {RESOLVE_AFTER:g} s after the alert it is resolved: "
        "answer the survey, then see the report here."
    )
    try:
        return run_tray_app(demo, profile, args)
    except TrayAppDidNotStart:
        if not has_keyring:
            return 1
    say("The story plays out with the vigil command in this terminal instead.")
    Walkthrough(demo, profile).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
