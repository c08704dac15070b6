"""`vigil-hub`: serve the hub, run accounts and groups, read the audit trail, run incidents."""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import json
import logging
import os
import socket
import sqlite3
import sys
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO

import qrcode
import uvicorn
from pydantic import ValidationError

from hub import alerts_service, user_admin
from hub.alerts_service import AlertRefused, AlertUpdateDraft, Caller, build_draft, publish_draft
from hub.app import create_app, prepare_data_dir
from hub.audit_export import InvalidTime, parse_time, write_csv
from hub.clock import SystemClock
from hub.config import FallbackConfigError, FallbackSettings, HubSettings, default_data_dir
from hub.connection_limits import ConnectionLimits, connection_cap, raise_open_file_limit
from hub.content_import import ContentImportError, import_content
from hub.database_url import DATABASE_ENV, is_postgres_url, redacted
from hub.demo import load_demo
from hub.garbage_collection import freeze_start_up_objects, tune_for_fan_out
from hub.migrate_to import MigrateRefused, migrate_to
from hub.notifiers import channels_from_settings
from hub.notifiers.secret_file import read_smtp_credentials, read_webhook_secret
from hub.reports import InvalidReport, build_report
from hub.server import uvicorn_config
from hub.signing import ContentSigner
from hub.storage import Store
from hub.storage.accounts import ROLES
from hub.storage.audit import AuditQuery
from hub.storage.db import DATABASE_ERRORS, PostgresDatabase, SchemaTooNew
from hub.storage.groups import GROUP_KINDS, UserProfile

SEVERITIES = ("info", "minor", "major", "critical")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
_AUDIT_PAGE = 1000
# Beyond any open-file limit a process gets; the cap is kept within the real one anyway.
MAX_CONNECTIONS_CEILING = 1_000_000


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
    except OSError as exc:
        print(f"vigil-hub: {exc}", file=sys.stderr)
        return 1
    except DATABASE_ERRORS as exc:
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
    serve.add_argument(
        "--max-connections",
        type=_connection_count,
        default=ConnectionLimits.max_connections,
        metavar="N",
        help=f"connections this process accepts at once (default: "
        f"{ConnectionLimits.max_connections:,}, within the open-file limit); alert streams may "
        f"take all but {ConnectionLimits.connections_kept_for_requests} of them (half, below "
        f"{2 * ConnectionLimits.connections_kept_for_requests:,})",
    )
    _add_fallback_options(serve)
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

    contact = user.add_parser("contact", help="set or clear a user's call-out phone and email")
    contact.add_argument("username")
    contact.add_argument("--phone", help="the phone-tree number, e.g. '+1 (555) 010-2030'")
    contact.add_argument(
        "--fallback-email", help="where the fallback notice goes (an email-to-SMS gateway)"
    )
    contact.add_argument("--clear-phone", action="store_true")
    contact.add_argument("--clear-fallback-email", action="store_true")
    _add_data_option(contact)
    contact.set_defaults(run=_user_contact)

    _add_group_commands(commands)
    _add_settings_commands(commands)

    audit = commands.add_parser("audit", help="print the audit trail")
    audit.add_argument("--since", help="from this date or time (UTC unless it has an offset)")
    audit.add_argument("--until", help="before this date or time")
    audit.add_argument("--user", help="events by or about this username")
    audit.add_argument("--event", help="one event name, or a prefix ending in * (e.g. 'user.*')")
    audit.add_argument("--format", choices=("csv", "json"), default="csv")
    _add_data_option(audit)
    audit.set_defaults(run=_audit)

    _add_alert_commands(commands)

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


