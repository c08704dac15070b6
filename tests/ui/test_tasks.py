"""The TaskRunner: work off the UI thread, outcomes back on it, writes one at a time in order."""

from __future__ import annotations

import threading

from PySide6.QtCore import QThread
from pytestqt.qtbot import QtBot

from client.controllers.tasks import TaskRunner


def test_result_and_error_come_back_on_the_ui_thread(qtbot: QtBot) -> None:
    runner = TaskRunner()
    outcomes: list[tuple[object, object, bool]] = []
    worker_threads: list[str] = []

    def work() -> int:
        worker_threads.append(threading.current_thread().name)
        return 42

    def fail() -> int:
        raise ValueError("the hub said no")

    def record(result: object, error: object) -> None:
        outcomes.append((result, error, QThread.currentThread() is runner.thread()))

    runner.run(work, record)
    runner.run(fail, record)
    qtbot.waitUntil(lambda: len(outcomes) == 2, timeout=5000)
    runner.shutdown()
    assert (42, None, True) in outcomes
    error_outcome = next(o for o in outcomes if o[0] is None)
    assert isinstance(error_outcome[1], ValueError)
    assert error_outcome[2] is True
    assert worker_threads[0].startswith("vigil-net")


def test_writes_run_one_at_a_time_in_submission_order(qtbot: QtBot) -> None:
    runner = TaskRunner()
    order: list[int] = []
    threads: set[str] = set()
    gate = threading.Event()

    def write(n: int) -> None:
        if n == 0:
            # The first write blocks until released: later ones must wait behind it.
            assert gate.wait(5)
        threads.add(threading.current_thread().name)
        order.append(n)

    futures = [runner.run_write(lambda n=n: write(n)) for n in range(20)]
    assert order == []
    gate.set()
    for future in futures:
        future.result(timeout=5)
    runner.shutdown()
    assert order == list(range(20))
    assert len(threads) == 1


def test_shutdown_finishes_queued_writes_and_delivers_nothing_more(qtbot: QtBot) -> None:
    runner = TaskRunner()
    gate = threading.Event()
    written: list[int] = []
    delivered: list[object] = []

    def slow_write() -> None:
        assert gate.wait(5)
        written.append(1)

    runner.run_write(slow_write, lambda result, error: delivered.append(result))
    runner.run_write(lambda: written.append(2), lambda result, error: delivered.append(result))
    threading.Timer(0.05, gate.set).start()
    runner.shutdown()
    assert written == [1, 2]
    # Deliveries queued for the UI thread are dropped once shut down.
    qtbot.wait(0)
    assert delivered == []
