"""`vigil`: the client core from a terminal, to check a set-up or script it without a screen.

Every failure is one line on stderr and a non-zero exit code (listed in --help); never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime

from client.cli_alerts import alert_json, detail_lines, summary_lines
from client.core.answers import AlertAnswer, answer_for
from client.core.auth import Account
from client.core.content import highlight_parts
from client.core.errors import (
    AuthRequired,
    CacheError,
    HubAddressError,
    HubError,
    KeyringUnavailable,
    LockedOut,
    OutboxError,
    PolicyError,
    SettingsError,
    VigilError,
)
from client.core.models import Alert
from client.core.outbox import AckRecord, AckState
from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.readiness import Check, ReadinessReporter, run_readiness
from client.core.services import CoreServices
from client.core.settings import Settings
from client.core.status import held_acks_text
from client.core.surveys import MAX_COMMENT_CHARS, SurveyQueue, SurveyState
from client.core.template_fill import fill, form_fields
from client.core.updates import running_version
from client.core.vpn_gate import VpnMode

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SIGN_IN = 3
EXIT_NOT_FOUND = 4
EXIT_HUB = 5
EXIT_CONFIG = 6

EPILOG = """\
exit codes:
  0  done
  1  another error (the message says what happened)
  2  the command line is wrong
  3  sign-in needed or refused (wrong password or code, account locked)
  4  not found in the local cache
  5  the hub cannot be reached or answered badly (acknowledgements stay queued)
  6  configuration problem: IT policy file, settings, or the system keyring

environment:
  VIGIL_POLICY      the IT policy file (default: /etc/vigil/policy.json on Linux)
  VIGIL_CONFIG_DIR  where user settings are kept
  VIGIL_DATA_DIR    where the cache and the acknowledgement outbox are kept
"""

ACTIONS = ("acknowledged", "escalated", "unable")
DEFAULT_ALERTS = 200
MAX_ALERTS = 100_000
# The shell's exit status for a command killed by SIGPIPE (128 + 13): the reader went away.
EXIT_BROKEN_PIPE = 141
DAMAGED = (
    "{kind} {id!r} failed its signature check on this computer, so it is not shown. It was "
    "removed and is fetched again from the hub at the next sync: run `vigil sync`."
)


def _positive(text: str) -> int:
    """argparse type: a whole number from 1 to MAX_ALERTS."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_ALERTS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_ALERTS}, not {value}")
    return value


