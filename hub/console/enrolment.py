"""Authenticator secrets and generated passwords an admin sees once, right after making them.

A new user's (or a reset) authenticator secret is handed from the POST that made it to the page
that shows it by a one-time ticket: held in this process's memory only, bound to the admin's
console session, gone on first read or after two minutes. Nothing of it is written to disk, the
audit trail or a log, and the page that shows it is never cached.
"""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import qrcode
import qrcode.image.svg
from starlette.requests import Request

TICKET_SECONDS = 120.0
# Bounds the memory one admin clicking "Add user" in a loop can hold.
TICKETS_MAX = 1000
_holder_lock = threading.Lock()


@dataclass(frozen=True)
class Enrolment:
    """What an admin must pass on to a user: the authenticator URI and, if generated, a password."""

    username: str
    otpauth_uri: str = field(repr=False)
    password: str | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()

    @property
    def secret(self) -> str:
        """The base32 secret inside the URI, for typing into an app by hand."""
        return parse_qs(urlsplit(self.otpauth_uri).query).get("secret", [""])[0]

    def qr_data_uri(self) -> str:
        """The URI as a QR code, an SVG in a data: URI (the console's CSP allows img data:)."""
        image = qrcode.make(self.otpauth_uri, image_factory=qrcode.image.svg.SvgPathImage, border=2)
        svg: bytes = image.to_string()
        return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


@dataclass
class _Held:
    session_id: int
    expires_at: float
    enrolment: Enrolment = field(repr=False)


class EnrolmentTickets:
    """One-time tickets: `put` answers one; `take` answers its enrolment once, to its session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}

    def put(self, session_id: int, enrolment: Enrolment, now: float) -> str:
        """Hold `enrolment` for the console session `session_id`; the ticket that reads it once."""
        ticket = secrets.token_urlsafe(24)
        with self._lock:
            self._forget_expired(now)
            while len(self._held) >= TICKETS_MAX:
                self._held.pop(next(iter(self._held)))
            self._held[ticket] = _Held(session_id, now + TICKET_SECONDS, enrolment)
        return ticket

    def take(self, ticket: str, session_id: int, now: float) -> Enrolment | None:
        """The enrolment, if the ticket is live and its session's; it is forgotten either way."""
        with self._lock:
            self._forget_expired(now)
            held = self._held.pop(ticket, None)
        if held is None or held.session_id != session_id:
            return None
        return held.enrolment

    def _forget_expired(self, now: float) -> None:
        for ticket in [key for key, held in self._held.items() if held.expires_at <= now]:
            del self._held[ticket]


def tickets_of(request: Request) -> EnrolmentTickets:
    """The app's ticket holder, made on first use."""
    state = request.app.state
    with _holder_lock:
        holder: EnrolmentTickets | None = getattr(state, "console_enrolments", None)
        if holder is None:
            holder = EnrolmentTickets()
            state.console_enrolments = holder
    return holder


def generated_password() -> str:
    """A random password for a new account: 144 bits in letters and digits, easy to read out."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    groups = ["".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(5)]
    return "-".join(groups)
