"""The password policy for new passwords (NIST SP 800-63B 5.1.1.2), on its own and at sign-in."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import passwords, totp
from hub.demo import DEMO_USERS
from hub.password_policy import (
    MIN_PASSWORD_LENGTH,
    PasswordRefused,
    check_new_password,
    normalise,
)
from hub.passwords import MAX_PASSWORD_LENGTH
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, sign_in


def _template(refused: PasswordRefused) -> str:
    return re.sub(r"\d+", "N", str(refused))


def _messages() -> set[str]:
    messages = set()
    examples = ("abc", "y" * 2000, "with\ttab ok", " " * 9, "zzzzzzzzz", "jlee1234", "password")
    for example in examples:
        with pytest.raises(PasswordRefused) as refused:
            check_new_password(example, username="jlee")
        messages.add(_template(refused.value))
    return messages


MESSAGES = _messages()


@pytest.mark.parametrize(
    ("password", "username", "rule"),
    [
        ("password", "jlee", "common_password"),
        ("12345678", "jlee", "common_password"),
        ("PassWord", "jlee", "common_password"),  # the list is matched in any letter case
        # Full-width letters: NFKC makes them "password".
        ("".join(chr(ord(char) + 0xFEE0) for char in "password"), "jlee", "common_password"),
        ("iloveyou1", "jlee", "common_password"),
        (" " * 8, "jlee", "only_spaces"),
        ("\u3000" * 9, "jlee", "only_spaces"),  # ideographic spaces
        ("aaaaaaaaaaaa", "jlee", "repeated_character"),
        ("short", "jlee", "too_short"),
        ("", "jlee", "too_short"),
        ("x" * 7 + "y", "jlee", None),
        ("jlee2024!", "jlee", "contains_username"),
        ("my JLEE pw", "jlee", "contains_username"),
        ("tab\tinside the password", "jlee", "unprintable"),
        ("nul\x00inside the password", "jlee", "unprintable"),
        ("y" * (MAX_PASSWORD_LENGTH + 1) + "z", "jlee", "too_long"),
    ],
)
def test_each_rule_refuses_its_password_and_names_itself_without_echoing_it(
    password: str, username: str, rule: str | None
) -> None:
    if rule is None:
        assert check_new_password(password, username=username) == password
        return
    with pytest.raises(PasswordRefused) as refused:
        check_new_password(password, username=username)
    assert refused.value.rule == rule
    # Every message is one fixed sentence per rule (numbers aside): none can echo the password.
    assert _template(refused.value) in MESSAGES


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "vigil-demo-agent",
        "        spaces   inside   are fine",
        "пароль для входа в систему",
        "密码很长很长的一句话",
        "emoji 🔒 are printable too",
        "<script>alert(1)</script>",
        "a" * 63 + "b",
    ],
)
def test_long_passphrases_any_printable_unicode_and_spaces_are_accepted(password: str) -> None:
    assert check_new_password(password, username="jlee") == normalise(password)


def test_the_demo_and_test_passwords_pass_the_policy() -> None:
    for username, _, _, password in DEMO_USERS:
        check_new_password(password, username=username)
    check_new_password(DEFAULT_PASSWORD, username="agent-user")


def test_the_blocklist_is_the_packaged_one_and_is_read_offline() -> None:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    common = [word for word in FREQUENCY_LISTS["passwords"] if len(word) >= MIN_PASSWORD_LENGTH]
    assert len(common) > 10_000
    for word in common[:: len(common) // 50]:
        if len(set(word)) > 1:
            with pytest.raises(PasswordRefused) as refused:
                check_new_password(word, username="nobody-in-particular")
            assert refused.value.rule in ("common_password", "contains_username")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_either_accepted_normalised_or_refused_by_a_named_rule(text: str) -> None:
    try:
        accepted = check_new_password(text, username="jlee")
    except PasswordRefused as refused:
        assert _template(refused) in MESSAGES
    else:
        assert accepted == normalise(text)
        assert MIN_PASSWORD_LENGTH <= len(accepted) <= MAX_PASSWORD_LENGTH


def test_a_password_set_in_one_unicode_form_signs_in_with_the_other(hub: EmbeddedHub) -> None:
    # U+FB01 (the "fi" ligature) and U+216B (Roman numeral twelve) are compatibility characters:
    # NFKC turns them into "fi" and "XII".
    composed = "\ufb01le cabinet \u216b"
    secret = totp.new_secret()
    hub.store.accounts.create_user(
        username="nfkc",
        display_name="NFKC",
        role="agent",
        password_hash=passwords.hash_password(check_new_password(composed, username="nfkc")),
        totp_secret=secret,
    )

    tokens = sign_in(hub.url, "nfkc", "file cabinet XII", secret)

    assert tokens["user"]["username"] == "nfkc"
