"""Every value the hub accepts is one it can store, format and serve; no stored row can stop the
others from flowing."""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.alerts_service import EXPIRES_MAX_DAYS
from hub.clock import rfc3339
from hub.routes.acks import ACK_CLOCK_SKEW_SECONDS
from hub.server import EmbeddedHub
from tests.hub.test_stream import SseReader, open_stream
from tests.hubtools import HTTP_TIMEOUT, access_token, auth_headers, publish_alert

DAY = 86_400
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HTTP_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Every offset RFC 3339 allows in practice, -14:00 to +14:00, to the minute.
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
ANY_TIME = st.datetimes(min_value=datetime.min, max_value=datetime.max, timezones=OFFSETS)
HOSTILE_TEXT = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["\u202e", "<script>alert(1)</script>", "\x00", "a\r\nb", "\ufeff", "x" * 201]),
)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


@pytest.fixture
def dispatcher(hub: EmbeddedHub) -> str:
    return access_token(hub.store, hub.url, "dora", "dispatcher")


@pytest.fixture
def agent(hub: EmbeddedHub) -> str:
    return access_token(hub.store, hub.url, "ana", "agent")


def post_alert(
    session: requests.Session, hub: EmbeddedHub, token: str, **fields: Any
) -> requests.Response:
    body = {"severity": "major", "title": "Video visits down", "body": "Use phone.", **fields}
    return session.post(
        f"{hub.url}/v1/alerts", json=body, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )


def catch_up(session: requests.Session, hub: EmbeddedHub, token: str) -> list[dict[str, Any]]:
    response = session.get(f"{hub.url}/v1/alerts", headers=auth_headers(token), timeout=30)
    assert response.status_code == 200, response.text
    alerts: list[dict[str, Any]] = response.json()["alerts"]
    return alerts


def insert_raw_alert(hub: EmbeddedHub, **columns: Any) -> None:
    """Write an alert row straight into the hub's SQLite file, as an older hub could have."""
    row = {
        "id": str(uuid.uuid4()),
        "severity": "critical",
        "title": "Stored by an older hub",
        "body": "Old row.",
        "playbook_id": None,
        "template_ids": "[]",
        "requires_ack": 1,
        "issued_at": time.time(),
        "expires_at": None,
        "issued_by": "old-hub",
        **columns,
    }
    with sqlite3.connect(hub.settings.database_path) as conn:
        conn.execute(
            f"INSERT INTO alerts ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
            tuple(row.values()),
        )
        # TEXT holding bytes that are not UTF-8: Python's driver cannot even read such a value.
        conn.execute(
            "UPDATE alerts SET title = CAST(X'C328' AS TEXT) WHERE title = ?",
            ("replaced below by text that is not UTF-8",),
        )
    conn.close()


@given(seconds=st.floats(allow_nan=True, allow_infinity=True))
@settings(max_examples=300, deadline=None)
def test_rfc3339_formats_every_float_the_store_can_hold(seconds: float) -> None:
    text = rfc3339(seconds)

    assert RFC3339_Z.match(text), text
    moment = datetime.fromisoformat(text)
    if -62_135_596_800 <= seconds <= 253_402_300_799.999:
        assert abs(moment.timestamp() - seconds) <= 0.0005 + 1e-6 * abs(seconds) / 1e6


def test_rfc3339_writes_the_first_and_last_instants_of_the_format() -> None:
    assert rfc3339(-1e300) == "0001-01-01T00:00:00.000Z"
    assert rfc3339(datetime(1, 1, 1, tzinfo=UTC).timestamp()) == "0001-01-01T00:00:00.000Z"
    assert rfc3339(1e300) == "9999-12-31T23:59:59.999Z"
    # Year 10000 in UTC: the value behind the observed 500s.
    assert rfc3339(253_402_351_199) == "9999-12-31T23:59:59.999Z"


OUT_OF_RANGE_TIMES = [
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+14:00",
]


def test_an_alert_expiring_out_of_range_is_refused_and_nothing_is_stored(
    hub: EmbeddedHub, session: requests.Session, dispatcher: str, agent: str
) -> None:
    for expires_at in OUT_OF_RANGE_TIMES:
        response = post_alert(session, hub, dispatcher, expires_at=expires_at)

        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_request"
        assert "expires_at" in response.json()["detail"]
    assert catch_up(session, hub, agent) == []
    assert publish_alert(hub.url, dispatcher, title="Next alert")["seq"] == 1


