"""One answer model for every place that shows an alert's answer: the pop-up, the history and
`vigil alerts` read the same AlertAnswer from the same acks."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from client.core.answers import AlertAnswer, answer_for
from client.core.outbox import AckRecord, AckResult, AckState, Outbox

ALERT = "6f1c1f7e-8f0e-4d57-9a39-0b4b3e1f2a10"


def ack(
    n: int, state: AckState, action: str = "acknowledged", author: str | None = "agent"
) -> AckRecord:
    detail = "The alert has expired." if state is AckState.REJECTED else None
    return AckRecord(
        f"ack-{n}",
        ALERT,
        action,
        None,
        "2026-11-27T10:00:00.000Z",
        state,
        "expired" if detail else None,
        detail,
        author,
    )


def test_no_ack_is_unanswered_and_says_whether_one_is_needed() -> None:
    answer = answer_for([])
    assert answer == AlertAnswer()
    assert not answer.stands
    assert answer.describe(requires_ack=True) == "Not answered yet"
    assert answer.describe(requires_ack=False) == "No answer needed"


def test_the_latest_standing_answer_is_the_answer() -> None:
    answer = answer_for([ack(1, AckState.SYNCED), ack(2, AckState.PENDING, "escalated")])
    assert (answer.state, answer.action, answer.stands) == ("pending", "escalated", True)
    assert answer.describe(requires_ack=True) == "Escalated · waiting to sync"


def test_a_refused_ack_does_not_undo_an_accepted_one() -> None:
    answer = answer_for([ack(1, AckState.SYNCED), ack(2, AckState.REJECTED)])
    assert answer.state == "synced" and answer.stands
    assert answer.describe(requires_ack=True) == "Acknowledged · synced"


def test_only_refused_acks_leave_the_alert_needing_an_answer_with_the_reason() -> None:
    answer = answer_for([ack(1, AckState.REJECTED, "unable")])
    assert (answer.state, answer.reason, answer.stands) == (
        "rejected",
        "The alert has expired.",
        False,
    )
    assert answer.describe(requires_ack=True) == (
        "Unable to act · rejected by the hub: The alert has expired."
    )


def test_another_users_acks_are_not_this_users_answer() -> None:
    acks = [ack(1, AckState.PENDING, author="agent")]
    assert answer_for(acks, author="dispatcher") == AlertAnswer()
    assert answer_for(acks, author="agent").stands
    # Acks from before authors were recorded count for whoever looks.
    assert answer_for([ack(2, AckState.SYNCED, author=None)], author="dispatcher").stands


states = st.sampled_from([AckState.PENDING, AckState.SYNCED, AckState.REJECTED])


@settings(max_examples=200, deadline=None)
@given(st.lists(states, max_size=12))
def test_an_alert_stands_answered_exactly_when_some_ack_was_not_refused(
    sequence: list[AckState],
) -> None:
    acks = [ack(n, state) for n, state in enumerate(sequence)]
    answer = answer_for(acks)
    assert answer.stands == any(state is not AckState.REJECTED for state in sequence)
    assert (answer.state == "unanswered") == (not sequence)


def test_the_outbox_announces_each_changed_ack_as_it_now_is(tmp_path: Path) -> None:
    outbox = Outbox.open(tmp_path / "outbox.sqlite3")
    announced: list[tuple[AckRecord, ...]] = []
    outbox.acks_changed.connect(announced.append)

    first = outbox.record(ALERT, "acknowledged", author="agent")
    second = outbox.record(ALERT, "escalated", author="agent")
    outbox.apply_results(
        [AckResult(first.ack_id, "accepted"), AckResult(second.ack_id, "rejected", "expired")]
    )

    assert announced[0] == (first,) and announced[1] == (second,)
    settled = {record.ack_id: record.state for record in announced[2]}
    assert settled == {first.ack_id: AckState.SYNCED, second.ack_id: AckState.REJECTED}
    # What the pop-up, the history and the CLI then show, from the announcement alone.
    assert answer_for(announced[2]).describe(requires_ack=True) == "Acknowledged · synced"
    outbox.close()