class CliError(Exception):
    """A failure of the command line itself, with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _exit_code(error: VigilError) -> int:
    if isinstance(error, AuthRequired | LockedOut):
        return EXIT_SIGN_IN
    if isinstance(error, HubAddressError | PolicyError | SettingsError | KeyringUnavailable):
        return EXIT_CONFIG
    if isinstance(error, HubError):
        return EXIT_HUB
    return EXIT_ERROR


class Terminal:
    """Where the command writes: answers to stdout, notes and errors to stderr."""

    def __init__(self) -> None:
        self.out = sys.stdout
        self.err = sys.stderr

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def note(self, text: str) -> None:
        print(f"vigil: {text}", file=self.err)


class _SelfTest(argparse.Action):
    """--self-test: check the installation (see client/selftest.py) and exit with its status."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kwargs: object) -> None:
        from client.selftest import run_self_test

        parser.exit(run_self_test())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigil",
        description="Vigil crisis-alert client: sign in, sync, search the cached library, "
        "and acknowledge alerts from a terminal. `vigil` alone starts the tray app.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="log details to stderr")
    parser.add_argument("--version", action="version", version=f"vigil {running_version()}")
    parser.add_argument(
        "--self-test", action=_SelfTest, help="check that this installation is complete, then exit"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("status", help="hub, sign-in, sync, VPN and outbox state")
    login = commands.add_parser("login", help="sign in (password, then authenticator code)")
    login.add_argument("--username", help="default: the last username used")
    login.add_argument("--hub", metavar="URL", help="the hub address (saved for next time)")
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password as one line from stdin"
    )
    login.add_argument("--code", help="the 6-digit authenticator code (default: ask)")
    commands.add_parser("sync", help="fetch content and alerts, send queued acknowledgements")
    search = commands.add_parser("search", help="search cached playbooks and templates")
    search.add_argument("text", nargs="+")
    playbook = commands.add_parser("playbook", help="show a cached playbook")
    playbook.add_argument("id")
    template = commands.add_parser(
        "template", help="print a cached template, its placeholders filled from --field"
    )
    template.add_argument("id")
    template.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a placeholder's value, e.g. --field patient_first_name=Ana (repeatable)",
    )
    alerts = commands.add_parser(
        "alerts", help="alerts on this computer, newest first, with your answer"
    )
    alerts.add_argument(
        "--limit",
        type=_positive,
        default=DEFAULT_ALERTS,
        help=f"show at most this many (default {DEFAULT_ALERTS})",
    )
    alerts.add_argument("--json", action="store_true", help="print them as JSON")
    one_alert = commands.add_parser(
        "alert", help="one alert on this computer in full, with every update"
    )
    one_alert.add_argument("alert_id")
    one_alert.add_argument("--json", action="store_true", help="print it as JSON")
    ack = commands.add_parser("ack", help="acknowledge an alert (recorded on disk, then sent)")
    ack.add_argument("alert_id")
    ack.add_argument("--action", choices=ACTIONS, default="acknowledged")
    ack.add_argument("--note", help="a short note for the dispatcher")
    acks = commands.add_parser(
        "acks", help="acknowledgements waiting to sync or rejected by the hub"
    )
    acks.add_argument(
        "--dismiss",
        action="store_true",
        help="clear the rejected ones from this list (they stay in each alert's history)",
    )
    survey = commands.add_parser(
        "survey", help="answer the survey of a resolved alert (saved on disk, then sent)"
    )
    survey.add_argument("alert_id")
    survey.add_argument(
        "--clarity", type=int, required=True, help="how clear the instructions were, 1 to 5"
    )
    survey.add_argument(
        "--templates", type=int, help="how useful the templates were, 1 to 5 (omit: not used)"
    )
    survey.add_argument("--comment", help=f"anything else, up to {MAX_COMMENT_CHARS} characters")
    commands.add_parser("surveys", help="surveys of resolved alerts waiting for your answer")
    commands.add_parser("logout", help="sign out and forget the saved sign-in")
    commands.add_parser(
        "readiness",
        help="shift-readiness self-test: print each check, report it to the hub; "
        "exit 0 when ready, 1 when not",
    )
    return parser