def _add_fallback_options(serve: argparse.ArgumentParser) -> None:
    fallback = serve.add_argument_group(
        "fallback channels", "reach agents the alert stream cannot (default: none)"
    )
    fallback.add_argument(
        "--smtp-url",
        metavar="URL",
        help="mail relay: smtp+starttls://HOST[:587], smtps://HOST[:465], "
        "or smtp://HOST[:25] to this computer only",
    )
    fallback.add_argument("--smtp-from", metavar="ADDRESS", help="the notices' sender address")
    fallback.add_argument(
        "--smtp-credentials-file",
        type=Path,
        metavar="FILE",
        help="the relay's username:password on one line (mode 0600)",
    )
    fallback.add_argument(
        "--smtp-ca-file", type=Path, metavar="FILE", help="an extra CA (PEM) for the relay"
    )
    fallback.add_argument(
        "--webhook-url", metavar="URL", help="https:// receiver of signed JSON notices"
    )
    fallback.add_argument(
        "--webhook-secret-file",
        type=Path,
        metavar="FILE",
        help="the HMAC key for X-Vigil-Signature, one line of 32+ characters (mode 0600)",
    )
    fallback.add_argument(
        "--webhook-ca-file", type=Path, metavar="FILE", help="an extra CA (PEM) for the receiver"
    )
    fallback.add_argument(
        "--fallback-after-seconds",
        type=float,
        default=FallbackSettings.fallback_after_seconds,
        metavar="N",
        help="how long a critical alert may go undelivered before the channels are used "
        "(10 to 86400, default: 120)",
    )


def _fallback_settings(args: argparse.Namespace) -> FallbackSettings:
    """The fallback channels the flags ask for, secrets read; CliError naming a bad flag."""
    try:
        settings = FallbackSettings(
            smtp_url=args.smtp_url,
            smtp_from=args.smtp_from,
            smtp_credentials=(
                read_smtp_credentials(args.smtp_credentials_file)
                if args.smtp_credentials_file is not None
                else None
            ),
            smtp_ca_file=args.smtp_ca_file,
            webhook_url=args.webhook_url,
            webhook_secret=(
                read_webhook_secret(args.webhook_secret_file)
                if args.webhook_secret_file is not None
                else None
            ),
            webhook_ca_file=args.webhook_ca_file,
            fallback_after_seconds=args.fallback_after_seconds,
        )
        # Builds the TLS contexts now, so that a bad CA file stops the start, not a crisis.
        channels_from_settings(settings)
    except FallbackConfigError as exc:
        raise CliError(str(exc)) from None
    return settings


def _add_alert_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alert = commands.add_parser("alert", help="publish and run incidents").add_subparsers(
        dest="alert_command", required=True, metavar="COMMAND"
    )
    publish = alert.add_parser("publish", help="publish an alert to every agent or some groups")
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
        "--drill", action="store_true", help="an exercise: marked DRILL everywhere, kept apart"
    )
    publish.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="NAME",
        help="send only to this group's agents (repeatable; default: every agent)",
    )
    _add_next_update_option(publish)
    publish.add_argument(
        "--override-approval",
        metavar="REASON",
        help="publish a live critical alert without a second dispatcher, saying why",
    )
    _add_as_option(publish, "who publishes it (recorded as issued_by)")
    _add_data_option(publish)
    publish.set_defaults(run=_alert_publish)

    update = alert.add_parser("update", help="add an update to an open alert")
    update.add_argument("alert_id", metavar="ID")
    update.add_argument("--text", required=True)
    update.add_argument("--severity", choices=SEVERITIES)
    update.add_argument("--title")
    update.add_argument(
        "--link", action="append", default=[], metavar="URL", help="an https link (repeatable)"
    )
    _add_next_update_option(update)
    _add_as_option(update, "who writes the update")
    _add_data_option(update)
    update.set_defaults(run=_alert_update)

    for name, help_text, run in (
        ("resolve", "close an alert: the incident is over", _alert_resolve),
        ("retract", "close an alert that was sent in error", _alert_retract),
    ):
        closing = alert.add_parser(name, help=help_text)
        closing.add_argument("alert_id", metavar="ID")
        closing.add_argument("--note", required=True)
        _add_as_option(closing, f"who {name}s it")
        _add_data_option(closing)
        closing.set_defaults(run=run)

    approve = alert.add_parser("approve", help="publish an alert held for a second dispatcher")
    approve.add_argument("approval_id", metavar="ID")
    _add_as_option(approve, "the second dispatcher (not the one who asked)")
    _add_data_option(approve)
    approve.set_defaults(run=_alert_approve)

    reject = alert.add_parser("reject", help="refuse an alert held for approval")
    reject.add_argument("approval_id", metavar="ID")
    reject.add_argument("--reason", required=True)
    _add_as_option(reject, "who rejects it")
    _add_data_option(reject)
    reject.set_defaults(run=_alert_reject)

    listing = alert.add_parser("list", help="list the kept alerts, newest first")
    state = listing.add_mutually_exclusive_group()
    state.add_argument("--open", dest="state", action="store_const", const="open")
    state.add_argument("--closed", dest="state", action="store_const", const="closed")
    kind = listing.add_mutually_exclusive_group()
    kind.add_argument("--drill", dest="drill", action="store_const", const=True)
    kind.add_argument("--live", dest="drill", action="store_const", const=False)
    _add_data_option(listing)
    listing.set_defaults(run=_alert_list, state="all", drill=None)

    show = alert.add_parser("show", help="show an alert, its updates, targets and answers")
    show.add_argument("alert_id", metavar="ID")
    _add_data_option(show)
    show.set_defaults(run=_alert_show)


