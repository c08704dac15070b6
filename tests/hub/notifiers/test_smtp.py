"""The mail channel against a real SMTP server on 127.0.0.1 (aiosmtpd), plain and over TLS."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from email.message import Message
from email.policy import SMTP as SMTP_POLICY
from email.policy import default as default_policy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.config import FallbackSettings, SmtpCredentials, SmtpEndpoint
from hub.notifiers import channels_from_settings
from hub.notifiers.notice import FallbackNotice
from hub.notifiers.smtp import SmtpChannel
from hub.notifiers.webhook import WebhookChannel
from tests.hub.notifiers.conftest import (
    RELAY_PASSWORD,
    RELAY_USER,
    SmtpServer,
    free_port,
    make_notice,
)

SENDER = "vigil@hospital.example.org"
# For plain smtp:// channels, which never use it; built once (loading the CAs takes 80 ms).
NO_TLS = ssl.create_default_context()
HEADERS = [
    "From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "X-Vigil-Alert-Id",
    "Content-Type", "Content-Transfer-Encoding", "MIME-Version",
]  # fmt: skip


def _channel(
    server: SmtpServer,
    scheme: str = "smtp",
    ca_file: Path | None = None,
    credentials: SmtpCredentials | None = None,
) -> SmtpChannel:
    settings = FallbackSettings(
        smtp_url=f"{scheme}://{server.host}:{server.port}",
        smtp_from=SENDER,
        smtp_ca_file=ca_file,
        smtp_credentials=credentials,
    )
    [channel] = channels_from_settings(settings)
    assert isinstance(channel, SmtpChannel)
    return channel


def _parsed(raw: bytes) -> Message:
    return message_from_bytes(raw, policy=default_policy)


def _body(message: Message) -> str:
    assert isinstance(message, Message)
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")


def test_a_notice_arrives_as_one_short_email_with_the_title_only(
    start_smtp: Callable[..., SmtpServer],
) -> None:
    server = start_smtp()
    outcome = _channel(server).send(make_notice())

    assert outcome.ok, outcome
    assert outcome.channel == "smtp"
    assert outcome.detail.startswith("250 ") and server.host in outcome.detail
    [(mail_from, rcpt_tos, raw)] = server.mailbox.received()
    assert (mail_from, rcpt_tos) == (SENDER, ["5551234567@sms-gateway.example.org"])
    message = _parsed(raw)
    assert message["From"] == SENDER
    assert message["To"] == "5551234567@sms-gateway.example.org"
    assert message["Subject"] == "Vigil: critical alert: Video visits down in the West region"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Vigil-Alert-Id"] == "a-1"
    assert message["Date"] and message["Message-ID"].endswith("@hospital.example.org>")
    body = _body(message)
    assert "Video visits down in the West region" in body and "Open Vigil" in body
    assert len(body.strip()) <= 300
    assert b"Move today" not in raw and b"patient_name" not in raw
    assert "DRILL" not in body


def test_a_drill_says_drill_in_subject_and_body(start_smtp: Callable[..., SmtpServer]) -> None:
    server = start_smtp()
    assert _channel(server).send(make_notice(drill=True)).ok
    [(_, _, raw)] = server.mailbox.received()
    message = _parsed(raw)
    assert message["Subject"].startswith("DRILL: Vigil: critical alert:")
    body = _body(message)
    assert body.startswith("DRILL: ") and "no action with real patients" in body


def test_a_hostile_title_cannot_add_a_header_or_a_recipient(
    start_smtp: Callable[..., SmtpServer],
) -> None:
    server = start_smtp()
    title = "Down\r\nBcc: x@y\r\n\r\nfake body\u202eevil <script>alert(1)</script>" + "x" * 5000
    assert _channel(server).send(make_notice(title=title, alert_id="a-1\r\nBcc: z@y")).ok

    [(_, rcpt_tos, raw)] = server.mailbox.received()
    assert rcpt_tos == ["5551234567@sms-gateway.example.org"]
    message = _parsed(raw)
    assert message["Bcc"] is None
    assert "x@y" not in message.get_all("To", []) and "z@y" not in str(message["To"])
    subject = str(message["Subject"])
    assert subject.startswith("Vigil: critical alert: Down Bcc: x@y fake body")
    assert "\u202e" not in subject and len(subject) <= 78
    assert message["X-Vigil-Alert-Id"] == "a-1 Bcc: z@y"
    assert "\u202e" not in _body(message)


@pytest.mark.parametrize(
    "address",
    [
        None,
        "",
        "not an address",
        "a@b.example\r\nBcc: c@d.example",
        "a@b.example,c@d.example",
        "\u202ea@b.example",
        "josé@b.example",
        "a" * 300 + "@b.example",
    ],
)
def test_a_notice_without_a_usable_address_is_not_sent(
    start_smtp: Callable[..., SmtpServer], address: str | None
) -> None:
    server = start_smtp()
    outcome = _channel(server).send(make_notice(fallback_email=address))
    assert not outcome.ok
    assert "fallback address for jlee" in outcome.detail
    assert server.mailbox.received() == []


def test_starttls_with_the_hospital_ca_and_a_relay_sign_in(
    start_smtp: Callable[..., SmtpServer], ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_smtp("starttls", auth=True)
    channel = _channel(
        server, "smtp+starttls", ca_file, SmtpCredentials(RELAY_USER, RELAY_PASSWORD)
    )
    with caplog.at_level(logging.DEBUG):
        outcome = channel.send(make_notice())
    assert outcome.ok, outcome
    assert len(server.mailbox.received()) == 1
    assert RELAY_PASSWORD not in caplog.text and RELAY_PASSWORD not in outcome.detail


def test_a_wrong_relay_password_is_a_failed_outcome_that_never_shows_it(
    start_smtp: Callable[..., SmtpServer], ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_smtp("starttls", auth=True)
    wrong = "wrong-password-never-logged"
    channel = _channel(server, "smtp+starttls", ca_file, SmtpCredentials(RELAY_USER, wrong))
    with caplog.at_level(logging.DEBUG):
        outcome = channel.send(make_notice())
    assert not outcome.ok
    assert outcome.detail.startswith("535 sign-in refused by 127.0.0.1")
    assert wrong not in outcome.detail and wrong not in caplog.text
    assert server.mailbox.received() == []


def test_starttls_to_an_untrusted_certificate_fails_without_sending(
    start_smtp: Callable[..., SmtpServer],
) -> None:
    server = start_smtp("starttls")
    # No --smtp-ca-file: the system's CAs do not know the test CA.
    outcome = _channel(server, "smtp+starttls").send(make_notice())
    assert not outcome.ok
    assert "TLS certificate of 127.0.0.1" in outcome.detail and "not trusted" in outcome.detail
    assert server.mailbox.received() == []


def test_starttls_to_a_certificate_for_another_name_fails(
    start_smtp: Callable[..., SmtpServer], ca_file: Path
) -> None:
    server = start_smtp("starttls", cert_names=("mail.example.org",))
    outcome = _channel(server, "smtp+starttls", ca_file).send(make_notice())
    assert not outcome.ok and "not trusted" in outcome.detail
    assert server.mailbox.received() == []


def test_starttls_is_never_skipped_when_the_relay_does_not_offer_it(
    start_smtp: Callable[..., SmtpServer], ca_file: Path
) -> None:
    server = start_smtp("plain")
    outcome = _channel(server, "smtp+starttls", ca_file).send(make_notice())
    assert not outcome.ok and "does not offer STARTTLS" in outcome.detail
    assert server.mailbox.received() == []


def test_smtps_with_the_hospital_ca(start_smtp: Callable[..., SmtpServer], ca_file: Path) -> None:
    server = start_smtp("tls")
    assert _channel(server, "smtps", ca_file).send(make_notice()).ok
    assert len(server.mailbox.received()) == 1
    untrusted = _channel(server, "smtps").send(make_notice())
    assert not untrusted.ok and "not trusted" in untrusted.detail
    assert len(server.mailbox.received()) == 1


def test_a_relay_that_is_down_is_a_failed_outcome() -> None:
    port = free_port()
    channel = SmtpChannel(SmtpEndpoint("127.0.0.1", port, "plain"), SENDER, ssl_context=NO_TLS)
    outcome = channel.send(make_notice())
    assert not outcome.ok
    assert outcome.detail.startswith(f"cannot reach 127.0.0.1:{port}")


def test_a_relay_that_never_answers_fails_within_the_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        channel = SmtpChannel(
            SmtpEndpoint("127.0.0.1", port, "plain"),
            SENDER,
            ssl_context=NO_TLS,
            timeout=0.5,
        )
        started = time.monotonic()
        outcome = channel.send(make_notice())
        elapsed = time.monotonic() - started
    assert not outcome.ok
    assert outcome.detail == f"no answer from 127.0.0.1:{port} within 0.5 s"
    # Generous: the point is that it returns after its timeout instead of hanging.
    assert elapsed < 10


def test_forty_notices_in_parallel_each_arrive_exactly_once(
    start_smtp: Callable[..., SmtpServer],
) -> None:
    server = start_smtp()
    channel = _channel(server)
    notices = [make_notice(alert_id=f"a-{n}", username=f"agent{n}") for n in range(40)]
    start = threading.Barrier(40, timeout=30)

    def send(notice: FallbackNotice) -> bool:
        start.wait()
        return channel.send(notice).ok

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(send, notices))
    assert all(results)
    ids = sorted(_parsed(raw)["X-Vigil-Alert-Id"] for _, _, raw in server.mailbox.received())
    assert ids == sorted(f"a-{n}" for n in range(40))


def test_no_channels_by_default() -> None:
    assert channels_from_settings(FallbackSettings()) == []


def test_both_channels_when_both_are_configured(ca_file: Path) -> None:
    settings = FallbackSettings(
        smtp_url="smtps://mail.example.org",
        smtp_from=SENDER,
        smtp_ca_file=ca_file,
        webhook_url="https://pager.example.org/hook",
        webhook_secret=b"s" * 32,
    )
    smtp, webhook = channels_from_settings(settings)
    assert isinstance(smtp, SmtpChannel) and isinstance(webhook, WebhookChannel)
    assert [smtp.name, webhook.name] == settings.channel_names == ["smtp", "webhook"]


def test_a_non_ascii_title_arrives_intact_as_seven_bit_mail(
    start_smtp: Callable[..., SmtpServer],
) -> None:
    server = start_smtp()
    title = "Störung: Videosprechstunde 🚨 x3 — 東京"
    assert _channel(server).send(make_notice(title=title)).ok
    [(_, _, raw)] = server.mailbox.received()
    assert raw.isascii()
    message = _parsed(raw)
    assert str(message["Subject"]) == f"Vigil: critical alert: {title}"
    assert title in _body(message)


def test_credentials_for_a_relay_that_offers_no_sign_in_send_nothing(
    start_smtp: Callable[..., SmtpServer],
) -> None:
    # aiosmtpd, like most relays, offers AUTH only over TLS; this one has none.
    server = start_smtp("plain")
    channel = _channel(server, credentials=SmtpCredentials(RELAY_USER, "pw"))
    outcome = channel.send(make_notice())
    assert not outcome.ok and "offers no sign-in" in outcome.detail
    assert server.mailbox.received() == []


@settings(max_examples=100, deadline=None)
@given(
    title=st.text(max_size=400),
    alert_id=st.text(max_size=200),
    severity=st.text(max_size=30),
    drill=st.booleans(),
    sent_at=st.floats(min_value=-62135596800.0, max_value=253402300799.0),
)
def test_any_notice_makes_a_mail_with_exactly_the_expected_headers(
    title: str, alert_id: str, severity: str, drill: bool, sent_at: float
) -> None:
    channel = SmtpChannel(
        SmtpEndpoint("127.0.0.1", 25, "plain"),
        SENDER,
        ssl_context=NO_TLS,
        clock=lambda: sent_at,
    )
    notice = make_notice(title=title, alert_id=alert_id, severity=severity, drill=drill)
    raw = channel.message(notice, "a@b.example").as_bytes(policy=SMTP_POLICY)
    assert raw.isascii()
    message = _parsed(raw)
    assert sorted(message.keys()) == sorted(HEADERS)
    assert message.get_all("To") == ["a@b.example"]
    assert len(str(message["Subject"])) <= 78
    assert str(message["Subject"]).startswith("DRILL: " if drill else "Vigil: ")
    assert len(_body(message).strip()) <= 300
