"""Offline unlock: the agent's password against an scrypt verifier kept in the real keyring."""

import os
import uuid
from collections.abc import Iterator

import keyring
import pytest
from keyring.backends.fail import Keyring as NoKeyring

from client.core.errors import KeyringUnavailable
from client.core.offline_unlock import SERVICE, OfflineUnlock

real_keyring = pytest.mark.skipif(
    os.environ.get("VIGIL_TEST_REAL_KEYRING") != "1",
    reason="needs a real Secret Service keyring: run under scripts/with-keyring",
)


@pytest.fixture
def username() -> Iterator[str]:
    name = f"agent-{uuid.uuid4().hex[:8]}"
    yield name
    OfflineUnlock().forget(name)


@pytest.mark.keyring
@real_keyring
def test_enrolled_password_unlocks_and_a_wrong_one_does_not(username: str) -> None:
    unlock = OfflineUnlock()
    assert not unlock.is_enrolled(username)
    assert not unlock.verify(username, "correct horse")

    unlock.enroll(username, "correct horse")

    assert unlock.is_enrolled(username)
    assert unlock.verify(username, "correct horse")
    assert not unlock.verify(username, "correct horse ")
    assert not unlock.verify(username, "Correct horse")
    assert not unlock.verify(f"{username}-other", "correct horse")


@pytest.mark.keyring
@real_keyring
def test_keyring_holds_a_salted_verifier_never_the_password(username: str) -> None:
    unlock = OfflineUnlock()
    unlock.enroll(username, "s3cret-pass")
    first = keyring.get_password(SERVICE, username)
    unlock.enroll(username, "s3cret-pass")
    second = keyring.get_password(SERVICE, username)

    assert first is not None and second is not None
    assert "s3cret-pass" not in first
    assert first.startswith("scrypt$32768$8$1$")
    assert first != second  # a new random salt each time
    assert unlock.verify(username, "s3cret-pass")


@pytest.mark.keyring
@real_keyring
def test_forget_removes_offline_unlock(username: str) -> None:
    unlock = OfflineUnlock()
    unlock.enroll(username, "pw")
    unlock.forget(username)
    assert not unlock.is_enrolled(username)
    assert not unlock.verify(username, "pw")
    unlock.forget(username)


@pytest.mark.keyring
@real_keyring
def test_tampered_weak_verifier_is_refused(username: str) -> None:
    # A verifier rewritten with cheap parameters (or garbage) must not unlock anything.
    keyring.set_password(SERVICE, username, "scrypt$2$1$1$AAAA$AAAA")
    assert not OfflineUnlock().verify(username, "")
    keyring.set_password(SERVICE, username, "not a verifier")
    assert not OfflineUnlock().is_enrolled(username)


def test_no_keyring_is_a_clear_error() -> None:
    # keyring's own "fail" backend is what keyring uses on a machine with no keyring at all.
    unlock = OfflineUnlock(backend=NoKeyring())
    with pytest.raises(KeyringUnavailable, match="system keyring") as raised:
        unlock.enroll("agent", "hunter2-secret")
    assert "hunter2-secret" not in str(raised.value)
    with pytest.raises(KeyringUnavailable):
        unlock.verify("agent", "pw")