class Cli:
    """One run of the command line."""

    def __init__(self, args: argparse.Namespace, terminal: Terminal) -> None:
        self.args = args
        self.term = terminal
        self.paths = AppPaths.default()
        self.settings = Settings.load(self.paths, load_policy())
        for warning in self.settings.warnings:
            self.term.note(warning)
        self._stack = ExitStack()
        self._services: CoreServices | None = None

    def close(self) -> None:
        self._stack.close()

    @property
    def services(self) -> CoreServices:
        if self._services is None:
            if not self.settings.get("hub_url"):
                raise CliError(
                    "No hub address is set. Run `vigil login --hub URL` with the address your "
                    "IT team gave you.",
                    EXIT_CONFIG,
                )
            self._services = CoreServices.build(self.paths, self.settings)
            self._stack.callback(self._services.close)
            if self.settings.vpn_mode() is VpnMode.BLOCK:
                # The command does not run the VPN monitor: decide the VPN state once, now.
                self._services.vpn.check()
            self._services.auth.warning.connect(self.term.note)
            damage = self._services.outbox.damage
            if damage is not None:
                self.term.note(damage.message())
        return self._services

    def run(self) -> int:
        handlers: dict[str, Callable[[], int]] = {
            "status": self.status,
            "login": self.login,
            "sync": self.sync,
            "search": self.search,
            "playbook": self.playbook,
            "template": self.template,
            "alerts": self.alerts,
            "alert": self.alert,
            "ack": self.ack,
            "acks": self.acks,
            "survey": self.survey,
            "surveys": self.surveys,
            "logout": self.logout,
            "readiness": self.readiness,
        }
        return handlers[self.args.command]()

    def _username(self) -> str | None:
        name = self.settings.get("last_username")
        return name if isinstance(name, str) else None

    def _resume(self) -> Account:
        username = self._username()
        account = self.services.auth.resume(username) if username else None
        if account is None:
            raise CliError("Not signed in. Run `vigil login` first.", EXIT_SIGN_IN)
        return account

    def status(self) -> int:
        services = self.services
        locked = " (set by IT policy)" if self.settings.is_locked("hub_url") else ""
        self.term.say(f"Hub:          {services.hub.base_url}{locked}")
        try:
            services.hub.get_json("/healthz", auth=False)
            reach = "reachable"
        except HubError as exc:
            reach = f"not reachable: {exc.message}"
        if services.hub.route.on_backup:
            reach += f", through the backup address {services.hub.current_url}"
        self.term.say(f"Connection:   {reach}")
        username = self._username()
        try:
            saved = username is not None and services.vault.load(username) is not None
            sign_in = f"{username} (saved sign-in)" if saved else "not signed in"
        except KeyringUnavailable as exc:
            sign_in = f"unknown: {exc.message}"
        self.term.say(f"Signed in:    {sign_in}")
        status = services.sync.status
        synced = status.last_synced_at
        when = f"{synced.astimezone():%Y-%m-%d %H:%M}" if synced else "never"
        self.term.say(f"Last synced:  {when}")
        self.term.say(
            f"Library:      {len(services.cache.playbooks())} playbooks, "
            f"{len(services.cache.templates())} templates cached"
        )
        counts = services.outbox.counts()
        self.term.say(
            f"Acks:         {counts.pending} waiting to sync, {counts.rejected} rejected, "
            f"{counts.synced} synced"
        )
        user = username if self._saved_sign_in() else None
        for author, n in counts.held_for_others(user):
            self.term.say(f"              {held_acks_text(author, n)}")
        vpn = services.vpn.check()
        self.term.say(f"VPN:          {vpn.detail}")
        return EXIT_OK

    def login(self) -> int:
        if self.args.hub:
            self.settings.set("hub_url", self.args.hub)
            self.settings.save()
        username = self.args.username or self._username()
        if not username:
            username = self._ask("Username: ")
        if self.args.password_stdin:
            password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        else:
            password = getpass.getpass(f"Password for {username}: ")
        self._check_keyring(username)
        auth = self.services.auth
        challenge = auth.begin(username, password)
        code = self.args.code or self._ask("Authenticator code: ")
        account = auth.complete(challenge, code)
        self.settings.set("last_username", account.username)
        self.settings.save()
        self.term.say(f"Signed in as {account.display_name} ({account.username}).")
        return EXIT_OK

    def _check_keyring(self, username: str) -> None:
        """Fail before signing in when the sign-in could not be kept for the next command."""
        try:
            self.services.vault.load(username)
        except KeyringUnavailable as exc:
            missing = ""
            if sys.platform.startswith("linux") and not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
                missing = (
                    " There is no D-Bus session here (DBUS_SESSION_BUS_ADDRESS is not set), so "
                    "no Secret Service keyring can be reached."
                )
            raise CliError(
                f"Not signed in: Vigil keeps a sign-in only in the system keyring, and none is "
                f"usable. {exc.message}{missing}",
                EXIT_CONFIG,
            ) from None

    def _ask(self, prompt: str) -> str:
        if not sys.stdin.isatty():
            raise CliError(
                f"{prompt.strip(': ')} is needed; give it as an option (see --help).", EXIT_USAGE
            )
        return input(prompt).strip()

    def sync(self) -> int:
        self._resume()
        report = self.services.sync.sync_now()
        content = report.content
        self.term.say(
            f"Synced: {content.stored} playbooks and templates updated, {content.deleted} removed."
        )
        if content.refused:
            self.term.say(f"Refused {len(content.refused)} item(s) with a bad signature or format.")
        if report.content_problem:
            self.term.note(report.content_problem)
        self.term.say(f"Alerts: {report.alerts} new.")
        if report.ack_problem:
            self.term.note(report.ack_problem)
        flush = report.flush
        self.term.say(
            f"Acknowledgements: {flush.synced} sent, {flush.rejected} rejected, "
            f"{flush.pending} waiting."
        )
        self._say_held()
        return EXIT_OK

    def _say_held(self) -> None:
        """Acks that wait for another user (or, from before the upgrade, for nobody known)."""
        status = self.services.sync.status
        for author, n in status.held_acks:
            self.term.say(held_acks_text(author, n) + ".")
        if status.unattributed_acks:
            self.term.say(
                f"{status.unattributed_acks} acknowledgement(s) from before this version of "
                "Vigil wait for the user who made them (see `vigil acks`)."
            )

    def _check_library_open(self) -> None:
        banner = self.services.vpn_gate.banner
        if banner is not None:
            raise CliError(banner, EXIT_ERROR)

    def search(self) -> int:
        self._check_library_open()
        text = " ".join(self.args.text)
        hits = self.services.cache.search(text)
        if not hits:
            self.term.say(f"No cached playbook or template matches {text!r}.")
            return EXIT_OK
        for hit in hits:
            snippet = "".join(
                f"[{part}]" if marked else part for part, marked in highlight_parts(hit.snippet)
            )
            self.term.say(f"{hit.kind:<9} {hit.id}  {hit.title}")
            self.term.say(f"          {' '.join(snippet.split())}")
        return EXIT_OK

    def playbook(self) -> int:
        self._check_library_open()
        found = self.services.cache.playbook(self.args.id)
        if found is None and self.services.cache.is_damaged("playbook", self.args.id):
            raise CliError(DAMAGED.format(kind="Playbook", id=self.args.id), EXIT_NOT_FOUND)
        if found is None:
            raise CliError(
                f"No playbook {self.args.id!r} in the local cache. Run `vigil sync`, or find "
                "its id with `vigil search`.",
                EXIT_NOT_FOUND,
            )
        say = self.term.say
        say(f"{found.title}  [{found.severity}, {found.category}]")
        say(found.summary)
        say()
        say("Steps:")
        for number, step in enumerate(found.steps, 1):
            say(f"  {number}. {step}")
        if found.escalation_path:
            say("Escalation:")
            for level in found.escalation_path:
                say(
                    f"  {level.level}. {level.role}, {level.contact} "
                    f"(after {level.after_minutes} min)"
                )
        if found.phone_tree:
            say("Phone tree:")
            for entry in found.phone_tree:
                notes = f" ({entry.notes})" if entry.notes else ""
                say(f"  {entry.order}. {entry.name}, {entry.role}: {entry.phone}{notes}")
        for template_id in found.template_ids:
            template = self.services.cache.template(template_id)
            if template is not None:
                title = template.title
            elif self.services.cache.is_damaged("template", template_id):
                title = "(failed its signature check; fetched again at the next sync)"
            else:
                title = "(not cached)"
            say(f"Template: {template_id}  {title}")
        return EXIT_OK

    def template(self) -> int:
        self._check_library_open()
        cache = self.services.cache
        found = cache.template(self.args.id)
        if found is None and cache.is_damaged("template", self.args.id):
            raise CliError(DAMAGED.format(kind="Template", id=self.args.id), EXIT_NOT_FOUND)
        if found is None:
            raise CliError(
                f"No template {self.args.id!r} in the local cache. Run `vigil sync`, or find "
                "its id with `vigil search`.",
                EXIT_NOT_FOUND,
            )
        texts = [found.body] + ([found.subject] if found.subject else [])
        fields = form_fields(texts, found.placeholders)
        values = self._field_values({field.name for field in fields})
        self.term.say(f"{found.title}  [{found.channel}, approved by {found.approved_by or '-'}]")
        if found.subject:
            self.term.say(f"Subject: {fill(found.subject, values).text}")
        body = fill(found.body, values)
        self.term.say(body.text)
        if body.unfilled:
            described = {f.name: f.description for f in fields}
            missing = ", ".join(
                f"{name} ({described[name]})" if described.get(name) else name
                for name in body.unfilled
            )
            self.term.note(f"not filled yet: {missing}; give each with --field NAME=VALUE.")
        return EXIT_OK

    def _field_values(self, known: set[str]) -> dict[str, str]:
        values: dict[str, str] = {}
        for given in self.args.field:
            name, sep, value = given.partition("=")
            if not sep or not name:
                raise CliError(f"--field {given!r} must be NAME=VALUE.", EXIT_USAGE)
            if name not in known:
                names = ", ".join(sorted(known)) or "none"
                raise CliError(
                    f"--field {name!r}: template {self.args.id!r} has no such placeholder "
                    f"(it has: {names}).",
                    EXIT_USAGE,
                )
            values[name] = value
        return values

    def alerts(self) -> int:
        services = self.services
        alerts = services.cache.alerts(limit=self.args.limit)
        if not alerts and not self.args.json:
            self.term.say("No alerts on this computer yet. Run `vigil sync` to fetch new ones.")
            return EXIT_OK
        total = services.cache.alert_count()
        if total > len(alerts):
            shown = (
                f"Showing the newest {len(alerts)} of {total} alerts; `--limit {total}` shows all."
            )
            # JSON stays one parseable document on stdout.
            self.term.note(shown) if self.args.json else self.term.say(shown)
        user = self._username() if self._saved_sign_in() else None
        if user is not None:
            self._follow_surveys(alerts, user, shown=True)
        now = datetime.now(UTC)
        if self.args.json:
            listed = [alert_json(a, self._answer(a.id, user), now) for a in alerts]
            self.term.say(json.dumps({"alerts": listed}, indent=2))
            return EXIT_OK
        for alert in alerts:
            answer = self._answer(alert.id, user).describe(requires_ack=alert.requires_ack)
            for line in summary_lines(alert, answer, now):
                self.term.say(line)
        return EXIT_OK

    def alert(self) -> int:
        alert = self.services.cache.alert(self.args.alert_id)
        if alert is None:
            shown = self.args.alert_id[:80]
            raise CliError(
                f"No alert {shown!r} on this computer. Check the id with `vigil alerts` (run "
                "`vigil sync` first if it is new).",
                EXIT_NOT_FOUND,
            )
        user = self._username() if self._saved_sign_in() else None
        answer = self._answer(alert.id, user)
        now = datetime.now(UTC)
        if self.args.json:
            self.term.say(json.dumps(alert_json(alert, answer, now), indent=2))
            return EXIT_OK
        for line in detail_lines(alert, _answer_words(alert, answer), now):
            self.term.say(line)
        return EXIT_OK

    def _answer(self, alert_id: str, user: str | None) -> AlertAnswer:
        """`user`'s answer from this computer's acks and the hub's record of their answers."""
        services = self.services
        hub = services.cache.hub_answers(alert_id, owner=user) if user is not None else []
        return answer_for(services.outbox.for_alert(alert_id), author=user, hub_answers=hub)

    def ack(self) -> int:
        services = self.services
        # Who acknowledges must be known before anything is recorded: an ack is sent only with
        # its author's sign-in. Offline, the saved sign-in in the keyring says who that is.
        account = self._resume_for_ack()
        self._check_alert_known(self.args.alert_id)
        record = services.outbox.record(
            self.args.alert_id, self.args.action, self.args.note, author=account.username
        )
        self.term.say(
            f"Recorded: {record.action} for alert {record.alert_id} by {account.username} "
            f"(ack {record.ack_id}). It is saved on this computer and will reach the hub."
        )
        try:
            services.sync.flush_now()
        except VigilError as exc:
            self.term.note(f"Not sent yet: {exc.message} It stays queued for the next sync.")
            return EXIT_OK
        sent = services.outbox.get(record.ack_id)
        if sent is not None and sent.state is AckState.REJECTED:
            self.term.note(f"The hub rejected it: {_reason(sent)}")
            return EXIT_ERROR
        self.term.say("Sent to the hub.")
        return EXIT_OK

    def _resume_for_ack(self) -> Account:
        try:
            return self._resume()
        except CliError:
            raise CliError(
                "Not signed in, so nothing was recorded: an acknowledgement is recorded under "
                "the person who makes it. Run `vigil login`, then acknowledge again.",
                EXIT_SIGN_IN,
            ) from None

    def _check_alert_known(self, alert_id: str) -> None:
        """Only an alert this computer has can be acknowledged: a mistyped id is refused here,
        before anything is recorded."""
        if self.services.cache.alert(alert_id) is None:
            shown = alert_id if len(alert_id) <= 80 else alert_id[:80] + "…"
            raise CliError(
                f"No alert {shown!r} on this computer. Check the id with `vigil alerts` (run "
                "`vigil sync` first if it is new); nothing was recorded.",
                EXIT_NOT_FOUND,
            )

    def acks(self) -> int:
        outbox = self.services.outbox
        if self.args.dismiss:
            cleared = outbox.dismiss_rejected()
            self.term.say(
                f"Cleared {cleared} rejected acknowledgement(s) from this list; each alert's "
                "history still shows them."
            )
        pending = outbox.pending(limit=10_000)
        rejected = outbox.rejected()
        counts = outbox.counts()
        self.term.say(f"{counts.pending} waiting to sync, {counts.rejected} rejected.")
        for record in pending:
            self.term.say(f"waiting   {_describe(record)}")
        for record in rejected:
            self.term.say(f"rejected  {_describe(record)}: {_reason(record)}")
        user = self._username() if self._saved_sign_in() else None
        for author, n in counts.held_for_others(user):
            self.term.say(held_acks_text(author, n) + ".")
        legacy = counts.unattributed(user)
        if legacy:
            self.term.say(
                f"{legacy} acknowledgement(s) from before this version of Vigil have no "
                "recorded author and are held: only the user last signed in on this computer "
                "at the upgrade can send them."
            )
        return EXIT_OK

    def survey(self) -> int:
        services = self.services
        account = self._resume_for_survey()
        self._check_alert_known(self.args.alert_id)
        queue = self._survey_queue()
        self._follow_surveys(services.cache.alerts(limit=10_000), account.username, shown=False)
        record = queue.answer(
            self.args.alert_id,
            account.username,
            clarity=self.args.clarity,
            templates=self.args.templates,
            comment=self.args.comment,
        )
        self.term.say(
            f"Saved: your survey of {record.label!r} (survey {record.survey_id}). Thank you. It "
            "is on this computer and will reach the hub."
        )
        report = services.sync.send_surveys_now()
        if report is not None and report.error is not None:
            self.term.note(
                f"Not sent yet: {report.error.message} It stays queued for the next sync."
            )
            return EXIT_OK
        sent = queue.get(record.alert_id, account.username)
        if sent is not None and sent.state is SurveyState.REJECTED:
            self.term.note(f"The hub rejected it: {sent.detail or sent.error}")
            return EXIT_ERROR
        if sent is not None and sent.state is SurveyState.SENT:
            self.term.say("Sent to the hub.")
        else:
            self.term.say("Not sent yet: it stays queued for the next sync.")
        return EXIT_OK

    def surveys(self) -> int:
        account = self._resume_for_survey()
        queue = self._survey_queue()
        self._follow_surveys(
            self.services.cache.alerts(limit=10_000), account.username, shown=False
        )
        offered = queue.offered(account.username)
        queued = queue.queued(account.username, limit=10_000)
        self.term.say(
            f"{len(offered)} survey(s) waiting for your answer, {len(queued)} answer(s) "
            "waiting to be sent."
        )
        for record in offered:
            self.term.say(f"waiting  alert {record.alert_id}  {record.label}")
        if offered:
            self.term.say("Answer one with `vigil survey ALERT_ID --clarity N`.")
        return EXIT_OK

    def _resume_for_survey(self) -> Account:
        try:
            return self._resume()
        except CliError:
            raise CliError(
                "Not signed in, so nothing was saved: a survey belongs to the person who was "
                "shown the alert. Run `vigil login`, then answer again.",
                EXIT_SIGN_IN,
            ) from None

    def _survey_queue(self) -> SurveyQueue:
        queue = self.services.surveys
        if queue is None:
            raise CliError(
                "Surveys are unavailable: the survey store in the data folder cannot be used "
                "(see the log). Nothing was saved.",
                EXIT_ERROR,
            )
        return queue

    def _follow_surveys(self, alerts: Sequence[Alert], user: str, *, shown: bool) -> None:
        queue = self.services.surveys
        if queue is not None:
            queue.follow(alerts, user, shown=shown)

    def _saved_sign_in(self) -> bool:
        username = self._username()
        try:
            return username is not None and self.services.vault.load(username) is not None
        except KeyringUnavailable:
            return False

    def readiness(self) -> int:
        services = self.services
        username = self._username()
        try:
            account = services.auth.resume(username) if username else None
        except KeyringUnavailable as exc:
            self.term.note(exc.message)
            account = None
        outcome = run_readiness(
            services,
            ReadinessReporter(services.hub),
            # A terminal cannot see the desktop: those two checks say so instead of guessing.
            None,
            username=account.username if account is not None else None,
            stream_runs_here=False,
        )
        for check in outcome.report.checks:
            self.term.say(_readiness_line(check))
        self.term.say(outcome.report.summary() + ".")
        if outcome.reported:
            self.term.say("Reported to the hub.")
        else:
            self.term.note(f"not reported to the hub: {outcome.problem}")
        return EXIT_OK if outcome.report.ready else EXIT_ERROR

    def logout(self) -> int:
        username = self._username()
        if username is None:
            self.term.say("Not signed in.")
            return EXIT_OK
        auth = self.services.auth
        try:
            resumed = auth.resume(username)
        except KeyringUnavailable as exc:
            # Without a keyring no sign-in was kept, so there is nothing here to remove.
            self.term.note(exc.message)
            self.term.say(f"Signed out {username}: no sign-in is saved on this computer.")
            return EXIT_OK
        if resumed is not None:
            auth.sign_out()
        else:
            self.services.vault.delete(username)
        offline = auth.offline_sign_outs
        if offline is not None and offline.waiting(username) and not offline.flush(username):
            self.term.say(
                f"Signed out {username} on this computer. The hub cannot be reached: the "
                "sign-in is revoked there at the next contact (any vigil command that reaches it)."
            )
            return EXIT_OK
        self.term.say(f"Signed out {username}.")
        return EXIT_OK


