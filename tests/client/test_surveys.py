"""The survey queue on real SQLite files, flushed by the real SyncEngine to the real hub: offered
once per (user, alert) shown and resolved, saved before "Thank you", sent exactly once."""

from __future__ import annotations

import sqlite3
import stat
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests

from client.core.cache import Cache
from client.core.content_verifier import ContentVerifier
from client.core.hub_client import HubClient
from client.core.models import Alert
from client.core.outbox import Outbox
from client.core.surveys import (
    FILENAME,
    SurveyError,
    SurveyQueue,
    SurveyState,
)
from client.core.sync import FixedSession, SyncEngine
from hub.server import EmbeddedHub
from tests.child_process import ChildProcess
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    auth_headers,
    create_user,
    publish_alert,
    sign_in,
)

SQLITE_SYNCHRONOUS_FULL = 2


def trust_on_first_use(keys: Any) -> ContentVerifier:
    return ContentVerifier.from_keys_response(keys, None)


def alert(alert_id: str = "a1", status: str = "open", **fields: Any) -> Alert:
    base = Alert(
        id=alert_id,
        seq=1,
        severity="critical",
        title="Video visits down",
        body="Move to phone.",
        playbook_id=None,
        template_ids=(),
        requires_ack=True,
        issued_at="2026-12-03T10:00:00.000Z",
        expires_at=None,
        issued_by="dora",
    )
    return replace(base, status=status, **fields)


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[SurveyQueue]:
    opened = SurveyQueue.open(tmp_path / "data" / FILENAME)
    yield opened
    opened.close()


def test_a_survey_is_offered_once_to_the_user_shown_the_alert_and_never_to_another(
    queue: SurveyQueue,
) -> None:
    queue.follow([alert()], "ana", shown=True)
    # Bea signs in on the same computer later: the alert reaches her only resolved.
    assert queue.follow([alert(status="resolved")], "bea", shown=True) == []

    offered = queue.follow([alert(status="resolved")], "ana", shown=True)
    again = queue.follow([alert(status="resolved")], "ana", shown=True)

    assert [(r.alert_id, r.author, r.state) for r in offered] == [("a1", "ana", "offered")]
    assert again == []
    assert [r.alert_id for r in queue.offered("ana")] == ["a1"]
    assert queue.offered("bea") == []
    with pytest.raises(SurveyError, match="no survey"):
        queue.answer("a1", "bea", clarity=3, templates=None, comment=None)
    assert queue.queued("bea") == []


def test_retracted_and_unresolved_alerts_have_no_survey(queue: SurveyQueue) -> None:
    queue.follow([alert("a1"), alert("a2")], "ana", shown=True)
    assert queue.follow([alert("a1", status="retracted")], "ana", shown=False) == []
    with pytest.raises(SurveyError, match="retracted"):
        queue.answer("a1", "ana", clarity=3, templates=None, comment=None)
    with pytest.raises(SurveyError, match="not resolved yet"):
        queue.answer("a2", "ana", clarity=3, templates=None, comment=None)
    assert queue.offered("ana") == []


def test_an_answer_is_saved_once_with_hostile_text_kept_and_bad_values_refused(
    queue: SurveyQueue,
) -> None:
    queue.follow([alert(drill=True)], "ana", shown=True)
    queue.follow([alert(status="resolved", drill=True)], "ana", shown=False)
    for bad in (
        {"clarity": 0},
        {"clarity": 6},
        {"clarity": True},
        {"clarity": -1},
        {"templates": 0},
        {"templates": 9},
        {"comment": "x" * 2001},
        {"comment": "bell\x07"},
        {"comment": "c1\x85"},
    ):
        answer: dict[str, Any] = {"clarity": 3, "templates": None, "comment": None, **bad}
        with pytest.raises(SurveyError, match="Nothing was saved"):
            queue.answer("a1", "ana", **answer)
    assert queue.queued("ana") == []

    hostile = "Invoice\u202efdp.exe <b>bold</b>\nline two\t☎"
    record = queue.answer("a1", "ana", clarity=5, templates=None, comment=hostile)

    assert (record.state, record.comment, record.drill) == ("queued", hostile, True)
    assert record.label.startswith("DRILL: no action with real patients")
    assert record.survey_id is not None
    with pytest.raises(SurveyError, match="already answered"):
        queue.answer("a1", "ana", clarity=1, templates=1, comment=None)
    assert [r.survey_id for r in queue.queued("ana")] == [record.survey_id]


