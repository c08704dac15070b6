"""A throwaway PostgreSQL server for the tests, from Debian's server binaries.

One cluster per test worker, in a temporary folder, listening only on a unix socket there; each
test gets a fresh database cloned from a template that already holds the hub's schema.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from hub.clock import SystemClock
from hub.storage import Store

# Debian installs each major version's server here; the newest is used.
_SERVER_GLOB = "/usr/lib/postgresql/*/bin/pg_ctl"
# The server refuses to run as root; the Debian package's own user runs it then.
_SERVER_USER = "postgres"
SUPERUSER = "vigil"
TEMPLATE = "vigil_template"
START_TIMEOUT_SECONDS = 60
_PREFIX = "vigil-pg-"


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, or None when PostgreSQL's server is not installed."""
    found = sorted(Path("/").glob(_SERVER_GLOB.lstrip("/")), key=_major_version)
    return found[-1].parent if found else None


def _major_version(pg_ctl: Path) -> int:
    version = pg_ctl.parent.parent.name
    return int(version) if version.isdigit() else 0


class PostgresCluster:
    """A private cluster: socket-only, trust auth for its owner, and fsync off (it is thrown
    away) unless `durable`, as the benchmarks run it to compare with SQLite's synced commits."""

    def __init__(self, binaries: Path, *, durable: bool = False) -> None:
        self._bin = binaries
        self._durable = durable
        _stop_orphans(binaries)
        self.root = Path(tempfile.mkdtemp(prefix=_PREFIX))
        (self.root / "owner.pid").write_text(str(os.getpid()))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._as_user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self._as_user = pwd.getpwnam(_SERVER_USER)
            os.chown(self.root, self._as_user.pw_uid, self._as_user.pw_gid)
        self.root.chmod(0o700)

    def _run(self, args: Sequence[str]) -> None:
        user = self._as_user
        log_path = self.root / "server.log"
        # Output to a file, not a pipe: the server pg_ctl starts would hold a pipe open.
        with log_path.open("ab") as log:
            try:
                subprocess.run(
                    [str(self._bin / args[0]), *args[1:]],
                    check=True,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    timeout=START_TIMEOUT_SECONDS,
                    cwd=self.root,
                    user=user.pw_uid if user else None,
                    group=user.pw_gid if user else None,
                    extra_groups=[] if user else None,
                )
            except subprocess.SubprocessError as exc:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{args[0]} failed: {exc}\n{tail}") from None

    def start(self) -> PostgresCluster:
        """initdb, start, and build the template database with the hub's current schema."""
        # C locale: lower() and CITEXT fold ASCII letters only, as SQLite's NOCASE does.
        self._run(
            [
                *("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust"),
                *("--locale=C", "-E", "UTF8", "--no-sync"),
            ]
        )
        thrown_away = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        options = (
            f"-k {self.socket_dir} -c listen_addresses='' "
            f"{'' if self._durable else thrown_away}-c max_connections=400 -c shared_buffers="
            f"{'128MB' if self._durable else '32MB'}"
        )
        self._run(["pg_ctl", "-D", str(self.data), "-o", options, "-w", "-s", "start"])
        with self.connect("postgres") as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        store = Store.open(self.url(TEMPLATE), SystemClock())
        store.close()
        return self

    def url(self, database: str) -> str:
        """A libpq URL for one database of this cluster, over its unix socket."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def connect(self, database: str) -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection (autocommit) to one database."""
        return psycopg.connect(self.url(database), autocommit=True)

    def new_database(self, *, migrated: bool = True) -> str:
        """A fresh database's URL: with the hub's schema (cloned) or empty."""
        with self._lock:
            name = f"test_{next(self._names)}"
        template = TEMPLATE if migrated else "template0"
        with self.connect("postgres") as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a test's database, ending any connection a stopped hub left behind."""
        name = urlsplit(url).path.lstrip("/")
        with self.connect("postgres") as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server at once and remove its files."""
        try:
            self._run(["pg_ctl", "-D", str(self.data), "-m", "immediate", "-s", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _stop_orphans(binaries: Path) -> None:
    """Stop and remove clusters whose test worker died before its teardown (killed, crashed)."""
    for root in Path(tempfile.gettempdir()).glob(_PREFIX + "*"):
        try:
            owner = int((root / "owner.pid").read_text())
            os.kill(owner, 0)
            continue
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue
        postmaster = root / "data" / "postmaster.pid"
        if postmaster.exists():
            subprocess.run(
                [str(binaries / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=START_TIMEOUT_SECONDS,
                check=False,
                user=_SERVER_USER if os.geteuid() == 0 else None,
            )
        shutil.rmtree(root, ignore_errors=True)
