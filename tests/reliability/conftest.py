"""One hub per reliability module (starting one per case would double the run time), its
dispatcher and the agent's access token. Each test publishes its own alerts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub.server import EmbeddedHub
from tests.reliability.bench import Dispatcher, agent_token, start_hub


@pytest.fixture(scope="module")
def shared_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedHub]:
    hub = start_hub(tmp_path_factory.mktemp("hub-data"))
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def dispatcher(shared_hub: EmbeddedHub) -> Iterator[Dispatcher]:
    dispatcher = Dispatcher(shared_hub)
    yield dispatcher
    dispatcher.close()


@pytest.fixture(scope="module")
def agent_access_token(shared_hub: EmbeddedHub) -> str:
    return agent_token(shared_hub)
