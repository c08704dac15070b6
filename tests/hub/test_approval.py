"""Two-person approval over real HTTP: a live critical alert waits for a second dispatcher, reaches
no one until then, is published exactly once, and an override is recorded with its reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from hub.config import HubSettings
from hub.server import EmbeddedHub
from hub.storage.audit import AuditQuery
from tests.hub.test_stream import open_stream
from tests.hubtools import HTTP_TIMEOUT, access_token, auth_headers

PARALLEL = 40
CRITICAL = {"severity": "critical", "title": "Clinic fire", "body": "Evacuate the West clinic."}


@dataclass(frozen=True)
class ApprovalHub:
    """A hub that requires two dispatchers, its two dispatchers and an agent."""

    hub: EmbeddedHub
    dora: str
    dan: str
    agent: str


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApprovalHub]:
    # Signing in hashes passwords: done once for the module; each test reads only its own
    # approvals and alerts.
    settings = HubSettings(data_dir=tmp_path_factory.mktemp("approval") / "hub")
    with EmbeddedHub(settings) as hub:
        hub.store.settings.set_require_approval(True)
        yield ApprovalHub(
            hub,
            access_token(hub.store, hub.url, "dora", "dispatcher"),
            access_token(hub.store, hub.url, "dan", "dispatcher"),
            access_token(hub.store, hub.url, "ana"),
        )


def call(
    hub: EmbeddedHub, token: str, method: str, path: str, body: Any = None
) -> requests.Response:
    return requests.request(
        method, f"{hub.url}{path}", json=body, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )


def ask(shared: ApprovalHub, **fields: Any) -> dict[str, Any]:
    """Publish a live critical alert as dora; asserts it is held, returns the approval."""
    response = call(shared.hub, shared.dora, "POST", "/v1/alerts", {**CRITICAL, **fields})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "pending_approval"
    approval: dict[str, Any] = body["approval"]
    return approval


def catch_up(hub: EmbeddedHub, token: str) -> list[dict[str, Any]]:
    response = call(hub, token, "GET", "/v1/alerts")
    assert response.status_code == 200, response.text
    alerts: list[dict[str, Any]] = response.json()["alerts"]
    return alerts


def test_a_held_alert_reaches_no_stream_or_catch_up(shared: ApprovalHub) -> None:
    hub = shared.hub
    before = hub.store.alerts.last_seq()
    known = {a["id"] for a in catch_up(hub, shared.agent)}

    with (
        open_stream(hub, shared.agent, last_event_id=str(before)) as agent_stream,
        open_stream(hub, shared.dan, last_event_id=str(before)) as dispatcher_stream,
    ):
        agent_stream.wait_until_live()
        dispatcher_stream.wait_until_live()
        approval = ask(shared)
        # Published after the held one: the first event any stream gets must be this one.
        later = call(hub, shared.dora, "POST", "/v1/alerts", {**CRITICAL, "drill": True}).json()
        agent_event = agent_stream.next_event()
        dispatcher_event = dispatcher_stream.next_event()

    assert approval["requested_by"] == "dora" and approval["status"] == "pending"
    assert approval["draft"]["title"] == CRITICAL["title"]
    assert agent_event.json()["id"] == later["id"] == dispatcher_event.json()["id"]
    assert {a["id"] for a in catch_up(hub, shared.agent)} - known == {later["id"]}
    with open_stream(hub, shared.agent, last_event_id=str(before)) as stream:
        assert [e.json()["id"] for e in stream.wait_until_live()] == [later["id"]]
    assert hub.store.alerts.last_seq() == later["seq"] == before + 1
    requested = hub.store.audit.query(AuditQuery(event="alert.approval_requested"))
    assert (requested[-1].actor, requested[-1].subject) == ("dora", approval["id"])


def test_only_live_critical_alerts_wait(shared: ApprovalHub) -> None:
    hub = shared.hub
    drill = call(hub, shared.dora, "POST", "/v1/alerts", {**CRITICAL, "drill": True})
    major = call(hub, shared.dora, "POST", "/v1/alerts", {**CRITICAL, "severity": "major"})

    assert (drill.status_code, major.status_code) == (201, 201)
    assert drill.json()["approved_by"] is None


def test_a_second_dispatcher_approves_and_the_requester_cannot(shared: ApprovalHub) -> None:
    hub = shared.hub
    approval = ask(shared, audience=None)
    path = f"/v1/approvals/{approval['id']}/approve"

    own = call(hub, shared.dora, "POST", path)
    with open_stream(hub, shared.agent, last_event_id=str(hub.store.alerts.last_seq())) as stream:
        stream.wait_until_live()
        approved = call(hub, shared.dan, "POST", path)
        event = stream.next_event()
    again = call(hub, shared.dan, "POST", path)

    assert (own.status_code, own.json()["error"]) == (409, "own_request")
    assert approved.status_code == 201, approved.text
    alert = approved.json()
    assert (alert["issued_by"], alert["approved_by"], alert["title"]) == (
        "dora",
        "dan",
        CRITICAL["title"],
    )
    assert alert["targeted"] == 1
    assert event.json()["id"] == alert["id"]
    assert (again.status_code, again.json()["error"]) == (409, "already_decided")
    listed = call(hub, shared.dan, "GET", "/v1/approvals?status=approved").json()["approvals"]
    mine = [a for a in listed if a["id"] == approval["id"]]
    assert [(a["status"], a["decided_by"], a["alert_id"]) for a in mine] == [
        ("approved", "dan", alert["id"])
    ]
    outcomes = [
        (e.actor, e.outcome)
        for e in hub.store.audit.query(AuditQuery(event="alert.approved", limit=1000))
        if e.subject == approval["id"]
    ]
    assert outcomes == [("dora", "own_request"), ("dan", "ok")]


def test_forty_parallel_approvals_publish_exactly_once(shared: ApprovalHub) -> None:
    hub = shared.hub
    approval = ask(shared)
    before = hub.store.alerts.last_seq()

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        answers = list(
            pool.map(
                lambda _: call(hub, shared.dan, "POST", f"/v1/approvals/{approval['id']}/approve"),
                range(PARALLEL),
            )
        )

    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * (PARALLEL - 1)
    assert {r.json()["error"] for r in answers if r.status_code == 409} == {"already_decided"}
    assert hub.store.alerts.last_seq() == before + 1
    [winner] = [r.json() for r in answers if r.status_code == 201]
    assert hub.store.alerts.approval(approval["id"]).alert_id == winner["id"]  # type: ignore[union-attr]


def test_a_rejected_alert_is_never_sent(shared: ApprovalHub) -> None:
    hub = shared.hub
    approval = ask(shared)
    before = hub.store.alerts.last_seq()
    reject_path = f"/v1/approvals/{approval['id']}/reject"

    blank = call(hub, shared.dan, "POST", reject_path, {"reason": ""})
    long = call(hub, shared.dan, "POST", reject_path, {"reason": "x" * 2_001})
    rejected = call(hub, shared.dan, "POST", reject_path, {"reason": "Wrong clinic <b>East</b>"})
    approve = call(hub, shared.dan, "POST", f"/v1/approvals/{approval['id']}/approve")
    again = call(hub, shared.dan, "POST", reject_path, {"reason": "Again"})

    assert (blank.status_code, long.status_code) == (422, 422)
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["status"], rejected.json()["reason"]) == (
        "rejected",
        "Wrong clinic <b>East</b>",
    )
    assert [(r.status_code, r.json()["error"]) for r in (approve, again)] == [
        (409, "already_decided")
    ] * 2
    assert hub.store.alerts.last_seq() == before


def test_an_override_publishes_alone_and_records_why(shared: ApprovalHub) -> None:
    hub = shared.hub
    reason = "Fire in progress; dan unreachable \u00e9 <i>now</i>"

    published = call(
        hub, shared.dora, "POST", "/v1/alerts", {**CRITICAL, "override_approval": reason}
    )
    too_long = call(
        hub, shared.dora, "POST", "/v1/alerts", {**CRITICAL, "override_approval": "x" * 501}
    )
    empty = call(hub, shared.dora, "POST", "/v1/alerts", {**CRITICAL, "override_approval": ""})

    assert published.status_code == 201, published.text
    alert = published.json()
    shown = call(hub, shared.dan, "GET", f"/v1/alerts/{alert['id']}").json()
    assert shown["approval_override"] == reason
    overridden = [
        e
        for e in hub.store.audit.query(AuditQuery(event="alert.approval_overridden", limit=1000))
        if e.subject == alert["id"]
    ]
    assert [(e.actor, e.detail["reason"]) for e in overridden] == [("dora", reason)]
    assert (too_long.status_code, empty.status_code) == (422, 422)


def test_approvals_list_filters_and_unknown_ids(shared: ApprovalHub) -> None:
    hub = shared.hub
    pending = ask(shared)

    def ids(status: str) -> set[str]:
        response = call(hub, shared.dan, "GET", f"/v1/approvals?status={status}")
        assert response.status_code == 200, response.text
        return {a["id"] for a in response.json()["approvals"]}

    assert pending["id"] in ids("pending") and pending["id"] in ids("all")
    assert pending["id"] not in ids("approved") | ids("rejected")
    assert (
        call(hub, shared.dan, "GET", "/v1/approvals").json()["approvals"][0]["id"]
        == (pending["id"])
    )
    assert call(hub, shared.dan, "GET", "/v1/approvals?status=maybe").status_code == 422
    for approval_id in (str(uuid.uuid4()), "not-an-id"):
        for action, body in (("approve", None), ("reject", {"reason": "x"})):
            response = call(hub, shared.dan, "POST", f"/v1/approvals/{approval_id}/{action}", body)
            assert (response.status_code, response.json()["error"]) == (404, "unknown_approval")
    refused = [
        call(hub, shared.agent, "GET", "/v1/approvals"),
        call(hub, shared.agent, "POST", f"/v1/approvals/{pending['id']}/approve"),
        call(hub, shared.agent, "POST", f"/v1/approvals/{pending['id']}/reject", {"reason": "x"}),
    ]
    assert [r.status_code for r in refused] == [403] * 3
    assert pending["id"] in ids("pending")


def test_with_approval_off_a_critical_alert_goes_at_once(shared: ApprovalHub) -> None:
    hub = shared.hub
    hub.store.settings.set_require_approval(False)
    try:
        response = call(hub, shared.dora, "POST", "/v1/alerts", CRITICAL)
    finally:
        hub.store.settings.set_require_approval(True)

    assert response.status_code == 201, response.text
    assert response.json()["approved_by"] is None


def test_a_retried_held_publish_finds_its_first_request_then_its_alert(
    shared: ApprovalHub,
) -> None:
    hub = shared.hub
    key = {"Idempotency-Key": str(uuid.uuid4())}

    def post(body: dict[str, Any]) -> requests.Response:
        return requests.post(
            f"{hub.url}/v1/alerts",
            json=body,
            headers={**auth_headers(shared.dora), **key},
            timeout=HTTP_TIMEOUT,
        )

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        copies = list(pool.map(lambda _: post(CRITICAL), range(PARALLEL)))
    other = post({**CRITICAL, "title": "Another alert"})
    [approval_id] = {r.json()["approval"]["id"] for r in copies}
    approved = call(hub, shared.dan, "POST", f"/v1/approvals/{approval_id}/approve")
    after = post(CRITICAL)

    assert [r.status_code for r in copies] == [202] * PARALLEL
    assert (other.status_code, other.json()["error"]) == (422, "idempotency_key_reused")
    assert approved.status_code == 201, approved.text
    # Once approved, the same retry answers the alert, never a second request or alert.
    assert after.status_code == 200, after.text
    assert after.json()["id"] == approved.json()["id"]
    requested = [
        e
        for e in hub.store.audit.query(AuditQuery(event="alert.approval_requested", limit=1000))
        if e.subject == approval_id
    ]
    assert len(requested) == 1
    mine = [a for a in hub.store.alerts.approvals(None, 1000) if a.requested_by == "dora"]
    assert (
        sum(a.publish_key is not None and a.publish_key.key == key["Idempotency-Key"] for a in mine)
        == 1
    )


def test_a_retried_publish_of_a_rejected_request_says_so(shared: ApprovalHub) -> None:
    hub = shared.hub
    headers = {**auth_headers(shared.dora), "Idempotency-Key": str(uuid.uuid4())}
    first = requests.post(
        f"{hub.url}/v1/alerts", json=CRITICAL, headers=headers, timeout=HTTP_TIMEOUT
    ).json()
    call(
        hub, shared.dan, "POST", f"/v1/approvals/{first['approval']['id']}/reject", {"reason": "No"}
    )

    retry = requests.post(
        f"{hub.url}/v1/alerts", json=CRITICAL, headers=headers, timeout=HTTP_TIMEOUT
    )

    assert retry.status_code == 202
    assert retry.json()["status"] == "rejected"
    assert retry.json()["approval"]["id"] == first["approval"]["id"]
