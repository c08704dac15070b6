"""Fixtures shared by the whole suite: a real hub on 127.0.0.1 in a temporary data dir."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hub.clock import Clock, ManualClock, SystemClock
from hub.config import HubSettings
from hub.server import EmbeddedHub


@pytest.fixture
def manual_clock() -> ManualClock:
    """A clock tests move by hand; a test that asks for it gets `hub` running on it."""
    return ManualClock()


@pytest.fixture
def hub_settings(tmp_path: Path, request: pytest.FixtureRequest) -> HubSettings:
    """Settings for a hub whose data lives under tmp_path; on the ManualClock if requested."""
    clock: Clock = SystemClock()
    if "manual_clock" in request.fixturenames:
        clock = request.getfixturevalue("manual_clock")
    # Throttled sign-ins are answered at once here: the pause only slows guessing scripts down.
    return HubSettings(data_dir=tmp_path / "hub-data", clock=clock, signin_refusal_delay_seconds=0)


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
