"""The demo's stand-in for a hospital's paging gateway: a real SMTP server (aiosmtpd) on this
computer that keeps the fallback notices the hub sends, so the demo can show them."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class ReceivedNotice:
    """One email the relay received: to whom, its subject and its text."""

    to: str
    subject: str
    text: str


@dataclass
class _Mailbox:
    notices: list[ReceivedNotice] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content or b"", policy=default_policy)
        body = message.get_body(("plain",))
        text = body.get_content().strip() if body is not None else ""
        notice = ReceivedNotice(", ".join(envelope.rcpt_tos), str(message["Subject"]), text)
        with self.lock:
            self.notices.append(notice)
        return "250 OK: handed to the pager"


class PagingRelay:
    """An SMTP server on 127.0.0.1 for the hub's `smtp://` fallback channel."""

    def __init__(self) -> None:
        self._mailbox = _Mailbox()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._controller = Controller(self._mailbox, hostname="127.0.0.1", port=self.port)
        self._shown = 0

    @property
    def url(self) -> str:
        """The hub's --smtp-url for this relay."""
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen until `stop`."""
        self._controller.start()

    def stop(self) -> None:
        """Stop listening."""
        self._controller.stop()

    def new_notices(self) -> list[ReceivedNotice]:
        """What arrived since the last call."""
        with self._mailbox.lock:
            fresh = self._mailbox.notices[self._shown :]
            self._shown = len(self._mailbox.notices)
        return fresh
