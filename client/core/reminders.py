"""Which alerts need the agent's attention, in which form, and when to show them again.

Critical and major alerts that require an acknowledgement open a pop-up and come back every few
minutes until the agent acts on them (the outbox holds an ack) or they expire. Other alerts use a
tray notification (minor and info when the agent's setting allows) or only the alerts list.
The clock is passed in, so the timing is tested without waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from client.core.models import Alert

log = logging.getLogger(__name__)

Route = Literal["popup", "notification", "list"]
DEFAULT_RESHOW_MINUTES = 3.0


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time from the hub as an aware datetime; None when absent or unreadable."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def route_for(alert: Alert, *, notify_lesser: bool) -> Route:
    """How an alert reaches the agent: a pop-up, a tray notification or the alerts list only.

    `notify_lesser` is the agent's setting: whether minor and info alerts notify at all.
    Critical and major alerts that need no acknowledgement always notify.
    """
    if alert.severity in ("critical", "major"):
        return "popup" if alert.requires_ack else "notification"
    return "notification" if notify_lesser else "list"


@dataclass
class _Waiting:
    alert: Alert
    expires_at: datetime | None
    due_at: datetime


class AlertAttention:
    """Tracks the pop-up alerts still waiting for an acknowledgement and when each is due again."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = utc_now,
        reshow_minutes: float = DEFAULT_RESHOW_MINUTES,
        notify_lesser: bool = True,
    ) -> None:
        if reshow_minutes <= 0:
            raise ValueError("reshow_minutes must be positive")
        self._clock = clock
        self._interval = timedelta(minutes=reshow_minutes)
        self.notify_lesser = notify_lesser
        self._waiting: dict[str, _Waiting] = {}

    def receive(self, alert: Alert, *, acted: bool = False) -> Route | None:
        """Route a newly seen alert; None when it needs no showing (expired, acted on, known).

        A pop-up alert counts as shown now: its first reminder is due one interval later.
        """
        if alert.id in self._waiting or self._is_expired(alert):
            return None
        if alert.is_closed:
            # Resolved or retracted before this computer saw it: history only, nothing to answer.
            return "list"
        route = route_for(alert, notify_lesser=self.notify_lesser)
        if route == "popup":
            if acted:
                return None
            self._track(alert, due_at=self._clock() + self._interval)
        return route

    def reopen(self, alert: Alert) -> None:
        """Wait again for an alert whose acknowledgement the hub rejected; it is due at once."""
        if not self._is_expired(alert) and not alert.is_closed:
            self._track(alert, due_at=self._clock())

    def mark_acted(self, alert_id: str) -> None:
        """The outbox holds an acknowledgement for this alert: stop reminding."""
        self._waiting.pop(alert_id, None)

    def stop(self, alert_id: str) -> None:
        """The alert was resolved, retracted or answered on another computer: never remind."""
        if self._waiting.pop(alert_id, None) is not None:
            log.info("reminders of alert %s stopped", alert_id)

    def replace(self, alert: Alert) -> bool:
        """A newer state of a waiting alert (an update): keep waiting for it, shown now.

        Returns whether the alert was waiting; a closed alert stops being waited for.
        """
        if alert.id not in self._waiting:
            return False
        if alert.is_closed or self._is_expired(alert):
            self.stop(alert.id)
            return False
        self._track(alert, due_at=self._clock() + self._interval)
        return True

    def is_waiting(self, alert_id: str) -> bool:
        """Whether the alert still waits for the agent's answer."""
        return alert_id in self._waiting

    def drills_waiting(self) -> int:
        """How many waiting alerts are drills."""
        return sum(1 for w in self._waiting.values() if w.alert.drill)

    def shown(self, alert_id: str) -> None:
        """The alert was just shown again: the next reminder is one interval from now."""
        waiting = self._waiting.get(alert_id)
        if waiting is not None:
            waiting.due_at = self._clock() + self._interval

    def snooze(self, alert_id: str, minutes: float) -> bool:
        """ "With a patient": the alert waits `minutes` before it shows again. Never for a
        critical alert; returns whether the snooze was taken."""
        waiting = self._waiting.get(alert_id)
        if waiting is None or waiting.alert.severity == "critical" or minutes <= 0:
            return False
        waiting.due_at = self._clock() + timedelta(minutes=minutes)
        return True

    def due(self) -> list[Alert]:
        """Waiting alerts whose reminder time has come, oldest first; expired ones left out."""
        now = self._clock()
        return [
            w.alert
            for w in self._sorted()
            if w.due_at <= now and (w.expires_at is None or w.expires_at > now)
        ]

    def take_expired(self) -> list[str]:
        """Ids of waiting alerts that have expired; they stop being tracked."""
        now = self._clock()
        gone = [
            alert_id
            for alert_id, w in self._waiting.items()
            if w.expires_at is not None and w.expires_at <= now
        ]
        for alert_id in gone:
            del self._waiting[alert_id]
        return gone

    def waiting(self) -> list[Alert]:
        """Every alert still waiting for an acknowledgement, oldest first."""
        return [w.alert for w in self._sorted()]

    def unacked_critical(self) -> int:
        """How many critical alerts still wait for an acknowledgement."""
        return sum(1 for w in self._waiting.values() if w.alert.severity == "critical")

    def seconds_to_next(self) -> float | None:
        """Seconds until the next reminder or expiry (0 when one is due now); None when idle."""
        moments = [w.due_at for w in self._waiting.values()]
        moments += [w.expires_at for w in self._waiting.values() if w.expires_at is not None]
        if not moments:
            return None
        return max(0.0, (min(moments) - self._clock()).total_seconds())

    def _track(self, alert: Alert, *, due_at: datetime) -> None:
        expires_at = parse_time(alert.expires_at)
        if alert.expires_at and expires_at is None:
            # An unreadable expiry must not hide a crisis alert: keep reminding.
            log.warning("alert %s has an unreadable expires_at; treating it as open", alert.id)
        self._waiting[alert.id] = _Waiting(alert=alert, expires_at=expires_at, due_at=due_at)

    def _is_expired(self, alert: Alert) -> bool:
        expires_at = parse_time(alert.expires_at)
        return expires_at is not None and expires_at <= self._clock()

    def _sorted(self) -> list[_Waiting]:
        return sorted(self._waiting.values(), key=lambda w: w.alert.seq)
