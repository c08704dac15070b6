"""Signing in against the real hub: two steps with a real TOTP code, the refresh token in the real
OS keyring (Secret Service), silent resume, refresh, sign-out, and life without a keyring."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import keyring
import keyring.backend
import keyring.backends.fail
import pyotp
import pytest
import requests

from client.core.auth import Account, Authenticator
from client.core.errors import (
    AuthRequired,
    InvalidCode,
    InvalidCredentials,
    KeyringUnavailable,
    LockedOut,
)
from client.core.hub_client import HubClient
from client.core.token_vault import SERVICE, TokenVault
from hub import totp
from hub.clock import ManualClock
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, create_user, next_code

real_keyring = pytest.mark.skipif(
    os.environ.get("VIGIL_TEST_REAL_KEYRING") != "1",
    reason="needs a real Secret Service keyring: run the tests with scripts/test, which starts "
    "gnome-keyring on a private D-Bus session and sets VIGIL_TEST_REAL_KEYRING=1",
)


@dataclass
class Client:
    """An Authenticator with its HubClient and everything its events said."""

    auth: Authenticator
    hub: HubClient
    signed_in: list[Account] = field(default_factory=list)
    signed_out: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@pytest.fixture
def make_client(hub: EmbeddedHub) -> Iterator[Callable[..., Client]]:
    made: list[HubClient] = []

    def make(backend: keyring.backend.KeyringBackend | None = None) -> Client:
        hub_client = HubClient(hub.url)
        made.append(hub_client)
        auth = Authenticator(
            hub_client,
            TokenVault(hub_client.base_url, backend=backend),
            device_id="0b0e5a52-6f3a-4a51-9f60-8f0a43c1d7a2",
            device_name="Test laptop",
        )
        client = Client(auth, hub_client)
        auth.signed_in.connect(client.signed_in.append)
        auth.signed_out.connect(client.signed_out.append)
        auth.warning.connect(client.warnings.append)
        return client

    yield make
    for hub_client in made:
        hub_client.close()


@pytest.fixture
def secret(hub: EmbeddedHub) -> str:
    return create_user(hub.store, "amira", "agent", display_name="Amira Haddad")


def saved_token(hub: EmbeddedHub, username: str = "amira") -> str | None:
    token: str | None = keyring.get_password(SERVICE, f"{hub.url}|{username}")
    return token


def sign_in(client: Client, secret: str, at: float | None = None) -> Account:
    challenge = client.auth.begin("amira", DEFAULT_PASSWORD)
    return client.auth.complete(challenge, next_code(secret, at))


def wrong_code(secret: str) -> str:
    """A 6-digit code the hub will not accept now (not valid one step either side)."""
    step = totp.time_step(time.time())
    valid = {pyotp.TOTP(secret).at((step + d) * totp.STEP_SECONDS) for d in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in valid)


@real_keyring
@pytest.mark.keyring
def test_sign_in_keeps_the_refresh_token_in_the_keyring(
    hub: EmbeddedHub, secret: str, make_client: Callable[..., Client]
) -> None:
    client = make_client()

    account = sign_in(client, secret)

    assert (account.username, account.display_name, account.roles) == (
        "amira",
        "Amira Haddad",
        ("agent",),
    )
    assert client.signed_in == [account]
    assert client.auth.account == account
    assert saved_token(hub)
    assert client.hub.get_json("/v1/me")["username"] == "amira"
    assert client.warnings == []


def test_wrong_password_is_invalid_credentials(
    secret: str, make_client: Callable[..., Client]
) -> None:
    client = make_client(keyring.backends.fail.Keyring())

    with pytest.raises(InvalidCredentials):
        client.auth.begin("amira", "not the password")
    assert client.auth.account is None


def test_wrong_code_is_invalid_code(secret: str, make_client: Callable[..., Client]) -> None:
    client = make_client(keyring.backends.fail.Keyring())
    challenge = client.auth.begin("amira", DEFAULT_PASSWORD)

    with pytest.raises(InvalidCode) as raised:
        client.auth.complete(challenge, wrong_code(secret))

    assert raised.value.code == "invalid_code"
    assert client.auth.account is None
    assert client.signed_in == []


def test_code_that_is_not_six_digits_is_refused_without_asking_the_hub(
    secret: str, make_client: Callable[..., Client]
) -> None:
    client = make_client(keyring.backends.fail.Keyring())
    challenge = client.auth.begin("amira", DEFAULT_PASSWORD)

    with pytest.raises(InvalidCode, match="6-digit"):
        client.auth.complete(challenge, "12345")
    # The malformed code was not counted as a failure: the right code still signs in.
    assert client.auth.complete(challenge, next_code(secret)).username == "amira"


def test_too_many_failures_lock_the_account_with_a_retry_time(
    secret: str, make_client: Callable[..., Client]
) -> None:
    client = make_client(keyring.backends.fail.Keyring())
    for _ in range(5):
        with pytest.raises((InvalidCredentials, LockedOut)):
            client.auth.begin("amira", "not the password")

    with pytest.raises(LockedOut) as raised:
        client.auth.begin("amira", DEFAULT_PASSWORD)

    assert 0 < raised.value.retry_after <= 15 * 60
    assert "Try again in" in raised.value.message
    assert "minute" in raised.value.message


@real_keyring
@pytest.mark.keyring
def test_resume_signs_in_silently_from_the_keyring(
    hub: EmbeddedHub, secret: str, make_client: Callable[..., Client]
) -> None:
    sign_in(make_client(), secret)
    first_token = saved_token(hub)
    restarted = make_client()

    account = restarted.auth.resume("amira")

    assert account is not None and account.verified
    assert account.display_name == "Amira Haddad"
    assert restarted.signed_in == [account]
    assert restarted.hub.get_json("/v1/me")["username"] == "amira"
    # Within the access token's 15 minutes the saved one is used: no rotation, nothing to lose.
    assert saved_token(hub) == first_token

    keyring.delete_password(SERVICE, f"{hub.url}|amira|access")
    later = make_client()
    assert later.auth.resume("amira") is not None
    # Without it the refresh token was rotated and the new one saved in place of the old one.
    assert saved_token(hub) not in (None, first_token)
    assert keyring.get_password(SERVICE, f"{hub.url}|amira|access") is not None


@real_keyring
@pytest.mark.keyring
def test_resume_without_a_saved_sign_in_is_none(
    secret: str, make_client: Callable[..., Client]
) -> None:
    client = make_client()

    assert client.auth.resume("amira") is None
    assert client.auth.account is None


@real_keyring
@pytest.mark.keyring
def test_sign_out_revokes_and_clears_the_keyring_entry(
    hub: EmbeddedHub, secret: str, make_client: Callable[..., Client]
) -> None:
    client = make_client()
    sign_in(client, secret)
    refresh_token = saved_token(hub)

    assert keyring.get_password(SERVICE, f"{hub.url}|amira|access") is not None

    client.auth.sign_out()

    assert saved_token(hub) is None
    assert keyring.get_password(SERVICE, f"{hub.url}|amira|access") is None
    assert client.auth.account is None
    assert client.signed_out == ["You signed out."]
    answer = requests.post(
        f"{hub.url}/v1/auth/refresh", json={"refresh_token": refresh_token}, timeout=10
    )
    assert answer.status_code == 401
    with pytest.raises(AuthRequired):
        client.hub.get_json("/v1/me")
    assert make_client().auth.resume("amira") is None


@real_keyring
@pytest.mark.keyring
def test_expired_access_token_is_refreshed_and_the_new_refresh_token_saved(
    hub: EmbeddedHub,
    manual_clock: ManualClock,
    secret: str,
    make_client: Callable[..., Client],
) -> None:
    client = make_client()
    sign_in(client, secret, manual_clock.now())
    before = saved_token(hub)
    manual_clock.advance(16 * 60)

    assert client.hub.get_json("/v1/me")["username"] == "amira"
    assert saved_token(hub) not in (None, before)
    assert client.signed_out == []


@real_keyring
@pytest.mark.keyring
def test_reused_refresh_token_signs_the_user_out(
    hub: EmbeddedHub,
    manual_clock: ManualClock,
    secret: str,
    make_client: Callable[..., Client],
) -> None:
    client = make_client()
    sign_in(client, secret, manual_clock.now())
    # Someone else uses a copy of the saved refresh token first.
    stolen = requests.post(
        f"{hub.url}/v1/auth/refresh", json={"refresh_token": saved_token(hub)}, timeout=10
    )
    assert stolen.status_code == 200
    manual_clock.advance(16 * 60)

    with pytest.raises(AuthRequired) as raised:
        client.hub.get_json("/v1/me")

    assert raised.value.code == "refresh_reused"
    assert client.auth.account is None
    assert saved_token(hub) is None
    assert len(client.signed_out) == 1
    assert "already used" in client.signed_out[0]
    # The whole family is revoked, including the copy's fresh tokens.
    copy = stolen.json()
    assert (
        requests.get(
            f"{hub.url}/v1/me",
            headers={"Authorization": f"Bearer {copy['access_token']}"},
            timeout=10,
        ).status_code
        == 401
    )


@real_keyring
@pytest.mark.keyring
def test_sign_in_past_its_shift_length_ends_with_a_reason(
    hub: EmbeddedHub,
    manual_clock: ManualClock,
    secret: str,
    make_client: Callable[..., Client],
) -> None:
    client = make_client()
    sign_in(client, secret, manual_clock.now())
    manual_clock.advance(13 * 3600)

    with pytest.raises(AuthRequired) as raised:
        client.hub.get_json("/v1/me")

    assert raised.value.code == "session_expired"
    assert client.auth.account is None
    assert saved_token(hub) is None
    assert client.signed_out and "Sign in again" in client.signed_out[0]


def test_without_a_keyring_sign_in_works_for_this_run_with_a_warning(
    manual_clock: ManualClock, secret: str, make_client: Callable[..., Client]
) -> None:
    client = make_client(keyring.backends.fail.Keyring())

    account = sign_in(client, secret, manual_clock.now())

    assert account.username == "amira"
    assert len(client.warnings) == 1
    assert "can't be saved" in client.warnings[0]
    assert "No system keyring found" in client.warnings[0]
    assert "sign in again after Vigil restarts" in client.warnings[0]
    manual_clock.advance(16 * 60)
    assert client.hub.get_json("/v1/me")["username"] == "amira"
    assert len(client.warnings) == 1


def test_missing_keyring_is_a_clear_error_saying_what_to_install() -> None:
    vault = TokenVault("https://vigil-hub.example.org", backend=keyring.backends.fail.Keyring())

    with pytest.raises(KeyringUnavailable) as raised:
        vault.store("amira", "refresh-token-value")

    assert "GNOME Keyring or KWallet" in raised.value.message
    assert "refresh-token-value" not in raised.value.message
