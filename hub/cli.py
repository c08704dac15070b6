"""`vigil-hub`: serve the hub, add users, publish alerts and import content from a terminal."""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import logging
import re
import socket
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import qrcode
import uvicorn

from hub import passwords, totp
from hub.alerts_service import InvalidAlert, publish_alert
from hub.app import create_app, prepare_data_dir
from hub.config import HubSettings, default_data_dir
from hub.content_import import ContentImportError, import_content
from hub.demo import load_demo
from hub.signing import ContentSigner
from hub.storage import Store
from hub.storage.accounts import ROLES, UsernameTaken
from hub.storage.db import SchemaTooNew

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
SEVERITIES = ("info", "minor", "major", "critical")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


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
    serve.set_defaults(run=_serve)

    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="user_command", required=True, metavar="COMMAND"
    )
    add = user.add_parser("add", help="add a user and print the authenticator URI")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from the first line of stdin",
    )
    add.add_argument("--display-name", help="the name shown to others (default: the username)")
    _add_data_option(add)
    add.set_defaults(run=_user_add)

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
    return parser


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


def _serve(args: argparse.Namespace) -> int:
    settings = HubSettings(
        data_dir=_data_dir(args),
        retention_days=args.retention_days,
        session_hours=args.session_hours,
        vpn_cidrs=list(args.vpn_cidr),
        trusted_proxies=list(args.trusted_proxy),
        forwarded_header=args.forwarded_header,
    )
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sock = _listen(args.host, args.port)
    store = _open_store(settings)
    try:
        app = create_app(settings, store)
        if args.demo:
            print(load_demo(store, app.state.signer, settings).summary(), flush=True)
        port = sock.getsockname()[1]
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"Vigil hub on http://{host}:{port} (data: {settings.data_dir})", flush=True)
        config = uvicorn.Config(
            app,
            log_level=args.log_level,
            lifespan="on",
            ws="none",
            # uvicorn would believe X-Forwarded-For from 127.0.0.1; the hub reads forwarded
            # headers itself, from --trusted-proxy ranges only.
            proxy_headers=False,
            timeout_graceful_shutdown=2,
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
    username: str = args.username
    if not USERNAME_PATTERN.fullmatch(username):
        raise CliError(
            f"{username!r} is not a valid username: use 1-64 letters, digits, '.', '_', '@' or '-'."
        )
    password = _read_password(sys.stdin)
    problem = passwords.password_problem(password)
    if problem is not None:
        raise CliError(problem)
    settings = HubSettings(data_dir=_data_dir(args))
    store = _open_store(settings)
    secret = totp.new_secret()
    try:
        user = store.accounts.create_user(
            username=username,
            display_name=args.display_name or username,
            role=args.role,
            password_hash=passwords.hash_password(password),
            totp_secret=secret,
        )
    except UsernameTaken:
        raise CliError(
            f"a user named {username!r} already exists in {settings.data_dir}; pick another name."
        ) from None
    finally:
        store.close()
    uri = totp.provisioning_uri(secret, user.username)
    print(f"Added {user.role} {user.username}.")
    print("Add the account to an authenticator app with this URI (or the QR code):")
    print(uri)
    if sys.stdout.isatty():
        _print_qr(uri, sys.stdout)
    return 0


def _read_password(stream: TextIO) -> str:
    line = stream.readline()
    if line.endswith("\n"):
        line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    if not line:
        raise CliError(
            "no password on stdin: pipe it in, e.g. "
            "printf '%s\\n' \"$PASSWORD\" | vigil-hub user add NAME --role agent --password-stdin"
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
    store = _open_store(settings)
    try:
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
            issued_by=_operator(),
        )
    except InvalidAlert as exc:
        raise CliError(f"alert not published: {exc}") from None
    finally:
        store.close()
    print(f"Published {alert['severity']} alert seq {alert['seq']} (id {alert['id']}).")
    return 0


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "vigil-hub"


def _content_import(args: argparse.Namespace) -> int:
    settings = HubSettings(data_dir=_data_dir(args))
    store = _open_store(settings)
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
