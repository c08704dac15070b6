"""The webhook channel against a real HTTP(S) receiver on 127.0.0.1 that checks the signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hub.config import FallbackSettings
from hub.notifiers import channels_from_settings
from hub.notifiers.notice import FallbackNotice
from hub.notifiers.webhook import WebhookChannel
from tests.hub.notifiers.conftest import WebhookReceiver, free_port, make_notice

SECRET = b"0123456789abcdef0123456789abcdef-webhook"
YEAR_1 = -62135596800.0
YEAR_9999 = 253402300799.0


# The receiver's check from docs/deployment.md, word for word.
def verify(secret: bytes, headers: dict[str, str], body: bytes, now: float | None = None) -> bool:
    timestamp = headers.get("X-Vigil-Timestamp", "")
    signature = headers.get("X-Vigil-Signature", "")
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > 300:
        return False  # missing, or older than 5 minutes: a replay
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, "v1=" + expected)


def _channel(url: str, ca_file: Path | None = None, secret: bytes = SECRET) -> WebhookChannel:
    settings = FallbackSettings(webhook_url=url, webhook_secret=secret, webhook_ca_file=ca_file)
    [channel] = channels_from_settings(settings)
    assert isinstance(channel, WebhookChannel)
    return channel


def test_a_notice_arrives_signed_with_the_title_only(
    start_receiver: Callable[..., WebhookReceiver],
) -> None:
    receiver = start_receiver()
    before = time.time()
    outcome = _channel(receiver.url).send(make_notice(drill=True))

    assert outcome.ok, outcome
    assert (outcome.channel, outcome.detail) == ("webhook", "204 from 127.0.0.1")
    [(headers, body)] = receiver.received()
    assert verify(SECRET, headers, body, now=time.time())
    assert not verify(b"another secret of the same length!!!!!!", headers, body, time.time())
    assert not verify(SECRET, headers, body + b" ", time.time())
    assert not verify(SECRET, headers, body, now=time.time() + 301)
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    document = json.loads(body)
    assert set(document) == {
        "type", "alert_id", "title", "severity", "drill", "username", "display_name",
        "phone", "text", "issued_at", "sent_at",
    }  # fmt: skip
    assert document["type"] == "vigil.fallback"
    assert document["title"] == "Video visits down in the West region"
    assert document["drill"] is True and document["text"].startswith("DRILL: Vigil: critical")
    assert document["phone"] == "+1 555 123 4567" and document["username"] == "jlee"
    assert document["issued_at"] == 1_700_000_000.0
    assert before <= document["sent_at"] <= time.time()
    assert int(headers["X-Vigil-Timestamp"]) == int(document["sent_at"])


@pytest.mark.parametrize(
    "changes",
    [
        {"title": "Down\r\n\u202e<b>bold</b> \U0001f6a8" + "x" * 20_000},
        {"title": "", "display_name": "", "phone": None, "fallback_email": None},
        {"issued_at": YEAR_1},
        {"issued_at": YEAR_9999},
        {"alert_id": "\u202e" + "a" * 1000, "username": "Åsa\u0000"},
    ],
)
def test_hostile_values_arrive_as_sent_and_signed(
    start_receiver: Callable[..., WebhookReceiver], changes: dict[str, Any]
) -> None:
    receiver = start_receiver()
    notice = make_notice(**changes)
    assert _channel(receiver.url).send(notice).ok
    [(headers, body)] = receiver.received()
    assert verify(SECRET, headers, body, now=time.time())
    document = json.loads(body)
    for name, value in changes.items():
        if name != "fallback_email":
            assert document[name] == value
    assert "fallback_email" not in document
    assert len(document["text"]) <= 300 and document["text"].isprintable()


def test_a_server_error_is_a_failed_outcome_with_its_status(
    start_receiver: Callable[..., WebhookReceiver],
) -> None:
    receiver = start_receiver(status=500)
    outcome = _channel(receiver.url).send(make_notice())
    assert not outcome.ok and outcome.detail == "500 from 127.0.0.1"
    assert len(receiver.received()) == 1


def test_a_redirect_is_not_followed(start_receiver: Callable[..., WebhookReceiver]) -> None:
    elsewhere = start_receiver()
    for status in (301, 302, 307, 308):
        receiver = start_receiver(status=status, location=elsewhere.url)
        outcome = _channel(receiver.url).send(make_notice())
        assert not outcome.ok
        assert outcome.detail == f"{status} from 127.0.0.1: a redirect, not followed"
    assert elsewhere.received() == []


def test_https_with_the_hospital_ca(
    start_receiver: Callable[..., WebhookReceiver], ca_file: Path
) -> None:
    receiver = start_receiver(tls=True)
    assert receiver.url.startswith("https://")
    assert _channel(receiver.url, ca_file).send(make_notice()).ok
    untrusted = _channel(receiver.url).send(make_notice())
    assert not untrusted.ok
    assert untrusted.detail.startswith("TLS certificate of 127.0.0.1 not trusted")
    assert len(receiver.received()) == 1


def test_a_receiver_that_is_down_is_a_failed_outcome() -> None:
    outcome = _channel(f"http://127.0.0.1:{free_port()}/hook").send(make_notice())
    assert not outcome.ok and outcome.detail.startswith("cannot reach 127.0.0.1")


def test_a_receiver_that_never_answers_fails_within_the_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        channel = WebhookChannel(url, SECRET, _default_context(), timeout=0.5)
        started = time.monotonic()
        outcome = channel.send(make_notice())
        elapsed = time.monotonic() - started
    assert not outcome.ok and outcome.detail == "no answer from 127.0.0.1 within 0.5 s"
    # Generous: the point is that it returns after its timeout instead of hanging.
    assert elapsed < 10


def test_the_secret_and_signature_never_reach_logs_or_details(
    start_receiver: Callable[..., WebhookReceiver], caplog: pytest.LogCaptureFixture
) -> None:
    channel = _channel(start_receiver(status=403).url)
    with caplog.at_level(logging.DEBUG):
        outcome = channel.send(make_notice())
    assert not outcome.ok and outcome.detail == "403 from 127.0.0.1"
    assert SECRET.decode() not in caplog.text and "v1=" not in caplog.text
    assert "v1=" not in outcome.detail
    assert SECRET.decode() not in repr(
        FallbackSettings(webhook_url="https://x.example", webhook_secret=SECRET)
    )


def test_forty_notices_in_parallel_each_arrive_exactly_once(
    start_receiver: Callable[..., WebhookReceiver],
) -> None:
    receiver = start_receiver()
    channel = _channel(receiver.url)
    notices = [make_notice(alert_id=f"a-{n}") for n in range(40)]
    start = threading.Barrier(40, timeout=30)

    def send(notice: FallbackNotice) -> bool:
        start.wait()
        return channel.send(notice).ok

    with ThreadPoolExecutor(max_workers=40) as pool:
        assert all(pool.map(send, notices))
    received = receiver.received()
    assert all(verify(SECRET, headers, body, time.time()) for headers, body in received)
    ids = sorted(json.loads(body)["alert_id"] for _, body in received)
    assert ids == sorted(f"a-{n}" for n in range(40))


def _default_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def test_a_hostile_username_cannot_forge_a_log_line(
    start_receiver: Callable[..., WebhookReceiver], caplog: pytest.LogCaptureFixture
) -> None:
    channel = _channel(start_receiver().url)
    with caplog.at_level(logging.INFO, logger="hub.notifiers.webhook"):
        assert channel.send(make_notice(username="jlee\nERROR forged", alert_id="a\r\n1")).ok
    [record] = caplog.records
    assert (
        record.getMessage()
        == "Fallback webhook for jlee ERROR forged (alert a 1): 204 from 127.0.0.1"
    )
