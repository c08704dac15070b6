"""Batches of items an agent's device sends (acks, receipts, survey answers): the batch is
refused whole only for its size; each item is checked on its own, so one bad item never sinks the
rest, and the answer holds one result per item, in the order sent."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import ValidationError

from hub.errors import ApiError

# A refusal names this many problems of an item at most: enough to fix it, never a wall of text.
REPORTED_PROBLEMS = 3


class ItemResult(Protocol):
    """The outcome for one item, as the protocol writes it."""

    def to_wire(self) -> dict[str, Any]:
        """The result object of the answer."""
        ...


Item = TypeVar("Item")
Result = TypeVar("Result", bound=ItemResult)


@dataclass(frozen=True)
class CheckedBatch(Generic[Item, Result]):
    """The well-formed items of a batch, and the refusals of the others in their places."""

    valid: list[Item]
    refusals: list[Result | None]

    def answer(self, outcomes: Iterable[Result]) -> dict[str, Any]:
        """`{results: [...]}`: the store's outcomes for the valid items, in between the refusals,
        in the order the items came."""
        stored = iter(outcomes)
        return {
            "results": [
                (refusal if refusal is not None else next(stored)).to_wire()
                for refusal in self.refusals
            ]
        }


def check_batch(
    items: list[Any],
    *,
    limit: int,
    noun: str,
    parse: Callable[[Any], Item],
    refuse: Callable[[Any, str], Result],
) -> CheckedBatch[Item, Result]:
    """Parse each item; `413 batch_too_large` for more than `limit` items.

    `parse` raises ValidationError for a malformed item, and `refuse(item, problems)` makes its
    rejected result from the problems in words.
    """
    if len(items) > limit:
        raise ApiError(
            413,
            "batch_too_large",
            f"A batch holds at most {limit} {noun}; this one has {len(items)}. "
            "Send them in several batches.",
        )
    valid: list[Item] = []
    refusals: list[Result | None] = []
    for raw in items:
        try:
            valid.append(parse(raw))
        except ValidationError as exc:
            refusals.append(refuse(raw, describe_problems(exc)))
            continue
        refusals.append(None)
    return CheckedBatch(valid, refusals)


def describe_problems(exc: ValidationError) -> str:
    """An item's first problems, each with where it is: "acted_at: must carry a time zone."."""
    problems = []
    for error in exc.errors()[:REPORTED_PROBLEMS]:
        where = ".".join(str(part) for part in error["loc"]) or "the item"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems) + "."


def echoed_id(raw: Any, field: str) -> str | None:
    """The item's own id to echo in its refusal: only a string is an id the client could match."""
    value = raw.get(field) if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


def canonical_uuid(value: str) -> str:
    """An item's id in the one spelling the hub keeps; ValueError when it is not a UUID."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be a UUID") from None


def aware_time(value: str) -> str:
    """A device's time, unchanged; ValueError unless it is RFC 3339 with a time zone."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an RFC 3339 time such as 2026-11-27T10:42:00.123Z") from None
    if moment.tzinfo is None:
        raise ValueError("must carry a time zone (end it with Z for UTC)")
    return value
