"""Sign-in, lockout, token rotation and logout against a real hub over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from hub import passwords, totp
from hub.clock import ManualClock
from hub.config import HubSettings
from hub.server import EmbeddedHub
from hub.storage import MIGRATIONS
from hub.storage.db import SqliteDatabase
from tests.faultproxy import FaultProxy, LimitData
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    at_once,
    auth_headers,
    create_user,
    current_code,
    login,
    sign_in,
    stored_bytes,
    submit_code,
)

WRONG_PASSWORD = "not the password at all"
# For tests of the lockout alone: the throttles (tests/hub/test_signin_guard.py) out of the way.
UNTHROTTLED = {
    "signin_address_burst": 1000,
    "signin_username_burst": 1000,
    "signin_total_burst": 1000,
}


def _me(hub: EmbeddedHub, access_token: str) -> requests.Response:
    return requests.get(
        f"{hub.url}/v1/me", headers=auth_headers(access_token), timeout=HTTP_TIMEOUT
    )


def _refresh(hub: EmbeddedHub, refresh_token: str) -> requests.Response:
    return requests.post(
        f"{hub.url}/v1/auth/refresh", json={"refresh_token": refresh_token}, timeout=HTTP_TIMEOUT
    )


def _mfa_token(hub: EmbeddedHub, username: str) -> str:
    response = login(hub.url, username)
    assert response.status_code == 200, response.text
    token: str = response.json()["mfa_token"]
    return token


def _error(response: requests.Response) -> str:
    body: dict[str, Any] = response.json()
    assert set(body) >= {"error", "detail"} and body["detail"], body
    error: str = body["error"]
    return error


def test_password_then_code_signs_in_and_me_answers_the_user(hub: EmbeddedHub) -> None:
    secret = create_user(hub.store, "dana", "dispatcher", display_name="Dana Reyes")

    response = login(hub.url, "dana")
    assert response.status_code == 200
    challenge = response.json()
    assert challenge["methods"] == ["totp"]
    assert challenge["expires_in"] == 300
    response = submit_code(
        hub.url, challenge["mfa_token"], current_code(secret, hub.settings.clock.now())
    )

    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    assert tokens["session_expires_at"].endswith("Z")
    assert tokens["user"] == {
        "username": "dana",
        "display_name": "Dana Reyes",
        "role": "dispatcher",
        "roles": ["agent", "dispatcher"],
    }
    me = _me(hub, tokens["access_token"])
    assert me.status_code == 200
    assert me.json() == tokens["user"]


def test_admin_holds_every_role(hub: EmbeddedHub) -> None:
    secret = create_user(hub.store, "root", "admin")
    tokens = sign_in(hub.url, "root", DEFAULT_PASSWORD, secret)
    assert _me(hub, tokens["access_token"]).json()["roles"] == ["agent", "dispatcher", "admin"]


def test_wrong_password_and_unknown_user_get_the_same_answer(hub: EmbeddedHub) -> None:
    create_user(hub.store, "erin")

    wrong_password = login(hub.url, "erin", WRONG_PASSWORD)
    unknown_user = login(hub.url, "nobody", WRONG_PASSWORD)

    assert wrong_password.status_code == unknown_user.status_code == 401
    assert _error(wrong_password) == _error(unknown_user) == "invalid_credentials"
    assert wrong_password.json()["detail"] == unknown_user.json()["detail"]


def test_wrong_code_is_invalid_code_and_the_mfa_token_stays_usable(hub: EmbeddedHub) -> None:
    secret = create_user(hub.store, "finn")
    mfa_token = _mfa_token(hub, "finn")
    right = current_code(secret, hub.settings.clock.now())
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    response = submit_code(hub.url, mfa_token, wrong)
    assert response.status_code == 401
    assert _error(response) == "invalid_code"
    assert submit_code(hub.url, mfa_token, right).status_code == 200


def test_unknown_mfa_token_is_mfa_token_invalid(hub: EmbeddedHub) -> None:
    response = submit_code(hub.url, "no-such-token", "123456")
    assert response.status_code == 401
    assert _error(response) == "mfa_token_invalid"


def test_mfa_token_expires_after_five_minutes(hub: EmbeddedHub, manual_clock: ManualClock) -> None:
    secret = create_user(hub.store, "gwen")
    mfa_token = _mfa_token(hub, "gwen")
    manual_clock.advance(301)
    response = submit_code(hub.url, mfa_token, current_code(secret, manual_clock.now()))
    assert response.status_code == 401
    assert _error(response) == "mfa_token_invalid"


def test_replayed_code_is_code_already_used(hub: EmbeddedHub, manual_clock: ManualClock) -> None:
    secret = create_user(hub.store, "hana")
    code = current_code(secret, manual_clock.now())
    assert submit_code(hub.url, _mfa_token(hub, "hana"), code).status_code == 200

    response = submit_code(hub.url, _mfa_token(hub, "hana"), code)

    assert response.status_code == 401
    assert _error(response) == "code_already_used"


def test_stale_code_is_invalid_code(hub: EmbeddedHub, manual_clock: ManualClock) -> None:
    secret = create_user(hub.store, "ivan")
    two_steps_ago = current_code(secret, manual_clock.now() - 60)
    response = submit_code(hub.url, _mfa_token(hub, "ivan"), two_steps_ago)
    assert _error(response) == "invalid_code"

    # A code of the window's earlier step is refused once a later step was accepted.
    previous_step = current_code(secret, manual_clock.now() - 30)
    assert submit_code(
        hub.url, _mfa_token(hub, "ivan"), current_code(secret, manual_clock.now())
    ).ok
    response = submit_code(hub.url, _mfa_token(hub, "ivan"), previous_step)
    assert response.status_code == 401
    assert _error(response) == "invalid_code"


def test_codes_one_step_either_side_are_accepted(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    secret = create_user(hub.store, "jo")
    earlier = current_code(secret, manual_clock.now() - 30)
    later = current_code(secret, manual_clock.now() + 30)
    assert submit_code(hub.url, _mfa_token(hub, "jo"), earlier).status_code == 200
    assert submit_code(hub.url, _mfa_token(hub, "jo"), later).status_code == 200


def test_two_parallel_submits_of_one_code_sign_in_once(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    secret = create_user(hub.store, "kai")
    code = current_code(secret, manual_clock.now())
    first, second = _mfa_token(hub, "kai"), _mfa_token(hub, "kai")

    responses = at_once(
        [lambda: submit_code(hub.url, first, code), lambda: submit_code(hub.url, second, code)]
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 401]
    loser = next(response for response in responses if response.status_code == 401)
    assert _error(loser) == "code_already_used"


def test_five_failed_passwords_lock_both_steps_until_fifteen_minutes_pass(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    secret = create_user(hub.store, "lee")
    pending_mfa_token = _mfa_token(hub, "lee")
    for attempt in range(5):
        response = login(hub.url, "lee", WRONG_PASSWORD)
        assert response.status_code == 401, f"attempt {attempt + 1}: {response.text}"
    assert "locked" in response.json()["detail"]

    at_password = login(hub.url, "lee")
    at_code = submit_code(hub.url, pending_mfa_token, current_code(secret, manual_clock.now()))

    for response in (at_password, at_code):
        assert response.status_code == 429
        assert _error(response) == "locked_out"
        assert 0 < response.json()["retry_after"] <= 900
        assert response.headers["Retry-After"] == str(response.json()["retry_after"])
        assert "Try again in 15 minutes" in response.json()["detail"]

    manual_clock.advance(14 * 60)
    assert login(hub.url, "lee").status_code == 429
    manual_clock.advance(61)
    tokens = sign_in(hub.url, "lee", DEFAULT_PASSWORD, secret, at=manual_clock.now())
    assert tokens["user"]["username"] == "lee"


def test_wrong_stale_and_replayed_codes_count_towards_lockout(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    secret = create_user(hub.store, "max")
    now = manual_clock.now()
    used = current_code(secret, now)
    assert submit_code(hub.url, _mfa_token(hub, "max"), used).status_code == 200
    wrong = f"{(int(used) + 1) % 1_000_000:06d}"
    stale = current_code(secret, now - 90)
    mfa_token = _mfa_token(hub, "max")

    answers = [
        _error(submit_code(hub.url, mfa_token, wrong)),
        _error(submit_code(hub.url, mfa_token, stale)),
        _error(submit_code(hub.url, mfa_token, used)),
        _error(login(hub.url, "max", WRONG_PASSWORD)),
        _error(submit_code(hub.url, mfa_token, wrong)),
    ]

    assert answers == [
        "invalid_code",
        "invalid_code",
        "code_already_used",
        "invalid_credentials",
        "invalid_code",
    ]
    response = submit_code(hub.url, mfa_token, current_code(secret, now + 30))
    assert response.status_code == 429
    assert _error(response) == "locked_out"
    assert _error(login(hub.url, "max")) == "locked_out"


def test_a_successful_sign_in_resets_the_failure_count(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    secret = create_user(hub.store, "nia")
    for _ in range(4):
        assert login(hub.url, "nia", WRONG_PASSWORD).status_code == 401
    sign_in(hub.url, "nia", DEFAULT_PASSWORD, secret, at=manual_clock.now())
    for _ in range(4):
        assert login(hub.url, "nia", WRONG_PASSWORD).status_code == 401
    assert login(hub.url, "nia").status_code == 200


def test_failures_older_than_fifteen_minutes_do_not_count(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    create_user(hub.store, "otto")
    for _ in range(4):
        assert login(hub.url, "otto", WRONG_PASSWORD).status_code == 401
    manual_clock.advance(15 * 60 + 1)
    assert login(hub.url, "otto", WRONG_PASSWORD).status_code == 401
    assert login(hub.url, "otto").status_code == 200


def _login_from(
    hub: EmbeddedHub, address: str, username: str, password: str = WRONG_PASSWORD
) -> requests.Response:
    """The password step as relayed by a trusted proxy for a client at `address`."""
    return requests.post(
        f"{hub.url}/v1/auth/login",
        json={"username": username, "password": password, "device_id": "d", "device_name": "n"},
        headers={"X-Forwarded-For": address},
        timeout=HTTP_TIMEOUT,
    )


def _failure_rows(hub: EmbeddedHub) -> int:
    with hub.store.db.read() as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM signin_failures").fetchone()
    return int(count)


def test_forty_parallel_password_guesses_check_at_most_five(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    hub = start_hub(**UNTHROTTLED)
    create_user(hub.store, "yara")
    guesses = [lambda n=n: login(hub.url, "yara", f"guess {n}") for n in range(39)]
    right = [lambda: login(hub.url, "yara")]

    answers = at_once([*guesses, *right])

    checked = [a for a in answers if a.status_code in (200, 401)]
    assert 1 <= len(checked) <= 5, [a.status_code for a in answers]
    # The rest were refused before any check: locked, or (the hashing queue full) busy.
    refused = {(a.status_code, _error(a)) for a in answers if a not in checked}
    assert refused <= {(429, "locked_out"), (503, "sign_in_busy")}
    assert _failure_rows(hub) <= 5


def test_forty_parallel_code_guesses_check_at_most_five(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    secret = create_user(hub.store, "zed")
    mfa_token = _mfa_token(hub, "zed")
    right = current_code(secret, manual_clock.now())
    wrong = [f"{(int(right) + n) % 1_000_000:06d}" for n in range(1, 40)]

    answers = at_once([lambda code=code: submit_code(hub.url, mfa_token, code) for code in wrong])

    checked = [a for a in answers if a.status_code != 429]
    assert 1 <= len(checked) <= 5, [a.status_code for a in answers]
    assert {_error(a) for a in checked} == {"invalid_code"}
    assert {_error(a) for a in answers if a.status_code == 429} == {"locked_out"}
    assert _error(submit_code(hub.url, mfa_token, right)) == "locked_out"


def test_unknown_usernames_answer_and_lock_exactly_as_known_ones(
    start_hub: Callable[..., EmbeddedHub], manual_clock: ManualClock
) -> None:
    hub = start_hub(**UNTHROTTLED)
    create_user(hub.store, "known")

    def answers(username: str) -> list[tuple[int, str, str, str | None]]:
        result = []
        for _ in range(7):
            response = login(hub.url, username, WRONG_PASSWORD)
            body = response.json()
            result.append(
                (
                    response.status_code,
                    body["error"],
                    body["detail"],
                    response.headers.get("Retry-After"),
                )
            )
        return result

    known, unknown = answers("known"), answers("unknown")

    assert known == unknown
    assert [status for status, *_ in known] == [401] * 5 + [429] * 2
    assert "locked" in known[4][2]


def test_hostile_usernames_are_counted_like_any_other_and_never_a_server_error(
    hub: EmbeddedHub,
) -> None:
    hostile = [
        "\u202eadmin",
        "<b>root</b>",
        "x" * 64,
        "\u0000",
        "'; DROP TABLE users; --",
    ]
    for username in hostile:
        body = json.dumps(
            {"username": username, "password": "p", "device_id": "d", "device_name": "n"}
        )
        response = requests.post(
            f"{hub.url}/v1/auth/login",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 401, (username, response.text)
        assert _error(response) == "invalid_credentials"
    assert _failure_rows(hub) == len(hostile)
    # A lone surrogate is not text: refused before anything is counted.
    response = requests.post(
        f"{hub.url}/v1/auth/login",
        data=b'{"username": "\\ud800", "password": "p", "device_id": "d", "device_name": "n"}',
        headers={"Content-Type": "application/json"},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 422
    assert _error(response) == "invalid_request"
    assert _failure_rows(hub) == len(hostile)


def test_a_guesser_elsewhere_locks_only_their_own_address_not_the_agents_machine(
    start_hub: Callable[..., EmbeddedHub], manual_clock: ManualClock
) -> None:
    hub = start_hub(**UNTHROTTLED, trusted_proxies=["127.0.0.1/32"])
    secret = create_user(hub.store, "ana")
    for _ in range(5):
        assert _login_from(hub, "203.0.113.66", "ana").status_code == 401
    assert _error(_login_from(hub, "203.0.113.66", "ana", DEFAULT_PASSWORD)) == "locked_out"

    at_home = _login_from(hub, "192.0.2.10", "ana", DEFAULT_PASSWORD)

    assert at_home.status_code == 200, at_home.text
    code = submit_code(
        hub.url, at_home.json()["mfa_token"], current_code(secret, manual_clock.now())
    )
    assert code.status_code == 200
    assert _error(_login_from(hub, "203.0.113.66", "ana", DEFAULT_PASSWORD)) == "locked_out"


def test_failures_from_many_addresses_lock_the_account_everywhere_at_the_account_limit(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    hub = start_hub(**UNTHROTTLED, trusted_proxies=["127.0.0.1/32"], account_lockout_threshold=12)
    create_user(hub.store, "ben")
    answers = [_login_from(hub, f"198.51.100.{n // 4}", "ben").status_code for n in range(12)]
    assert answers == [401] * 12

    elsewhere = _login_from(hub, "192.0.2.200", "ben", DEFAULT_PASSWORD)

    assert elsewhere.status_code == 429
    assert _error(elsewhere) == "locked_out"
    assert int(elsewhere.headers["Retry-After"]) == elsewhere.json()["retry_after"] <= 900


def test_an_admin_unlock_lifts_both_kinds_of_lock(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    hub = start_hub(**UNTHROTTLED, trusted_proxies=["127.0.0.1/32"], account_lockout_threshold=10)
    create_user(hub.store, "cy")
    for n in range(10):
        _login_from(hub, f"198.51.100.{n // 5}", "cy")
    assert _error(_login_from(hub, "198.51.100.0", "cy", DEFAULT_PASSWORD)) == "locked_out"
    assert _error(_login_from(hub, "192.0.2.1", "cy", DEFAULT_PASSWORD)) == "locked_out"
    user = hub.store.accounts.find_user(username="cy")
    assert user is not None

    hub.store.accounts.unlock(user.id)

    assert _login_from(hub, "198.51.100.0", "cy", DEFAULT_PASSWORD).status_code == 200
    assert _login_from(hub, "192.0.2.1", "cy", DEFAULT_PASSWORD).status_code == 200
    hub.store.accounts.unlock(10_000)


def test_refresh_rotates_and_the_old_refresh_token_dies(hub: EmbeddedHub) -> None:
    secret = create_user(hub.store, "pia")
    tokens = sign_in(hub.url, "pia", DEFAULT_PASSWORD, secret)

    response = _refresh(hub, tokens["refresh_token"])

    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["token_type"] == "bearer"
    assert rotated["expires_in"] == 900
    assert rotated["session_expires_at"] == tokens["session_expires_at"]
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert rotated["access_token"] != tokens["access_token"]
    assert _me(hub, rotated["access_token"]).status_code == 200
    assert _refresh(hub, rotated["refresh_token"]).status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    secret = create_user(hub.store, "quinn")
    tokens = sign_in(hub.url, "quinn", DEFAULT_PASSWORD, secret, at=manual_clock.now())
    rotated = _refresh(hub, tokens["refresh_token"]).json()
    manual_clock.advance(hub.settings.refresh_grace_seconds + 1)

    reuse = _refresh(hub, tokens["refresh_token"])

    assert reuse.status_code == 401
    assert _error(reuse) == "refresh_reused"
    assert _error(_me(hub, rotated["access_token"])) == "token_invalid"
    assert _error(_me(hub, tokens["access_token"])) == "token_invalid"
    assert _error(_refresh(hub, rotated["refresh_token"])) == "token_invalid"


def test_reuse_revokes_only_that_family(hub: EmbeddedHub, manual_clock: ManualClock) -> None:
    secret = create_user(hub.store, "rae")
    now = manual_clock.now()
    laptop = sign_in(hub.url, "rae", DEFAULT_PASSWORD, secret, at=now, device_id="laptop")
    desktop = sign_in(hub.url, "rae", DEFAULT_PASSWORD, secret, at=now, device_id="desktop")
    _refresh(hub, laptop["refresh_token"])
    manual_clock.advance(hub.settings.refresh_grace_seconds + 1)
    assert _error(_refresh(hub, laptop["refresh_token"])) == "refresh_reused"
    assert _me(hub, desktop["access_token"]).status_code == 200


def test_forty_racing_refreshes_of_one_token_rotate_it_once_and_all_get_the_same_pair(
    hub: EmbeddedHub,
) -> None:
    secret = create_user(hub.store, "sam")
    tokens = sign_in(hub.url, "sam", DEFAULT_PASSWORD, secret)

    responses = at_once([lambda: _refresh(hub, tokens["refresh_token"])] * 40)

    assert {response.status_code for response in responses} == {200}
    pairs = {(r.json()["access_token"], r.json()["refresh_token"]) for r in responses}
    assert len(pairs) == 1
    ((access, refresh),) = pairs
    assert _me(hub, access).status_code == 200
    with hub.store.db.read() as conn:
        (live,) = conn.execute(
            "SELECT COUNT(*) FROM refresh_tokens WHERE rotated_at IS NULL"
        ).fetchone()
    assert live == 1
    assert _refresh(hub, refresh).status_code == 200
    # Its successor was used: the first token is now a replay like any other.
    assert _error(_refresh(hub, tokens["refresh_token"])) == "refresh_reused"
    assert _error(_me(hub, access)) == "token_invalid"


def test_a_refresh_answer_lost_after_the_rotation_never_signs_the_agent_out(
    hub: EmbeddedHub,
) -> None:
    secret = create_user(hub.store, "dee")
    tokens = sign_in(hub.url, "dee", DEFAULT_PASSWORD, secret)
    proxy = FaultProxy((hub.host, hub.port)).start()
    try:
        answer_size = len(_raw_refresh_answer(hub, tokens["refresh_token"]))
        tokens = _refresh(hub, tokens["refresh_token"]).json()
        # 20 cuts from before the first byte of the answer to well inside its body (the size is
        # estimated from the parsed headers, so the last cut keeps a margin before the end).
        last_cut = answer_size - 40
        for cut in [round(n * last_cut / 19) for n in range(20)]:
            proxy.set_toxic("downstream", LimitData(limit=cut))
            assert not _refresh_answer_arrives(proxy.url, tokens["refresh_token"]), cut
            proxy.set_toxic("downstream", None)
            # The client still holds the old token and tries again: the same pair comes back.
            again = _refresh(hub, tokens["refresh_token"])
            assert again.status_code == 200, f"cut at {cut}: {again.text}"
            once_more = _refresh(hub, tokens["refresh_token"])
            assert once_more.json() == again.json()
            assert _me(hub, again.json()["access_token"]).status_code == 200
            tokens = again.json()
    finally:
        proxy.stop()
    assert _refresh(hub, tokens["refresh_token"]).status_code == 200


def _refresh_answer_arrives(base_url: str, refresh_token: str) -> bool:
    """Whether a refresh through `base_url` brings back a usable token answer."""
    try:
        response = requests.post(
            f"{base_url}/v1/auth/refresh",
            json={"refresh_token": refresh_token},
            timeout=HTTP_TIMEOUT,
        )
        return "refresh_token" in response.json()
    except (requests.RequestException, ValueError):
        # A cut inside the status line can even read as an empty 200: still nothing usable.
        return False


def _pair(tokens: dict[str, Any]) -> tuple[str, str]:
    return tokens["access_token"], tokens["refresh_token"]


def _raw_refresh_answer(hub: EmbeddedHub, refresh_token: str) -> bytes:
    """The bytes of one refresh answer on the wire (head and body), from a throwaway family."""
    secret = create_user(hub.store, "wire-size")
    spare = sign_in(hub.url, "wire-size", DEFAULT_PASSWORD, secret)
    response = _refresh(hub, spare["refresh_token"])
    head = "".join(f"{name}: {value}\r\n" for name, value in response.headers.items())
    return f"HTTP/1.1 200 OK\r\n{head}\r\n".encode() + response.content


def test_a_replay_after_the_grace_window_still_revokes_the_family(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    secret = create_user(hub.store, "eli")
    tokens = sign_in(hub.url, "eli", DEFAULT_PASSWORD, secret, at=manual_clock.now())
    rotated = _refresh(hub, tokens["refresh_token"]).json()
    manual_clock.advance(hub.settings.refresh_grace_seconds - 1)
    again = _refresh(hub, tokens["refresh_token"]).json()
    assert _pair(again) == _pair(rotated)
    # The same access token, so its lifetime has run on.
    assert again["expires_in"] == rotated["expires_in"] - hub.settings.refresh_grace_seconds + 1
    manual_clock.advance(2)

    replay = _refresh(hub, tokens["refresh_token"])

    assert _error(replay) == "refresh_reused"
    assert _error(_me(hub, rotated["access_token"])) == "token_invalid"
    assert _error(_refresh(hub, rotated["refresh_token"])) == "token_invalid"


def test_a_replay_after_the_successor_was_used_revokes_even_within_the_window(
    hub: EmbeddedHub,
) -> None:
    secret = create_user(hub.store, "fay")
    tokens = sign_in(hub.url, "fay", DEFAULT_PASSWORD, secret)
    rotated = _refresh(hub, tokens["refresh_token"]).json()
    newest = _refresh(hub, rotated["refresh_token"]).json()

    replay = _refresh(hub, tokens["refresh_token"])

    assert _error(replay) == "refresh_reused"
    assert _error(_me(hub, newest["access_token"])) == "token_invalid"
    assert _error(_refresh(hub, newest["refresh_token"])) == "token_invalid"


def test_the_successor_is_kept_only_sealed_and_only_for_the_grace_window(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    secret = create_user(hub.store, "gus")
    tokens = sign_in(hub.url, "gus", DEFAULT_PASSWORD, secret, at=manual_clock.now())
    rotated = _refresh(hub, tokens["refresh_token"]).json()
    stored = stored_bytes(hub.store, hub.settings)
    assert rotated["refresh_token"].encode() not in stored
    assert rotated["access_token"].encode() not in stored

    manual_clock.advance(hub.settings.refresh_grace_seconds + 1)
    # Any later rotation, by anyone, drops sealed pairs older than the window.
    other = sign_in(hub.url, "gus", DEFAULT_PASSWORD, secret, at=manual_clock.now())
    _refresh(hub, other["refresh_token"])
    with hub.store.db.read() as conn:
        (sealed,) = conn.execute(
            "SELECT COUNT(*) FROM refresh_tokens WHERE successor_sealed IS NOT NULL"
        ).fetchone()
    assert sealed == 1


@pytest.mark.slow
def test_a_thousand_refreshes_leave_a_bounded_number_of_token_rows(hub: EmbeddedHub) -> None:
    secret = create_user(hub.store, "hal")
    tokens = sign_in(hub.url, "hal", DEFAULT_PASSWORD, secret)
    with requests.Session() as session:
        for _ in range(1000):
            response = session.post(
                f"{hub.url}/v1/auth/refresh",
                json={"refresh_token": tokens["refresh_token"]},
                timeout=HTTP_TIMEOUT,
            )
            assert response.status_code == 200, response.text
            tokens = response.json()

    with hub.store.db.read() as conn:
        (refresh_rows,) = conn.execute("SELECT COUNT(*) FROM refresh_tokens").fetchone()
        (access_rows,) = conn.execute("SELECT COUNT(*) FROM access_tokens").fetchone()
    assert refresh_rows <= 17
    assert access_rows <= 2
    assert _me(hub, tokens["access_token"]).status_code == 200
    assert _refresh(hub, tokens["refresh_token"]).status_code == 200


def test_family_ends_after_its_absolute_lifetime_and_refresh_never_extends_it(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    secret = create_user(hub.store, "tia")
    tokens = sign_in(hub.url, "tia", DEFAULT_PASSWORD, secret, at=manual_clock.now())
    for _ in range(3):
        manual_clock.advance(4 * 3600 - 60)
        response = _refresh(hub, tokens["refresh_token"])
        assert response.status_code == 200, response.text
        assert response.json()["session_expires_at"] == tokens["session_expires_at"]
        tokens = response.json()

    manual_clock.advance(181)
    response = _refresh(hub, tokens["refresh_token"])

    assert response.status_code == 401
    assert _error(response) == "session_expired"
    assert _error(_me(hub, tokens["access_token"])) == "token_expired"


def test_access_token_expires_after_fifteen_minutes(
    hub: EmbeddedHub, manual_clock: ManualClock
) -> None:
    secret = create_user(hub.store, "uma")
    tokens = sign_in(hub.url, "uma", DEFAULT_PASSWORD, secret, at=manual_clock.now())
    manual_clock.advance(899)
    assert _me(hub, tokens["access_token"]).status_code == 200
    manual_clock.advance(1)

    response = _me(hub, tokens["access_token"])

    assert response.status_code == 401
    assert _error(response) == "token_expired"
    assert _refresh(hub, tokens["refresh_token"]).status_code == 200


def test_logout_revokes_the_access_token_and_its_family(hub: EmbeddedHub) -> None:
    secret = create_user(hub.store, "vic")
    tokens = sign_in(hub.url, "vic", DEFAULT_PASSWORD, secret)

    response = requests.post(
        f"{hub.url}/v1/auth/logout",
        headers=auth_headers(tokens["access_token"]),
        timeout=HTTP_TIMEOUT,
    )

    assert response.status_code == 204
    assert _error(_me(hub, tokens["access_token"])) == "token_invalid"
    assert _error(_refresh(hub, tokens["refresh_token"])) == "token_invalid"


def test_me_without_a_valid_token_is_token_invalid(hub: EmbeddedHub) -> None:
    no_header = requests.get(f"{hub.url}/v1/me", timeout=HTTP_TIMEOUT)
    unknown = _me(hub, "made-up-token")
    basic = requests.get(
        f"{hub.url}/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}, timeout=HTTP_TIMEOUT
    )
    for response in (no_header, unknown, basic):
        assert response.status_code == 401
        assert _error(response) == "token_invalid"


def test_tokens_and_secrets_are_stored_only_as_hashes(hub: EmbeddedHub) -> None:
    secret = create_user(hub.store, "wes", password="a rather distinctive password")
    challenge = login(hub.url, "wes", "a rather distinctive password").json()
    tokens = submit_code(
        hub.url, challenge["mfa_token"], current_code(secret, hub.settings.clock.now())
    ).json()
    rotated = _refresh(hub, tokens["refresh_token"]).json()

    stored = stored_bytes(hub.store, hub.settings)

    for raw in (
        challenge["mfa_token"],
        tokens["access_token"],
        tokens["refresh_token"],
        rotated["access_token"],
        rotated["refresh_token"],
        "a rather distinctive password",
    ):
        assert raw.encode() not in stored
    with hub.store.db.read() as conn:
        (hashed,) = conn.execute("SELECT COUNT(*) FROM refresh_tokens").fetchone()
    assert hashed == 2


@pytest.mark.sqlite_only
def test_a_hub_on_the_first_schema_upgrades_and_its_users_sign_in_and_lock(
    start_hub: Callable[..., EmbeddedHub], hub_settings: HubSettings
) -> None:
    hub_settings.data_dir.mkdir(mode=0o700)
    old = SqliteDatabase(hub_settings.database_path)
    old.migrate(MIGRATIONS[:1])
    secret = totp.new_secret()
    with old.write() as conn:
        conn.execute(
            """
            INSERT INTO users (username, display_name, role, password_hash, totp_secret, created_at)
            VALUES ('ivy', 'Ivy', 'agent', ?, ?, 0)
            """,
            (passwords.hash_password(DEFAULT_PASSWORD), secret),
        )
        conn.execute("INSERT INTO login_failures (user_id, failed_at, reason) VALUES (1, 0, 'x')")
    old.close()

    hub = start_hub()

    assert sign_in(hub.url, "ivy", DEFAULT_PASSWORD, secret)["user"]["username"] == "ivy"
    for _ in range(5):
        assert login(hub.url, "ivy", WRONG_PASSWORD).status_code == 401
    assert _error(login(hub.url, "ivy")) == "locked_out"
