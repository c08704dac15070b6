"""The exactly-once checker every reliability test judges its run with.

In the spirit of Jepsen's total-queue checker, but stricter: Jepsen tolerates a duplicate and
counts an item whose enqueue was indeterminate as "recovered"; here every item the client recorded
must be seen exactly once, so lost, duplicated and unexpected must all be zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """What a run lost (recorded, never seen), doubled (seen more than once) or made up."""

    recorded: int
    seen: int
    lost: tuple[str, ...]
    duplicated: dict[str, int]
    unexpected: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing doubled, nothing that was never recorded."""
        return not (self.lost or self.duplicated or self.unexpected)

    def summary(self) -> str:
        """One line for a failure message or a soak report."""
        return (
            f"recorded {self.recorded}, seen {self.seen}: lost {len(self.lost)} "
            f"{list(self.lost)[:5]}, duplicated {len(self.duplicated)} "
            f"{dict(list(self.duplicated.items())[:5])}, unexpected {len(self.unexpected)} "
            f"{list(self.unexpected)[:5]}"
        )


def check_exactly_once(recorded: Iterable[str], seen: Iterable[str]) -> Verdict:
    """Compare the ids one side recorded (a set) with the multiset the other side holds."""
    recorded_set = set(recorded)
    seen_counts = Counter(seen)
    return Verdict(
        recorded=len(recorded_set),
        seen=sum(seen_counts.values()),
        lost=tuple(sorted(recorded_set - set(seen_counts))),
        duplicated={item: n for item, n in sorted(seen_counts.items()) if n > 1},
        unexpected=tuple(sorted(set(seen_counts) - recorded_set)),
    )


def assert_exactly_once(what: str, recorded: Iterable[str], seen: Iterable[str]) -> Verdict:
    """check_exactly_once, failing the test with the details when the verdict is not ok."""
    verdict = check_exactly_once(recorded, seen)
    assert verdict.ok, f"{what}: {verdict.summary()}"
    return verdict
