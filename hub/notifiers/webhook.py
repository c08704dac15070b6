"""The webhook channel: each notice POSTed as signed JSON to one receiver (a paging service)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from hub.notifiers.notice import DeliveryOutcome, FallbackNotice, notice_text, one_line

TIMEOUT_SECONDS = 10.0
SIGNATURE_VERSION = "v1"
_DETAIL_MAX_CHARS = 200

log = logging.getLogger(__name__)


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The X-Vigil-Signature value: "v1=" and the hex HMAC-SHA256 of `timestamp.body`."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would send a signed notice to wherever the receiver (or an attacker in its
    # place) points; the 3xx answer is a failed delivery instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookChannel:
    """POSTs each notice as JSON, HMAC-signed, to one URL over verified TLS."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: bytes,
        ssl_context: ssl.SSLContext,
        timeout: float = TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._host = urlsplit(url).hostname or "?"
        self._secret = secret
        self._timeout = timeout
        self._clock = clock
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=ssl_context), _NoRedirects()
        )

    def body(self, notice: FallbackNotice, sent_at: float) -> bytes:
        """The JSON document sent for `notice`: the title, never the alert's body."""
        document: dict[str, object] = {
            "type": "vigil.fallback",
            "alert_id": notice.alert_id,
            "title": notice.title,
            "severity": notice.severity,
            "drill": notice.drill,
            "username": notice.username,
            "display_name": notice.display_name,
            "phone": notice.phone,
            "text": notice_text(notice),
            "issued_at": notice.issued_at,
            "sent_at": sent_at,
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def send(self, notice: FallbackNotice) -> DeliveryOutcome:
        """POST the notice; never raises, each network step timed out."""
        try:
            outcome = self._send(notice)
        except Exception as exc:
            outcome = DeliveryOutcome(self.name, False, self._describe(exc))
        level = logging.INFO if outcome.ok else logging.WARNING
        log.log(
            level,
            "Fallback webhook for %s (alert %s): %s",
            # One line each: a hostile name or id must not forge log lines.
            one_line(notice.username)[:64],
            one_line(notice.alert_id)[:100],
            outcome.detail,
        )
        return outcome

    def _send(self, notice: FallbackNotice) -> DeliveryOutcome:
        now = self._clock()
        body = self.body(notice, sent_at=now)
        timestamp = str(int(now))
        request = urllib.request.Request(
            self._url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "vigil-hub",
                "X-Vigil-Timestamp": timestamp,
                "X-Vigil-Signature": signature(self._secret, timestamp, body),
            },
        )
        with self._opener.open(request, timeout=self._timeout) as response:
            status = int(response.status)
        if 200 <= status < 300:
            return DeliveryOutcome(self.name, True, f"{status} from {self._host}")
        return DeliveryOutcome(self.name, False, f"{status} from {self._host}")

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, urllib.error.HTTPError):
            status = exc.code
            exc.close()
            if 300 <= status < 400:
                return f"{status} from {self._host}: a redirect, not followed"
            return f"{status} from {self._host}"
        reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, ssl.SSLCertVerificationError):
            return f"TLS certificate of {self._host} not trusted: {reason.verify_message}"
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return f"no answer from {self._host} within {self._timeout:g} s"
        if isinstance(reason, ssl.SSLError):
            return f"TLS with {self._host} failed: {reason.reason or type(reason).__name__}"
        if isinstance(reason, OSError):
            return f"cannot reach {self._host}: {reason.strerror or type(reason).__name__}"
        if isinstance(reason, str):
            return f"cannot reach {self._host}: {one_line(reason)[:_DETAIL_MAX_CHARS]}"
        return f"webhook to {self._host} failed: unexpected {type(exc).__name__}"