def test_the_queue_file_is_owner_only_and_commits_with_synchronous_full(
    queue: SurveyQueue,
) -> None:
    assert stat.S_IMODE(queue.path.stat().st_mode) == 0o600
    with sqlite3.connect(queue.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # synchronous is per connection: read it from the queue's own.
    assert queue._conn.execute("PRAGMA synchronous").fetchone()[0] == SQLITE_SYNCHRONOUS_FULL


@dataclass
class HubDesk:
    hub: EmbeddedHub
    client: HubClient
    dispatcher_token: str
    agent_secret: str
    tmp_path: Path

    def surveys_on_hub(self, alert_id: str) -> list[dict[str, Any]]:
        response = requests.get(
            f"{self.hub.url}/v1/alerts/{alert_id}/surveys",
            headers=auth_headers(self.dispatcher_token),
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 200, response.text
        answers: list[dict[str, Any]] = response.json()["answers"]
        return answers

    def resolved_alert(self) -> Alert:
        published = publish_alert(self.hub.url, self.dispatcher_token)
        self.hub.store.alerts.change(
            published["id"], kind="resolved", text="Fixed by the vendor", by="dispatch"
        )
        self.hub.broker.notify()
        return replace(Alert.from_json(published), status="resolved")

    def engine(self, queue: SurveyQueue) -> tuple[SyncEngine, Cache, Outbox]:
        cache = Cache.open(self.tmp_path / "data" / "cache.sqlite3")
        outbox = Outbox.open(self.tmp_path / "data" / "outbox.sqlite3")
        engine = SyncEngine(
            self.client,
            cache,
            outbox,
            verifier_factory=trust_on_first_use,
            session=FixedSession("agent"),
            surveys=queue,
        )
        return engine, cache, outbox


@pytest.fixture
def hub_desk(hub: EmbeddedHub, tmp_path: Path) -> Iterator[HubDesk]:
    agent_secret = create_user(hub.store, "agent")
    dispatcher_secret = create_user(hub.store, "dispatch", role="dispatcher")
    tokens = sign_in(hub.url, "agent", DEFAULT_PASSWORD, agent_secret)
    dispatcher = sign_in(hub.url, "dispatch", DEFAULT_PASSWORD, dispatcher_secret)
    client = HubClient(hub.url, allow_plain_http=True, connect_timeout=2.0, read_timeout=10.0)
    client.set_access_token(tokens["access_token"])
    yield HubDesk(hub, client, dispatcher["access_token"], agent_secret, tmp_path)
    client.close()


CHILD = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from client.core.surveys import SurveyQueue
    path, alert_id = sys.argv[1], sys.argv[2]
    sys.stdin.readline()
    queue = SurveyQueue.open(Path(path))
    record = queue.answer(alert_id, "agent", clarity=4, templates=2, comment="Kill me now")
    print("queued", record.survey_id, flush=True)
    threading.Event().wait(120)
    """
)


def test_an_answer_queued_offline_survives_sigkill_and_reaches_the_hub_exactly_once(
    hub_desk: HubDesk, tmp_path: Path
) -> None:
    resolved = hub_desk.resolved_alert()
    path = tmp_path / "data" / FILENAME
    queue = SurveyQueue.open(path)
    queue.follow([replace(resolved, status="open")], "agent", shown=True)
    queue.follow([resolved], "agent", shown=False)
    queue.close()

    script = tmp_path / "answer.py"
    script.write_text(CHILD)
    child = ChildProcess(script, [str(path), resolved.id], "go")
    line = child.next_line()
    assert line is not None and line.startswith("queued "), line
    survey_id = line.split()[1]
    child.kill()
    # Killed after saving and before sending: the hub has nothing yet.
    assert hub_desk.surveys_on_hub(resolved.id) == []

    restarted = SurveyQueue.open(path)
    engine, cache, outbox = hub_desk.engine(restarted)
    try:
        report = engine.flush_now()
        assert report.sent == 0  # no acks: the surveys went in their own step
        sent = restarted.get(resolved.id, "agent")
        assert sent is not None and sent.state is SurveyState.SENT
        # The answer to the send is lost (a crash before it was written): sent again, kept once.
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE surveys SET state = 'queued'")
        engine.flush_now()
        engine.sync_now()
    finally:
        engine.stop()
        restarted.close()
        cache.close()
        outbox.close()

    answers = hub_desk.surveys_on_hub(resolved.id)
    assert [(a["survey_id"], a["username"], a["comment"]) for a in answers] == [
        (survey_id, "agent", "Kill me now")
    ]
    assert child.remaining_lines() == []


def test_already_answered_elsewhere_is_done_and_another_refusal_is_kept_not_retried(
    hub_desk: HubDesk, tmp_path: Path
) -> None:
    first = hub_desk.resolved_alert()
    second = hub_desk.resolved_alert()
    # Answered on another computer first.
    other = SurveyQueue.open(tmp_path / "other" / FILENAME)
    mine = SurveyQueue.open(tmp_path / "data" / FILENAME)
    for queue in (other, mine):
        queue.follow([replace(first, status="open")], "agent", shown=True)
        queue.follow([first], "agent", shown=False)
    mine.follow([replace(second, status="open")], "agent", shown=True)
    mine.follow([second], "agent", shown=False)
    other.answer(first.id, "agent", clarity=5, templates=None, comment=None)
    engine, cache, outbox = hub_desk.engine(other)
    engine.flush_now()
    engine.stop()
    cache.close()
    outbox.close()

    mine.answer(first.id, "agent", clarity=1, templates=None, comment="from the second laptop")
    mine.answer(second.id, "agent", clarity=2, templates=None, comment=None)
    # The hub forgot the second alert (retention): the refusal is kept, not retried forever.
    with hub_desk.hub.store.db.write() as conn:
        conn.execute("DELETE FROM alerts WHERE id = ?", (second.id,))
    engine, cache, outbox = hub_desk.engine(mine)
    try:
        engine.flush_now()
        engine.flush_now()
    finally:
        engine.stop()
        cache.close()
        outbox.close()

    done = mine.get(first.id, "agent")
    refused = mine.get(second.id, "agent")
    assert done is not None and (done.state, done.error) == ("sent", "already_answered")
    assert refused is not None and (refused.state, refused.error) == ("rejected", "unknown_alert")
    assert mine.queued("agent") == []
    assert [a["clarity"] for a in hub_desk.surveys_on_hub(first.id)] == [5]
    other.close()
    mine.close()


def test_a_damaged_file_is_set_aside_and_surveys_go_on_in_a_fresh_one(tmp_path: Path) -> None:
    path = tmp_path / "data" / FILENAME
    path.parent.mkdir(parents=True)
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)

    queue = SurveyQueue.open(path)
    try:
        assert queue.damaged_file is not None
        assert queue.damaged_file.read_bytes().startswith(b"SQLite format 3\x00\xff")
        queue.follow([alert()], "ana", shown=True)
        queue.follow([alert(status="resolved")], "ana", shown=False)
        assert queue.answer("a1", "ana", clarity=2, templates=None, comment=None).survey_id
    finally:
        queue.close()
