"""Time-based one-time codes (RFC 6238: SHA-1, 30 s, 6 digits), with the matched time step."""

from __future__ import annotations

import hmac

import pyotp

STEP_SECONDS = 30
DIGITS = 6
# Codes from one step before and after now are accepted, for clock drift and typing time.
WINDOW_STEPS = 1
ISSUER = "Vigil"


def new_secret() -> str:
    """A fresh base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(length=32)


def time_step(now: float) -> int:
    """The RFC 6238 time step a moment falls in."""
    return int(now // STEP_SECONDS)


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step within the window whose code is `code`, or None.

    The step, not just a yes/no, lets the caller refuse a code whose step was already accepted.
    """
    # Authenticator apps show "123 456"; people type what they see.
    code = code.replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = time_step(now)
    matched = None
    for step in range(current - WINDOW_STEPS, current + WINDOW_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    return matched


def provisioning_uri(secret: str, username: str) -> str:
    """The otpauth:// URI an authenticator app scans to add the account."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    return totp.provisioning_uri(name=username, issuer_name=ISSUER)
