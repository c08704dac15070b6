"""Sign-in, lockout, token rotation and logout against a real hub over HTTP."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from hub.clock import ManualClock
from hub.server import EmbeddedHub
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    auth_headers,
    create_user,
    current_code,
    login,
    sign_in,
    submit_code,
)

WRONG_PASSWORD = "not the password at all"


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


def _in_parallel(*calls: Callable[[], requests.Response]) -> list[requests.Response]:
    """Run the calls at the same moment (a barrier releases them together)."""
    barrier = threading.Barrier(len(calls), timeout=10)

    def run(call: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


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

    responses = _in_parallel(
        lambda: submit_code(hub.url, first, code), lambda: submit_code(hub.url, second, code)
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

    responses = _in_parallel(*[lambda: _refresh(hub, tokens["refresh_token"])] * 40)

    assert {response.status_code for response in responses} == {200}
    pairs = {(r.json()["access_token"], r.json()["refresh_token"]) for r in responses}
    assert len(pairs) == 1
    ((access, refresh),) = pairs
    assert _me(hub, access).status_code == 200
    with sqlite3.connect(hub.settings.database_path) as conn:
        (live,) = conn.execute(
            "SELECT COUNT(*) FROM refresh_tokens WHERE rotated_at IS NULL"
        ).fetchone()
    assert live == 1
    assert _refresh(hub, refresh).status_code == 200
    # Its successor was used: the first token is now a replay like any other.
    assert _error(_refresh(hub, tokens["refresh_token"])) == "refresh_reused"
    assert _error(_me(hub, access)) == "token_invalid"


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

    stored = b"".join(
        path.read_bytes()
        for path in hub.settings.data_dir.glob(hub.settings.database_path.name + "*")
    )

    for raw in (
        challenge["mfa_token"],
        tokens["access_token"],
        tokens["refresh_token"],
        rotated["access_token"],
        rotated["refresh_token"],
        "a rather distinctive password",
    ):
        assert raw.encode() not in stored
    with sqlite3.connect(hub.settings.database_path) as conn:
        (hashed,) = conn.execute("SELECT COUNT(*) FROM refresh_tokens").fetchone()
    assert hashed == 2
