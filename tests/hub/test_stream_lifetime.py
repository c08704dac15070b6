"""How long an alert stream lives: it ends within a second of its sign-in ending, however it
ended and in whichever process, and each user holds at most five streams (the oldest goes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, closing, contextmanager

import pytest
import requests

from hub.alerts_service import publish_alert
from hub.clock import ManualClock
from hub.server import EmbeddedHub
from tests.hub.test_stream import SseEvent, SseReader
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    access_token,
    auth_headers,
    create_user,
    other_process_rows,
    sign_in,
)

# The hub looks every half second; a stream still open after this long was not ended by it. The
# default heartbeat (15 s) is far longer, so the old check at each heartbeat cannot pass for it.
END_BOUND_SECONDS = 4.0
MAX_EVENTS = 50
STREAM_CAP = 5


@contextmanager
def live_stream(hub: EmbeddedHub, token: str) -> Iterator[SseReader]:
    """A stream read with a short timeout, already past its `: connected` comment."""
    response = requests.get(
        f"{hub.url}/v1/alerts/stream",
        headers=auth_headers(token),
        stream=True,
        timeout=(HTTP_TIMEOUT, END_BOUND_SECONDS),
    )
    with closing(response):
        assert response.status_code == 200, response.text
        reader = SseReader(response)
        reader.wait_until_live()
        yield reader


def read_to_end(stream: SseReader) -> list[SseEvent]:
    """Every event and comment until the hub ends the stream; fails if it does not end soon."""
    received: list[SseEvent] = []
    for _ in range(MAX_EVENTS):
        try:
            event = stream.next()
        except requests.ConnectionError as exc:
            raise AssertionError(
                f"The stream was still open {END_BOUND_SECONDS} s after its sign-in ended"
            ) from exc
        if event is None:
            return received
        received.append(event)
    raise AssertionError(f"The stream went on for {MAX_EVENTS} events")


def assert_closed_for(received: list[SseEvent], reason: str) -> None:
    """The stream's last event says why it ended, and no alert came before it."""
    assert received, "the stream ended without saying why"
    last = received[-1]
    assert last.event == "closed"
    assert last.json()["reason"] == reason
    assert last.json()["detail"]
    assert all(event.event is None for event in received[:-1])


def assert_still_delivers(hub: EmbeddedHub, streams: list[SseReader]) -> None:
    """An alert published now reaches every one of `streams`."""
    # Straight into the store, as `vigil-hub alert publish` does: saves signing in a dispatcher.
    alert = publish_alert(
        hub.store,
        hub.settings,
        severity="critical",
        title="Phones down in the East region",
        body="Use chat.",
    )
    hub.broker.notify()
    for stream in streams:
        event = stream.next_event()
        assert (event.event, event.json()) == ("alert", alert)


def test_logout_ends_the_stream_and_other_users_streams_stay_open(hub: EmbeddedHub) -> None:
    ana = access_token(hub.store, hub.url, "ana")
    bob = access_token(hub.store, hub.url, "bob")

    with live_stream(hub, ana) as ana_stream, live_stream(hub, bob) as bob_stream:
        response = requests.post(
            f"{hub.url}/v1/auth/logout", headers=auth_headers(ana), timeout=HTTP_TIMEOUT
        )
        assert response.status_code == 204
        assert_closed_for(read_to_end(ana_stream), "signed_out")
        assert_still_delivers(hub, [bob_stream])


def test_refresh_reuse_ends_the_stream_of_the_revoked_family(hub: EmbeddedHub) -> None:
    bob = access_token(hub.store, hub.url, "bob")
    secret = create_user(hub.store, "ana")
    first = sign_in(hub.url, "ana", DEFAULT_PASSWORD, secret)
    rotated = requests.post(
        f"{hub.url}/v1/auth/refresh",
        json={"refresh_token": first["refresh_token"]},
        timeout=HTTP_TIMEOUT,
    ).json()
    # Once the successor was used, presenting the first token again is reuse (not a lost
    # answer within the grace window).
    latest = requests.post(
        f"{hub.url}/v1/auth/refresh",
        json={"refresh_token": rotated["refresh_token"]},
        timeout=HTTP_TIMEOUT,
    ).json()

    with live_stream(hub, latest["access_token"]) as ana_stream, live_stream(hub, bob) as other:
        reused = requests.post(
            f"{hub.url}/v1/auth/refresh",
            json={"refresh_token": first["refresh_token"]},
            timeout=HTTP_TIMEOUT,
        )
        assert reused.json()["error"] == "refresh_reused"
        assert_closed_for(read_to_end(ana_stream), "signed_out")
        assert_still_delivers(hub, [other])


