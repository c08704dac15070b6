"""Post-incident surveys on the real hub: one answer per (alert, agent), for a resolved alert the
agent was a target of, with the comment kept as plain data."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.clock import rfc3339
from hub.config import HubSettings
from hub.server import EmbeddedHub
from tests.hubtools import HTTP_TIMEOUT, access_token, auth_headers

NOW = rfc3339(datetime.now(UTC).timestamp())


def publish(hub: EmbeddedHub, *, drill: bool = False, audience: list[str] | None = None) -> str:
    alert, _ = hub.store.alerts.publish(
        severity="critical",
        title="Video visits down in the West region",
        body="Move today's visits to phone.",
        playbook_id=None,
        template_ids=[],
        requires_ack=True,
        expires_at=None,
        issued_by="dora",
        drill=drill,
        audience=audience,
    )
    return alert.id


def resolve(hub: EmbeddedHub, alert_id: str, kind: str = "resolved") -> None:
    hub.store.alerts.change(alert_id, kind=kind, text="Vendor fixed it", by="dora")  # type: ignore[arg-type]
    hub.broker.notify()


def answer(alert_id: str, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "survey_id": str(uuid.uuid4()),
        "alert_id": alert_id,
        "clarity": 4,
        "templates": 5,
        "comment": "Clear enough.",
        "answered_at": NOW,
    }
    item.update(fields)
    return item


def post(hub: EmbeddedHub, token: str, body: Any) -> requests.Response:
    return requests.post(
        f"{hub.url}/v1/surveys", json=body, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )


def send(hub: EmbeddedHub, token: str, *items: Any) -> list[dict[str, Any]]:
    response = post(hub, token, {"answers": list(items)})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def surveys_of(hub: EmbeddedHub, token: str, alert_id: str) -> dict[str, Any]:
    response = requests.get(
        f"{hub.url}/v1/alerts/{alert_id}/surveys",
        headers=auth_headers(token),
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedHub]:
    """One hub for the module (each test publishes its own alerts): sign-ins are slow by design."""
    settings = HubSettings(
        data_dir=tmp_path_factory.mktemp("hub-data"), signin_refusal_delay_seconds=0
    )
    started = EmbeddedHub(settings).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def tokens(hub: EmbeddedHub) -> dict[str, str]:
    """A dispatcher and two agents, all users before any alert is published (so targeted)."""
    return {
        "dora": access_token(hub.store, hub.url, "dora", "dispatcher"),
        "ana": access_token(hub.store, hub.url, "ana", "agent"),
        "ben": access_token(hub.store, hub.url, "ben", "agent"),
    }


def test_answers_are_kept_once_and_served_with_averages(
    hub: EmbeddedHub, tokens: dict[str, str]
) -> None:
    alert_id = publish(hub)
    resolve(hub, alert_id)
    ana = answer(alert_id, clarity=5, templates=None, comment=None)
    ben = answer(alert_id, clarity=2, templates=3, comment="Line one\n\tindented")

    assert send(hub, tokens["ana"], ana) == [{"survey_id": ana["survey_id"], "status": "accepted"}]
    assert send(hub, tokens["ben"], ben)[0]["status"] == "accepted"
    # The same answer again is a duplicate, not a second row.
    assert send(hub, tokens["ana"], ana)[0]["status"] == "duplicate"

    body = surveys_of(hub, tokens["dora"], alert_id)
    assert (body["drill"], body["label"], body["targeted"]) == (False, None, 2)
    assert [
        (a["username"], a["clarity"], a["templates"], a["comment"]) for a in body["answers"]
    ] == [
        ("ana", 5, None, None),
        ("ben", 2, 3, "Line one\n\tindented"),
    ]
    assert body["answers"][0]["answered_at"] == NOW
    assert body["averages"] == {"answers": 2, "clarity": 3.5, "templates": 3.0, "templates_used": 1}


def test_a_second_answer_by_the_same_agent_is_already_answered_and_a_changed_one_conflicts(
    hub: EmbeddedHub, tokens: dict[str, str]
) -> None:
    alert_id = publish(hub)
    resolve(hub, alert_id)
    first = answer(alert_id)
    assert send(hub, tokens["ana"], first)[0]["status"] == "accepted"

    again = send(hub, tokens["ana"], answer(alert_id, clarity=1))[0]
    changed = send(hub, tokens["ana"], {**first, "clarity": 1})[0]
    stolen = send(hub, tokens["ben"], first)[0]

    assert (again["status"], again["error"]) == ("rejected", "already_answered")
    assert (changed["status"], changed["error"]) == ("rejected", "survey_id_conflict")
    assert (stolen["status"], stolen["error"]) == ("rejected", "survey_id_conflict")
    answers = surveys_of(hub, tokens["dora"], alert_id)["answers"]
    assert [(a["username"], a["clarity"]) for a in answers] == [("ana", 4)]


def test_only_a_resolved_alert_that_targeted_the_agent_takes_a_survey(
    hub: EmbeddedHub, tokens: dict[str, str]
) -> None:
    open_id = publish(hub)
    retracted_id = publish(hub)
    resolve(hub, retracted_id, kind="retracted")
    hub.store.groups.create("west", "region")
    hub.store.groups.add_members("west", ["ben"])
    for_west = publish(hub, audience=["west"])
    resolve(hub, for_west)

    results = send(
        hub,
        tokens["ana"],
        answer(open_id),
        answer(retracted_id),
        answer(for_west),
        answer(str(uuid.uuid4())),
    )
    assert [r["error"] for r in results] == [
        "not_resolved",
        "not_resolved",
        "not_targeted",
        "unknown_alert",
    ]
    # A dispatcher is never a target, so never answers.
    assert send(hub, tokens["dora"], answer(for_west))[0]["error"] == "not_targeted"
    assert send(hub, tokens["ben"], answer(for_west))[0]["status"] == "accepted"
    for alert_id in (open_id, retracted_id):
        assert surveys_of(hub, tokens["dora"], alert_id)["answers"] == []


def test_comment_text_is_kept_as_data_and_control_characters_are_refused_by_name(
    hub: EmbeddedHub, tokens: dict[str, str]
) -> None:
    alert_id = publish(hub)
    resolve(hub, alert_id)
    hostile = "Invoice\u202efdp.exe <b>bold</b> <script>alert(1)</script> & ☎"
    refused = [
        answer(alert_id, comment="bell\x07"),
        answer(alert_id, comment="nul\x00"),
        answer(alert_id, comment="c1\x85"),
        answer(alert_id, comment="x" * 2001),
        answer(alert_id, clarity=0),
        answer(alert_id, clarity=6),
        answer(alert_id, clarity=True),
        answer(alert_id, templates=0),
        answer(alert_id, clarity="4"),
        answer(alert_id, survey_id="not-a-uuid"),
        answer(alert_id, answered_at=""),
        answer(alert_id, answered_at="2026-12-03T10:00:00"),
        answer(alert_id, answered_at="0001-01-01T00:00:00Z"),
        answer(alert_id, answered_at="9999-12-31T23:59:59.999Z"),
        answer(alert_id, answered_at="0001-01-01T00:00:00+14:00"),
        answer(alert_id, answered_at="9999-12-31T23:59:59-14:00"),
        answer(alert_id, extra="field"),
        "not an object",
    ]
    results = send(hub, tokens["ana"], *refused)
    assert [r["status"] for r in results] == ["rejected"] * len(refused)
    assert {r["error"] for r in results} == {"invalid_survey"}
    assert "U+0007" in results[0]["detail"]
    assert results[12]["detail"].startswith("answered_at:")
    assert results[9]["survey_id"] == "not-a-uuid"
    assert results[-1]["survey_id"] is None

    kept = answer(alert_id, comment=hostile)
    assert send(hub, tokens["ana"], kept)[0]["status"] == "accepted"
    answers = surveys_of(hub, tokens["dora"], alert_id)["answers"]
    assert [a["comment"] for a in answers] == [hostile]


def test_a_lone_surrogate_in_a_comment_is_refused_not_a_500(
    hub: EmbeddedHub, tokens: dict[str, str]
) -> None:
    alert_id = publish(hub)
    resolve(hub, alert_id)
    item = json.dumps(answer(alert_id, comment="x")).replace('"x"', '"\\ud800"')
    response = requests.post(
        f"{hub.url}/v1/surveys",
        data=f'{{"answers": [{item}]}}',
        headers={**auth_headers(tokens["ana"]), "Content-Type": "application/json"},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["error"] == "invalid_survey"


def test_malformed_and_oversized_batches_fail_whole(
    hub: EmbeddedHub, tokens: dict[str, str]
) -> None:
    alert_id = publish(hub)
    resolve(hub, alert_id)
    too_many = post(hub, tokens["ana"], {"answers": [answer(alert_id) for _ in range(101)]})
    assert (too_many.status_code, too_many.json()["error"]) == (413, "batch_too_large")
    for body in ({}, {"answers": "x"}, {"answers": [], "more": 1}, []):
        response = post(hub, tokens["ana"], body)
        assert (response.status_code, response.json()["error"]) == (422, "invalid_request")
    assert surveys_of(hub, tokens["dora"], alert_id)["answers"] == []
    # The full batch of 100 is fine: one is accepted, the rest already answered.
    results = send(hub, tokens["ana"], *[answer(alert_id) for _ in range(100)])
    assert [r["status"] for r in results].count("accepted") == 1


def test_forty_parallel_copies_of_one_survey_store_one_row(
    hub: EmbeddedHub, tokens: dict[str, str]
) -> None:
    alert_id = publish(hub)
    resolve(hub, alert_id)
    item = answer(alert_id)
    others = [answer(alert_id) for _ in range(40)]

    with ThreadPoolExecutor(max_workers=40) as pool:
        copies = list(pool.map(lambda _: send(hub, tokens["ana"], item)[0], range(40)))
        rivals = list(pool.map(lambda other: send(hub, tokens["ben"], other)[0], others))

    assert sorted(r["status"] for r in copies) == ["accepted"] + ["duplicate"] * 39
    assert sorted(r.get("error") or r["status"] for r in rivals) == (
        ["accepted"] + ["already_answered"] * 39
    )
    answers = surveys_of(hub, tokens["dora"], alert_id)["answers"]
    assert sorted(a["username"] for a in answers) == ["ana", "ben"]


def test_a_drills_answers_are_marked_drill(hub: EmbeddedHub, tokens: dict[str, str]) -> None:
    alert_id = publish(hub, drill=True)
    resolve(hub, alert_id)
    assert send(hub, tokens["ana"], answer(alert_id))[0]["status"] == "accepted"
    body = surveys_of(hub, tokens["dora"], alert_id)
    assert (body["drill"], body["label"]) == (True, "DRILL: no action with real patients")


def test_reading_surveys_needs_a_dispatcher_and_a_kept_alert(
    hub: EmbeddedHub, tokens: dict[str, str]
) -> None:
    alert_id = publish(hub)
    for path, token, status in (
        (alert_id, tokens["ana"], 403),
        (str(uuid.uuid4()), tokens["dora"], 404),
        ("not-a-uuid", tokens["dora"], 404),
    ):
        response = requests.get(
            f"{hub.url}/v1/alerts/{path}/surveys",
            headers=auth_headers(token),
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == status, response.text


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    clarity=st.one_of(st.integers(-3, 8), st.none(), st.text(max_size=3)),
    templates=st.one_of(st.integers(-3, 8), st.none()),
    comment=st.one_of(st.none(), st.text(max_size=40)),
)
def test_any_answer_is_either_stored_and_served_or_rejected_by_name(
    hub: EmbeddedHub, tokens: dict[str, str], clarity: Any, templates: Any, comment: Any
) -> None:
    alert_id = publish(hub)
    resolve(hub, alert_id)
    item = answer(alert_id, clarity=clarity, templates=templates, comment=comment)
    result = send(hub, tokens["ana"], item)[0]
    served = surveys_of(hub, tokens["dora"], alert_id)["answers"]
    if result["status"] == "accepted":
        assert [(a["clarity"], a["templates"], a["comment"]) for a in served] == [
            (clarity, templates, comment)
        ]
    else:
        assert (result["status"], result["error"], served) == ("rejected", "invalid_survey", [])
        assert result["detail"]
