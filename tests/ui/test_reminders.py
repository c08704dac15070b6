"""Which alerts pop up, which notify, and when an unacknowledged one comes back (clock driven)."""

from datetime import UTC, datetime, timedelta

import pytest

from client.core.models import Alert
from client.core.reminders import AlertAttention, parse_time, route_for

START = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand, so reminders are checked without waiting."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def make_alert(
    seq: int,
    severity: str = "critical",
    *,
    requires_ack: bool = True,
    expires_at: str | None = None,
) -> Alert:
    return Alert(
        id=f"alert-{seq}",
        seq=seq,
        severity=severity,
        title=f"Alert {seq}",
        body="body",
        playbook_id=None,
        template_ids=(),
        requires_ack=requires_ack,
        issued_at="2026-11-27T10:00:00Z",
        expires_at=expires_at,
        issued_by="dispatch",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.mark.parametrize(
    ("severity", "requires_ack", "notify_lesser", "route"),
    [
        ("critical", True, True, "popup"),
        ("major", True, False, "popup"),
        ("critical", False, False, "notification"),
        ("minor", True, True, "notification"),
        ("info", False, True, "notification"),
        ("minor", True, False, "list"),
        ("info", False, False, "list"),
    ],
)
def test_routes(severity: str, requires_ack: bool, notify_lesser: bool, route: str) -> None:
    alert = make_alert(1, severity, requires_ack=requires_ack)
    assert route_for(alert, notify_lesser=notify_lesser) == route


def test_unacked_critical_comes_back_every_three_minutes_until_acted(clock: FakeClock) -> None:
    attention = AlertAttention(clock=clock)
    alert = make_alert(1)
    assert attention.receive(alert) == "popup"
    assert attention.unacked_critical() == 1
    assert attention.due() == []
    clock.advance(minutes=2, seconds=59)
    assert attention.due() == []
    assert attention.seconds_to_next() == pytest.approx(1.0)
    clock.advance(seconds=1)
    assert attention.due() == [alert]
    attention.shown(alert.id)
    assert attention.due() == []
    clock.advance(minutes=3)
    assert attention.due() == [alert]
    attention.mark_acted(alert.id)
    clock.advance(minutes=30)
    assert attention.due() == []
    assert attention.unacked_critical() == 0
    assert attention.seconds_to_next() is None


def test_interval_is_configurable(clock: FakeClock) -> None:
    attention = AlertAttention(clock=clock, reshow_minutes=1)
    attention.receive(make_alert(1, "major"))
    clock.advance(minutes=1)
    assert [a.id for a in attention.due()] == ["alert-1"]
    assert attention.unacked_critical() == 0


def test_already_acted_alert_needs_no_popup(clock: FakeClock) -> None:
    attention = AlertAttention(clock=clock)
    assert attention.receive(make_alert(1), acted=True) is None
    assert attention.waiting() == []


def test_same_alert_twice_is_routed_once(clock: FakeClock) -> None:
    attention = AlertAttention(clock=clock)
    assert attention.receive(make_alert(1)) == "popup"
    assert attention.receive(make_alert(1)) is None


def test_expired_alert_is_never_shown_and_expiry_ends_reminders(clock: FakeClock) -> None:
    attention = AlertAttention(clock=clock)
    assert attention.receive(make_alert(1, expires_at="2026-11-27T09:59:00Z")) is None
    alert = make_alert(2, expires_at="2026-11-27T10:05:00Z")
    assert attention.receive(alert) == "popup"
    assert attention.take_expired() == []
    clock.advance(minutes=5)
    assert attention.due() == []
    assert attention.take_expired() == ["alert-2"]
    assert attention.waiting() == []


def test_next_check_is_the_earlier_of_reminder_and_expiry(clock: FakeClock) -> None:
    attention = AlertAttention(clock=clock)
    attention.receive(make_alert(1, expires_at="2026-11-27T10:01:00Z"))
    assert attention.seconds_to_next() == pytest.approx(60.0)


def test_unreadable_expiry_keeps_the_alert_open(clock: FakeClock) -> None:
    attention = AlertAttention(clock=clock)
    assert attention.receive(make_alert(1, expires_at="next tuesday")) == "popup"
    clock.advance(days=2)
    assert attention.take_expired() == []
    assert len(attention.due()) == 1


def test_rejected_ack_reopens_the_alert_at_once(clock: FakeClock) -> None:
    attention = AlertAttention(clock=clock)
    alert = make_alert(1)
    attention.receive(alert)
    attention.mark_acted(alert.id)
    attention.reopen(alert)
    assert attention.due() == [alert]


def test_due_alerts_come_oldest_first(clock: FakeClock) -> None:
    attention = AlertAttention(clock=clock)
    second, first = make_alert(7), make_alert(3, "major")
    attention.receive(second)
    attention.receive(first)
    clock.advance(minutes=3)
    assert attention.due() == [first, second]


def test_parse_time_accepts_z_and_rejects_junk() -> None:
    assert parse_time("2026-11-27T10:42:00.123Z") == datetime(
        2026, 11, 27, 10, 42, 0, 123000, tzinfo=UTC
    )
    assert parse_time("soon") is None
    assert parse_time(None) is None