def _add_group_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser("group", help="manage the groups alerts target").add_subparsers(
        dest="group_command", required=True, metavar="COMMAND"
    )
    add = group.add_parser("add", help="add an empty group")
    add.add_argument("name")
    add.add_argument("--kind", choices=sorted(GROUP_KINDS), required=True)
    add.add_argument("--description", default="")
    _add_data_option(add)
    add.set_defaults(run=_group_add)

    listing = group.add_parser("list", help="list the groups")
    _add_data_option(listing)
    listing.set_defaults(run=_group_list)

    for name, help_text, run in (
        ("show", "show a group and its members", _group_show),
        ("remove", "delete a group (sent alerts keep their targets)", _group_remove),
    ):
        command = group.add_parser(name, help=help_text)
        command.add_argument("name")
        _add_data_option(command)
        command.set_defaults(run=run)

    for name, help_text, run in (
        ("add-member", "put users in a group", _group_add_members),
        ("remove-member", "take users out of a group", _group_remove_members),
    ):
        command = group.add_parser(name, help=help_text)
        command.add_argument("name")
        command.add_argument("usernames", nargs="+", metavar="USER")
        _add_data_option(command)
        command.set_defaults(run=run)


def _add_settings_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    settings = commands.add_parser(
        "settings", help="show or change hub-wide settings"
    ).add_subparsers(dest="settings_command", required=True, metavar="COMMAND")
    migrate = commands.add_parser(
        "migrate", help="create or upgrade the hub's tables, then exit (serve does it too)"
    )
    _add_data_option(migrate)
    migrate.set_defaults(run=_migrate)
    move = commands.add_parser(
        "migrate-to",
        help="copy the data folder's SQLite hub into an empty PostgreSQL database, verified",
    )
    move.add_argument("url", type=_database_url, metavar="URL", help="postgresql://...")
    move.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"the data folder whose hub is copied (default: {default_data_dir()})",
    )
    move.set_defaults(run=_migrate_to)

    show = settings.add_parser("show", help="print the hub-wide settings")
    _add_data_option(show)
    show.set_defaults(run=_settings_show)
    change = settings.add_parser("set", help="change a hub-wide setting")
    change.add_argument("setting", choices=("require-approval",))
    change.add_argument("value", choices=("on", "off"))
    _add_data_option(change)
    change.set_defaults(run=_settings_set)


def _add_next_update_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--next-update-in-minutes",
        type=_positive_float,
        metavar="N",
        help="promise agents the next update within N minutes (at most 7 days)",
    )


def _add_as_option(parser: argparse.ArgumentParser, who: str) -> None:
    parser.add_argument(
        "--as",
        dest="as_user",
        required=True,
        metavar="USERNAME",
        help=f"the dispatcher or admin on this hub {who}",
    )


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
    parser.add_argument(
        "--database",
        type=_database_url,
        default=None,
        metavar="URL",
        help="a postgresql:// URL to keep the hub's state in instead of the data folder's SQLite "
        f"file (default: ${DATABASE_ENV}, if set); put the password in ~/.pgpass, not here",
    )


