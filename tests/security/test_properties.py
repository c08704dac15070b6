"""Property-based tests (hypothesis) of the client's parsers of untrusted input: the SSE parser,
content ingest with its signature checks, alert parsing and the IT policy loader. Whatever the
input, the result is a value or a typed VigilError, never another exception."""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.core.cache import Cache
from client.core.errors import BadResponse, PolicyError
from client.core.models import Alert
from client.core.policy import load_policy
from client.core.sse import SseEvent, SseParser
from tests.client.test_cache import ItemSigner, playbook_data

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)
# What the hub can sign: RFC 8785 has no infinities, and integers beyond 2**53 lose precision.
SIGNABLE_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)
SSE_PIECES = st.sampled_from(
    ["data:", "data: x", "id: 7", "id:\x00", "event: alert", "event:gap", "retry: 10", "retry:x",
     ": heartbeat", ":", "\n", "\r", "\r\n", "\ufeff", "{\"seq\": 1}", "é", "\xff"]
)  # fmt: skip


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def _parse(chunks: list[bytes]) -> tuple[list[SseEvent], list[str]]:
    comments: list[str] = []
    parser = SseParser(on_comment=comments.append)
    events = [event for chunk in chunks for event in parser.feed_bytes(chunk)]
    return events, comments


@PROPERTY_SETTINGS
@given(
    st.one_of(
        st.binary(max_size=400),
        st.lists(SSE_PIECES, max_size=40).map(lambda parts: "".join(parts).encode()),
    ),
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_sse_parser_never_fails_and_chunking_never_changes_the_events(
    data: bytes, cuts: list[int]
) -> None:
    whole = _parse([data])
    chunked = _parse(_split(data, cuts))

    assert chunked == whole
    for event in whole[0]:
        assert isinstance(event, SseEvent)
        assert "\x00" not in event.id


@PROPERTY_SETTINGS
@given(JSON_VALUES)
def test_any_alert_json_is_an_alert_or_a_typed_error(raw: Any) -> None:
    try:
        alert = Alert.from_json(raw)
    except BadResponse:
        return
    assert Alert.from_json(alert.to_json()) == alert


@pytest.fixture(scope="module")
def signer() -> ItemSigner:
    return ItemSigner()


@pytest.fixture(scope="module")
def cache() -> Iterator[Cache]:
    # Module-scoped: hypothesis runs many examples per test, each against this real cache file.
    with tempfile.TemporaryDirectory() as folder:
        opened = Cache.open(Path(folder) / "cache.sqlite3")
        yield opened
        opened.close()


ITEM_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["playbook", "template", "script"]) | JSON_VALUES,
        "id": st.text(max_size=20) | JSON_VALUES,
        "version": st.integers(min_value=-2, max_value=2**64) | JSON_VALUES,
        "deleted": st.booleans() | JSON_VALUES,
        "data": JSON_VALUES,
        "signature": st.text(max_size=100) | JSON_VALUES,
        "key_id": st.text(max_size=20) | JSON_VALUES,
    },
)


@PROPERTY_SETTINGS
@given(st.lists(ITEM_FIELDS | JSON_VALUES, max_size=8))
def test_unsigned_or_malformed_items_are_refused_one_by_one_and_never_stored(
    signer: ItemSigner, cache: Cache, items: list[Any]
) -> None:
    report = cache.apply_content(items, signer.verifier())

    assert (report.stored, report.deleted) == (0, 0)
    assert len(report.refused) + report.ignored == len(items)
    assert all(isinstance(refused.reason, str) and refused.reason for refused in report.refused)


@PROPERTY_SETTINGS
@given(
    st.sampled_from(["playbook", "template"]),
    st.dictionaries(st.sampled_from(sorted(playbook_data("x"))), SIGNABLE_VALUES, max_size=4),
)
def test_signed_items_with_any_data_are_stored_parsed_or_refused(
    signer: ItemSigner, cache: Cache, kind: str, changes: dict[str, Any]
) -> None:
    # The signature is good, so only the shape of the data decides: stored and readable back,
    # or refused with a reason. The id is fresh for every example.
    item_id = f"{kind}-{cache.get_state('examples') or 0}"
    cache.set_state("examples", str(int(cache.get_state("examples") or 0) + 1))
    item = signer.item(kind, item_id, 1, {**playbook_data("Title"), **changes})

    report = cache.apply_content([item], signer.verifier())

    if report.stored:
        read = cache.playbook(item_id) if kind == "playbook" else cache.template(item_id)
        assert read is not None and read.id == item_id
    else:
        assert [refused.id for refused in report.refused] == [item_id]


@PROPERTY_SETTINGS
@given(st.binary(max_size=300) | JSON_VALUES.map(lambda v: json.dumps(v).encode()))
def test_any_policy_file_is_a_policy_or_a_policy_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "policy.json"
        path.write_bytes(content)
        try:
            policy = load_policy(path)
        except PolicyError as exc:
            assert str(path) in exc.message
            return
    assert isinstance(policy.values, dict)


POLICY_KEYS = st.sampled_from(
    ["hub_url", "ca_bundle", "content_key_id", "update_public_key", "idle_lock_minutes",
     "allow_plain_http", "sync_interval_minutes", "vpn"]
)  # fmt: skip


@PROPERTY_SETTINGS
@given(st.dictionaries(POLICY_KEYS, JSON_VALUES | st.just({"required": True}), max_size=6))
def test_known_policy_keys_with_any_values_are_accepted_or_refused_clearly(
    raw: dict[str, Any],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "policy.json"
        path.write_text(json.dumps(raw))
        try:
            policy = load_policy(path)
        except PolicyError as exc:
            assert "policy file" in exc.message
            return
    assert set(policy.values) <= {
        "hub_url",
        "ca_bundle",
        "content_key_id",
        "update_public_key",
        "idle_lock_minutes",
        "allow_plain_http",
        "sync_interval_minutes",
        "vpn_required",
        "vpn_interface_patterns",
        "vpn_probe",
    }
