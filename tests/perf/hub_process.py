"""A hub in its own process for the benchmarks, so its work never shares a GIL with the client's.

Run as `python -m tests.perf.hub_process --data DIR [--database URL [--joining]] [--demo]
[--generated N] [--audience N] [--streams-per-user N] [--trusted-proxy CIDR]`. It prints one JSON
line (url, pid, the agent's and dispatcher's TOTP secrets; none with --joining, a second process on
a database whose users the first made), then takes commands on stdin, one per line, answering each
with one JSON line:
  revise N    give N generated items a new version (one transaction)
  update ID TEXT  add an update to alert ID through the store and wake the streams, as
              POST /v1/alerts/{id}/updates does (for hubs built without that endpoint)
Closing stdin stops the hub.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from pathlib import Path
from typing import Any

from hub import passwords, totp
from hub.config import HubSettings
from hub.connection_limits import ConnectionLimits
from hub.demo import load_demo
from hub.garbage_collection import freeze_start_up_objects, tune_for_fan_out
from hub.server import EmbeddedHub
from hub.signing import ContentSigner
from hub.storage import Store
from tests.hubtools import DEFAULT_PASSWORD, create_user
from tests.perf.content_gen import ContentGenerator

# One agent per benchmark that signs in: a TOTP code is accepted once per user, and the
# benchmarks sign in from several processes within the same 30 s.
AGENTS = 8
DISPATCHER = "dispatch1"


def raise_open_files_limit() -> int:
    """Raise this process's soft open-files limit to the hard one; returns the new limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def add_audience(store: Store, count: int) -> None:
    """`count` more agents, who never sign in: the targets a publish writes a row for each of.
    One password hash serves them all, where one each would take minutes of argon2."""
    password_hash = passwords.hash_password(DEFAULT_PASSWORD)
    for n in range(count):
        store.accounts.create_user(
            username=f"audience{n:05d}",
            display_name=f"Audience {n}",
            role="agent",
            password_hash=password_hash,
            totp_secret=totp.new_secret(),
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--generated", type=int, default=0)
    parser.add_argument(
        "--streams-per-user",
        type=int,
        default=ConnectionLimits().max_streams_per_user,
        help="the per-user stream cap (the fan-out benchmark holds thousands with one token)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=ConnectionLimits().max_connections,
        help="the connection cap (10,000 streams on one process need it raised, as at a site)",
    )
    parser.add_argument("--trusted-proxy", action="append", default=[], metavar="CIDR")
    parser.add_argument("--database", help="a postgresql:// URL (default: SQLite in --data)")
    parser.add_argument(
        "--joining", action="store_true", help="another process already made the users"
    )
    parser.add_argument(
        "--audience", type=int, default=0, help="agents added beside the signed-in ones"
    )
    args = parser.parse_args()
    open_files = raise_open_files_limit()
    settings = HubSettings(
        data_dir=args.data,
        limits=ConnectionLimits(
            max_connections=args.max_connections, max_streams_per_user=args.streams_per_user
        ),
        trusted_proxies=args.trusted_proxy,
        database_url=args.database,
    )
    hub = EmbeddedHub(settings, port=args.port)
    signer = ContentSigner.load_or_create(args.data)
    generator = ContentGenerator()
    generated = generator.items(args.generated) if args.generated else []
    if args.demo:
        load_demo(hub.store, signer, hub.settings)
    if generated:
        hub.store.content.apply(generated, signer)
    info: dict[str, Any] = {
        "url": hub.url,
        "pid": os.getpid(),
        "open_files": open_files,
        "agents": {},
        "dispatcher": DISPATCHER,
        "dispatcher_secret": None,
        "generated_ids": [change.id for change in generated],
    }
    if not args.joining:
        info["agents"] = {
            f"agent{n}": create_user(hub.store, f"agent{n}", "agent") for n in range(1, AGENTS + 1)
        }
        info["dispatcher_secret"] = create_user(hub.store, DISPATCHER, "dispatcher")
        add_audience(hub.store, args.audience)
    # As `vigil-hub serve` sets its own process (hub/cli.py); an EmbeddedHub leaves the process
    # it runs in as it was.
    tune_for_fan_out()
    freeze_start_up_objects()
    hub.start()
    print(json.dumps(info), flush=True)
    revision = 0
    try:
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "revise":
                revision += 1
                ids = info["generated_ids"][: int(argument)]
                changed = hub.store.content.apply(generator.revised(ids, revision), signer)
                print(json.dumps({"revised": sum(changed)}), flush=True)
            elif command == "update":
                alert_id, _, text = argument.partition(" ")
                alert = hub.store.alerts.change(alert_id, kind="update", text=text, by=DISPATCHER)
                hub.broker.notify()
                print(json.dumps({"alert": alert.to_wire()}), flush=True)
            else:
                print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
    finally:
        hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
