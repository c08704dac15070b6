"""The mail channel: one short email per notice to the agent's fallback (email-to-SMS) address."""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid

from hub.config import SmtpCredentials, SmtpEndpoint
from hub.notifiers.notice import (
    DeliveryOutcome,
    FallbackNotice,
    notice_subject,
    notice_text,
    one_line,
)

TIMEOUT_SECONDS = 10.0
_DETAIL_MAX_CHARS = 200

log = logging.getLogger(__name__)


class SmtpChannel:
    """Sends each notice as an email through one mail relay, over verified TLS."""

    name = "smtp"

    def __init__(
        self,
        endpoint: SmtpEndpoint,
        sender: str,
        ssl_context: ssl.SSLContext,
        credentials: SmtpCredentials | None = None,
        timeout: float = TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._endpoint = endpoint
        self._sender = sender
        self._ssl_context = ssl_context
        self._credentials = credentials
        self._timeout = timeout
        self._clock = clock

    def send(self, notice: FallbackNotice) -> DeliveryOutcome:
        """Mail the notice to its fallback address; never raises, each network step timed out."""
        try:
            outcome = self._send(notice)
        except Exception as exc:
            outcome = self._outcome(False, self._describe(exc))
        level = logging.INFO if outcome.ok else logging.WARNING
        log.log(
            level,
            "Fallback mail for %s (alert %s): %s",
            # One line each: a hostile name or id must not forge log lines.
            one_line(notice.username)[:64],
            one_line(notice.alert_id)[:100],
            outcome.detail,
        )
        return outcome

    def message(self, notice: FallbackNotice, recipient: str) -> EmailMessage:
        """The email for `notice`: the short text only, never the alert's body."""
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = recipient
        message["Subject"] = notice_subject(notice)
        message["Date"] = format_datetime(datetime.fromtimestamp(self._clock(), UTC))
        message["Message-ID"] = make_msgid("vigil", domain=self._sender.rpartition("@")[2])
        # RFC 3834: no vacation or out-of-office replies back to the hub's sender.
        message["Auto-Submitted"] = "auto-generated"
        message["X-Vigil-Alert-Id"] = one_line(notice.alert_id)[:100]
        text = notice_text(notice)
        # Quoted-printable keeps a non-ASCII title intact through relays without 8BITMIME.
        message.set_content(text, cte=None if text.isascii() else "quoted-printable")
        return message

    def _send(self, notice: FallbackNotice) -> DeliveryOutcome:
        recipient = _recipient(notice)
        if isinstance(recipient, DeliveryOutcome):
            return recipient
        message = self.message(notice, recipient)
        endpoint = self._endpoint
        where = endpoint.host
        client: smtplib.SMTP
        if endpoint.security == "tls":
            client = smtplib.SMTP_SSL(
                endpoint.host, endpoint.port, timeout=self._timeout, context=self._ssl_context
            )
        else:
            client = smtplib.SMTP(endpoint.host, endpoint.port, timeout=self._timeout)
        with client:
            client.ehlo()
            if endpoint.security == "starttls":
                if not client.has_extn("starttls"):
                    return self._outcome(
                        False, f"{where} does not offer STARTTLS; nothing was sent in the clear"
                    )
                client.starttls(context=self._ssl_context)
                client.ehlo()
            if self._credentials is not None:
                if not client.has_extn("auth"):
                    return self._outcome(False, f"{where} offers no sign-in (AUTH); nothing sent")
                client.login(self._credentials.username, self._credentials.password)
            code, reply = client.mail(self._sender)
            if code != 250:
                return self._outcome(
                    False, f"{code} sender refused by {endpoint.host}: {_text(reply)}"
                )
            code, reply = client.rcpt(recipient)
            if code not in (250, 251):
                return self._outcome(
                    False, f"{code} {recipient} refused by {where}: {_text(reply)}"
                )
            code, reply = client.data(message.as_bytes(policy=SMTP_POLICY))
            if code != 250:
                return self._outcome(
                    False, f"{code} message refused by {endpoint.host}: {_text(reply)}"
                )
        return self._outcome(True, f"{code} {_text(reply)} from {endpoint.host}")

    def _describe(self, exc: Exception) -> str:
        where = f"{self._endpoint.host}:{self._endpoint.port}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"TLS certificate of {where} not trusted: {exc.verify_message}"
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return f"{exc.smtp_code} sign-in refused by {where}: {_text(exc.smtp_error)}"
        if isinstance(exc, smtplib.SMTPResponseException):
            return f"{exc.smtp_code} from {where}: {_text(exc.smtp_error)}"
        # smtplib turns a read that timed out into SMTPServerDisconnected; the cause stays.
        if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
            return f"no answer from {where} within {self._timeout:g} s"
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return f"{where} closed the connection"
        if isinstance(exc, ssl.SSLError):
            return f"TLS with {where} failed: {exc.reason or type(exc).__name__}"
        if isinstance(exc, OSError):
            return f"cannot reach {where}: {exc.strerror or type(exc).__name__}"
        if isinstance(exc, smtplib.SMTPException):
            return f"mail to {where} failed: {type(exc).__name__}"
        return f"mail to {where} failed: unexpected {type(exc).__name__}"

    def _outcome(self, ok: bool, detail: str) -> DeliveryOutcome:
        if self._credentials is not None and self._credentials.password in detail:
            # A relay that echoes what it was sent must not put the password into logs.
            detail = detail.replace(self._credentials.password, "[password]")
        return DeliveryOutcome(channel=self.name, ok=ok, detail=detail[:_DETAIL_MAX_CHARS])


def _recipient(notice: FallbackNotice) -> str | DeliveryOutcome:
    address = notice.fallback_email
    user = one_line(notice.username)[:64]
    if not address:
        return DeliveryOutcome("smtp", False, f"no fallback address for {user}")
    problem = f"the fallback address for {user} is not a plain email address"
    if not address.isascii() or not address.isprintable() or len(address) > 254:
        return DeliveryOutcome("smtp", False, problem)
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError):
        return DeliveryOutcome("smtp", False, problem)
    if not parsed.username or not parsed.domain or parsed.addr_spec != address:
        return DeliveryOutcome("smtp", False, problem)
    return address


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return one_line(text)[:_DETAIL_MAX_CHARS]
