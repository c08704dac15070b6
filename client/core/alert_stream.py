"""The live alert feed: the hub's SSE stream, kept open, with catch-up after every reconnect.

Every alert, whether it comes from the stream, its replay or a catch-up page, goes through
`Cache.store_alerts`: an alert the cache had never seen is emitted once as new, a later state of
a known one (higher seq: an update, resolution or retraction) once as changed, and anything older
or equal is dropped, across reconnects, overlapping replay and catch-up, and restarts of the app.
Storing an alert queues its receipt for the signed-in user in the same transaction.

The user's own answers (stream `answers` after the replay, live `answer`, catch-up `answers`) are
stored under the user whose session received them and emitted once each, so an alert answered on
another computer stops asking for an answer here.

The stream is read with a socket read timeout equal to the heartbeat timeout: the hub sends a
comment at least every 15 s, and any byte restarts the timer, so a connection silent for
`heartbeat_timeout` seconds is dead (a half-open TCP connection after Wi-Fi drops gives no error).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import requests
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from client.core.answers import HubAnswer, parse_hub_answers
from client.core.backoff import Backoff
from client.core.errors import AuthRequired, BadResponse, HubError
from client.core.events import Event
from client.core.models import Alert
from client.core.sse import SseEvent, SseParser

if TYPE_CHECKING:
    from client.core.cache import Cache
    from client.core.hub_client import HubClient

log = logging.getLogger(__name__)

STREAM_PATH = "/v1/alerts/stream"
CATCH_UP_PATH = "/v1/alerts"
CATCH_UP_PAGE = 500
# 200 pages of 500: far beyond any backlog a hub keeps, and a bound if a hub keeps saying `more`.
MAX_CATCH_UP_PAGES = 200
READ_CHUNK = 64 * 1024
# While signed out the stream waits for resume()/network_changed(); it also looks again this
# often, in case a token was set without telling it.
AUTH_RECHECK_SECONDS = 60.0
STOP_JOIN_SECONDS = 5.0
# Retries come well within a second for the first half minute of an outage, so a hub restart or a
# Wi-Fi blip costs the agent under a second. After that the waits double up to 30 s: behind a
# TLS proxy every attempt of 2,000 laptops costs a handshake, and a hub that is down for long
# must not be hammered. A network change, or a sync that reaches the hub again, cuts any wait
# short (see CoreServices).
RECONNECT_FIRST_SECONDS = 0.25
RECONNECT_PLATEAU_SECONDS = 0.7
RECONNECT_PLATEAU_FOR_SECONDS = 30.0
RECONNECT_CAP_SECONDS = 30.0


class StreamPhase(StrEnum):
    """Where the stream is."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    AUTH_NEEDED = "auth_needed"


@dataclass(frozen=True)
class StreamState:
    """The stream's phase and, when disconnected or signed out, why (a sentence for the user)."""

    phase: StreamPhase
    reason: str = ""


