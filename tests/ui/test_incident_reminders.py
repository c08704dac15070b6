"""Reminders in an incident: a closed alert is never waited for, an update keeps waiting with
its new state, and stopping (resolved, retracted, answered elsewhere) ends the reminders."""

from __future__ import annotations

from datetime import datetime, timedelta

from client.core.reminders import AlertAttention
from tests.ui.incidents import NOW, changed, incident


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def test_stop_ends_the_reminders_of_a_waiting_alert() -> None:
    clock = Clock()
    attention = AlertAttention(clock=clock)
    alert = incident(1)
    assert attention.receive(alert) == "popup"
    attention.stop(alert.id)
    clock.now += timedelta(hours=1)
    assert attention.due() == []
    assert attention.unacked_critical() == 0
    attention.stop("never-seen")  # nothing to stop is no error


def test_an_update_keeps_waiting_with_the_new_state_and_a_closing_stops_it() -> None:
    clock = Clock()
    attention = AlertAttention(clock=clock)
    first = incident(1, "major")
    attention.receive(first)
    update = changed(first, severity="critical")
    assert attention.replace(update)
    assert attention.waiting() == [update]
    assert attention.unacked_critical() == 1
    assert not attention.replace(changed(update, "resolved", "done"))
    assert attention.waiting() == []
    # Not waiting: an update does not start the waiting by itself.
    assert not attention.replace(changed(incident(2)))


def test_a_closed_alert_goes_to_the_list_and_is_never_reopened() -> None:
    attention = AlertAttention(clock=Clock())
    retracted = changed(incident(1), "retracted", "in error")
    assert attention.receive(retracted) == "list"
    attention.reopen(retracted)
    assert attention.waiting() == []


def test_drills_waiting_are_counted() -> None:
    attention = AlertAttention(clock=Clock())
    attention.receive(incident(1, drill=True))
    attention.receive(incident(2))
    assert attention.drills_waiting() == 1
    assert attention.is_waiting("alert-1")
    attention.stop("alert-1")
    assert attention.drills_waiting() == 0
