"""The source address of a request, from the peer and the trusted proxies' forwarded header."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.client_address import UNKNOWN, source_address

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


@pytest.mark.parametrize(
    ("peer", "values", "header", "expected"),
    [
        ("192.0.2.1", ["198.51.100.1"], "x-forwarded-for", "192.0.2.1"),
        ("10.0.0.5", ["198.51.100.1"], "x-forwarded-for", "198.51.100.1"),
        ("10.0.0.5", ["203.0.113.9, 198.51.100.1, 10.0.0.6"], "x-forwarded-for", "198.51.100.1"),
        ("10.0.0.5", ["203.0.113.9", "198.51.100.1"], "x-forwarded-for", "198.51.100.1"),
        ("10.0.0.5", [], "x-forwarded-for", "10.0.0.5"),
        ("10.0.0.5", ["10.0.0.7"], "x-forwarded-for", "10.0.0.7"),
        ("10.0.0.5", ["nonsense, 10.0.0.7"], "x-forwarded-for", "10.0.0.7"),
        ("::ffff:10.0.0.5", ["198.51.100.1"], "x-forwarded-for", "198.51.100.1"),
        ("fd00::1", ["2001:db8::9"], "x-forwarded-for", "2001:db8::9"),
        ("10.0.0.5", ["fe80::1%<b>zone"], "x-forwarded-for", "fe80::1"),
        ("10.0.0.5", ['for="[2001:db8::7]:4711"'], "forwarded", "2001:db8::7"),
        ("10.0.0.5", ["for=192.0.2.60:80;proto=https"], "forwarded", "192.0.2.60"),
        ("10.0.0.5", ["for=192.0.2.60, for=10.0.0.9"], "forwarded", "192.0.2.60"),
        ("10.0.0.5", ["For=_hidden"], "forwarded", "10.0.0.5"),
        ("10.0.0.5", ["by=10.0.0.1"], "forwarded", "10.0.0.5"),
        (None, ["198.51.100.1"], "x-forwarded-for", UNKNOWN),
        ("testclient", ["198.51.100.1"], "x-forwarded-for", "testclient"),
    ],
)
def test_the_nearest_hop_that_is_not_a_trusted_proxy(
    peer: str | None, values: list[str], header: str, expected: str
) -> None:
    assert source_address(peer, values, header, PROXIES) == expected


def test_a_header_longer_than_any_proxy_chain_is_cut_not_walked() -> None:
    chain = ", ".join(["198.51.100.1"] + ["10.0.0.1"] * 10_000)
    # Only the last 16 hops are read: all trusted, so the walk stops at the last of them.
    assert source_address("10.0.0.5", [chain], "x-forwarded-for", PROXIES) == "10.0.0.1"


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.text(max_size=80), max_size=4),
    header=st.sampled_from(["x-forwarded-for", "forwarded"]),
)
def test_any_header_from_an_untrusted_peer_is_ignored(values: list[str], header: str) -> None:
    assert source_address("192.0.2.1", values, header, PROXIES) == "192.0.2.1"


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.text(max_size=80), max_size=4),
    header=st.sampled_from(["x-forwarded-for", "forwarded"]),
)
def test_behind_a_proxy_the_answer_is_always_an_address(values: list[str], header: str) -> None:
    answer = source_address("10.0.0.5", values, header, PROXIES)
    assert ipaddress.ip_address(answer)
