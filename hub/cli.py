"""`vigil-hub`: serve the hub, run accounts, read the audit trail, publish alerts, add content."""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import json
import logging
import socket
import sqlite3
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import qrcode
import uvicorn

from hub import user_admin
from hub.alerts_service import InvalidAlert, publish_alert
from hub.app import create_app, prepare_data_dir
from hub.audit_export import InvalidTime, parse_time, write_csv
from hub.clock import SystemClock
from hub.config import HubSettings, default_data_dir
from hub.connection_limits import raise_open_file_limit
from hub.content_import import ContentImportError, import_content
from hub.demo import load_demo
from hub.reports import InvalidReport, build_report
from hub.server import uvicorn_config
from hub.signing import ContentSigner
from hub.storage import Store
from hub.storage.accounts import ROLES
from hub.storage.audit import AuditQuery
from hub.storage.db import SchemaTooNew

SEVERITIES = ("info", "minor", "major", "critical")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
_AUDIT_PAGE = 1000


class CliError(Exception):
    """A problem the person at the terminal can fix; printed as one line."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one vigil-hub command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    except (CliError, SchemaTooNew) as exc:
        print(f"vigil-hub: {exc}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error) as exc:
        print(f"vigil-hub: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # One line rather than a traceback: the terminal is often an operator's, not a developer's.
        print(f"vigil-hub: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigil-hub", description="The Vigil hub: sign-in, content and crisis alerts."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the hub")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8600, help="port to listen on (0: any free)")
    _add_data_option(serve)
    serve.add_argument(
        "--demo", action="store_true", help="load the demo content and users, print sign-in"
    )
    serve.add_argument("--retention-days", type=_positive_float, default=30.0)
    serve.add_argument("--session-hours", type=_positive_float, default=12.0)
    serve.add_argument(
        "--audit-retention-days",
        type=_positive_float,
        default=HubSettings.audit_retention_days,
        help="how long audit events are kept (default: 2192, six years)",
    )
    serve.add_argument(
        "--vpn-cidr",
        action="append",
        type=_cidr,
        default=[],
        metavar="CIDR",
        help="a VPN egress range, e.g. 10.8.0.0/16 (repeatable)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        type=_cidr,
        default=[],
        metavar="CIDR",
        help="a reverse proxy whose forwarded header names the client, e.g. 127.0.0.1/32 "
        "(repeatable; default: none, the connection's own address counts)",
    )
    serve.add_argument(
        "--forwarded-header",
        choices=("x-forwarded-for", "forwarded"),
        default="x-forwarded-for",
        help="which header the trusted proxies set (default: x-forwarded-for)",
    )
    serve.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    serve.add_argument(
        "--openapi", action="store_true", help="serve the API schema at /openapi.json"
    )
    serve.set_defaults(run=_serve)

    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="user_command", required=True, metavar="COMMAND"
    )
    add = user.add_parser("add", help="add a user and print the authenticator URI")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, required=True)
    _add_password_option(add)
    add.add_argument("--display-name", help="the name shown to others (default: the username)")
    add.add_argument(
        "--init",
        action="store_true",
        help="create the hub in --data if there is none yet (for the first admin)",
    )
    _add_data_option(add)
    add.set_defaults(run=_user_add)

    listing = user.add_parser("list", help="list the users and their state")
    _add_data_option(listing)
    listing.set_defaults(run=_user_list)

    for name, help_text, run in (
        ("show", "show one user (never a secret)", _user_show),
        ("disable", "stop a user signing in and end their sessions now", _user_disable),
        ("enable", "let a disabled user sign in again", _user_enable),
        ("remove", "delete a user (their acks and audit events stay)", _user_remove),
        ("passwd", "set a user's password (from stdin) and end their sessions", _user_passwd),
        ("reset-mfa", "give a user a new authenticator secret, end sessions", _user_reset_mfa),
        ("unlock", "lift a lockout after failed sign-ins", _user_unlock),
        ("revoke-sessions", "end every session of a user now", _user_revoke_sessions),
    ):
        command = user.add_parser(name, help=help_text)
        command.add_argument("username")
        if name == "passwd":
            _add_password_option(command)
        _add_data_option(command)
        command.set_defaults(run=run)

    audit = commands.add_parser("audit", help="print the audit trail")
    audit.add_argument("--since", help="from this date or time (UTC unless it has an offset)")
    audit.add_argument("--until", help="before this date or time")
    audit.add_argument("--user", help="events by or about this username")
    audit.add_argument("--event", help="one event name, or a prefix ending in * (e.g. 'user.*')")
    audit.add_argument("--format", choices=("csv", "json"), default="csv")
    _add_data_option(audit)
    audit.set_defaults(run=_audit)

    alert = commands.add_parser("alert", help="publish alerts").add_subparsers(
        dest="alert_command", required=True, metavar="COMMAND"
    )
    publish = alert.add_parser("publish", help="publish an alert to every agent")
    publish.add_argument("--severity", choices=SEVERITIES, required=True)
    publish.add_argument("--title", required=True)
    publish.add_argument("--body", required=True)
    publish.add_argument("--playbook", metavar="ID", help="the playbook to open with it")
    publish.add_argument(
        "--template", action="append", default=[], metavar="ID", help="a template (repeatable)"
    )
    publish.add_argument(
        "--no-ack", action="store_true", help="agents need not acknowledge this alert"
    )
    publish.add_argument("--expires-in-minutes", type=_positive_float, metavar="N")
    publish.add_argument(
        "--as",
        dest="as_user",
        required=True,
        metavar="USERNAME",
        help="the dispatcher or admin on this hub who publishes it (recorded as issued_by)",
    )
    _add_data_option(publish)
    publish.set_defaults(run=_alert_publish)

    content = commands.add_parser("content", help="manage playbooks and templates")
    content_commands = content.add_subparsers(
        dest="content_command", required=True, metavar="COMMAND"
    )
    import_ = content_commands.add_parser(
        "import", help="import DIR/playbooks/*.json and DIR/templates/*.json"
    )
    import_.add_argument("directory", type=Path, metavar="DIR")
    _add_data_option(import_)
    import_.set_defaults(run=_content_import)

    report = commands.add_parser("report", help="print the incident KPIs of a period")
    report.add_argument("--since", help="alerts issued from this date or time (default: 30 days)")
    report.add_argument("--until", help="alerts issued before this date or time (default: now)")
    report.add_argument("--group", metavar="NAME", help="only this group's members as targets")
    report.add_argument(
        "--drill", action="store_true", help="report the drills instead of the live alerts"
    )
    report.add_argument("--format", choices=("csv", "json"), default="csv")
    _add_data_option(report)
    report.set_defaults(run=_report)
    return parser


def _add_password_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from the first line of stdin",
    )


def _add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"the hub's data folder (default: {default_data_dir()})",
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def _cidr(text: str) -> str:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a CIDR range; write it like 10.8.0.0/16"
        ) from None
    return text


def _data_dir(args: argparse.Namespace) -> Path:
    data: Path | None = args.data
    return data if data is not None else default_data_dir()


def _open_store(settings: HubSettings) -> Store:
    prepare_data_dir(settings)
    return Store.open(settings.database_path, settings.clock)


def _open_existing_store(settings: HubSettings, hint: str = "") -> Store:
    """The store of the hub in the data dir; CliError, creating nothing, when there is none."""
    if not _holds_a_hub(settings.database_path):
        # A mistyped --data must not quietly start a second, empty hub that no client reads.
        raise CliError(
            f"no hub at {settings.data_dir}; start one with "
            f"`vigil-hub serve --data {settings.data_dir}`{hint}"
        )
    prepare_data_dir(settings)
    return Store.open(settings.database_path, settings.clock)


def _holds_a_hub(database: Path) -> bool:
    if not database.is_file():
        return False
    # Read-only, so that looking never creates or changes the file.
    try:
        conn = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return version > 0


def _serve(args: argparse.Namespace) -> int:
    settings = HubSettings(
        data_dir=_data_dir(args),
        retention_days=args.retention_days,
        session_hours=args.session_hours,
        vpn_cidrs=list(args.vpn_cidr),
        openapi=args.openapi,
        audit_retention_days=args.audit_retention_days,
        trusted_proxies=list(args.trusted_proxy),
        forwarded_header=args.forwarded_header,
    )
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    open_file_limit = raise_open_file_limit()
    sock = _listen(args.host, args.port)
    store = _open_store(settings)
    try:
        app = create_app(settings, store)
        if args.demo:
            print(load_demo(store, app.state.signer, settings).summary(), flush=True)
        port = sock.getsockname()[1]
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"Vigil hub on http://{host}:{port} (data: {settings.data_dir})", flush=True)
        config = uvicorn_config(
            app, settings, open_file_limit, log_level=args.log_level, timeout_graceful_shutdown=2
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        store.close()
    return 0


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on accepted sockets whose listener
    # says proto TCP, and without it every keep-alive answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise CliError(
            f"cannot listen on {host} port {port}: {exc.strerror}. "
            "Is another hub running? Choose another --port or --host."
        ) from None
    return sock


def _user_add(args: argparse.Namespace) -> int:
    password = _read_password(sys.stdin, "user add NAME --role agent")
    with _admin_store(args, init=args.init) as (store, actor):
        added = user_admin.create_user(
            store,
            actor,
            username=args.username,
            role=args.role,
            password=password,
            display_name=args.display_name or args.username,
        )
    print(f"Added {added.user.role} {added.user.username}.")
    _print_otpauth(added.otpauth_uri)
    return 0


def _user_list(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, _):
        users = store.accounts.list_users()
        now = _now()
    rows = [("USERNAME", "ROLE", "STATUS", "SESSIONS", "LAST SIGN-IN", "DISPLAY NAME")]
    for user in users:
        wire = user_admin.user_to_wire(user, now)
        rows.append(
            (
                user.username,
                user.role,
                wire["status"],
                str(user.active_sessions),
                wire["last_sign_in_at"] or "never",
                _printable(user.display_name),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        print(
            "  ".join(
                [
                    *(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)),
                    row[-1],
                ]
            )
        )
    if not users:
        print("(no users: add one with `vigil-hub user add`)")
    return 0


def _user_show(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, _):
        user = user_admin.find_user(store, args.username)
        now = _now()
    for key, value in user_admin.user_to_wire(user, now).items():
        shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{key + ':':17} {_printable(str('-' if shown is None else shown))}")
    return 0


def _user_disable(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, actor):
        change = user_admin.disable_user(store, actor, args.username)
    state = "Disabled" if change.changed else "Already disabled:"
    print(f"{state} {change.user.username}; {_sessions(change.sessions_ended)} ended.")
    return 0


def _user_enable(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, actor):
        change = user_admin.enable_user(store, actor, args.username)
    print(f"{'Enabled' if change.changed else 'Already enabled:'} {change.user.username}.")
    return 0


def _user_remove(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, actor):
        change = user_admin.remove_user(store, actor, args.username)
    print(f"Removed {change.user.username}; {_sessions(change.sessions_ended)} ended.")
    return 0


def _user_passwd(args: argparse.Namespace) -> int:
    password = _read_password(sys.stdin, "user passwd NAME")
    with _admin_store(args) as (store, actor):
        change = user_admin.set_password(store, actor, args.username, password)
    print(
        f"Set a new password for {change.user.username}; {_sessions(change.sessions_ended)} ended."
    )
    return 0


def _user_reset_mfa(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, actor):
        reset = user_admin.reset_mfa(store, actor, args.username)
    print(f"New authenticator secret for {reset.user.username}; the old codes no longer work.")
    _print_otpauth(reset.otpauth_uri)
    return 0


def _user_unlock(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, actor):
        user = user_admin.unlock_user(store, actor, args.username)
    print(f"Unlocked {user.username}: they may sign in again now.")
    return 0


def _user_revoke_sessions(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, actor):
        change = user_admin.revoke_sessions(store, actor, args.username)
    print(f"Ended {_sessions(change.sessions_ended)} of {change.user.username}.")
    return 0


def _audit(args: argparse.Namespace) -> int:
    try:
        since = None if args.since is None else parse_time(args.since, "--since")
        until = None if args.until is None else parse_time(args.until, "--until")
    except InvalidTime as exc:
        raise CliError(str(exc)) from None
    settings = HubSettings(data_dir=_data_dir(args))
    store = _open_existing_store(settings)
    try:
        query = AuditQuery(
            since=since, until=until, user=args.user, event=args.event, limit=_AUDIT_PAGE
        )
        first = True
        if args.format == "json":
            sys.stdout.write("[")
        while True:
            events = store.audit.query(query)
            if args.format == "csv":
                write_csv(events, sys.stdout, header=first)
            else:
                for event in events:
                    sys.stdout.write(("\n" if first else ",\n") + json.dumps(event.to_wire()))
                    first = False
            first = False
            if len(events) < _AUDIT_PAGE:
                break
            query = replace(query, after=events[-1].id)
        if args.format == "json":
            sys.stdout.write("\n]\n")
    finally:
        store.close()
    return 0


def _report(args: argparse.Namespace) -> int:
    try:
        since = None if args.since is None else parse_time(args.since, "--since")
        until = None if args.until is None else parse_time(args.until, "--until")
    except InvalidTime as exc:
        raise CliError(str(exc)) from None
    settings = HubSettings(data_dir=_data_dir(args))
    store = _open_existing_store(settings)
    try:
        report = build_report(
            store,
            since=since,
            until=until,
            drill=args.drill,
            group=args.group,
            now=settings.clock.now(),
            names=("--since", "--until"),
        )
    except InvalidReport as exc:
        raise CliError(f"no report: {exc}") from None
    finally:
        store.close()
    if args.format == "csv":
        report.write_csv(sys.stdout)
    else:
        # ASCII escapes: a title's bidi or control characters cannot reorder the terminal's lines.
        sys.stdout.write(json.dumps(report.to_wire(), indent=2) + "\n")
    return 0


def _now() -> float:
    return SystemClock().now()


@contextmanager
def _admin_store(
    args: argparse.Namespace, *, init: bool = False
) -> Iterator[tuple[Store, user_admin.Actor]]:
    settings = HubSettings(data_dir=_data_dir(args))
    store = (
        _open_store(settings)
        if init
        else _open_existing_store(settings, ", or add its first user with --init")
    )
    try:
        yield store, user_admin.Actor(name=f"cli:{_operator()}", source="cli")
    except user_admin.AdminError as exc:
        raise CliError(f"{exc} (data: {settings.data_dir})") from None
    finally:
        store.close()


def _operator() -> str:
    # Account commands run with file access to the hub, not as a hub user: the audit names the
    # OS login that ran them.
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "vigil-hub"


def _sessions(count: int) -> str:
    return "1 session" if count == 1 else f"{count} sessions"


def _print_otpauth(uri: str) -> None:
    print("Add the account to an authenticator app with this URI (or the QR code):")
    print(uri)
    if sys.stdout.isatty():
        _print_qr(uri, sys.stdout)


def _printable(text: str) -> str:
    # Names come from other people: control and bidi characters are shown as escapes, so they can
    # neither move the terminal's cursor nor reorder the line to spoof another name.
    return "".join(
        f"\\u{ord(char):04x}" if unicodedata.category(char)[0] in "CZ" and char != " " else char
        for char in text
    )


def _read_password(stream: TextIO, example: str) -> str:
    line = stream.readline()
    if line.endswith("\n"):
        line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    if not line:
        raise CliError(
            "no password on stdin: pipe it in, e.g. "
            f"printf '%s\\n' \"$PASSWORD\" | vigil-hub {example} --password-stdin"
        )
    return line


def _print_qr(uri: str, out: TextIO) -> None:
    code = qrcode.QRCode(border=2)
    code.add_data(uri)
    code.make(fit=True)
    code.print_ascii(out=out, invert=True)


def _alert_publish(args: argparse.Namespace) -> int:
    settings = HubSettings(data_dir=_data_dir(args))
    expires_at = None
    if args.expires_in_minutes is not None:
        expires_at = datetime.fromtimestamp(
            settings.clock.now() + args.expires_in_minutes * 60, UTC
        )
    store = _open_existing_store(settings)
    try:
        publisher = _publisher(store, args.as_user)
        alert = publish_alert(
            store,
            settings,
            severity=args.severity,
            title=args.title,
            body=args.body,
            playbook_id=args.playbook,
            template_ids=list(args.template),
            requires_ack=not args.no_ack,
            expires_at=expires_at,
            issued_by=publisher,
        )
    except InvalidAlert as exc:
        raise CliError(f"alert not published: {exc}") from None
    finally:
        store.close()
    print(f"Published {alert['severity']} alert seq {alert['seq']} (id {alert['id']}).")
    return 0


def _publisher(store: Store, username: str) -> str:
    """The stored username of a dispatcher or admin; CliError for anyone else."""
    user = store.accounts.find_user(username=username)
    if user is None:
        raise CliError(f"alert not published: no user {username!r} on this hub.")
    if ROLES.index(user.role) < ROLES.index("dispatcher"):
        raise CliError(
            f"alert not published: {user.username!r} is an {user.role}; only a dispatcher or "
            "an admin may publish."
        )
    return user.username


def _content_import(args: argparse.Namespace) -> int:
    settings = HubSettings(data_dir=_data_dir(args))
    store = _open_existing_store(settings)
    try:
        signer = ContentSigner.load_or_create(settings.data_dir)
        report = import_content(store, signer, args.directory)
    except ContentImportError as exc:
        raise CliError(f"nothing imported: {exc}") from None
    finally:
        store.close()
    print(
        f"Imported {args.directory}: {len(report.changed)} added or updated, "
        f"{len(report.unchanged)} unchanged."
    )
    return 0
