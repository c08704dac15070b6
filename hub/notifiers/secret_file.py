"""Secrets for the fallback channels, read from files only their owner can read."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from hub.config import FallbackConfigError, SmtpCredentials

MAX_SECRET_FILE_BYTES = 4096


def read_secret_file(path: Path, flag: str) -> str:
    """The first line of `path`; FallbackConfigError naming `flag` if others can read the file.

    The message never quotes the file's content.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if not path.is_file():
            raise FallbackConfigError(f"{flag}: {path} is not a file.")
        # Windows keeps only a read-only bit in these modes; access there is the folder's ACLs.
        if sys.platform != "win32" and mode & 0o077:
            raise FallbackConfigError(
                f"{flag}: {path} is readable by group or others (mode {mode:04o}); "
                f"run `chmod 600 {path}` so that only the hub's user can read it."
            )
        with path.open("rb") as file:
            data = file.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise FallbackConfigError(f"{flag}: cannot read {path}: {exc.strerror}.") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise FallbackConfigError(
            f"{flag}: {path} is over {MAX_SECRET_FILE_BYTES} bytes; it holds one line."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FallbackConfigError(f"{flag}: {path} is not UTF-8 text.") from None
    lines = text.splitlines()
    # Not stripped: a password may start or end with a space.
    line = lines[0] if lines else ""
    if not line.strip():
        raise FallbackConfigError(f"{flag}: {path} is empty; it holds one line.")
    return line


def read_smtp_credentials(path: Path) -> SmtpCredentials:
    """The mail relay's "username:password" from the --smtp-credentials-file."""
    flag = "--smtp-credentials-file"
    username, colon, password = read_secret_file(path, flag).partition(":")
    if not colon or not username or not password:
        raise FallbackConfigError(
            f"{flag}: {path} must hold one line, username:password (neither part empty)."
        )
    return SmtpCredentials(username=username, password=password)


def read_webhook_secret(path: Path) -> bytes:
    """The HMAC key from the --webhook-secret-file: at least 32 characters."""
    flag = "--webhook-secret-file"
    secret = read_secret_file(path, flag)
    if len(secret) < 32:
        # Shorter keys can be guessed offline from one signed notice.
        raise FallbackConfigError(
            f"{flag}: {path} holds {len(secret)} characters; use at least 32, "
            "e.g. from `openssl rand -hex 32`."
        )
    return secret.encode("utf-8")
