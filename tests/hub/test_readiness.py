"""POST /v1/readiness on a real hub: the latest report per device, the device from the sign-in,
and hostile reports refused with what and where, never a 500 and never stored."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.clock import ManualClock, rfc3339
from hub.server import EmbeddedHub
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    access_token,
    auth_headers,
    create_user,
    sign_in,
)

NAMES = (
    "vpn",
    "hub",
    "stream",
    "notifications",
    "audio",
    "clock_skew",
    "cache_age",
    "pending_acks",
)


def _report(ran_at: str | None = None, **statuses: str) -> dict[str, Any]:
    checks = {name: {"status": "ok", "detail": f"{name} is fine."} for name in NAMES}
    for name, status in statuses.items():
        checks[name] = {"status": status, "detail": f"{name} says {status}."}
    when = ran_at or rfc3339(datetime.now(UTC).timestamp())
    return {"ran_at": when, "checks": checks}


def _post(hub: EmbeddedHub, token: str, body: Any) -> requests.Response:
    return requests.post(
        f"{hub.url}/v1/readiness", json=body, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )


@pytest.fixture
def manual_clock() -> ManualClock:
    """A hub clock on a whole second, so that a millisecond time can sit exactly on a bound."""
    return ManualClock(float(round(datetime.now(UTC).timestamp())))


@pytest.fixture
def agent(hub: EmbeddedHub) -> str:
    return access_token(hub.store, hub.url, "amira")


def test_a_report_is_kept_under_the_device_of_the_sign_in(hub: EmbeddedHub, agent: str) -> None:
    response = _post(hub, agent, _report(audio="warn"))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ready"] is True
    assert abs(datetime.fromisoformat(body["hub_time"]).timestamp() - hub.settings.clock.now()) < 5
    [kept] = hub.store.readiness.for_user("amira")
    assert (kept.device_id, kept.device_name) == ("test-device", "Test laptop")
    assert kept.ready is True
    assert kept.checks["audio"] == {"status": "warn", "detail": "audio says warn."}
    assert set(kept.checks) == set(NAMES)
    # What dispatchers are served per device (GET /v1/agents).
    wire = kept.to_wire()
    assert wire["ready"] is True and wire["checks"] == kept.checks
    assert wire["ran_at"] == rfc3339(kept.ran_at)


def test_one_failed_check_means_not_ready(hub: EmbeddedHub, agent: str) -> None:
    response = _post(hub, agent, _report(vpn="fail", audio="warn"))

    assert response.status_code == 200, response.text
    assert response.json()["ready"] is False
    assert hub.store.readiness.for_user("amira")[0].ready is False


def test_the_latest_run_wins_whatever_the_order_of_arrival(hub: EmbeddedHub, agent: str) -> None:
    now = datetime.now(UTC)
    newer = _report(rfc3339(now.timestamp()), vpn="fail")
    older = _report(rfc3339((now - timedelta(minutes=30)).timestamp()))

    assert _post(hub, agent, newer).status_code == 200
    # An offline report delivered late answers for itself but replaces nothing newer.
    late = _post(hub, agent, older)

    assert late.status_code == 200
    assert late.json()["ready"] is True
    [kept] = hub.store.readiness.for_user("amira")
    assert kept.ready is False
    assert kept.checks["vpn"]["status"] == "fail"


def test_each_device_keeps_its_own_report(hub: EmbeddedHub) -> None:
    secret = create_user(hub.store, "amira")
    laptop = sign_in(hub.url, "amira", DEFAULT_PASSWORD, secret)["access_token"]
    desktop = sign_in(hub.url, "amira", DEFAULT_PASSWORD, secret, device_id="desk-2")[
        "access_token"
    ]

    assert _post(hub, laptop, _report(vpn="fail")).status_code == 200
    assert _post(hub, desktop, _report()).status_code == 200

    kept = {record.device_id: record.ready for record in hub.store.readiness.for_user("amira")}
    assert kept == {"test-device": False, "desk-2": True}
    assert hub.store.readiness.for_user("someone-else") == []


def test_forty_parallel_copies_keep_one_row(hub: EmbeddedHub, agent: str) -> None:
    body = _report(stream="fail")
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: _post(hub, agent, body).status_code, range(40)))

    assert statuses == [200] * 40
    [kept] = hub.store.readiness.for_user("amira")
    assert kept.checks["stream"]["status"] == "fail"


def test_without_a_sign_in_nothing_is_kept(hub: EmbeddedHub) -> None:
    response = requests.post(f"{hub.url}/v1/readiness", json=_report(), timeout=HTTP_TIMEOUT)

    assert response.status_code == 401
    assert response.json()["error"] == "token_invalid"


HOSTILE: list[tuple[Callable[[dict[str, Any]], object], str]] = [
    (lambda b: b["checks"].update(coffee={"status": "ok", "detail": "Hot."}), "'coffee'"),
    (lambda b: b["checks"].update({"vpn\u202e": {"status": "ok", "detail": "x"}}), "\\u202e"),
    (lambda b: b["checks"].update({"x" * 10_000: {"status": "ok", "detail": "x"}}), "…"),
    (lambda b: b["checks"]["vpn"].update(detail="x" * 10_000), "checks.vpn.detail"),
    (lambda b: b["checks"]["vpn"].update(detail="x" * 301), "at most 300"),
    (lambda b: b["checks"]["hub"].update(detail="Hub \u202eevil"), "U+202E"),
    (lambda b: b["checks"]["hub"].update(detail="two\nlines"), "U+000A"),
    (lambda b: b["checks"]["hub"].update(detail="nul\x00"), "checks.hub.detail"),
    (lambda b: b["checks"]["hub"].update(detail="   "), "checks.hub.detail"),
    (lambda b: b.update(checks={}), "at least one check"),
    (lambda b: b.update(ran_at="0001-01-01T00:00:00.000Z"), "ran_at"),
    (lambda b: b.update(ran_at="9999-12-31T23:59:59.999Z"), "ran_at"),
    (lambda b: b.update(ran_at="2026-12-03T10:00:00"), "time zone"),
    (lambda b: b.update(ran_at="yesterday <b>noon</b>"), "RFC 3339"),
    (lambda b: b.update(ran_at=""), "ran_at"),
]

MALFORMED: list[tuple[Any, str]] = [
    ({"ran_at": "2026-12-03T10:00:00Z"}, "checks"),
    ({"ran_at": "2026-12-03T10:00:00Z", "checks": {"vpn": {"status": "maybe"}}}, "status"),
    ({"ran_at": 5, "checks": {}}, "ran_at"),
    ({**_report(), "device_id": "spoofed"}, "device_id"),
    ([], "body"),
]


def test_hostile_reports_are_refused_saying_what_and_where(hub: EmbeddedHub, agent: str) -> None:
    for number, (mutate, where) in enumerate(HOSTILE):
        body = _report()
        mutate(body)

        response = _post(hub, agent, body)

        assert response.status_code == 422, (number, response.text)
        answer = response.json()
        assert answer["error"] == "invalid_readiness", number
        assert where in answer["detail"], (number, answer["detail"])
        # The answer never carries a huge value back, nor a raw bidi control.
        assert len(answer["detail"]) < 400, number
        assert "\u202e" not in answer["detail"], number
    assert hub.store.readiness.for_user("amira") == []


def test_malformed_bodies_are_refused_by_shape(hub: EmbeddedHub, agent: str) -> None:
    for number, (body, where) in enumerate(MALFORMED):
        response = _post(hub, agent, body)

        assert response.status_code == 422, (number, response.text)
        assert response.json()["error"] == "invalid_request", number
        assert where in response.json()["detail"], (number, response.json()["detail"])
    assert hub.store.readiness.for_user("amira") == []


def test_html_in_a_detail_is_kept_as_plain_text(hub: EmbeddedHub, agent: str) -> None:
    body = _report()
    body["checks"]["hub"]["detail"] = "<b>Hub</b> & <script>alert(1)</script>"

    assert _post(hub, agent, body).status_code == 200
    kept = hub.store.readiness.for_user("amira")[0].checks["hub"]["detail"]
    assert kept == "<b>Hub</b> & <script>alert(1)</script>"


def test_ran_at_may_be_a_day_off_the_hubs_clock_but_no_more(
    manual_clock: ManualClock, hub: EmbeddedHub
) -> None:
    token = access_token(hub.store, hub.url, "amira", at=manual_clock.now())
    now = manual_clock.now()

    for offset in (-86_400, 86_400):
        assert _post(hub, token, _report(rfc3339(now + offset))).status_code == 200
    for offset in (-86_401, 86_401):
        response = _post(hub, token, _report(rfc3339(now + offset)))
        assert response.status_code == 422
        assert "ran_at" in response.json()["detail"]
    # Only the in-range reports were kept: the later of the two.
    assert hub.store.readiness.for_user("amira")[0].ran_at == pytest.approx(now + 86_400)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    detail=st.text(max_size=400),
    name=st.sampled_from((*NAMES, "", "VPN", "vpn ")),
    ran_at=st.text(max_size=40),
)
def test_any_report_is_stored_or_refused_never_a_500(
    hub: EmbeddedHub, agent: str, detail: str, name: str, ran_at: str
) -> None:
    body = {"ran_at": ran_at, "checks": {name: {"status": "warn", "detail": detail}}}

    response = _post(hub, agent, body)

    assert response.status_code in (200, 422), response.text
    assert set(response.json()) in ({"ready", "hub_time"}, {"error", "detail"})
