"""One agent's Vigil client core against the console's hub: the alert stream, the cache with its
receipts, the acknowledgement outbox and the survey queue, as the tray app wires them."""

from __future__ import annotations

from pathlib import Path

from client.core.alert_stream import AlertStream
from client.core.cache import Cache
from client.core.content_verifier import ContentVerifier
from client.core.hub_client import HubClient
from client.core.models import Alert
from client.core.outbox import Outbox
from client.core.receipts import Receipts, ReceiptSender
from client.core.surveys import SurveyQueue, SurveyRecord
from client.core.sync import FixedSession, SyncEngine
from hub.storage import Store
from tests.hubtools import DEFAULT_PASSWORD, sign_in, wait_until

# Generous: the machine running the tests may be busy; this bounds a wait, it never sleeps.
WAIT = 30.0


class AgentDesk:
    """A signed-in agent's client core; receipts and acks go out only when the test says so, so
    the test knows when the client's request returned."""

    def __init__(self, base_url: str, username: str, secret: str, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.username = username
        tokens = sign_in(
            base_url, username, DEFAULT_PASSWORD, secret, device_id=f"{username}-laptop"
        )
        self.client = HubClient(base_url, allow_plain_http=True)
        self.client.set_access_token(tokens["access_token"])
        self.cache = Cache.open(folder / "cache.sqlite3")
        self.outbox = Outbox.open(folder / "outbox.sqlite3")
        self.surveys = SurveyQueue.open(folder / "surveys.sqlite3")
        self.stream = AlertStream(self.client, self.cache, current_user=lambda: username)
        self.engine = SyncEngine(
            self.client,
            self.cache,
            self.outbox,
            verifier_factory=lambda keys: ContentVerifier.from_keys_response(keys, None),
            session=FixedSession(username),
            alert_catch_up=self.stream.catch_up,
            interval=3600.0,
            surveys=self.surveys,
        )
        self.receipts = Receipts(self.cache, lambda: username)
        self.stream.start()

    def wait_until_streaming(self, store: Store) -> None:
        """Wait until the hub holds this desk's alert stream, so that what a test publishes next
        comes over the stream (not the catch-up of a stream still starting)."""

        def streaming() -> bool:
            return any(
                device.streaming
                for agent in store.delivery.agents()
                if agent.username == self.username
                for device in agent.devices
            )

        wait_until(streaming, timeout=WAIT)

    def wait_for(self, alert_id: str, status: str = "open", revision: int = 0) -> Alert:
        """The alert as the client holds it, once it reached that status and revision."""

        def arrived() -> bool:
            held = self.cache.alert(alert_id)
            return held is not None and held.status == status and held.revision >= revision

        wait_until(arrived, timeout=WAIT)
        held = self.cache.alert(alert_id)
        assert held is not None
        return held

    def show(self, alert_id: str) -> None:
        """Put the alert on screen as the pop-up does: a shown receipt, and the survey noted."""
        held = self.cache.alert(alert_id)
        assert held is not None
        self.receipts.mark_shown(alert_id)
        self.surveys.follow([held], self.username, shown=True)

    def send_receipts(self) -> int:
        """Send the queued receipts now; how many the hub accepted."""
        return ReceiptSender(self.cache, self.client, author=self.username).flush().accepted

    def answer(self, alert_id: str, action: str, note: str | None = None) -> None:
        """Record an answer as the pop-up does, then send it (and receipts) at once."""
        self.outbox.record(alert_id, action, note, author=self.username)
        report = self.engine.flush_now()
        assert report.sent >= 1, report

    def offered_surveys(self, alert_id: str) -> list[SurveyRecord]:
        """Follow the alert as the desk does when it changes, then the surveys offered now."""
        held = self.cache.alert(alert_id)
        assert held is not None
        self.surveys.follow([held], self.username, shown=False)
        offered = self.surveys.offered(self.username)
        return [record for record in offered if record.alert_id == alert_id]

    def close(self) -> None:
        """Stop the stream and close every file."""
        self.stream.stop()
        self.engine.stop()
        self.cache.close()
        self.outbox.close()
        self.surveys.close()
        self.client.close()