def test_an_alert_may_expire_up_to_a_year_ahead_and_no_later(
    hub: EmbeddedHub, session: requests.Session, dispatcher: str
) -> None:
    now = datetime.now(UTC)
    within = now + timedelta(days=EXPIRES_MAX_DAYS, minutes=-5)
    beyond = now + timedelta(days=EXPIRES_MAX_DAYS, minutes=5)

    accepted = post_alert(session, hub, dispatcher, expires_at=within.isoformat())
    refused = post_alert(session, hub, dispatcher, expires_at=beyond.isoformat())

    assert accepted.status_code == 201, accepted.text
    served = datetime.fromisoformat(accepted.json()["expires_at"])
    assert abs(served - within) <= timedelta(milliseconds=1)
    assert refused.status_code == 422
    assert f"more than {EXPIRES_MAX_DAYS} days ahead" in refused.json()["detail"]


@given(expires_at=ANY_TIME)
@HTTP_SETTINGS
def test_any_expiry_is_either_published_and_served_or_refused_by_name(
    hub: EmbeddedHub, session: requests.Session, dispatcher: str, agent: str, expires_at: datetime
) -> None:
    before = time.time()
    response = post_alert(session, hub, dispatcher, expires_at=expires_at.isoformat())

    assert response.status_code in (201, 422), response.text
    seconds = expires_at.timestamp()
    latest = before + EXPIRES_MAX_DAYS * DAY
    # A second's margin either side of the bounds, for the time the request takes.
    if before + 1 < seconds < latest - 1:
        assert response.status_code == 201, response.text
    if not before - 1 < seconds < latest + 1:
        assert response.status_code == 422, response.text
    if response.status_code == 422:
        assert response.json()["error"] == "invalid_request"
        assert "expires_at" in response.json()["detail"]
    else:
        served = catch_up(session, hub, agent)[-1]
        assert served["id"] == response.json()["id"]
        assert abs(datetime.fromisoformat(served["expires_at"]).timestamp() - seconds) < 0.001


@given(acted_at=ANY_TIME)
@HTTP_SETTINGS
def test_any_acted_at_is_either_stored_and_served_or_rejected_by_name(
    hub: EmbeddedHub, session: requests.Session, dispatcher: str, agent: str, acted_at: datetime
) -> None:
    alert = publish_alert(hub.url, dispatcher, session=session)
    issued = datetime.fromisoformat(alert["issued_at"]).timestamp()
    item = {
        "ack_id": str(uuid.uuid4()),
        "alert_id": alert["id"],
        "action": "acknowledged",
        "acted_at": acted_at.isoformat(),
    }

    response = session.post(
        f"{hub.url}/v1/acks", json={"acks": [item]}, headers=auth_headers(agent), timeout=30
    )
    served = session.get(
        f"{hub.url}/v1/alerts/{alert['id']}/acks", headers=auth_headers(dispatcher), timeout=30
    )

    assert response.status_code == 200, response.text
    assert served.status_code == 200, served.text
    [result] = response.json()["results"]
    seconds = acted_at.timestamp()
    earliest = issued - ACK_CLOCK_SKEW_SECONDS
    if earliest + 1 < seconds < time.time() + ACK_CLOCK_SKEW_SECONDS - 1:
        assert result["status"] == "accepted", result
    if not earliest - 1 < seconds < time.time() + ACK_CLOCK_SKEW_SECONDS + 1:
        assert result["status"] == "rejected", result
    if result["status"] == "accepted":
        [kept] = served.json()["acks"]
        assert abs(datetime.fromisoformat(kept["acted_at"]).timestamp() - seconds) < 0.001
    else:
        assert (result["status"], result["error"]) == ("rejected", "invalid_ack")
        assert result["detail"].startswith("acted_at:")
        assert served.json()["acks"] == []


def test_an_ack_acted_at_in_year_1_or_9999_is_rejected_and_the_acks_still_serve(
    hub: EmbeddedHub, session: requests.Session, dispatcher: str, agent: str
) -> None:
    alert_id = publish_alert(hub.url, dispatcher)["id"]
    good = {
        "ack_id": str(uuid.uuid4()),
        "alert_id": alert_id,
        "action": "acknowledged",
        "acted_at": rfc3339(time.time()),
    }
    bad = [{**good, "ack_id": str(uuid.uuid4()), "acted_at": t} for t in OUT_OF_RANGE_TIMES]

    response = session.post(
        f"{hub.url}/v1/acks", json={"acks": [*bad, good]}, headers=auth_headers(agent), timeout=30
    )
    served = session.get(
        f"{hub.url}/v1/alerts/{alert_id}/acks", headers=auth_headers(dispatcher), timeout=30
    )

    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected"] * len(bad) + ["accepted"]
    for result in results[:-1]:
        assert result["error"] == "invalid_ack"
        assert result["detail"].startswith("acted_at:")
    assert served.status_code == 200
    assert [ack["ack_id"] for ack in served.json()["acks"]] == [good["ack_id"]]