def _readiness_line(check: Check) -> str:
    return f"{check.status:<5} {check.name:<14} {check.detail}"


def _with_file(error: VigilError, cli: Cli | None) -> str:
    """The error's message, naming the file it is about when the message does not already."""
    if cli is None:
        return error.message
    files = {CacheError: cli.paths.cache_db, OutboxError: cli.paths.outbox_db}
    for kind, path in files.items():
        if isinstance(error, kind) and str(path) not in error.message:
            return f"{error.message} (file: {path})"
    return error.message


def _answer_words(alert: Alert, answer: AlertAnswer) -> str:
    words = answer.describe(requires_ack=alert.requires_ack)
    return f"{words} (on {answer.device_name})" if answer.device_name else words


def _describe(record: AckRecord) -> str:
    note = f' "{record.note}"' if record.note else ""
    author = record.author or "author unknown"
    return (
        f"{record.acted_at}  alert {record.alert_id}  {record.action}{note}  by {author}  "
        f"(ack {record.ack_id})"
    )


def _reason(record: AckRecord) -> str:
    return record.detail or record.error or "no reason given"


class _NoTracebacks(logging.Formatter):
    """Log lines for a terminal: one line each, never a traceback."""

    def formatException(self, ei: object) -> str:
        return ""

    def formatStack(self, stack_info: str) -> str:
        return ""


