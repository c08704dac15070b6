"""What stands before the password check, against a real hub: the per-address and per-username
throttles, the bounded hashing pool, and the source address behind trusted proxies."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import requests

from hub.clock import ManualClock
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, HTTP_TIMEOUT, at_once, create_user, other_process_rows

WRONG_PASSWORD = "not the password at all"
LOOPBACK_PROXY = ["127.0.0.1/32"]
PROCESS_TIMEOUT = 60


def _login(
    hub: EmbeddedHub,
    username: str,
    password: str = WRONG_PASSWORD,
    *,
    forwarded_for: str | bytes | None = None,
    forwarded: str | None = None,
) -> requests.Response:
    headers: dict[str, str | bytes] = {}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    if forwarded is not None:
        headers["Forwarded"] = forwarded
    return requests.post(
        f"{hub.url}/v1/auth/login",
        json={
            "username": username,
            "password": password,
            "device_id": "dev",
            "device_name": "Laptop",
        },
        headers=headers,
        timeout=HTTP_TIMEOUT,
    )


def _failures(hub: EmbeddedHub) -> list[tuple[str, str]]:
    rows = other_process_rows(
        hub.settings, "SELECT username, address FROM signin_failures ORDER BY id"
    )
    return [(row[0], row[1]) for row in rows]


def _assert_throttled(response: requests.Response) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["error"] == "too_many_attempts"
    assert body["retry_after"] >= 1
    assert response.headers["Retry-After"] == str(body["retry_after"])
    assert "Try again in" in body["detail"]


def test_attempts_from_one_address_beyond_its_burst_are_refused_before_any_check(
    start_hub: Callable[..., EmbeddedHub], manual_clock: ManualClock
) -> None:
    hub = start_hub(signin_address_burst=3, signin_address_per_minute=6, lockout_threshold=50)
    create_user(hub.store, "ada")

    answers = [_login(hub, f"user{n}") for n in range(3)] + [_login(hub, "ada")]

    assert [a.status_code for a in answers[:3]] == [401, 401, 401]
    _assert_throttled(answers[3])
    assert answers[3].json()["retry_after"] == 10
    # The refused attempt never reached the password check: it was not even counted.
    assert _failures(hub) == [(f"user{n}", "127.0.0.1") for n in range(3)]
    # The bucket refills at 6 a minute: one more attempt 10 s later.
    manual_clock.advance(10)
    assert _login(hub, "ada", DEFAULT_PASSWORD).status_code == 200
    assert _login(hub, "ada").status_code == 401
    _assert_throttled(_login(hub, "ada"))


def test_successful_sign_ins_use_up_no_attempts(start_hub: Callable[..., EmbeddedHub]) -> None:
    hub = start_hub(signin_address_burst=2, signin_address_per_minute=0.01)
    for n in range(5):
        create_user(hub.store, f"agent{n}")

    answers = [_login(hub, f"agent{n}", DEFAULT_PASSWORD).status_code for n in range(5)]

    assert answers == [200] * 5


def test_forwarded_addresses_count_only_from_trusted_proxies(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    untrusting = start_hub(signin_address_burst=2, signin_address_per_minute=0.01)
    answers = [_login(untrusting, "x", forwarded_for=f"198.51.100.{n}") for n in range(3)]
    # Without trusted proxies the header is the client's own words: all three are 127.0.0.1.
    assert [a.status_code for a in answers[:2]] == [401, 401]
    _assert_throttled(answers[2])

    trusting = start_hub(
        signin_address_burst=2, signin_address_per_minute=0.01, trusted_proxies=LOOPBACK_PROXY
    )
    for n in range(3):
        assert _login(trusting, f"u{n}", forwarded_for=f"198.51.100.{n}").status_code == 401
    # A spoofed entry left of the one our proxy wrote does not change the address.
    spoofed = _login(trusting, "u9", forwarded_for="203.0.113.7, 198.51.100.1")
    assert spoofed.status_code == 401
    _assert_throttled(_login(trusting, "u9", forwarded_for="203.0.113.8, 198.51.100.1"))
    assert _failures(trusting)[-1] == ("u9", "198.51.100.1")


def test_the_forwarded_header_of_rfc_7239_when_configured(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    hub = start_hub(trusted_proxies=LOOPBACK_PROXY, forwarded_header="forwarded")
    assert _login(hub, "a", forwarded='for="[2001:db8::7]:4711";proto=https').status_code == 401
    assert _login(hub, "b", forwarded="for=192.0.2.60:80, for=198.51.100.4").status_code == 401
    # X-Forwarded-For is not the configured header: ignored.
    assert _login(hub, "c", forwarded_for="203.0.113.9").status_code == 401
    assert [address for _user, address in _failures(hub)] == [
        "2001:db8::7",
        "198.51.100.4",
        "127.0.0.1",
    ]


def test_hostile_forwarded_headers_fall_back_to_the_nearest_known_hop(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    hub = start_hub(trusted_proxies=LOOPBACK_PROXY, lockout_threshold=100)
    hostile = [
        "",
        "unknown",
        "<script>alert(1)</script>",
        "1.2.3.4\u202e".encode(),
        "999.1.1.1",
        "::ffff:127.0.0.1",
        ",,,,",
        "a" * 6000,
        ", ".join(["10.0.0.1"] * 500),
        "-1",
    ]

    answers = [_login(hub, f"h{n}", forwarded_for=value) for n, value in enumerate(hostile)]

    assert [a.status_code for a in answers] == [401] * len(hostile)
    addresses = [address for _user, address in _failures(hub)]
    # Anything that is not an address stops the walk at the last trusted hop: our proxy.
    assert addresses == ["127.0.0.1"] * 8 + ["10.0.0.1", "127.0.0.1"]


def test_one_username_from_many_addresses_is_throttled_but_not_from_where_its_owner_signed_in(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    hub = start_hub(
        signin_username_burst=3,
        signin_username_per_minute=0.01,
        trusted_proxies=LOOPBACK_PROXY,
        lockout_threshold=50,
    )
    create_user(hub.store, "bea")
    home = "192.0.2.10"
    assert _login(hub, "bea", DEFAULT_PASSWORD, forwarded_for=home).status_code == 200

    guesses = [_login(hub, "BEA", forwarded_for=f"198.51.100.{n}") for n in range(4)]

    assert [g.status_code for g in guesses[:3]] == [401, 401, 401]
    _assert_throttled(guesses[3])
    # Another username is not held back, and neither is the owner from their own machine.
    assert _login(hub, "someone-else", forwarded_for="198.51.100.99").status_code == 401
    assert _login(hub, "bea", DEFAULT_PASSWORD, forwarded_for=home).status_code == 200


def test_attempts_from_everywhere_together_are_held_to_the_hubs_pace_except_known_owners(
    start_hub: Callable[..., EmbeddedHub], manual_clock: ManualClock
) -> None:
    hub = start_hub(
        signin_total_burst=3, signin_total_per_minute=60, trusted_proxies=LOOPBACK_PROXY
    )
    create_user(hub.store, "dot")
    assert _login(hub, "dot", DEFAULT_PASSWORD, forwarded_for="192.0.2.8").status_code == 200

    answers = [_login(hub, f"u{n}", forwarded_for=f"198.51.100.{n}") for n in range(4)]

    assert [a.status_code for a in answers[:3]] == [401, 401, 401]
    _assert_throttled(answers[3])
    assert answers[3].json()["retry_after"] == 1
    # The owner, from where they signed in before, is not held back by the others' guessing.
    assert _login(hub, "dot", DEFAULT_PASSWORD, forwarded_for="192.0.2.8").status_code == 200
    manual_clock.advance(1)
    assert _login(hub, "u9", forwarded_for="198.51.100.9").status_code == 401


def test_a_full_hashing_queue_answers_busy_at_once_and_never_queues_without_bound(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    hub = start_hub(
        hash_workers=1,
        hash_queue=1,
        trusted_proxies=LOOPBACK_PROXY,
        signin_address_burst=1000,
        signin_username_burst=1000,
        signin_total_burst=1000,
    )
    calls = [partial(_login, hub, f"flood{n}", forwarded_for=f"198.51.100.{n}") for n in range(40)]

    answers = at_once(calls)

    statuses = sorted({a.status_code for a in answers})
    assert statuses == [401, 503], [a.text for a in answers if a.status_code not in (401, 503)]
    busy = [a for a in answers if a.status_code == 503]
    for answer in busy:
        assert answer.json()["error"] == "sign_in_busy"
        assert answer.headers["Retry-After"] == str(answer.json()["retry_after"])
    # Busy answers were never counted as failures: only checked attempts were.
    assert len(_failures(hub)) == 40 - len(busy)


def _serve(data: Path, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--port", "0", "--data", str(data), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _served_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        match = re.search(r"http://127\.0\.0\.1:\d+", line)
        if match:
            return match.group(0)
    raise AssertionError("vigil-hub serve printed no address")


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=PROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=PROCESS_TIMEOUT)


def test_vigil_hub_serve_believes_forwarded_addresses_only_from_trusted_proxies(
    tmp_path: Path,
) -> None:
    spoofed = {"X-Forwarded-For": "198.51.100.23"}
    seen: dict[str, str] = {}
    for name, options in (("plain", ()), ("behind proxy", ("--trusted-proxy", "127.0.0.1/32"))):
        data = tmp_path / name.replace(" ", "-")
        with _serve(data, "--log-level", "warning", *options) as process:
            try:
                url = _served_url(process)
                answer = requests.get(f"{url}/v1/netcheck", headers=spoofed, timeout=HTTP_TIMEOUT)
                seen[name] = answer.json()["client_ip"]
            finally:
                _stop(process)

    # uvicorn on its own believes X-Forwarded-For from 127.0.0.1; the hub never does unasked.
    assert seen == {"plain": "127.0.0.1", "behind proxy": "198.51.100.23"}


def test_vigil_hub_serve_refuses_a_trusted_proxy_that_is_not_a_range(tmp_path: Path) -> None:
    with _serve(tmp_path / "data", "--trusted-proxy", "the proxy<script>") as process:
        try:
            _stdout, stderr = process.communicate(timeout=PROCESS_TIMEOUT)
        finally:
            _stop(process)
    assert process.returncode == 2
    assert "--trusted-proxy" in stderr
    assert "is not a CIDR range" in stderr
