"""The idle lock: the library locks after the idle minutes (test clock), input resets the time,
and the agent unlocks offline with the password checked against the real keyring."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from keyring.backends.fail import Keyring as NoKeyring
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from client.controllers.tasks import TaskRunner
from client.core.errors import KeyringUnavailable
from client.core.idle import IdleTimer
from client.core.offline_unlock import OfflineUnlock
from client.ui.idle_watcher import IdleWatcher
from client.ui.library import LibraryWindow

real_keyring = pytest.mark.skipif(
    os.environ.get("VIGIL_TEST_REAL_KEYRING") != "1",
    reason="needs a real Secret Service keyring: run under scripts/with-keyring",
)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def window(qtbot: QtBot) -> LibraryWindow:
    window = LibraryWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def watcher(qtbot: QtBot, clock: Clock, window: LibraryWindow) -> Iterator[IdleWatcher]:
    watcher = IdleWatcher(IdleTimer(5, clock=clock), check_interval_ms=10)
    watcher.locked_changed.connect(window.set_locked)
    watcher.start()
    yield watcher
    watcher.stop()


@pytest.fixture
def runner() -> Iterator[TaskRunner]:
    runner = TaskRunner()
    yield runner
    runner.shutdown()


def wire_unlock(
    window: LibraryWindow,
    watcher: IdleWatcher,
    runner: TaskRunner,
    unlock: OfflineUnlock,
    user: str,
) -> None:
    """Connect the lock screen to offline unlocking the way app.py does when the hub is away."""

    def done(ok: bool | None, error: BaseException | None) -> None:
        if isinstance(error, KeyringUnavailable):
            window.lock_screen.show_error(error.message)
        elif ok:
            watcher.unlock()
        else:
            window.lock_screen.show_error("That password is not right. Try again.")

    window.lock_screen.unlock_requested.connect(
        lambda password: runner.run(lambda: unlock.verify(user, password), done)
    )


def _lock(qtbot: QtBot, clock: Clock, watcher: IdleWatcher) -> None:
    with qtbot.waitSignal(watcher.locked_changed, timeout=2000) as locked:
        clock.now += 5 * 60
    assert locked.args == [True]


def test_locks_after_the_idle_minutes(
    qtbot: QtBot, clock: Clock, watcher: IdleWatcher, window: LibraryWindow
) -> None:
    clock.now += 5 * 60 - 1
    watcher.check()
    assert not watcher.is_locked
    assert window.tabs.isVisible()

    _lock(qtbot, clock, watcher)
    assert watcher.is_locked
    assert window.lock_screen.isVisible()
    assert not window.tabs.isVisible()
    assert not window.playbook_view.isVisible()


def test_any_input_restarts_the_idle_time(
    qtbot: QtBot, clock: Clock, watcher: IdleWatcher, window: LibraryWindow
) -> None:
    clock.now += 4 * 60
    qtbot.keyClick(window.search_field, Qt.Key.Key_A)
    clock.now += 4 * 60
    qtbot.mouseMove(window.tabs)
    clock.now += 4 * 60
    watcher.check()
    assert not watcher.is_locked


def test_only_critical_pop_ups_while_locked(
    qtbot: QtBot, clock: Clock, watcher: IdleWatcher
) -> None:
    assert all(watcher.pops_up_while_locked(s) for s in ("info", "minor", "major", "critical"))
    _lock(qtbot, clock, watcher)
    assert watcher.pops_up_while_locked("critical")
    assert not watcher.pops_up_while_locked("major")


@pytest.mark.keyring
@real_keyring
def test_offline_unlock_with_the_right_password_and_not_a_wrong_one(
    qtbot: QtBot,
    clock: Clock,
    watcher: IdleWatcher,
    window: LibraryWindow,
    runner: TaskRunner,
) -> None:
    user = f"agent-{uuid.uuid4().hex[:8]}"
    unlock = OfflineUnlock()
    unlock.enroll(user, "correct horse battery")
    try:
        wire_unlock(window, watcher, runner, unlock, user)
        _lock(qtbot, clock, watcher)

        qtbot.keyClicks(window.lock_screen.password, "wrong password")
        qtbot.keyClick(window.lock_screen.password, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: window.lock_screen.error.isVisible(), timeout=10_000)
        assert window.lock_screen.error.text() == "That password is not right. Try again."
        assert watcher.is_locked
        assert window.lock_screen.isVisible()

        window.lock_screen.password.clear()
        qtbot.keyClicks(window.lock_screen.password, "correct horse battery")
        with qtbot.waitSignal(watcher.locked_changed, timeout=10_000) as unlocked:
            qtbot.keyClick(window.lock_screen.password, Qt.Key.Key_Return)
        assert unlocked.args == [False]
        assert window.tabs.isVisible()
        assert window.lock_screen.password.text() == ""
    finally:
        unlock.forget(user)


def test_no_keyring_says_so_and_stays_locked(
    qtbot: QtBot,
    clock: Clock,
    watcher: IdleWatcher,
    window: LibraryWindow,
    runner: TaskRunner,
) -> None:
    # keyring's own "fail" backend: what keyring uses on a machine without any keyring.
    wire_unlock(window, watcher, runner, OfflineUnlock(backend=NoKeyring()), "agent")
    _lock(qtbot, clock, watcher)
    qtbot.keyClicks(window.lock_screen.password, "anything")
    qtbot.keyClick(window.lock_screen.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.lock_screen.error.isVisible(), timeout=10_000)
    assert "system keyring" in window.lock_screen.error.text()
    assert watcher.is_locked
    assert window.lock_screen.password.isEnabled()
