"""Fallback channels: reach an agent the alert stream cannot, by mail or by a signed webhook."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Protocol

from hub.config import FallbackConfigError, FallbackSettings
from hub.notifiers.notice import DeliveryOutcome, FallbackNotice
from hub.notifiers.smtp import SmtpChannel
from hub.notifiers.webhook import WebhookChannel

__all__ = [
    "DeliveryOutcome",
    "FallbackChannel",
    "FallbackNotice",
    "channels_from_settings",
]


class FallbackChannel(Protocol):
    """One way to reach an agent; `send` blocks (each network step timed out), never raises."""

    name: str

    def send(self, notice: FallbackNotice) -> DeliveryOutcome:
        """Deliver one notice and say how it went."""
        ...


def channels_from_settings(settings: FallbackSettings) -> list[FallbackChannel]:
    """The channels the settings turn on (none by default); FallbackConfigError for a bad CA."""
    channels: list[FallbackChannel] = []
    endpoint = settings.smtp_endpoint
    if endpoint is not None and settings.smtp_from is not None:
        channels.append(
            SmtpChannel(
                endpoint,
                settings.smtp_from,
                tls_context(settings.smtp_ca_file, "--smtp-ca-file"),
                credentials=settings.smtp_credentials,
            )
        )
    if settings.webhook_url is not None and settings.webhook_secret:
        channels.append(
            WebhookChannel(
                settings.webhook_url,
                settings.webhook_secret,
                tls_context(settings.webhook_ca_file, "--webhook-ca-file"),
            )
        )
    return channels


def tls_context(extra_ca_file: Path | None, flag: str) -> ssl.SSLContext:
    """The system's CAs plus an optional extra one (a hospital's internal CA), names checked."""
    context = ssl.create_default_context()
    if extra_ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(extra_ca_file))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or "no PEM"
            raise FallbackConfigError(
                f"{flag}: cannot load {extra_ca_file} as PEM certificates: {reason}."
            ) from None
    return context