class AlertStream:
    """Keeps the hub's alert stream open in a background thread and delivers each alert once.

    Events: `alert_received` (Alert) for every alert new to the cache; `alert_changed` ((old,
    new) Alerts) for every later state of a stored alert; `answer_received` (HubAnswer) for
    every answer of the signed-in user the hub reports for the first time; `receipts_queued`
    (how many) when storing alerts queued receipts; `gap` (int: the last seq this device had)
    when alerts after it are past the hub's retention and will never arrive; `state_changed`
    (StreamState).

    `current_user` names the signed-in user (receipts and answers are theirs); without it,
    neither is recorded.
    """

    def __init__(
        self,
        hub: HubClient,
        cache: Cache,
        *,
        heartbeat_timeout: float = 45.0,
        backoff: Backoff | None = None,
        current_user: Callable[[], str | None] | None = None,
    ) -> None:
        if heartbeat_timeout <= 0:
            raise ValueError(f"The heartbeat timeout must be positive, got {heartbeat_timeout}.")
        self.alert_received: Event[Alert] = Event("AlertStream.alert_received")
        self.alert_changed: Event[tuple[Alert, Alert]] = Event("AlertStream.alert_changed")
        self.answer_received: Event[HubAnswer] = Event("AlertStream.answer_received")
        self.receipts_queued: Event[int] = Event("AlertStream.receipts_queued")
        self._current_user = current_user or _nobody
        # The user whose token opened the connection being read: its events are theirs, even
        # if someone else signs in before the hub ends it.
        self._stream_user: str | None = None
        self.gap: Event[int] = Event("AlertStream.gap")
        self.state_changed: Event[StreamState] = Event("AlertStream.state_changed")
        self._hub = hub
        self._cache = cache
        self._heartbeat_timeout = heartbeat_timeout
        self._backoff = backoff or Backoff(
            first=RECONNECT_FIRST_SECONDS,
            cap=RECONNECT_CAP_SECONDS,
            plateau=RECONNECT_PLATEAU_SECONDS,
            plateau_seconds=RECONNECT_PLATEAU_FOR_SECONDS,
        )
        self._state = StreamState(StreamPhase.DISCONNECTED, "Not started.")
        self._state_lock = threading.Lock()
        self._gap_lock = threading.Lock()
        self._last_gap_since: int | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._response_lock = threading.Lock()
        self._response: requests.Response | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> StreamState:
        """The current state."""
        return self._state

    def start(self) -> None:
        """Connect in a background thread and keep the stream open until stop()."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._wake.clear()
        self._thread = threading.Thread(target=self._run, name="alert-stream", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_JOIN_SECONDS) -> None:
        """Close the stream and wait at most `timeout` seconds for the thread to end."""
        self._stopping.set()
        self._wake.set()
        self._interrupt_read()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("The alert stream thread did not end within %.0f s", timeout)
            self._thread = None
        self._set_state(StreamPhase.DISCONNECTED, "Stopped.")

    def network_changed(self) -> None:
        """The network changed or came back: drop the connection (it may be dead), reconnect now."""
        self._wake.set()
        self._interrupt_read()

    def address_changed(self) -> None:
        """The hub address in use changed: a live connection (to the old one) reconnects to the
        new one now. An attempt under way, or a wait, is left alone: the next attempt uses the
        new address anyway, and waking it would turn a switch made by that very attempt into a
        retry without any wait (both addresses down: a storm)."""
        if self.state.phase is StreamPhase.CONNECTED:
            self.network_changed()

    def resume(self) -> None:
        """Try again now, e.g. after a sign-in; cuts any wait short."""
        self._wake.set()

    def catch_up(self) -> list[Alert]:
        """Fetch the alerts after the cache's last seq (paging), deliver the new and changed ones
        and the user's answers; return the new alerts.

        Safe to call from another thread while the stream runs. Raises HubError when the hub
        cannot be reached or answers with something malformed.
        """
        user = self._current_user()
        since = self._cache.last_alert_seq()
        delivered: list[Alert] = []
        for page in range(MAX_CATCH_UP_PAGES):
            params: dict[str, str | int] = {"limit": CATCH_UP_PAGE}
            # A device with no alert yet has missed nothing: ask for every kept alert, no gap.
            if since > 0:
                params["since"] = since
            body = self._hub.get_json(CATCH_UP_PATH, params=params)
            raw_alerts, more, gap = _catch_up_page(body)
            if gap and page == 0:
                self._report_gap(since)
            alerts = []
            for raw in raw_alerts:
                alert = _parse_alert(raw, "catch-up")
                if alert is not None:
                    alerts.append(alert)
                seq = raw.get("seq") if isinstance(raw, dict) else None
                if isinstance(seq, int) and not isinstance(seq, bool):
                    since = max(since, seq)
            delivered.extend(self._deliver(alerts, user))
            if user is not None and isinstance(body, dict):
                self._deliver_answers(parse_hub_answers(body.get("answers"), "catch-up"), user)
            if not more or not raw_alerts:
                break
        return delivered

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                delay = self._connect_and_read()
            except Exception:
                # Whatever went wrong (a cache write, a bug), the stream must come back.
                log.exception("The alert stream failed; reconnecting")
                self._set_state(StreamPhase.DISCONNECTED, "The alert stream failed; reconnecting.")
                delay = self._backoff.next_delay()
            if self._stopping.is_set():
                break
            self._wake.wait(delay)

    def _connect_and_read(self) -> float:
        """One connection, from opening to its end; returns how long to wait before the next."""
        self._set_state(StreamPhase.CONNECTING)
        self._stream_user = self._current_user()
        headers = {"Accept": "text/event-stream"}
        last_seq = self._cache.last_alert_seq()
        # Without an alert yet there is nothing to replay; the catch-up fetches every kept one.
        if last_seq > 0:
            headers["Last-Event-ID"] = str(last_seq)
        try:
            response = self._hub.open_stream(
                STREAM_PATH, headers=headers, read_timeout=self._heartbeat_timeout
            )
        except AuthRequired as exc:
            self._set_state(StreamPhase.AUTH_NEEDED, exc.message)
            return AUTH_RECHECK_SECONDS
        except HubError as exc:
            self._set_state(StreamPhase.DISCONNECTED, exc.message)
            return self._backoff.next_delay()
        with self._response_lock:
            self._response = response
        try:
            if self._stopping.is_set():
                return 0.0
            content_type = response.headers.get("Content-Type", "")
            if content_type.split(";")[0].strip().lower() != "text/event-stream":
                reason = (
                    f"The hub address answered with {content_type or 'no content type'}, not an "
                    "alert stream (a Wi-Fi sign-in page or a proxy?); retrying."
                )
                self._set_state(StreamPhase.DISCONNECTED, reason)
                return self._backoff.next_delay()
            self._backoff.reset()
            self._set_state(StreamPhase.CONNECTED)
            self._catch_up_after_connect()
            reason = self._read(response)
        finally:
            with self._response_lock:
                self._response = None
            response.close()
        if self._stopping.is_set():
            return 0.0
        log.info("Alert stream disconnected: %s", reason)
        self._set_state(StreamPhase.DISCONNECTED, reason)
        return self._backoff.next_delay()

    def _catch_up_after_connect(self) -> None:
        try:
            self.catch_up()
        except HubError as exc:
            # The open stream replays from Last-Event-ID; the next reconnect catches up again.
            log.warning("Alert catch-up after connecting failed: %s", exc.message)

    def _read(self, response: requests.Response) -> str:
        """Read events until the stream ends; returns why it ended, as a sentence."""
        parser = SseParser(on_comment=_log_comment)
        raw = response.raw
        while not self._stopping.is_set():
            try:
                chunk = raw.read1(READ_CHUNK, decode_content=True)
            except ReadTimeoutError:
                return (
                    f"The hub sent nothing for {self._heartbeat_timeout:g} s (no heartbeat); "
                    "reconnecting."
                )
            except (Urllib3Error, OSError, ValueError, AttributeError):
                # ValueError/AttributeError: the response was shut down under the read.
                return "The connection to the hub was lost; reconnecting."
            if not chunk:
                return "The hub closed the alert stream; reconnecting."
            for event in parser.feed_bytes(chunk):
                self._handle(event)
        return "Stopped."

    def _handle(self, event: SseEvent) -> None:
        if event.event == "alert":
            try:
                raw = json.loads(event.data)
            except ValueError:
                log.warning("Skipping an alert event that is not JSON (event id %.20r)", event.id)
                return
            alert = _parse_alert(raw, f"stream event id {event.id[:20]!r}")
            if alert is not None:
                self._deliver([alert], self._stream_user)
        elif event.event in ("answers", "answer"):
            self._handle_answers(event)
        elif event.event == "gap":
            since = _gap_since(event.data)
            self._report_gap(since if since is not None else self._cache.last_alert_seq())
        else:
            log.debug("Ignoring a stream event of type %.40r", event.event)

    def _handle_answers(self, event: SseEvent) -> None:
        user = self._stream_user
        if user is None:
            return
        try:
            body = json.loads(event.data)
        except ValueError:
            log.warning("Skipping an %s event that is not JSON", event.event)
            return
        raw = body.get("answers") if event.event == "answers" and isinstance(body, dict) else [body]
        self._deliver_answers(parse_hub_answers(raw, f"stream {event.event} event"), user)

    def _deliver(self, alerts: list[Alert], user: str | None) -> list[Alert]:
        changes = self._cache.store_alerts(alerts, receipt_author=user)
        for alert in changes.new:
            self.alert_received.emit(alert)
        for old, new in changes.changed:
            self.alert_changed.emit((old, new))
        if changes.receipts:
            self.receipts_queued.emit(changes.receipts)
        return changes.new

    def _deliver_answers(self, answers: list[HubAnswer], user: str) -> None:
        if not answers:
            return
        for answer in self._cache.store_hub_answers(answers, owner=user):
            self.answer_received.emit(answer)

    def _report_gap(self, since: int) -> None:
        # The stream's replay and the catch-up both report the same gap after a reconnect.
        with self._gap_lock:
            if since == self._last_gap_since:
                return
            self._last_gap_since = since
        log.warning("Alerts after seq %d are past the hub's retention and cannot be fetched", since)
        self.gap.emit(since)

    def _interrupt_read(self) -> None:
        with self._response_lock:
            response = self._response
        if response is None:
            return
        try:
            # Shutting the socket down ends a blocked read at once; the reading thread closes it.
            # (Closing it from here would wait for that read, up to the heartbeat timeout.)
            response.raw.shutdown()
        except (ValueError, RuntimeError, OSError, AttributeError):
            log.debug("The alert stream's connection was already closed")

    def _set_state(self, phase: StreamPhase, reason: str = "") -> None:
        state = StreamState(phase, reason)
        with self._state_lock:
            if state == self._state:
                return
            self._state = state
        self.state_changed.emit(state)


def _nobody() -> str | None:
    return None


def _log_comment(text: str) -> None:
    log.debug("Alert stream comment: %.40s", text)


def _catch_up_page(body: Any) -> tuple[list[Any], bool, bool]:
    if not isinstance(body, dict):
        raise BadResponse("The hub's alert catch-up answer is not a JSON object.")
    alerts, more, gap = body.get("alerts"), body.get("more", False), body.get("gap", False)
    if not isinstance(alerts, list) or not isinstance(more, bool) or not isinstance(gap, bool):
        raise BadResponse("The hub's alert catch-up answer has malformed alerts, more or gap.")
    return alerts, more, gap


def _parse_alert(raw: Any, where: str) -> Alert | None:
    try:
        return Alert.from_json(raw)
    except BadResponse as exc:
        log.warning("Skipping a malformed alert (%s): %s", where, exc.message)
        return None


def _gap_since(data: str) -> int | None:
    try:
        body = json.loads(data)
    except ValueError:
        return None
    since = body.get("since") if isinstance(body, dict) else None
    return since if isinstance(since, int) and not isinstance(since, bool) else None