def _database_url(text: str) -> str:
    if not is_postgres_url(text):
        raise argparse.ArgumentTypeError(
            f"{redacted(text)!r} is not a postgresql:// URL; leave --database out to keep the "
            "hub's state in the data folder"
        )
    return text


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def _connection_count(text: str) -> int:
    try:
        value = int(text.strip().replace("_", "").replace(",", ""), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_CONNECTIONS_CEILING:
        raise argparse.ArgumentTypeError(
            f"{value} is out of range: give 1 to {MAX_CONNECTIONS_CEILING:,} connections"
        )
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


def _settings(args: argparse.Namespace) -> HubSettings:
    return HubSettings(data_dir=_data_dir(args), database_url=_chosen_database(args))


def _chosen_database(args: argparse.Namespace) -> str | None:
    url: str | None = args.database
    if url is None:
        url = os.environ.get(DATABASE_ENV) or None
        if url is not None:
            _database_url(url)
    return url


def _open_store(settings: HubSettings) -> Store:
    prepare_data_dir(settings)
    return Store.open(settings.database, settings.clock)


def _open_existing_store(settings: HubSettings, hint: str = "") -> Store:
    """The store of the hub in the data dir; CliError, creating nothing, when there is none."""
    if settings.database_url is not None:
        if not _postgres_holds_a_hub(settings.database_url):
            where = redacted(settings.database_url)
            raise CliError(
                f"no hub at {where}; start one with `vigil-hub serve --database URL` or create "
                f"its tables with `vigil-hub migrate --database URL`{hint}"
            )
    elif not _holds_a_hub(settings.database_path):
        # A mistyped --data must not quietly start a second, empty hub that no client reads.
        raise CliError(
            f"no hub at {settings.data_dir}; start one with "
            f"`vigil-hub serve --data {settings.data_dir}`{hint}"
        )
    prepare_data_dir(settings)
    return Store.open(settings.database, settings.clock)


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


def _migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _open_store(settings)
    try:
        with store.db.read() as conn:
            version = store.db.schema_version(conn)
    finally:
        store.close()
    print(f"Schema {version} (the newest this hub knows) in {store.db.location}")
    return 0


def _migrate_to(args: argparse.Namespace) -> int:
    settings = HubSettings(data_dir=_data_dir(args))
    if not _holds_a_hub(settings.database_path):
        raise CliError(f"no hub at {settings.data_dir} to copy; name its folder with --data")
    try:
        tables = migrate_to(settings.database_path, args.url)
    except MigrateRefused as exc:
        raise CliError(str(exc)) from None
    for table in tables:
        print(f"{table.name:<24} {table.rows:>10} rows  checksum {table.checksum}  verified")
    print(
        f"Copied {sum(t.rows for t in tables)} rows in {len(tables)} tables to "
        f"{redacted(args.url)}; start the hub with --database on that URL."
    )
    return 0


def _postgres_holds_a_hub(url: str) -> bool:
    """Whether the database has the hub's tables, looked at read-only."""
    db = PostgresDatabase(url)
    try:
        with db.read() as conn:
            return db.schema_version(conn) > 0
    finally:
        db.close()


def _serve(args: argparse.Namespace) -> int:
    settings = HubSettings(
        data_dir=_data_dir(args),
        database_url=_chosen_database(args),
        retention_days=args.retention_days,
        session_hours=args.session_hours,
        vpn_cidrs=list(args.vpn_cidr),
        openapi=args.openapi,
        audit_retention_days=args.audit_retention_days,
        trusted_proxies=list(args.trusted_proxy),
        forwarded_header=args.forwarded_header,
        fallback=_fallback_settings(args),
        limits=ConnectionLimits(max_connections=args.max_connections),
    )
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    max_connections = connection_cap(settings.limits, raise_open_file_limit())
    sock = _listen(args.host, args.port)
    store = _open_store(settings)
    try:
        app = create_app(settings, store, max_connections=max_connections)
        if args.demo:
            print(load_demo(store, app.state.signer, settings).summary(), flush=True)
        port = sock.getsockname()[1]
        host = f"[{args.host}]" if ":" in args.host else args.host
        where = f"data: {settings.data_dir}"
        if settings.database_url is not None:
            where += f", database: {redacted(settings.database_url)}"
        print(f"Vigil hub on http://{host}:{port} ({where})", flush=True)
        channels = ", ".join(settings.fallback.channel_names) or "none"
        print(f"Fallback channels: {channels}", flush=True)
        config = uvicorn_config(
            app, settings, max_connections, log_level=args.log_level, timeout_graceful_shutdown=2
        )
        tune_for_fan_out()
        freeze_start_up_objects()
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
        profiles = store.groups.profiles()
        now = _now()
    rows = [("USERNAME", "ROLE", "STATUS", "SESSIONS", "LAST SIGN-IN", "DISPLAY NAME")]
    for user in users:
        profile = profiles.get(user.username.lower(), UserProfile([], None, None))
        wire = user_admin.user_to_wire(user, now, profile)
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
        wire = user_admin.user_to_wire(user, _now(), user_admin.profile_of(store, user))
    for key, value in wire.items():
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
    settings = _settings(args)
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
    settings = _settings(args)
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
    settings = _settings(args)
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


def _user_contact(args: argparse.Namespace) -> int:
    changes: dict[str, str | None] = {}
    for field, value, clear in (
        ("phone", args.phone, args.clear_phone),
        ("fallback_email", args.fallback_email, args.clear_fallback_email),
    ):
        option = field.replace("_", "-")
        if value is not None and clear:
            raise CliError(f"give --{option} or --clear-{option}, not both.")
        if value is not None or clear:
            changes[field] = value
    if not changes:
        raise CliError("nothing to change: give --phone, --fallback-email or a --clear- option.")
    with _admin_store(args) as (store, actor):
        user = user_admin.set_contact(store, actor, args.username, changes)
        profile = user_admin.profile_of(store, user)
    print(
        f"Contact of {user.username}: phone {_printable(profile.phone or '-')}, "
        f"fallback email {_printable(profile.fallback_email or '-')}."
    )
    return 0


def _group_add(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, actor):
        group = user_admin.create_group(store, actor, args.name, args.kind, args.description)
    print(f"Added {group.kind} group {_printable(group.name)}.")
    return 0


def _group_list(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, _):
        groups = store.groups.all()
        counts = store.groups.agent_counts()
    rows = [("NAME", "KIND", "MEMBERS", "AGENTS", "DESCRIPTION")]
    rows += [
        (
            _printable(group.name),
            group.kind,
            str(len(group.members)),
            str(counts.get(group.name, 0)),
            _printable(group.description),
        )
        for group in groups
    ]
    _print_table(rows)
    if not groups:
        print("(no groups: add one with `vigil-hub group add`)")
    return 0


def _group_show(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, _):
        group = user_admin.find_group(store, args.name)
        agents = store.groups.agent_counts().get(group.name, 0)
    wire = user_admin.group_to_wire(group, agents)
    for key, value in wire.items():
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        print(f"{key + ':':13} {_printable(shown or '-')}")
    return 0


def _group_remove(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, actor):
        group = user_admin.remove_group(store, actor, args.name)
    print(f"Removed group {_printable(group.name)}; alerts already sent keep their targets.")
    return 0


def _group_add_members(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, actor):
        added = user_admin.add_members(store, actor, args.name, args.usernames)
    print(f"Added to {_printable(args.name)}: {', '.join(added) or 'nobody new'}.")
    return 0


def _group_remove_members(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, actor):
        removed = user_admin.remove_members(store, actor, args.name, args.usernames)
    print(f"Removed from {_printable(args.name)}: {', '.join(removed) or 'nobody (not members)'}.")
    return 0


def _settings_show(args: argparse.Namespace) -> int:
    with _admin_store(args) as (store, _):
        required = store.settings.require_approval()
    print(f"require-approval: {'on' if required else 'off'}")
    return 0


def _settings_set(args: argparse.Namespace) -> int:
    required = args.value == "on"
    with _admin_store(args) as (store, actor):
        changed = store.settings.set_require_approval(required)
        store.audit.record(
            "settings.changed",
            actor=actor.name,
            subject="require_approval",
            source=actor.source,
            outcome="ok" if changed else "no_change",
            detail={"value": args.value},
        )
    state = "now" if changed else "already"
    print(f"require-approval is {state} {args.value}.")
    return 0


@contextmanager
def _incident_store(args: argparse.Namespace, refused: str) -> Iterator[tuple[Store, HubSettings]]:
    """The hub's store for an alert command; a refusal becomes one line saying what was not done."""
    settings = _settings(args)
    store = _open_existing_store(settings)
    try:
        yield store, settings
    except AlertRefused as exc:
        raise CliError(f"{refused}: {exc}") from None
    finally:
        store.close()


def _alert_publish(args: argparse.Namespace) -> int:
    with _incident_store(args, "alert not published") as (store, settings):
        now = settings.clock.now()
        draft = build_draft(
            severity=args.severity,
            title=args.title,
            body=args.body,
            playbook_id=args.playbook,
            template_ids=list(args.template),
            requires_ack=not args.no_ack,
            expires_at=_minutes_from(now, args.expires_in_minutes),
            drill=args.drill,
            audience=list(args.group) or None,
            next_update_by=_minutes_from(now, args.next_update_in_minutes),
            override_approval=args.override_approval,
        )
        caller = _caller(store, args.as_user, "alert not published", "publish")
        published = publish_draft(store, settings, draft, issued_by=caller.username, caller=caller)
    if published.alert is None:
        approval_id = published.approval["id"] if published.approval else "?"
        print(
            f"Not sent yet: pending approval {approval_id}. Another dispatcher approves it with "
            f"`vigil-hub alert approve {approval_id} --as USERNAME`."
        )
        return 0
    alert = published.alert
    drill = " DRILL" if alert["drill"] else ""
    print(
        f"Published{drill} {alert['severity']} alert seq {alert['seq']} (id {alert['id']}) "
        f"to {_agents(published.targeted)}."
    )
    return 0


def _alert_update(args: argparse.Namespace) -> int:
    with _incident_store(args, "alert not updated") as (store, settings):
        fields = {
            "text": args.text,
            "severity": args.severity,
            "title": args.title,
            "links": list(args.link),
            "next_update_by": _minutes_from(settings.clock.now(), args.next_update_in_minutes),
        }
        try:
            update = AlertUpdateDraft.model_validate(fields)
        except ValidationError as exc:
            raise CliError(f"alert not updated: {alerts_service.describe(exc)}") from None
        caller = _caller(store, args.as_user, "alert not updated", "update alerts")
        alert = alerts_service.update_alert(
            store, settings, _alert_id(args.alert_id, "alert not updated"), update, caller
        )
    print(f"Update {alert['revision']} of alert {alert['id']} sent as seq {alert['seq']}.")
    return 0


def _alert_resolve(args: argparse.Namespace) -> int:
    return _alert_close(args, "resolved")


def _alert_retract(args: argparse.Namespace) -> int:
    return _alert_close(args, "retracted")


def _alert_close(args: argparse.Namespace, kind: Literal["resolved", "retracted"]) -> int:
    refused = f"alert not {kind}"
    with _incident_store(args, refused) as (store, _):
        caller = _caller(store, args.as_user, refused, "close alerts")
        alert = alerts_service.close_alert(
            store, _alert_id(args.alert_id, refused), kind, args.note, caller
        )
    print(f"Alert {alert['id']} {kind} (seq {alert['seq']}).")
    return 0


def _alert_approve(args: argparse.Namespace) -> int:
    with _incident_store(args, "not approved") as (store, settings):
        caller = _caller(store, args.as_user, "not approved", "approve alerts")
        published = alerts_service.approve(store, settings, _approval_id(args.approval_id), caller)
    alert = published.alert or {}
    print(
        f"Approved: published {alert.get('severity')} alert seq {alert.get('seq')} "
        f"(id {alert.get('id')}) to {_agents(published.targeted)}."
    )
    return 0


def _alert_reject(args: argparse.Namespace) -> int:
    with _incident_store(args, "not rejected") as (store, _):
        caller = _caller(store, args.as_user, "not rejected", "reject alerts")
        approval = alerts_service.reject(store, _approval_id(args.approval_id), args.reason, caller)
    print(f"Rejected approval request {approval['id']}: the alert is not sent.")
    return 0


def _alert_list(args: argparse.Namespace) -> int:
    with _incident_store(args, "cannot list") as (store, settings):
        found = alerts_service.incidents(store, settings, args.state, args.drill)
    rows = [("SEQ", "ID", "STATUS", "DRILL", "SEVERITY", "UPDATES", "NEXT UPDATE", "TITLE")]
    for item in found:
        alert = item["alert"]
        next_update = alert["next_update_by"] or "-"
        if item["update_overdue"]:
            next_update += " OVERDUE"
        rows.append(
            (
                str(alert["seq"]),
                alert["id"],
                alert["status"],
                "DRILL" if alert["drill"] else "live",
                alert["severity"],
                str(alert["revision"]),
                next_update,
                _printable(alert["title"]),
            )
        )
    _print_table(rows)
    if not found:
        print("(no alerts)")
    return 0


def _alert_show(args: argparse.Namespace) -> int:
    with _incident_store(args, "cannot show") as (store, settings):
        alert_id = _alert_id(args.alert_id, "cannot show")
        shown = alerts_service.incident(store, settings, alert_id)
        targets = store.alerts.targets(alert_id)
        answers = store.alerts.acks_for(alert_id)
    alert = shown["alert"]
    if alert["drill"]:
        print("DRILL: no action with real patients")
    for key in (
        "id",
        "seq",
        "status",
        "severity",
        "title",
        "body",
        "issued_at",
        "issued_by",
        "approved_by",
        "audience",
        "next_update_by",
        "closed_at",
    ):
        value = alert[key]
        text = ", ".join(value) if isinstance(value, list) else str("-" if value is None else value)
        if key == "next_update_by" and shown["update_overdue"]:
            text += " OVERDUE"
        print(f"{key + ':':16} {_printable(text)}")
    if shown["approval_override"] is not None:
        print(f"{'approval override:':16} {_printable(shown['approval_override'])}")
    print(f"updates ({len(alert['updates'])}):")
    for change in alert["updates"]:
        print(
            f"  #{change['number']} {change['kind']} {change['at']} by {change['by']}: "
            f"{_printable(change['text'])}"
        )
        for link in change["links"]:
            print(f"     {_printable(link)}")
    print(f"targets ({shown['targeted']}): {', '.join(targets) or '-'}")
    print(f"answers ({len(answers)}):")
    for answer in answers:
        note = f": {_printable(answer.note)}" if answer.note else ""
        print(f"  {answer.username} {answer.action} {answer.to_wire()['acted_at']}{note}")
    return 0


def _caller(store: Store, username: str, refused: str, verb: str) -> Caller:
    """The --as user (a dispatcher or admin), acting from this terminal; CliError otherwise."""
    user = store.accounts.find_user(username=username)
    if user is None:
        raise CliError(f"{refused}: no user {username!r} on this hub.")
    if ROLES.index(user.role) < ROLES.index("dispatcher"):
        raise CliError(
            f"{refused}: {user.username!r} is an {user.role}; only a dispatcher or "
            f"an admin may {verb}."
        )
    return Caller(username=user.username, actor=f"cli:{_operator()}", source="cli")


def _minutes_from(now: float, minutes: float | None) -> datetime | None:
    return None if minutes is None else datetime.fromtimestamp(now + minutes * 60, UTC)


def _alert_id(text: str, refused: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise CliError(f"{refused}: {text!r} is not an alert id (a UUID).") from None


def _approval_id(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise CliError(f"{text!r} is not an approval request id (a UUID).") from None


def _agents(count: int) -> str:
    return "1 agent" if count == 1 else f"{count} agents"


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    # The last column is free text: left unpadded so a long one never widens the rest.
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        print("  ".join([*cells, row[-1]]))


def _content_import(args: argparse.Namespace) -> int:
    settings = _settings(args)
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
