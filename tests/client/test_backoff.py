"""Reconnect waits: fast first retry, growing, capped, jittered, reset after success."""

from __future__ import annotations

import random
from typing import Any

import pytest

from client.core.backoff import Backoff


def test_first_retry_is_under_a_second_and_waits_grow_to_the_cap() -> None:
    backoff = Backoff(rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(20)]
    assert 0.4 <= delays[0] <= 0.6
    assert delays[2] > delays[0]
    assert all(delay <= 30.0 for delay in delays)
    # Once capped, the wait stays near the cap rather than collapsing back.
    assert all(24.0 <= delay <= 30.0 for delay in delays[10:])


def test_without_jitter_the_waits_double_exactly() -> None:
    backoff = Backoff(first=0.5, factor=2.0, cap=3.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_spreads_clients_that_start_together() -> None:
    firsts = {Backoff(rng=random.Random(seed)).next_delay() for seed in range(20)}
    assert len(firsts) > 10
    assert all(0.4 <= delay <= 0.6 for delay in firsts)


def test_reset_starts_again_from_the_first_wait() -> None:
    backoff = Backoff(jitter=0.0)
    for _ in range(6):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"first": 0}, "first wait must be positive"),
        ({"factor": 0.5}, "factor must be at least 1"),
        ({"first": 5, "cap": 1}, "must not be below the first wait"),
        ({"jitter": 1.5}, "jitter must be between 0 and 1"),
    ],
)
def test_nonsense_settings_are_refused_with_the_reason(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**kwargs)


def test_a_plateau_keeps_short_outages_short_and_long_ones_still_back_off() -> None:
    backoff = Backoff(first=0.25, cap=30.0, jitter=0.0, plateau=0.7, plateau_seconds=30.0)
    waits = [backoff.next_delay() for _ in range(60)]
    assert waits[:3] == [0.25, 0.5, 0.7]
    on_plateau = [w for w in waits if w == 0.7]
    # Held at 0.7 s until 30 s of retrying have passed, then doubling up to the cap.
    assert 30.0 <= 0.75 + sum(on_plateau) < 30.0 + 0.7 + 0.75
    after = waits[len(on_plateau) + 2 :]
    assert after[:4] == [1.4, 2.8, 5.6, 11.2]
    assert max(waits) == 30.0
    backoff.reset()
    assert backoff.next_delay() == 0.25


def test_a_plateau_outside_first_and_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="plateau"):
        Backoff(first=1.0, cap=30.0, plateau=0.5, plateau_seconds=10.0)
