"""Two `vigil-hub serve` OS processes on one PostgreSQL database, raced cold: forty parallel
requests split between them, with no request before (publishes, password guesses, one refresh
token, acknowledgements). Nothing is shared but the database and the data folder's key."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from hub import alerts_service
from hub.clock import SystemClock
from hub.config import HubSettings
from hub.storage import Store
from hub.storage.accounts import Role
from hub.storage.audit import AuditQuery
from tests.hub.test_stream import READ_TIMEOUT, SseReader
from tests.hub_processes import HubServer, SignedIn, add_signed_in_sessions
from tests.hubtools import DEFAULT_PASSWORD, HTTP_TIMEOUT, at_once, auth_headers

PARALLEL = 40
# vigil-hub serve's own throttle (HubSettings' default, per process): one username's guesses
# beyond this many at once are refused before the lockout is even looked at.
USERNAME_BURST = HubSettings.signin_username_burst
# Tries at the right password after the race: a process's throttle gives one attempt back every
# 6 s (10 a minute), and each refusal meanwhile takes 2 to 4 s.
LOCK_CHECK_ATTEMPTS = 10


class TwoProcesses:
    """Users written straight into a fresh database, then two hub processes started on it."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self.data_dir = root / "hub-data"
        self.database_url = database_url
        self.hubs: list[HubServer] = []

    def add_users(self, names: list[str], role: Role = "agent") -> dict[str, SignedIn]:
        """Users with one sign-in each, written before the processes start."""
        assert not self.hubs, "add users before the processes start: they must be cold"
        return add_signed_in_sessions(
            self.data_dir,
            names,
            role,
            database_url=self.database_url,
        )

    @contextmanager
    def store(self) -> Iterator[Store]:
        """The database as the test's own connection sees it."""
        store = Store.open(self.database_url, SystemClock())
        try:
            yield store
        finally:
            store.close()

    def start(self) -> list[HubServer]:
        """Both processes, listening and cold: neither has answered a single request."""
        # One after the other: the first makes the data folder and its content key.
        for name in ("hub-a", "hub-b"):
            self.hubs.append(
                HubServer(
                    self.data_dir,
                    self.root / f"{name}.log",
                    database_url=self.database_url,
                    trusted_proxies=(),
                    wait_healthy=False,
                )
            )
        return self.hubs

    def stop(self) -> list[str]:
        """Stop both; what each wrote to stderr."""
        # Both are told at once, so that their graceful shutdowns overlap.
        for hub in self.hubs:
            if hub.process.poll() is None:
                hub.process.terminate()
        for hub in self.hubs:
            hub.stop()
        return [hub.log_text() for hub in self.hubs]


@pytest.fixture
def processes(tmp_path: Path, postgres_url: str) -> Iterator[TwoProcesses]:
    """Two hub processes on a throwaway database; at the end, neither may have logged an error."""
    pair = TwoProcesses(tmp_path, postgres_url)
    yield pair
    logs = pair.stop()
    for log in logs:
        assert "Traceback" not in log and "ERROR" not in log, log[-4000:]


def _split(
    hubs: list[HubServer], call: Callable[[str, int], requests.Response]
) -> list[requests.Response]:
    """PARALLEL calls at once, the even ones to the first process, the odd to the second."""
    answers = at_once([lambda n=n: call(hubs[n % 2].url, n) for n in range(PARALLEL)])
    # Never a 500, from either process, however cold.
    assert not [a for a in answers if a.status_code >= 500 and a.status_code != 503], [
        (a.status_code, a.text) for a in answers if a.status_code >= 500
    ]
    return answers


@contextmanager
def _stream(url: str, token: str, last_event_id: str) -> Iterator[SseReader]:
    response = requests.get(
        f"{url}/v1/alerts/stream",
        headers={**auth_headers(token), "Last-Event-ID": last_event_id},
        stream=True,
        timeout=(HTTP_TIMEOUT, READ_TIMEOUT),
    )
    with closing(response):
        assert response.status_code == 200, response.text
        yield SseReader(response)


def _login(url: str, password: str) -> requests.Response:
    return requests.post(
        f"{url}/v1/auth/login",
        json={"username": "yara", "password": password, "device_id": "d", "device_name": "Laptop"},
        timeout=HTTP_TIMEOUT,
    )


