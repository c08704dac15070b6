"""Which new passwords the hub accepts: NIST SP 800-63B §5.1.1.2 memorized-secret rules.

Length and a blocklist only, no composition rules. Every password is NFKC-normalised before it is
checked, hashed or verified, so the same characters typed on two keyboards are the same password.
"""

from __future__ import annotations

import unicodedata
from functools import cache

from hub.passwords import MAX_PASSWORD_LENGTH

MIN_PASSWORD_LENGTH = 8


class PasswordRefused(ValueError):
    """A new password broke a rule; the message names the rule and never holds the password."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def normalise(password: str) -> str:
    """The form a password is checked, hashed and verified in (Unicode NFKC)."""
    return unicodedata.normalize("NFKC", password)


def check_new_password(password: str, *, username: str) -> str:
    """The normalised password to hash; PasswordRefused naming the rule it breaks."""
    normalised = normalise(password)
    length = len(normalised)
    if length < MIN_PASSWORD_LENGTH:
        raise PasswordRefused(
            "too_short",
            f"The password is too short: use at least {MIN_PASSWORD_LENGTH} characters "
            f"(this one has {length}).",
        )
    if length > MAX_PASSWORD_LENGTH:
        raise PasswordRefused(
            "too_long",
            f"The password is too long: use at most {MAX_PASSWORD_LENGTH} characters.",
        )
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in normalised):
        raise PasswordRefused(
            "unprintable",
            "The password holds a control character (such as a tab or a line break); "
            "use printable characters and spaces only.",
        )
    if not normalised.strip():
        raise PasswordRefused("only_spaces", "The password is only spaces; use other characters.")
    if len(set(normalised)) == 1:
        raise PasswordRefused(
            "repeated_character", "The password is one character repeated; choose another."
        )
    folded = normalised.casefold()
    # The username is no secret, so it counts for nothing: what is left must be long enough alone
    # (the demo's "vigil-demo-agent" for user "agent" passes, "jlee2024" for "jlee" does not).
    if username and username.casefold() in folded:
        rest = folded.replace(username.casefold(), "")
        if len(rest) < MIN_PASSWORD_LENGTH:
            raise PasswordRefused(
                "contains_username",
                "The password contains the username and too little else: without the username "
                f"it needs at least {MIN_PASSWORD_LENGTH} characters.",
            )
    if folded in _blocklist() or folded.strip() in _blocklist():
        raise PasswordRefused(
            "common_password",
            "The password is on the list of common and breached passwords; choose another.",
        )
    return normalised


@cache
def _blocklist() -> frozenset[str]:
    # zxcvbn's list of the 30,000 most common passwords of the 10 million leaked ones Mark Burnett
    # collected (MIT licence), shipped inside the package: nothing is downloaded. Loaded on first
    # use, as it takes a moment to import.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(word.casefold() for word in FREQUENCY_LISTS["passwords"])