def _set_up_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    line = "vigil: %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(line) if debug else _NoTracebacks(line))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (`vigil` alone starts the tray app: launch.py)."""
    args = _parser().parse_args(argv)
    _set_up_logging(args.debug)
    terminal = Terminal()
    cli: Cli | None = None
    try:
        cli = Cli(args, terminal)
        code = cli.run()
        # Flushed here, so a reader that went away is handled below and not at interpreter exit.
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader (e.g. `| head`) has gone: stop quietly, and keep Python's exit-time flush
        # of stdout from failing again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except CliError as exc:
        terminal.note(exc.message)
        return exc.code
    except VigilError as exc:
        terminal.note(_with_file(exc, cli))
        return _exit_code(exc)
    except OSError as exc:
        # A folder or file Vigil needs (VIGIL_DATA_DIR, VIGIL_CONFIG_DIR) is not usable.
        where = f" {exc.filename}" if exc.filename else ""
        terminal.note(f"cannot use{where}: {exc.strerror or type(exc).__name__}.")
        return EXIT_CONFIG
    except KeyboardInterrupt:
        terminal.note("interrupted.")
        return 130
    except EOFError:
        terminal.note("input ended before the command had what it needed.")
        return EXIT_USAGE
    except Exception as exc:
        # Unexpected: say so plainly; --debug shows where (without secrets, which never reach
        # exception messages of the core).
        logging.getLogger("vigil").debug("unexpected error", exc_info=True)
        terminal.note(f"unexpected error ({type(exc).__name__}). Run with --debug for details.")
        return EXIT_ERROR
    finally:
        if cli is not None:
            cli.close()


if __name__ == "__main__":
    sys.exit(main())
