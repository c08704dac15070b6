"""A new hub's first requests: every route's models were built when the app was made, so the
first requests, however many at once, build nothing (building them from several threads once
answered 500, `AttributeError: __pydantic_core_schema__`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from pydantic import TypeAdapter

from hub.server import EmbeddedHub
from tests.hubtools import HTTP_TIMEOUT, auth_headers


def test_a_new_hubs_first_requests_build_no_models(
    start_hub: Callable[..., EmbeddedHub], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = start_hub()
    built: list[Any] = []
    build = TypeAdapter.__init__

    def counted(self: TypeAdapter[Any], *args: Any, **kwargs: Any) -> None:
        built.append(args[0] if args else kwargs.get("type"))
        build(self, *args, **kwargs)

    monkeypatch.setattr(TypeAdapter, "__init__", counted)
    answers = [
        requests.post(
            f"{hub.url}/v1/auth/login",
            json={"username": "yara", "password": "guess", "device_id": "d", "device_name": "d"},
            timeout=HTTP_TIMEOUT,
        ),
        requests.post(
            f"{hub.url}/v1/acks",
            json={"acks": [{"ack_id": str(uuid.uuid4())}]},
            headers=auth_headers("not-a-token"),
            timeout=HTTP_TIMEOUT,
        ),
        requests.get(f"{hub.url}/v1/reports/kpis", timeout=HTTP_TIMEOUT),
        requests.get(f"{hub.url}/console/sign-in", timeout=HTTP_TIMEOUT),
    ]

    assert [a.status_code for a in answers] == [401, 401, 401, 200]
    assert built == []