def _ack(url: str, token: str, ack: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{url}/v1/acks", json={"acks": [ack]}, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )


def _title(n: int) -> str:
    # Markup and non-ASCII text are an alert's words like any others: kept and replayed as sent.
    return f"<b>Alert {n}</b> — Région Ouest 西部"


def test_forty_publishes_through_two_cold_processes_are_gap_free_and_replayed_alike(
    processes: TwoProcesses,
) -> None:
    users = processes.add_users(["dora"], "dispatcher") | processes.add_users(["ana"])
    hubs = processes.start()

    answers = _split(
        hubs,
        lambda url, n: requests.post(
            f"{url}/v1/alerts",
            json={"severity": "critical", "title": _title(n), "body": "Phones down."},
            headers=auth_headers(users["dora"].access_token),
            timeout=HTTP_TIMEOUT,
        ),
    )

    assert [a.status_code for a in answers] == [201] * PARALLEL, [a.text for a in answers][:3]
    published = sorted((a.json()["seq"], a.json()["title"]) for a in answers)
    seqs = [seq for seq, _ in published]
    assert seqs == list(range(seqs[0], seqs[0] + PARALLEL))
    assert sorted(title for _, title in published) == sorted(_title(n) for n in range(PARALLEL))
    replays = []
    for hub in hubs:
        with _stream(hub.url, users["ana"].access_token, "0") as stream:
            replays.append([(int(e.id or 0), e.json()["title"]) for e in stream.wait_until_live()])
    # Both processes replay every alert once, in seq order: the same list.
    assert replays == [published, published]


@pytest.mark.slow
def test_forty_guesses_through_two_cold_processes_check_at_most_five(
    processes: TwoProcesses,
) -> None:
    processes.add_users(["yara"])
    hubs = processes.start()

    answers = _split(hubs, lambda url, n: _login(url, f"guess {n}"))

    outcomes = [(a.status_code, a.json()["error"]) for a in answers]
    checked = outcomes.count((401, "invalid_credentials"))
    assert 1 <= checked <= 5, outcomes
    refused = [o for o in outcomes if o[0] != 401]
    assert set(refused) <= {(429, "locked_out"), (503, "sign_in_busy"), (429, "too_many_attempts")}
    # Each process's own throttle refuses only what its username burst cannot take: at least
    # 2 x USERNAME_BURST guesses raced for the database's lockout.
    assert outcomes.count((429, "too_many_attempts")) <= PARALLEL - 2 * USERNAME_BURST
    with processes.store() as store:
        failed = store.audit.query(AuditQuery(event="signin.failed", user="yara", limit=1000))
    assert sorted(e.outcome for e in failed) == sorted(
        ["password"] * checked + ["locked_out"] * outcomes.count((429, "locked_out"))
    )
    # The lock holds on both processes, even for the right password, once their throttles let
    # an attempt through again (one per 6 s per process).
    for hub in hubs:
        assert _locked_out_once_throttle_allows(hub.url)


def _locked_out_once_throttle_allows(url: str) -> bool:
    for _ in range(LOCK_CHECK_ATTEMPTS):
        answer = _login(url, DEFAULT_PASSWORD)
        assert answer.status_code != 200, "the right password got past the lock"
        error = answer.json()["error"]
        if error != "too_many_attempts":
            return bool(error == "locked_out")
    return False


def test_one_refresh_token_raced_through_two_cold_processes_rotates_once(
    processes: TwoProcesses,
) -> None:
    original = processes.add_users(["gus"])["gus"]
    hubs = processes.start()

    answers = _split(
        hubs,
        lambda url, _n: requests.post(
            f"{url}/v1/auth/refresh",
            json={"refresh_token": original.refresh_token},
            timeout=HTTP_TIMEOUT,
        ),
    )

    assert [a.status_code for a in answers] == [200] * PARALLEL, [a.text for a in answers][:3]
    pairs = {(a.json()["access_token"], a.json()["refresh_token"]) for a in answers}
    assert len(pairs) == 1
    ((_, successor),) = pairs
    # The successor rotates on the second process; the original again, on the first, is reuse.
    rotated = requests.post(
        f"{hubs[1].url}/v1/auth/refresh", json={"refresh_token": successor}, timeout=HTTP_TIMEOUT
    )
    assert rotated.status_code == 200, rotated.text
    newest = rotated.json()
    reused = requests.post(
        f"{hubs[0].url}/v1/auth/refresh",
        json={"refresh_token": original.refresh_token},
        timeout=HTTP_TIMEOUT,
    )
    assert (reused.status_code, reused.json()["error"]) == (401, "refresh_reused")
    # The whole family is revoked on both: the newest tokens work on neither.
    for hub in hubs:
        signed_out = requests.get(
            f"{hub.url}/v1/alerts",
            headers=auth_headers(newest["access_token"]),
            timeout=HTTP_TIMEOUT,
        )
        assert (signed_out.status_code, signed_out.json()["error"]) == (401, "token_invalid")
        refused = requests.post(
            f"{hub.url}/v1/auth/refresh",
            json={"refresh_token": newest["refresh_token"]},
            timeout=HTTP_TIMEOUT,
        )
        assert refused.status_code == 401, refused.text


def _published_alert(processes: TwoProcesses) -> dict[str, Any]:
    """One critical alert to every agent, published before the processes start."""
    settings = HubSettings(data_dir=processes.data_dir, database_url=processes.database_url)
    with processes.store() as store:
        return alerts_service.publish_alert(
            store, settings, severity="critical", title="Phones down", body="Use the backup line."
        )


def test_one_ack_sent_forty_times_to_two_cold_processes_is_stored_once(
    processes: TwoProcesses,
) -> None:
    agent = processes.add_users(["ana"])["ana"].access_token
    alert = _published_alert(processes)
    ack = {
        "ack_id": str(uuid.uuid4()),
        "alert_id": alert["id"],
        "action": "acknowledged",
        "acted_at": alert["issued_at"],
    }
    hubs = processes.start()

    answers = _split(hubs, lambda url, _n: _ack(url, agent, ack))

    assert [a.status_code for a in answers] == [200] * PARALLEL, [a.text for a in answers][:3]
    statuses = [a.json()["results"][0]["status"] for a in answers]
    assert statuses.count("accepted") == 1
    assert statuses.count("duplicate") == PARALLEL - 1
    with processes.store() as store, store.db.read() as conn:
        assert conn.execute("SELECT ack_id FROM alert_acks").fetchall() == [(ack["ack_id"],)]


ACTIONS = ("acknowledged", "escalated", "unable")


def test_forty_answers_to_one_alert_raced_through_two_cold_processes_count_the_first(
    processes: TwoProcesses,
) -> None:
    users = processes.add_users(["ana"]) | processes.add_users(["dora"], "dispatcher")
    alert = _published_alert(processes)
    issued = datetime.fromisoformat(alert["issued_at"])
    # Answer n was given n seconds after the alert; the first (n = 0) is `unable`, which only a
    # third of the others are, so the count cannot be right by majority or by arrival.
    acks = [
        {
            "ack_id": str(uuid.uuid4()),
            "alert_id": alert["id"],
            "action": ACTIONS[(n + 2) % 3],
            "acted_at": (issued + timedelta(seconds=n)).isoformat(),
        }
        for n in range(PARALLEL)
    ]
    hubs = processes.start()

    answers = _split(hubs, lambda url, n: _ack(url, users["ana"].access_token, acks[n]))

    assert [a.status_code for a in answers] == [200] * PARALLEL, [a.text for a in answers][:3]
    assert [a.json()["results"][0]["status"] for a in answers] == ["accepted"] * PARALLEL
    for hub in hubs:
        report = requests.get(
            f"{hub.url}/v1/reports/kpis",
            params={"since": (issued - timedelta(days=1)).isoformat()},
            headers=auth_headers(users["dora"].access_token),
            timeout=HTTP_TIMEOUT,
        )
        assert report.status_code == 200, report.text
        (figures,) = report.json()["alerts"]
        assert figures["answered"] == 1
        assert (figures["acknowledged"], figures["escalated"], figures["unable"]) == (0, 0, 1)
        listed = requests.get(
            f"{hub.url}/v1/alerts/{alert['id']}/acks",
            headers=auth_headers(users["dora"].access_token),
            timeout=HTTP_TIMEOUT,
        )
        assert sorted(a["ack_id"] for a in listed.json()["acks"]) == sorted(
            a["ack_id"] for a in acks
        )
