"""Where an account service's refusal goes on an admin form: beside the field it names."""

from __future__ import annotations

from collections.abc import Iterable

from hub.user_admin import AdminError


def refusal_errors(exc: AdminError, fields: Iterable[str], fallback: str) -> dict[str, str]:
    """`{field: message}` for a refusal; the service's messages start with "field: " when they
    are about one field, and anything else goes under `fallback`."""
    message = str(exc)
    for name in fields:
        prefix = f"{name}: "
        if message.startswith(prefix):
            rest = message[len(prefix) :]
            return {name: rest[:1].upper() + rest[1:]}
    return {fallback: message}
