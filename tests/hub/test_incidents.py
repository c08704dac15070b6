"""Incidents over real HTTP: publish to an audience, update, resolve, retract, and read them back,
live on the stream and on reconnecting."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.clock import ManualClock
from hub.config import HubSettings
from hub.server import EmbeddedHub
from hub.storage.audit import AuditQuery
from tests.hub.test_stream import open_stream
from tests.hubtools import HTTP_TIMEOUT, access_token, auth_headers

V1_FIELDS = {
    "id",
    "seq",
    "severity",
    "title",
    "body",
    "playbook_id",
    "template_ids",
    "requires_ack",
    "issued_at",
    "expires_at",
    "issued_by",
}
PARALLEL = 40


@dataclass(frozen=True)
class SharedHub:
    """One hub for the tests that each publish their own alert and read only that one."""

    hub: EmbeddedHub
    dispatcher: str
    agent: str


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedHub]:
    # Signing users in hashes passwords: done once for the many hostile-value cases.
    settings = HubSettings(data_dir=tmp_path_factory.mktemp("shared") / "hub")
    with EmbeddedHub(settings) as hub:
        yield SharedHub(
            hub,
            access_token(hub.store, hub.url, "dora", "dispatcher"),
            access_token(hub.store, hub.url, "ana"),
        )


def call(
    hub: EmbeddedHub, token: str, method: str, path: str, body: Any = None
) -> requests.Response:
    return requests.request(
        method,
        f"{hub.url}{path}",
        json=body,
        headers=auth_headers(token),
        timeout=HTTP_TIMEOUT,
    )


def publish(hub: EmbeddedHub, token: str, **fields: Any) -> requests.Response:
    body = {"severity": "major", "title": "Video visits down", "body": "Move visits to phone."}
    return call(hub, token, "POST", "/v1/alerts", {**body, **fields})


def update(hub: EmbeddedHub, token: str, alert_id: str, **fields: Any) -> requests.Response:
    return call(hub, token, "POST", f"/v1/alerts/{alert_id}/updates", {"text": "News", **fields})


def in_hours(hours: float, now: float | None = None) -> str:
    start = datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC)
    return (start + timedelta(hours=hours)).isoformat()


def catch_up(hub: EmbeddedHub, token: str, since: int | None = None) -> list[dict[str, Any]]:
    params = {} if since is None else {"since": since}
    response = requests.get(
        f"{hub.url}/v1/alerts", params=params, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 200, response.text
    alerts: list[dict[str, Any]] = response.json()["alerts"]
    return alerts


def test_publish_takes_drill_audience_and_next_update_and_answers_the_targeted_count(
    hub: EmbeddedHub,
) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    for name in ("ana", "ben", "cal"):
        access_token(hub.store, hub.url, name)
    hub.store.groups.create("West", "region")
    hub.store.groups.add_members("West", ["ana", "ben", "dora"])
    next_update = in_hours(1)

    response = publish(hub, dispatcher, drill=True, audience=["west"], next_update_by=next_update)

    assert response.status_code == 201, response.text
    alert = response.json()
    # Dispatchers are never targets: only the two agent members count.
    assert alert["targeted"] == 2
    assert alert["drill"] is True
    assert alert["audience"] == ["West"]
    assert alert["status"] == "open"
    assert alert["updates"] == [] and alert["revision"] == 0
    assert alert["next_update_by"][:16] == next_update[:16]
    assert sorted(hub.store.alerts.targets(alert["id"])) == ["ana", "ben"]
    events = hub.store.audit.query(AuditQuery(event="alert.published"))
    assert [(e.actor, e.subject, e.detail["targeted"]) for e in events] == [
        ("dora", alert["id"], 2)
    ]


def test_unknown_groups_are_named_and_nothing_is_published(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    hub.store.groups.create("West", "region")

    response = publish(hub, dispatcher, audience=["West", "Nowhere", "<b>East</b>"])
    empty = publish(hub, dispatcher, audience=[])
    too_many = publish(hub, dispatcher, audience=[f"g{n}" for n in range(51)])

    assert response.status_code == 422
    assert response.json()["error"] == "unknown_group"
    assert "'Nowhere'" in response.json()["detail"]
    assert "'<b>East</b>'" in response.json()["detail"]
    assert "'West'" not in response.json()["detail"]
    assert (empty.status_code, too_many.status_code) == (422, 422)
    assert hub.store.alerts.last_seq() == 0


def test_an_update_reaches_a_live_stream_and_a_reconnecting_client_gets_the_whole_alert(
    hub: EmbeddedHub,
) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    agent = access_token(hub.store, hub.url, "ana")
    alert = publish(hub, dispatcher).json()

    with open_stream(hub, agent, last_event_id=str(alert["seq"])) as stream:
        assert stream.wait_until_live() == []
        answer = update(
            hub,
            dispatcher,
            alert["id"],
            text="Phones are back in the East.",
            severity="critical",
            title="Video and phones down",
            links=["https://status.example.org/incident/1"],
        )
        live = stream.next_event()

    assert answer.status_code == 201, answer.text
    updated = answer.json()
    assert live.event == "alert" and live.id == str(updated["seq"])
    assert live.json() == {k: v for k, v in updated.items() if k != "targeted"}
    assert updated["seq"] > alert["seq"]
    assert (updated["id"], updated["body"]) == (alert["id"], alert["body"])
    assert (updated["severity"], updated["title"], updated["revision"]) == (
        "critical",
        "Video and phones down",
        1,
    )
    [change] = updated["updates"]
    assert change["number"] == 1 and change["kind"] == "update" and change["by"] == "dora"
    assert change["links"] == ["https://status.example.org/incident/1"]

    # A client that was offline since the first publish gets the alert once more, whole.
    with open_stream(hub, agent, last_event_id=str(alert["seq"])) as stream:
        replayed = stream.wait_until_live()
    assert [(event.id, event.json()["revision"]) for event in replayed] == [
        (str(updated["seq"]), 1)
    ]
    assert [a["seq"] for a in catch_up(hub, agent, since=alert["seq"])] == [updated["seq"]]
    assert catch_up(hub, agent, since=updated["seq"]) == []


@pytest.mark.parametrize("kind", ["resolve", "retract"])
def test_resolve_and_retract_close_the_alert_and_it_takes_no_more_changes(
    hub: EmbeddedHub, kind: str
) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    alert = publish(hub, dispatcher, next_update_by=in_hours(1)).json()

    closed = call(hub, dispatcher, "POST", f"/v1/alerts/{alert['id']}/{kind}", {"note": "Done."})
    again = [
        update(hub, dispatcher, alert["id"]),
        call(hub, dispatcher, "POST", f"/v1/alerts/{alert['id']}/resolve", {"note": "x"}),
        call(hub, dispatcher, "POST", f"/v1/alerts/{alert['id']}/retract", {"note": "x"}),
    ]

    assert closed.status_code == 200, closed.text
    body = closed.json()
    status = "resolved" if kind == "resolve" else "retracted"
    assert body["status"] == status and body["closed_at"] is not None
    assert body["next_update_by"] is None
    assert [(u["kind"], u["text"]) for u in body["updates"]] == [(status, "Done.")]
    assert [(r.status_code, r.json()["error"]) for r in again] == [(409, "alert_closed")] * 3
    shown = call(hub, dispatcher, "GET", f"/v1/alerts/{alert['id']}").json()
    assert shown["alert"]["revision"] == 1 and shown["update_overdue"] is False
    outcomes = [e.outcome for e in hub.store.audit.query(AuditQuery(event="alert.*"))]
    assert outcomes.count("alert_closed") == 3
    closings = hub.store.audit.query(AuditQuery(event=f"alert.{status}"))
    assert [(e.actor, e.subject, e.outcome) for e in closings] == [
        ("dora", alert["id"], "ok"),
        ("dora", alert["id"], "alert_closed"),
    ]


def test_parallel_updates_get_distinct_numbers_and_seqs_in_order(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    alert = publish(hub, dispatcher).json()

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        answers = list(
            pool.map(
                lambda n: update(hub, dispatcher, alert["id"], text=f"Update {n}"),
                range(PARALLEL),
            )
        )

    assert [r.status_code for r in answers] == [201] * PARALLEL
    final = call(hub, dispatcher, "GET", f"/v1/alerts/{alert['id']}").json()["alert"]
    changes = final["updates"]
    assert [c["number"] for c in changes] == list(range(1, PARALLEL + 1))
    assert sorted(c["text"] for c in changes) == sorted(f"Update {n}" for n in range(PARALLEL))
    seqs = sorted(r.json()["seq"] for r in answers)
    assert len(set(seqs)) == PARALLEL and seqs[0] > alert["seq"]
    # Each answer's number and seq rise together: a later number never has an earlier seq.
    by_number = sorted((r.json()["revision"], r.json()["seq"]) for r in answers)
    assert [seq for _, seq in by_number] == seqs
    assert final["seq"] == seqs[-1]


def _year(year: int) -> str:
    return f"{year:04d}-06-01T00:00:00Z"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"next_update_by": _year(1)}, "next_update_by"),
        ({"next_update_by": _year(9999)}, "next_update_by"),
        ({"next_update_by": "tomorrow"}, "next_update_by"),
        ({"text": ""}, "text"),
        ({"text": "x" * 10_001}, "text"),
        ({"text": "Call \u202edial 911\u202c now"}, "text"),
        ({"text": "bell\x07"}, "text"),
        ({"title": ""}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"severity": "apocalyptic"}, "severity"),
        ({"links": ["http://status.example.org/"]}, "links"),
        ({"links": ["javascript:alert(1)"]}, "links"),
        ({"links": ["https://"]}, "links"),
        ({"links": ["https://example.org/\u202egpj.exe"]}, "links"),
        ({"links": ["https://example.org/" + "a" * 2_000]}, "links"),
        ({"links": [f"https://example.org/{n}" for n in range(11)]}, "links"),
        ({"by": "someone else"}, "by"),
    ],
)
def test_a_hostile_update_is_refused_naming_the_field_and_changes_nothing(
    shared: SharedHub, fields: dict[str, Any], named: str
) -> None:
    hub, dispatcher = shared.hub, shared.dispatcher
    alert = publish(hub, dispatcher).json()

    response = update(hub, dispatcher, alert["id"], **fields)

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"
    assert named in response.json()["detail"]
    assert hub.store.alerts.get(alert["id"]).changes == ()  # type: ignore[union-attr]
    assert hub.store.alerts.last_seq() == alert["seq"]


def test_the_longest_update_html_and_ten_links_are_kept_as_data(shared: SharedHub) -> None:
    hub, dispatcher = shared.hub, shared.dispatcher
    alert = publish(hub, dispatcher).json()
    html = "<img src=x onerror=alert(1)><b>bold</b> & \u00e9\u6f22\U0001f6a8"
    text = html + "y" * (10_000 - len(html))
    links = [f"https://example.org/{n}?q=<b>" for n in range(10)]

    response = update(hub, dispatcher, alert["id"], text=text, title="<i>" + "t" * 193, links=links)

    assert response.status_code == 201, response.text
    [change] = response.json()["updates"]
    assert (change["text"], change["links"]) == (text, links)
    assert response.json()["title"] == "<i>" + "t" * 193


def test_next_update_at_the_bounds_and_overdue_incidents(
    manual_clock: ManualClock, hub: EmbeddedHub
) -> None:
    now = manual_clock.now()
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher", at=now)
    week = 7 * 24

    past = publish(hub, dispatcher, next_update_by=in_hours(-0.01, now))
    beyond = publish(hub, dispatcher, next_update_by=in_hours(week + 0.01, now))
    at_week = publish(hub, dispatcher, next_update_by=in_hours(week - 0.01, now))
    soon = publish(hub, dispatcher, title="Soon", next_update_by=in_hours(0.05, now)).json()
    # Ten minutes: past the promised update, within the access token's life.
    manual_clock.advance(600)
    incidents = call(hub, dispatcher, "GET", "/v1/incidents?status=open").json()["incidents"]

    assert (past.status_code, beyond.status_code, at_week.status_code) == (422, 422, 201)
    assert [(i["alert"]["id"], i["update_overdue"]) for i in incidents] == [
        (soon["id"], True),
        (at_week.json()["id"], False),
    ]
    # A new update with a later promise ends the overdue state.
    update(hub, dispatcher, soon["id"], next_update_by=in_hours(1, manual_clock.now()))
    shown = call(hub, dispatcher, "GET", f"/v1/alerts/{soon['id']}").json()
    assert shown["update_overdue"] is False


def test_incidents_filter_by_state_and_drill_and_count_answers(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    agent = access_token(hub.store, hub.url, "ana")
    live = publish(hub, dispatcher, title="Live").json()
    drill = publish(hub, dispatcher, title="Drill", drill=True).json()
    closed = publish(hub, dispatcher, title="Closed").json()
    call(hub, dispatcher, "POST", f"/v1/alerts/{closed['id']}/resolve", {"note": "Over."})
    acted_at = datetime.now(UTC).isoformat()
    ack = {"ack_id": str(uuid.uuid4()), "alert_id": live["id"], "action": "escalated"}
    posted = call(hub, agent, "POST", "/v1/acks", {"acks": [{**ack, "acted_at": acted_at}]})
    assert posted.status_code == 200, posted.text

    def titles(query: str) -> list[str]:
        response = call(hub, dispatcher, "GET", f"/v1/incidents{query}")
        assert response.status_code == 200, response.text
        return [i["alert"]["title"] for i in response.json()["incidents"]]

    assert titles("") == ["Closed", "Drill", "Live"]
    assert titles("?status=open") == ["Drill", "Live"]
    assert titles("?status=closed") == ["Closed"]
    assert titles("?drill=live") == ["Closed", "Live"]
    assert titles("?drill=drill&status=open") == ["Drill"]
    everything = call(hub, dispatcher, "GET", "/v1/incidents").json()["incidents"]
    assert everything[2]["targeted"] == 1
    assert everything[2]["answered"] == {"acknowledged": 0, "escalated": 1, "unable": 0}
    assert everything[1]["answered"] == {"acknowledged": 0, "escalated": 0, "unable": 0}
    assert drill["drill"] is True
    for bad in ("?status=shut", "?drill=maybe", "?limit=0", "?limit=1001"):
        assert call(hub, dispatcher, "GET", f"/v1/incidents{bad}").status_code == 422


def test_unknown_alerts_are_404_and_agents_may_not_run_incidents(shared: SharedHub) -> None:
    hub, dispatcher, agent = shared.hub, shared.dispatcher, shared.agent
    alert = publish(hub, dispatcher).json()
    missing = str(uuid.uuid4())

    for alert_id in (missing, "not-a-uuid", "%E2%80%AE"):
        assert update(hub, dispatcher, alert_id).json()["error"] == "unknown_alert"
        assert call(hub, dispatcher, "GET", f"/v1/alerts/{alert_id}").status_code == 404
    refused = [
        update(hub, agent, alert["id"]),
        call(hub, agent, "POST", f"/v1/alerts/{alert['id']}/resolve", {"note": "x"}),
        call(hub, agent, "POST", f"/v1/alerts/{alert['id']}/retract", {"note": "x"}),
        call(hub, agent, "GET", "/v1/incidents"),
        call(hub, agent, "GET", f"/v1/alerts/{alert['id']}"),
        publish(hub, agent),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert hub.store.alerts.get(alert["id"]).changes == ()  # type: ignore[union-attr]
    assert hub.store.alerts.last_seq() == alert["seq"]


def test_a_group_alert_reaches_only_its_members_and_dispatchers(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    member = access_token(hub.store, hub.url, "ana")
    outsider = access_token(hub.store, hub.url, "ben")
    hub.store.groups.create("West", "region")
    hub.store.groups.add_members("West", ["ana"])

    with (
        open_stream(hub, member, last_event_id="0") as member_stream,
        open_stream(hub, outsider, last_event_id="0") as outsider_stream,
        open_stream(hub, dispatcher, last_event_id="0") as dispatcher_stream,
    ):
        for stream in (member_stream, outsider_stream, dispatcher_stream):
            stream.wait_until_live()
        group_alert = publish(hub, dispatcher, audience=["West"]).json()
        updated = update(hub, dispatcher, group_alert["id"], text="Still down").json()
        # An alert for everyone after it: the outsider's first event must be this one.
        everyone = publish(hub, dispatcher, title="For everyone").json()
        member_ids = [member_stream.next_event().id for _ in range(3)]
        dispatcher_ids = [dispatcher_stream.next_event().id for _ in range(3)]
        outsider_event = outsider_stream.next_event()

    expected = [str(group_alert["seq"]), str(updated["seq"]), str(everyone["seq"])]
    assert member_ids == expected and dispatcher_ids == expected
    assert (outsider_event.id, outsider_event.json()["id"]) == (
        str(everyone["seq"]),
        everyone["id"],
    )
    assert [a["id"] for a in catch_up(hub, outsider)] == [everyone["id"]]
    assert [a["id"] for a in catch_up(hub, outsider, since=0)] == [everyone["id"]]
    with open_stream(hub, outsider, last_event_id="0") as stream:
        assert [e.json()["id"] for e in stream.wait_until_live()] == [everyone["id"]]
    assert [a["id"] for a in catch_up(hub, member)] == [group_alert["id"], everyone["id"]]


def test_a_v1_client_publishes_and_reads_as_before(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    agent = access_token(hub.store, hub.url, "ana")
    v1_body = {
        "severity": "minor",
        "title": "Printer",
        "body": "Use floor 2.",
        "requires_ack": False,
    }

    response = call(hub, dispatcher, "POST", "/v1/alerts", v1_body)
    assert response.status_code == 201, response.text
    alert = response.json()
    assert alert.keys() >= V1_FIELDS
    assert (alert["drill"], alert["audience"], alert["status"]) == (False, None, "open")

    # A v1 client keeps its first copy of each id, reads only v1 fields, and asks from its
    # highest seq: an update arrives as the same id under a new seq and is simply ignored.
    held: dict[str, dict[str, Any]] = {}
    last_seq = 0
    for _ in range(2):
        for served in catch_up(hub, agent, since=last_seq):
            held.setdefault(served["id"], {k: served[k] for k in V1_FIELDS})
            last_seq = max(last_seq, served["seq"])
        update(hub, dispatcher, alert["id"], text="Floor 2 too.")
    later = call(hub, dispatcher, "POST", "/v1/alerts", {**v1_body, "title": "Next"}).json()
    held.update({a["id"]: a for a in catch_up(hub, agent, since=last_seq) if a["id"] not in held})

    assert held[alert["id"]] == {k: alert[k] for k in V1_FIELDS}
    assert later["id"] in held


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(max_size=300),
    title=st.one_of(st.none(), st.text(max_size=220)),
    link=st.one_of(st.none(), st.text(max_size=60), st.just("https://x.org/\u202e")),
)
def test_any_update_is_stored_as_sent_or_refused_naming_a_field_never_a_500(
    shared: SharedHub, text: str, title: str | None, link: str | None
) -> None:
    hub, dispatcher = shared.hub, shared.dispatcher
    alert = publish(hub, dispatcher).json()
    fields: dict[str, Any] = {"text": text, "title": title}
    if link is not None:
        fields["links"] = [link]

    response = update(hub, dispatcher, alert["id"], **fields)

    stored = hub.store.alerts.get(alert["id"])
    assert stored is not None
    if response.status_code == 201:
        [change] = stored.changes
        assert (change.text, change.title) == (text, title)
        assert change.links == ([] if link is None else [link])
        assert "\u202e" not in text + (title or "") + (link or "")
    else:
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_request"
        assert any(name in response.json()["detail"] for name in ("text", "title", "links"))
        assert stored.changes == ()
