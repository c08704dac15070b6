"""How the hub process's garbage collector is set for fan-out: one alert written to thousands of
streams at once.

Each stream's send leaves a few objects alive until the event loop gets to it. With Python's
default first threshold (700 allocations) a fan-out to 5,000 streams ran dozens of young
collections that promoted those objects to the oldest generation, and so triggered full
collections of the whole heap (every stream's objects) in the middle of the fan-out: every
second or third alert reached its last streams 1.3 to 1.5 s after publishing instead of 0.6 s
(benchmark 15, docs/benchmarks.md).
"""

from __future__ import annotations

import gc

# Allocations before a young collection: a fan-out's short-lived objects die before most of them
# are ever examined. A young generation this size holds a few megabytes at most.
YOUNG_THRESHOLD = 50_000


def tune_for_fan_out() -> None:
    """Set the collector's thresholds for this process (it is process-wide)."""
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def freeze_start_up_objects() -> None:
    """Move what the process has made so far (modules, the app, its routes) out of every future
    collection's way; called once, by the serving process when it is ready to serve."""
    gc.collect()
    gc.freeze()
