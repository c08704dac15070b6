"""The idle lock decision: lock after the idle minutes without input, on a test clock."""

from client.core.idle import IdleTimer, shows_while_locked


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_locks_only_after_the_idle_minutes() -> None:
    clock = Clock()
    timer = IdleTimer(15, clock=clock)
    changes: list[bool] = []
    timer.locked_changed.connect(changes.append)

    clock.now += 14 * 60 + 59
    assert not timer.check()
    clock.now += 1
    assert timer.check()
    assert timer.locked
    assert changes == [True]
    assert timer.check()  # stays locked, without a second event
    assert changes == [True]


def test_input_restarts_the_idle_time() -> None:
    clock = Clock()
    timer = IdleTimer(1, clock=clock)
    clock.now += 50
    timer.note_input()
    clock.now += 50
    assert not timer.check()
    assert timer.seconds_until_lock() == 10


def test_unlock_restarts_the_idle_time() -> None:
    clock = Clock()
    timer = IdleTimer(1, clock=clock)
    changes: list[bool] = []
    timer.locked_changed.connect(changes.append)
    clock.now += 120
    timer.check()
    timer.unlock()
    assert not timer.locked
    assert not timer.check()
    assert changes == [True, False]


def test_no_idle_minutes_never_locks() -> None:
    clock = Clock()
    timer = IdleTimer(None, clock=clock)
    clock.now += 10**6
    assert not timer.check()
    assert timer.seconds_until_lock() is None
    timer.set_idle_minutes(5)
    assert timer.check()


def test_only_critical_alerts_pop_up_while_locked() -> None:
    assert shows_while_locked("critical")
    assert not any(shows_while_locked(s) for s in ("info", "minor", "major"))
