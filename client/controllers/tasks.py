"""Running blocking work off the UI thread and handing the outcome back to it.

Network calls run in parallel on a thread pool; disk writes (outbox, cache) go to one worker in
submission order so they never race. Each outcome comes back on the UI thread as `(result,
error)` through a queued Qt signal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Signal, Slot

log = logging.getLogger(__name__)

T = TypeVar("T")
Done = Callable[[T | None, BaseException | None], None]


def log_failure(_result: object, error: BaseException | None) -> None:
    """An `on_done` for work whose only possible follow-up is a line in the log."""
    if error is not None:
        log.warning("background task failed: %s", error)


class TaskRunner(QObject):
    """Runs callables on worker threads and calls `on_done(result, error)` on the UI thread.

    Signals:
        finished: internal; carries a finished task's callback and outcome to the UI thread.
    """

    finished = Signal(object)

    def __init__(self, parent: QObject | None = None, *, network_workers: int = 4) -> None:
        super().__init__(parent)
        self._network = ThreadPoolExecutor(network_workers, thread_name_prefix="vigil-net")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="vigil-write")
        self._closed = False
        # The runner lives on the UI thread, so emits from workers arrive queued.
        self.finished.connect(self._deliver)

    def run(self, work: Callable[[], T], on_done: Done[T] | None = None) -> Future[T]:
        """Run `work` on the network pool (parallel)."""
        return self._submit(self._network, work, on_done)

    def run_write(self, work: Callable[[], T], on_done: Done[T] | None = None) -> Future[T]:
        """Run `work` on the single disk writer, after every write submitted before it."""
        return self._submit(self._writer, work, on_done)

    def shutdown(self) -> None:
        """Stop: drop queued network work, finish every queued write, deliver nothing more."""
        if self._closed:
            return
        self._closed = True
        self._network.shutdown(wait=False, cancel_futures=True)
        # A queued acknowledgement write must reach the disk before the app exits.
        self._writer.shutdown(wait=True)

    def _submit(
        self, pool: ThreadPoolExecutor, work: Callable[[], T], on_done: Done[T] | None
    ) -> Future[T]:
        if self._closed:
            raise RuntimeError("the task runner is shut down")
        future = pool.submit(work)
        if on_done is not None:
            future.add_done_callback(lambda f: self._finish(f, on_done))
        return future

    def _finish(self, future: Future[Any], on_done: Done[Any]) -> None:
        if future.cancelled() or self._closed:
            return
        error = future.exception()
        result = None if error is not None else future.result()
        self.finished.emit((on_done, result, error))

    @Slot(object)
    def _deliver(self, payload: tuple[Done[Any], Any, BaseException | None]) -> None:
        if self._closed:
            return
        on_done, result, error = payload
        try:
            on_done(result, error)
        except Exception:
            # One failing callback must not stop the UI from handling the rest.
            log.exception("a task's completion handler failed")
