"""The --database setting: which engine a value names, and how to show it without its password."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# Read when --database is not given, so a URL with a password need not be on a command line
# (where other users of the machine can read it in the process list).
DATABASE_ENV = "VIGIL_HUB_DATABASE"


def is_postgres_url(location: str | Path) -> bool:
    """Whether a --database value names a PostgreSQL database rather than a SQLite file."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def redacted(location: str | Path) -> str:
    """The location as it may be shown or logged: a password in a URL replaced by ***."""
    text = str(location)
    if not is_postgres_url(text):
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return "postgresql://(unreadable URL)"
    if password is None and "password" not in parts.query:
        return text
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = f"{parts.username}:***@" if parts.username else ""
    query = "&".join(
        "password=***" if item.startswith("password=") else item for item in parts.query.split("&")
    )
    return urlunsplit(parts._replace(netloc=f"{user}{netloc}", query=query))
