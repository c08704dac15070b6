"""Fixtures shared by the whole suite: a real hub on 127.0.0.1 in a temporary data dir."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hub.clock import Clock, ManualClock, SystemClock
from hub.config import HubSettings
from hub.database_url import DATABASE_ENV
from hub.server import EmbeddedHub
from tests.postgres import PostgresCluster, server_binaries

ENGINES = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    """--hub-database=postgresql runs the hub tests on a throwaway PostgreSQL server."""
    parser.addoption(
        "--hub-database",
        choices=ENGINES,
        default="sqlite",
        help="the engine the hub fixtures store their state in (default: sqlite)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker of tests about one engine's files or SQL."""
    config.addinivalue_line(
        "markers", "sqlite_only: about the SQLite file itself; skipped on --hub-database=postgresql"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL pass, skip the tests that are about SQLite's file."""
    if config.getoption("--hub-database") != "postgresql":
        return
    skip = pytest.mark.skip(reason="about the SQLite file; this pass runs on PostgreSQL")
    for item in items:
        if item.get_closest_marker("sqlite_only"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of this test worker's own, started on first use."""
    binaries = server_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL's server is not installed (Debian: apt-get install postgresql)")
    cluster = PostgresCluster(binaries).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh database with the hub's schema, dropped after the test."""
    url = postgres_cluster.new_database()
    yield url
    postgres_cluster.drop_database(url)


@pytest.fixture(autouse=True)
def _hub_database_for_commands(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """On the PostgreSQL pass, point every vigil-hub command a test runs at a database: the
    hub fixtures' own, or an empty one (as a new data folder is) for tests without them."""
    if request.config.getoption("--hub-database") != "postgresql":
        yield
        return
    for shared in ("module_hub_database", "hub_database"):
        if shared in request.fixturenames:
            monkeypatch.setenv(DATABASE_ENV, request.getfixturevalue(shared))
            yield
            return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    url = cluster.new_database(migrated=False)
    monkeypatch.setenv(DATABASE_ENV, url)
    yield
    cluster.drop_database(url)


@pytest.fixture(scope="module")
def module_hub_database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """As hub_database, for a hub a whole module shares."""
    if request.config.getoption("--hub-database") != "postgresql":
        yield None
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    url = cluster.new_database()
    yield url
    cluster.drop_database(url)


@pytest.fixture
def hub_database(request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL URL the hub fixtures use on the PostgreSQL pass; None on SQLite."""
    if request.config.getoption("--hub-database") != "postgresql":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def manual_clock() -> ManualClock:
    """A clock tests move by hand; a test that asks for it gets `hub` running on it."""
    return ManualClock()


@pytest.fixture
def hub_settings(
    tmp_path: Path, request: pytest.FixtureRequest, hub_database: str | None
) -> HubSettings:
    """Settings for a hub whose data lives under tmp_path (or in a fresh PostgreSQL database on
    that pass); on the ManualClock if requested."""
    clock: Clock = SystemClock()
    if "manual_clock" in request.fixturenames:
        clock = request.getfixturevalue("manual_clock")
    # Throttled sign-ins are answered at once here: the pause only slows guessing scripts down.
    return HubSettings(
        data_dir=tmp_path / "hub-data",
        clock=clock,
        signin_refusal_delay_seconds=0,
        database_url=hub_database,
    )


@pytest.fixture
def start_hub(hub_settings: HubSettings) -> Iterator[Callable[..., EmbeddedHub]]:
    """Start hubs with some settings changed (e.g. vpn_cidrs=[...]); all stop at teardown.

    Without `settings`, each uses `hub_settings` with the given overrides; `port` restarts a
    hub on a port an earlier one used.
    """
    started: list[EmbeddedHub] = []

    def start(
        *, settings: HubSettings | None = None, port: int = 0, **overrides: Any
    ) -> EmbeddedHub:
        hub = EmbeddedHub(replace(settings or hub_settings, **overrides), port=port)
        started.append(hub)
        return hub.start()

    yield start
    for hub in reversed(started):
        hub.stop()


@pytest.fixture
def hub(start_hub: Callable[..., EmbeddedHub]) -> EmbeddedHub:
    """A running hub on a free 127.0.0.1 port, stopped at teardown."""
    return start_hub()