@pytest.mark.parametrize(
    "statement",
    [
        # What `vigil-hub user disable` does from another process: revoke the families only.
        "UPDATE token_families SET revoked_at = 1, revoked_reason = 'disabled' "
        "WHERE user_id = (SELECT id FROM users WHERE username = 'ana')",
        # What `vigil-hub user remove` does: the user goes, its families and tokens with it.
        "DELETE FROM users WHERE username = 'ana'",
    ],
    ids=["family-revoked", "user-removed"],
)
def test_a_change_made_by_another_process_ends_the_stream(hub: EmbeddedHub, statement: str) -> None:
    ana = access_token(hub.store, hub.url, "ana")
    bob = access_token(hub.store, hub.url, "bob")

    with live_stream(hub, ana) as ana_stream, live_stream(hub, bob) as bob_stream:
        other_process_rows(hub.settings, statement)
        assert_closed_for(read_to_end(ana_stream), "signed_out")
        assert_still_delivers(hub, [bob_stream])


@pytest.mark.parametrize(
    ("session_hours", "advance"),
    [(12, 901), (0.1, 361)],
    ids=["access-token-expired", "sign-in-past-its-shift"],
)
def test_an_expired_session_ends_the_stream(
    manual_clock: ManualClock,
    start_hub: Callable[..., EmbeddedHub],
    session_hours: float,
    advance: float,
) -> None:
    hub = start_hub(session_hours=session_hours)
    ana = access_token(hub.store, hub.url, "ana", at=manual_clock.now())

    with live_stream(hub, ana) as stream:
        manual_clock.advance(advance - 2)
        # Signed in later, so still valid when ana's sign-in runs out.
        bob = access_token(hub.store, hub.url, "bob", at=manual_clock.now())
        # Still valid just before: an alert arrives.
        assert_still_delivers(hub, [stream])
        with live_stream(hub, bob) as bob_stream:
            manual_clock.advance(2)
            assert_closed_for(read_to_end(stream), "token_expired")
            assert_still_delivers(hub, [bob_stream])


def test_a_sixth_stream_closes_the_users_oldest_one(hub: EmbeddedHub) -> None:
    ana = access_token(hub.store, hub.url, "ana")
    bob = access_token(hub.store, hub.url, "bob")

    with ExitStack() as stack:
        bob_stream = stack.enter_context(live_stream(hub, bob))
        ana_streams = [stack.enter_context(live_stream(hub, ana)) for _ in range(STREAM_CAP)]
        newest = stack.enter_context(live_stream(hub, ana))

        assert_closed_for(read_to_end(ana_streams[0]), "stream_limit")
        assert_still_delivers(hub, [*ana_streams[1:], newest, bob_stream])
        user = hub.store.accounts.find_user(username="ana")
        assert user is not None
        assert hub.broker.open_streams_of(user.id) == STREAM_CAP


def test_forty_parallel_streams_of_one_token_leave_five_open(hub: EmbeddedHub) -> None:
    ana = access_token(hub.store, hub.url, "ana")
    user = hub.store.accounts.find_user(username="ana")
    assert user is not None

    def open_one() -> tuple[AbstractContextManager[SseReader], SseReader]:
        stream = live_stream(hub, ana)
        return stream, stream.__enter__()

    with ExitStack() as stack, ThreadPoolExecutor(max_workers=40) as pool:
        opened = [future.result() for future in [pool.submit(open_one) for _ in range(40)]]
        for context, _ in opened:
            stack.push(context)
        streams = [reader for _, reader in opened]
        assert hub.broker.open_streams_of(user.id) == STREAM_CAP
        alert = publish_alert(
            hub.store, hub.settings, severity="major", title="Chat down", body="Use phones."
        )
        hub.broker.notify()
        outcomes = [read_first_event(stream) for stream in streams]

    assert outcomes.count("stream_limit") == 40 - STREAM_CAP
    assert outcomes.count(alert["id"]) == STREAM_CAP


def read_first_event(stream: SseReader) -> str:
    """The id of the alert a stream got, or the reason it was closed with."""
    event = stream.next_event()
    if event.event == "closed":
        reason: str = event.json()["reason"]
        return reason
    alert_id: str = event.json()["id"]
    return alert_id