def test_an_ack_acted_a_day_before_its_alert_or_a_day_ahead_of_the_hub_is_rejected(
    hub: EmbeddedHub, session: requests.Session, dispatcher: str, agent: str
) -> None:
    alert_id = publish_alert(hub.url, dispatcher)["id"]
    now = time.time()
    times = {
        "too early": now - ACK_CLOCK_SKEW_SECONDS - 60,
        "skewed early": now - ACK_CLOCK_SKEW_SECONDS + 60,
        "skewed late": now + ACK_CLOCK_SKEW_SECONDS - 60,
        "too late": now + ACK_CLOCK_SKEW_SECONDS + 60,
    }
    items = [
        {
            "ack_id": str(uuid.uuid4()),
            "alert_id": alert_id,
            "action": "acknowledged",
            "acted_at": rfc3339(seconds),
        }
        for seconds in times.values()
    ]

    response = session.post(
        f"{hub.url}/v1/acks", json={"acks": items}, headers=auth_headers(agent), timeout=30
    )

    statuses = dict(zip(times, [r["status"] for r in response.json()["results"]], strict=True))
    assert statuses == {
        "too early": "rejected",
        "skewed early": "accepted",
        "skewed late": "accepted",
        "too late": "rejected",
    }


@given(
    title=HOSTILE_TEXT,
    body=HOSTILE_TEXT,
    playbook_id=st.one_of(st.none(), HOSTILE_TEXT),
    template_ids=st.lists(HOSTILE_TEXT, max_size=3),
    requires_ack=st.one_of(st.booleans(), st.integers(), st.text(max_size=5)),
    severity=st.one_of(st.sampled_from(["info", "critical"]), HOSTILE_TEXT),
)
@HTTP_SETTINGS
def test_hostile_alert_fields_are_published_and_served_or_refused_never_a_500(
    hub: EmbeddedHub,
    session: requests.Session,
    dispatcher: str,
    agent: str,
    title: str,
    body: str,
    playbook_id: str | None,
    template_ids: list[str],
    requires_ack: object,
    severity: str,
) -> None:
    response = post_alert(
        session,
        hub,
        dispatcher,
        title=title,
        body=body,
        playbook_id=playbook_id,
        template_ids=template_ids,
        requires_ack=requires_ack,
        severity=severity,
    )

    assert response.status_code in (201, 422), response.text
    if response.status_code == 201:
        # The publish answer adds how many agents it targets; the alert itself is served as is.
        published = response.json()
        assert isinstance(published.pop("targeted"), int)
        assert catch_up(session, hub, agent)[-1] == published
    else:
        assert response.json()["error"] in ("invalid_request", "unknown_content")


@given(
    since=st.one_of(st.integers(min_value=-(2**70), max_value=2**70), HOSTILE_TEXT),
    limit=st.one_of(st.integers(min_value=-(2**70), max_value=2**70), HOSTILE_TEXT),
)
@HTTP_SETTINGS
def test_hostile_catch_up_queries_are_answered_or_refused_never_a_500(
    hub: EmbeddedHub, session: requests.Session, agent: str, since: object, limit: object
) -> None:
    response = session.get(
        f"{hub.url}/v1/alerts",
        params={"since": str(since), "limit": str(limit)},
        headers=auth_headers(agent),
        timeout=HTTP_TIMEOUT,
    )

    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert response.json()["error"] == "invalid_request"


UNSERVABLE_ROWS: dict[str, dict[str, Any]] = {
    "expires in UTC year 10000": {"expires_at": 253_402_351_199.0},
    "issued at infinity": {"issued_at": float("inf")},
    "template ids not JSON": {"template_ids": "not json"},
    "template ids not a list": {"template_ids": '{"a": 1}'},
    "title bytes that are not UTF-8": {"title": b"\x80"},
    "issued at text": {"issued_at": "yesterday"},
    "body bytes that are not UTF-8": {"body": b"\xff\xfe"},
    "text that is not UTF-8": {"title": "replaced below by text that is not UTF-8"},
}


