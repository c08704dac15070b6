"""SyncEngine: keeps the cache and the hub in step, in the background, and tells the UI how the
connection is.

One sync: fetch the hub's content keys and decide which to trust, page content changes from the
stored cursor (each page verified, applied and its cursor stored), catch up alerts (with the
user's answers from the hub), then flush the signed-in user's acknowledgements and, after them,
their delivery receipts (client.core.receipts). Alerts come before acks and never depend on the
outbox: a failing ack upload, or a damaged outbox, must not keep a new alert from the agent. It
runs at start-up, every `interval`, on request, when the network changes, soon after a failure
(growing waits with jitter), and flushes the outbox as soon as an ack (or a receipt) is recorded.

Key trust: a key id pinned by IT policy is the only key trusted. Without a pin, the key the hub
marks current is trusted on first use and remembered outside the cache (client.core.content_trust,
through the verifier factory); a later, different key is refused (content stops updating, acks
still flow) until IT pins the new key or the user resets content trust.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sized
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from client.core.backoff import Backoff
from client.core.cache import ApplyReport, Cache
from client.core.content_verifier import ContentVerifier
from client.core.errors import (
    AuthRequired,
    BadResponse,
    CacheError,
    HubError,
    HubOffline,
    LockedOut,
    OutboxError,
    ServerError,
    SignatureError,
    VigilError,
)
from client.core.events import Event
from client.core.hub_client import HubClient
from client.core.outbox import AckRecord, FlushReport, Outbox, OutboxCounts, OutboxFlusher
from client.core.receipts import ReceiptSender
from client.core.surveys import (
    SurveyError,
    SurveyFlushReport,
    SurveyQueue,
    SurveyRecord,
    flush_surveys,
)

log = logging.getLogger(__name__)

R = TypeVar("R")

TRUSTED_KEYS_STATE = "content_key_ids"
LAST_SYNCED_STATE = "last_synced_at"
DEFAULT_INTERVAL = 300.0
CONTENT_PAGE = 500
# A safety bound on one sync's content pages (500 000 items); the hub's cursor ends it far sooner.
MAX_CONTENT_PAGES = 1000
STOP_TIMEOUT = 5.0

VerifierFactory = Callable[[Any], ContentVerifier]
"""Builds the verifier from the body of GET /v1/keys (applying the policy's pinned key id)."""


class Session(Protocol):
    """Who is signed in, as the sync engine needs to know it (Authenticator is one)."""

    def current_username(self) -> str | None:
        """The signed-in username, or None."""
        ...

    def steady_session(self) -> AbstractContextManager[str | None]:
        """The signed-in username (None: nobody), kept signed in while the block runs."""
        ...


@dataclass(frozen=True)
class FixedSession:
    """One user for good, for a caller that holds the hub's session itself (tools, tests)."""

    username: str | None

    def current_username(self) -> str | None:
        """The fixed username."""
        return self.username

    def steady_session(self) -> AbstractContextManager[str | None]:
        """The fixed username; nothing to hold."""
        return nullcontext(self.username)


class ConnectionState(StrEnum):
    """How the client stands with the hub, as the tray shows it."""

    ONLINE = "online"
    OFFLINE = "offline"
    AUTH_NEEDED = "auth_needed"


@dataclass(frozen=True)
class SyncStatus:
    """The connection state, when content and acks were last fully in step, and what is waiting."""

    state: ConnectionState
    last_synced_at: datetime | None
    pending_acks: int
    detail: str
    rejected_acks: int = 0
    held_acks: tuple[tuple[str, int], ...] = ()
    unattributed_acks: int = 0


@dataclass(frozen=True)
class SyncReport:
    """What one sync did; `content_problem` says why content was not updated, if it was not,
    and `ack_problem` why acknowledgements were not sent."""

    content: ApplyReport
    flush: FlushReport
    content_problem: str | None = None
    alerts: int = 0
    ack_problem: str | None = None
    surveys_sent: int = 0

    def summary(self, at: datetime, tz: tzinfo | None = None) -> str:
        """One line for the agent, e.g. "Synced 12:03: 2 acks sent, 1 alert, 3 playbooks or
        templates updated" (local time by default)."""
        parts = [
            _count(self.flush.synced, "ack") + " sent",
            _count(self.alerts, "new alert"),
            _count(self.content.stored, "playbook or template", "playbooks or templates")
            + " updated",
        ]
        if self.flush.rejected:
            parts.append(_count(self.flush.rejected, "ack") + " rejected")
        if self.content.refused:
            parts.append(_count(len(self.content.refused), "update") + " refused")
        line = f"Synced {at.astimezone(tz):%H:%M}: {', '.join(parts)}"
        problems = [p for p in (self.ack_problem, self.content_problem) if p]
        return " ".join([line + ".", *problems]) if problems else line


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _add(total: ApplyReport, page: ApplyReport) -> ApplyReport:
    return ApplyReport(
        total.stored + page.stored,
        total.deleted + page.deleted,
        total.ignored + page.ignored,
        total.refused + page.refused,
    )


def _parse_page(raw: Any) -> tuple[list[Any], int, bool]:
    if not isinstance(raw, dict):
        raise BadResponse("The hub's content page is not a JSON object.")
    items, cursor, more = raw.get("items"), raw.get("cursor"), raw.get("more")
    if (
        not isinstance(items, list)
        or not isinstance(cursor, int)
        or isinstance(cursor, bool)
        or not isinstance(more, bool)
    ):
        raise BadResponse("The hub's content page lacks items, cursor or more.")
    return items, cursor, more


class SyncEngine:
    """Runs syncs on its own thread and keeps `status` current.

    Events: `status_changed` (the new SyncStatus, from whichever thread changed it).
    """

    def __init__(
        self,
        hub: HubClient,
        cache: Cache,
        outbox: Outbox,
        *,
        verifier_factory: VerifierFactory,
        session: Session,
        alert_catch_up: Callable[[], Sized] | None = None,
        interval: float = DEFAULT_INTERVAL,
        backoff: Backoff | None = None,
        surveys: SurveyQueue | None = None,
    ) -> None:
        self._hub = hub
        self._cache = cache
        self._outbox = outbox
        self._verifier_factory = verifier_factory
        self._session = session
        self._alert_catch_up = alert_catch_up
        self._surveys = surveys
        self._interval = interval
        self._backoff = backoff or Backoff(first=1.0, factor=2.0, cap=60.0, jitter=0.2)
        self.status_changed: Event[SyncStatus] = Event("sync.status_changed")
        self._sync_lock = threading.Lock()
        self._status_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._requests_lock = threading.Lock()
        self._want_full = False
        self._want_flush = False
        self._thread: threading.Thread | None = None
        stored = cache.get_state(LAST_SYNCED_STATE)
        self._status = SyncStatus(
            state=ConnectionState.OFFLINE,
            last_synced_at=datetime.fromisoformat(stored) if stored else None,
            pending_acks=0,
            detail="Not in contact with the hub yet.",
        )
        self._count_acks()
        outbox.changed.connect(self._on_outbox_changed)
        outbox.recorded.connect(self._on_ack_recorded)
        if surveys is not None:
            surveys.answered.connect(self._on_survey_answered)

    @property
    def status(self) -> SyncStatus:
        """The current connection state and counts."""
        with self._status_lock:
            return self._status

    # Running in the background

    def start(self) -> None:
        """Start the background thread; it syncs at once, then on its schedule."""
        if self._thread is not None:
            return
        self._request(full=True)
        self._thread = threading.Thread(target=self._run, name="vigil-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the thread, waiting at most `timeout` seconds for a sync in flight to end."""
        self._stopping.set()
        self._wake.set()
        self._outbox.changed.disconnect(self._on_outbox_changed)
        self._outbox.recorded.disconnect(self._on_ack_recorded)
        if self._surveys is not None:
            self._surveys.answered.disconnect(self._on_survey_answered)
        if self._thread is not None:
            self._thread.join(timeout)

    def request_sync(self) -> None:
        """Sync as soon as possible (the user asked, or the app was signed in)."""
        self._request(full=True)

    def network_changed(self) -> None:
        """The network came back or changed: forget earlier failures and sync now."""
        self._backoff.reset()
        self.request_sync()

    def reset_content_trust(self) -> None:
        """Forget the remembered content key and all content; the next sync trusts the hub's
        current key and downloads everything again. For the user to confirm a key change."""
        with self._sync_lock:
            self._cache.delete_state(TRUSTED_KEYS_STATE)
            self._cache.forget_content_keys()
            self._cache.clear_content()
        self.request_sync()

    def _request(self, *, full: bool) -> None:
        with self._requests_lock:
            if full:
                self._want_full = True
            else:
                self._want_flush = True
        self._wake.set()

    def _on_ack_recorded(self, ack: AckRecord) -> None:
        self._request(full=False)

    def request_flush(self) -> None:
        """Send what waits (acks, receipts) as soon as possible, without a full sync."""
        self._request(full=False)

    def _on_survey_answered(self, _survey: SurveyRecord) -> None:
        self._request(full=False)

    def user_changed(self) -> None:
        """Someone signed in or out: whose acks wait for whom is counted again, and the new
        user's own waiting acks are sent."""
        self._count_acks()
        if self._session.current_username() is not None:
            self._request(full=False)

    def _count_acks(self) -> None:
        try:
            counts = self._outbox.counts()
        except OutboxError as exc:
            # The outbox must never stop syncing (alerts come first); the count waits.
            log.warning("acknowledgements not counted: %s", exc.message)
            return
        self._on_outbox_changed(counts)

    def _on_outbox_changed(self, counts: OutboxCounts) -> None:
        user = self._session.current_username()
        self._update_status(
            pending_acks=counts.pending_for(user),
            rejected_acks=counts.rejected,
            held_acks=counts.held_for_others(user),
            unattributed_acks=counts.unattributed(user),
        )

    def _run(self) -> None:
        next_full = time.monotonic()
        while not self._stopping.is_set():
            self._wake.wait(max(0.0, next_full - time.monotonic()))
            if self._stopping.is_set():
                return
            with self._requests_lock:
                self._wake.clear()
                full = self._want_full or time.monotonic() >= next_full
                flush_only = self._want_flush and not full
                self._want_full = self._want_flush = False
            if not (full or flush_only):
                continue
            try:
                if full:
                    self.sync_now()
                else:
                    self.flush_now()
            except (AuthRequired, LockedOut):
                # Retrying will not help until the user signs in (which requests a sync).
                next_full = time.monotonic() + self._interval
            except VigilError as exc:
                delay = self._backoff.next_delay()
                log.info("sync failed (%s); next try in %.1f s", exc.message, delay)
                next_full = time.monotonic() + delay
            except Exception:
                # A bug must not end background syncing for the rest of the day.
                log.exception("sync failed unexpectedly")
                next_full = time.monotonic() + self._backoff.next_delay()
            else:
                self._backoff.reset()
                if full:
                    next_full = time.monotonic() + self._interval

    # One sync

    def sync_now(self) -> SyncReport:
        """Sync once, on the calling thread; raises the typed error that stopped it (the status
        says the same)."""
        with self._sync_lock:
            report = self._guarded(self._sync_once)
            now = datetime.now(UTC)
            self._cache.set_state(LAST_SYNCED_STATE, now.isoformat())
            refused = len(report.content.refused)
            if report.content_problem:
                detail = report.content_problem
            elif refused:
                detail = (
                    f"{refused} playbook or template update(s) were refused (bad signature or "
                    "format); the copies already on this computer are kept."
                )
            else:
                detail = "Up to date."
            self._update_status(state=ConnectionState.ONLINE, last_synced_at=now, detail=detail)
            return report

    def flush_now(self) -> FlushReport:
        """Send pending acks, then survey answers, on the calling thread; raises like sync_now
        (for acks: survey answers that cannot be sent wait for the next sync)."""
        with self._sync_lock:
            report = self._guarded(self._flush)
            self._send_surveys()
            if report.sent:
                # Only an answer from the hub says it is reachable; nothing sent says nothing.
                self._update_status(state=ConnectionState.ONLINE)
            return report

    def _guarded(self, step: Callable[[], R]) -> R:
        try:
            return step()
        except (AuthRequired, LockedOut) as exc:
            self._update_status(state=ConnectionState.AUTH_NEEDED, detail=exc.message)
            raise
        except (HubOffline, ServerError, BadResponse) as exc:
            # BadResponse too: an answer cut short or not from the hub (a Wi-Fi sign-in page)
            # means nothing syncs, so the tray must not say "connected".
            self._update_status(state=ConnectionState.OFFLINE, detail=exc.message)
            raise
        except VigilError as exc:
            self._update_status(detail=exc.message)
            raise

    def _flush(self) -> FlushReport:
        with self._session.steady_session() as user:
            if user is None:
                # Nobody to send them as: acks wait for their author.
                return FlushReport(0, 0, 0, 0)
            report = OutboxFlusher(self._outbox, self._hub, author=user).flush()
            if report.error is None:
                self._send_receipts(user)
        if report.error is not None:
            raise report.error
        return report

    def _send_receipts(self, user: str) -> None:
        """Send `user`'s receipts; a failure leaves them queued for the next flush or sync and
        never holds up acks or alerts."""
        try:
            ReceiptSender(self._cache, self._hub, author=user).flush()
        except (HubError, CacheError) as exc:
            log.info("receipts not sent now: %s", exc.message)

    def send_surveys_now(self) -> SurveyFlushReport | None:
        """Send the signed-in user's survey answers only, on the calling thread; what failed is
        in the report (None: no survey queue, or nobody signed in)."""
        with self._sync_lock:
            return self._send_surveys()

    def _send_surveys(self) -> SurveyFlushReport | None:
        """Send the signed-in user's survey answers: a step of its own that never stops a sync
        nor changes the connection state (None when there is nothing to send them with). What
        is not sent waits for the next sync, which a network change or reconnection brings."""
        if self._surveys is None:
            return None
        try:
            with self._session.steady_session() as user:
                if user is None:
                    return None
                report = flush_surveys(self._surveys, self._hub, author=user)
        except SurveyError as exc:
            log.warning("survey answers not sent: %s", exc.message)
            return None
        if report.error is not None:
            log.info("survey answers not sent yet: %s", report.error.message)
        return report

    def _sync_once(self) -> SyncReport:
        keys = self._hub.get_json("/v1/keys", auth=False)
        content = ApplyReport()
        problem: str | None = None
        try:
            content = self._pull_content(self._trusted_verifier(keys))
        except SignatureError as exc:
            # Key trouble stops content updates only: acks and alerts must still flow.
            log.warning("content not updated: %s", exc.message)
            problem = exc.message
        alerts = len(self._alert_catch_up()) if self._alert_catch_up is not None else 0
        ack_problem: str | None = None
        try:
            flush = self._flush()
        except OutboxError as exc:
            # A damaged or unwritable outbox stops acks only; the alerts above already arrived.
            log.warning("acknowledgements not sent: %s", exc.message)
            flush, ack_problem = FlushReport(0, 0, 0, 0), exc.message
        surveys = self._send_surveys()
        return SyncReport(
            content,
            flush,
            problem,
            alerts,
            ack_problem,
            surveys_sent=surveys.sent if surveys else 0,
        )

    def _trusted_verifier(self, keys: Any) -> ContentVerifier:
        verifier = self._verifier_factory(keys)
        trusted = self._cache.get_state(TRUSTED_KEYS_STATE)
        pinned = verifier.pinned_key_id
        if pinned is not None:
            if trusted != pinned:
                if trusted is not None and pinned not in trusted.split(","):
                    # The pin changed: re-download everything and verify it with the new key.
                    log.info("pinned content key is now %s; downloading content again", pinned)
                    self._cache.clear_content()
                self._cache.set_state(TRUSTED_KEYS_STATE, pinned)
            return verifier
        if trusted is None:
            log.info("trusting the hub's content key(s) %s on first use", verifier.key_ids)
            self._cache.set_state(TRUSTED_KEYS_STATE, ",".join(verifier.key_ids))
            return verifier
        trusted_ids = set(trusted.split(","))
        if not trusted_ids & set(verifier.key_ids):
            raise SignatureError(
                f"The hub's content-signing key has changed (this computer trusts "
                f"{', '.join(sorted(trusted_ids))}; the hub now offers "
                f"{', '.join(verifier.key_ids)}). Playbooks and templates are not updated until "
                "IT pins the new key in the policy or you reset content trust in Vigil; the "
                "copies already here still work."
            )
        return verifier.restricted_to(trusted_ids)

    def _pull_content(self, verifier: ContentVerifier) -> ApplyReport:
        total = ApplyReport()
        cursor = self._cache.content_cursor()
        for _ in range(MAX_CONTENT_PAGES):
            params: dict[str, str | int] = {"limit": CONTENT_PAGE}
            if cursor is not None:
                params["since"] = cursor
            items, next_cursor, more = _parse_page(self._hub.get_json("/v1/content", params=params))
            total = _add(total, self._cache.apply_content(items, verifier))
            self._cache.set_content_cursor(next_cursor)
            if not more:
                break
            if cursor is not None and next_cursor <= cursor:
                raise BadResponse("The hub says more content follows but its cursor did not move.")
            cursor = next_cursor
        return total

    def _update_status(self, **changes: Any) -> None:
        with self._status_lock:
            new = replace(self._status, **changes)
            if new == self._status:
                return
            self._status = new
        self.status_changed.emit(new)