@pytest.mark.slow
@pytest.mark.sqlite_only
def test_rows_an_older_hub_stored_never_stop_the_next_alert_reaching_every_stream(
    hub: EmbeddedHub, session: requests.Session, dispatcher: str
) -> None:
    agents = [access_token(hub.store, hub.url, f"agent-{n}", "agent") for n in range(3)]
    with ExitStack() as streams:
        live: list[SseReader] = [streams.enter_context(open_stream(hub, token)) for token in agents]
        for stream in live:
            stream.wait_until_live()
        for columns in UNSERVABLE_ROWS.values():
            insert_raw_alert(hub, **columns)

        normal = publish_alert(hub.url, dispatcher, title="The alert after the bad ones")

        for stream in live:
            received = _alerts_until(stream, normal["id"])
            assert received[-1] == normal
            # Servable rows arrive (their times written as the nearest the format can hold).
            assert [alert["title"] for alert in received[:-1]] == ["Stored by an older hub"] * 2
        # A reconnecting client replays the same rows from the start, and the normal one too.
        with open_stream(hub, agents[0], last_event_id="0") as replay:
            replayed = [json.loads(event.data) for event in replay.wait_until_live()]
    assert replayed[-1] == normal
    assert len(replayed) == 3
    caught_up = catch_up(session, hub, agents[1])
    assert caught_up == replayed
    assert caught_up[0]["expires_at"] == "9999-12-31T23:59:59.999Z"
    assert caught_up[1]["issued_at"] == "9999-12-31T23:59:59.999Z"


def _alerts_until(stream: SseReader, alert_id: str) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    for _ in range(len(UNSERVABLE_ROWS) + 1):
        event = stream.next_event()
        received.append(json.loads(event.data))
        if received[-1]["id"] == alert_id:
            return received
    raise AssertionError(f"{alert_id} never arrived; got {received}")


@given(key=st.text(max_size=300), alert_id=HOSTILE_TEXT)
@HTTP_SETTINGS
def test_hostile_idempotency_keys_and_alert_ids_are_answered_or_refused_never_a_500(
    hub: EmbeddedHub, session: requests.Session, dispatcher: str, key: str, alert_id: str
) -> None:
    # Headers travel as bytes; Latin-1 maps each byte of the UTF-8 form to one character.
    header = key.encode("utf-8").decode("latin-1")
    published: requests.Response | None
    try:
        published = session.post(
            f"{hub.url}/v1/alerts",
            json={"severity": "info", "title": "Keyed", "body": "Keyed."},
            headers={**auth_headers(dispatcher), "Idempotency-Key": header},
            timeout=HTTP_TIMEOUT,
        )
    except ValueError:
        # requests refuses to send values with line breaks or leading blanks itself.
        published = None
    acks = session.get(
        f"{hub.url}/v1/alerts/{requests.utils.quote(alert_id, safe='')}/acks",
        headers=auth_headers(dispatcher),
        timeout=HTTP_TIMEOUT,
    )

    if published is not None:
        # 400: uvicorn's HTTP parser refuses a header with control characters before the hub.
        assert published.status_code in (200, 201, 400, 422), published.text
    # 405: ".." in the path leads to another route, which takes no GET.
    assert acks.status_code in (404, 405, 422), acks.text


@given(
    note=st.one_of(st.none(), HOSTILE_TEXT, st.text(min_size=1990, max_size=2010)),
    action=st.one_of(st.sampled_from(["acknowledged", "escalated", "unable"]), HOSTILE_TEXT),
    ack_id=st.one_of(st.uuids().map(str), HOSTILE_TEXT, st.integers(-(2**70), 2**70)),
    acted_at=st.one_of(ANY_TIME.map(datetime.isoformat), HOSTILE_TEXT),
)
@HTTP_SETTINGS
def test_hostile_ack_fields_are_stored_and_served_or_rejected_never_a_500(
    hub: EmbeddedHub,
    session: requests.Session,
    dispatcher: str,
    agent: str,
    note: str | None,
    action: str,
    ack_id: object,
    acted_at: str,
) -> None:
    alert_id = publish_alert(hub.url, dispatcher, session=session)["id"]
    item = {
        "ack_id": ack_id,
        "alert_id": alert_id,
        "action": action,
        "note": note,
        "acted_at": acted_at,
    }

    response = session.post(
        f"{hub.url}/v1/acks", json={"acks": [item]}, headers=auth_headers(agent), timeout=30
    )
    served = session.get(
        f"{hub.url}/v1/alerts/{alert_id}/acks", headers=auth_headers(dispatcher), timeout=30
    )

    assert response.status_code == 200, response.text
    assert served.status_code == 200, served.text
    [result] = response.json()["results"]
    if result["status"] == "accepted":
        [kept] = served.json()["acks"]
        assert (kept["action"], kept["note"]) == (action, note)
    else:
        assert result["status"] == "rejected"
        assert result["error"] == "invalid_ack"
        assert served.json()["acks"] == []
