"""Delivery receipts: queued in the cache with the alert (survives SIGKILL), per signed-in user,
sent with that user's session until the hub accepts them."""

from __future__ import annotations

import json
import signal
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests

from client.core.alert_stream import AlertStream
from client.core.cache import Cache
from client.core.content_verifier import ContentVerifier
from client.core.errors import BadResponse
from client.core.hub_client import HubClient
from client.core.models import Alert
from client.core.outbox import Outbox
from client.core.receipts import Receipt, Receipts, ReceiptSender
from client.core.sync import FixedSession, SyncEngine
from hub.server import EmbeddedHub
from tests.child_process import ChildProcess
from tests.hubtools import DEFAULT_PASSWORD, create_user, publish_alert, sign_in, wait_until

ALERT_ID = "6f1c1f7e-8f0e-4d57-9a39-0b4b3e1f2a10"


def alert(alert_id: str = ALERT_ID, seq: int = 1) -> Alert:
    return Alert(
        alert_id,
        seq,
        "critical",
        "Video down",
        "Use phone.",
        None,
        (),
        True,
        "2026-12-03T10:00:00.000Z",
        None,
        "dora",
    )


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    opened = Cache.open(tmp_path / "cache.sqlite3")
    yield opened
    opened.close()


def test_storing_an_alert_queues_its_receipt_for_the_user_and_shown_adds_to_it(
    cache: Cache,
) -> None:
    changes = cache.store_alerts([alert()], receipt_author="alex")
    assert changes.receipts == 1
    # The same alert again (a replay) keeps the first received time.
    assert cache.store_alerts([alert()], receipt_author="alex").receipts == 0
    [queued] = cache.unsent_receipts(author="alex")
    assert queued.shown_at is None

    receipts = Receipts(cache, lambda: "alex")
    fired: list[int] = []
    receipts.queued.connect(fired.append)
    assert receipts.mark_shown(ALERT_ID) is True
    assert receipts.mark_shown(ALERT_ID) is False, "only the first time on screen counts"
    assert fired == [1]

    [shown] = cache.unsent_receipts(author="alex")
    assert shown.received_at == queued.received_at and shown.shown_at is not None
    assert shown.shown_at >= shown.received_at


def test_receipts_belong_to_the_user_signed_in_and_nobody_queues_none(cache: Cache) -> None:
    cache.store_alerts([alert()], receipt_author="alex")

    assert cache.unsent_receipts(author="blair") == []
    assert Receipts(cache, lambda: None).mark_shown(ALERT_ID) is False
    assert cache.receipt(ALERT_ID, author="blair") is None
    # Blair sees the alert on the same computer: Blair's own receipt, received no later than now.
    assert Receipts(cache, lambda: "blair").mark_shown(ALERT_ID) is True
    [blairs] = cache.unsent_receipts(author="blair")
    assert blairs.received_at == blairs.shown_at
    [alexs] = cache.unsent_receipts(author="alex")
    assert alexs.shown_at is None


def test_an_accepted_receipt_is_not_sent_again_but_a_later_shown_time_is(cache: Cache) -> None:
    cache.store_alerts([alert()], receipt_author="alex")
    [sent] = cache.unsent_receipts(author="alex")
    # Shown while the received-only receipt was on its way: the shown time still has to go.
    cache.mark_shown(ALERT_ID, author="alex")
    cache.receipts_accepted([sent], author="alex")

    [again] = cache.unsent_receipts(author="alex")
    assert again.shown_at is not None
    cache.receipts_accepted([again], author="alex")
    assert cache.unsent_receipts(author="alex") == []
    state = cache.receipt(ALERT_ID, author="alex")
    assert state is not None and state.received_sent and state.shown_sent


def test_forty_parallel_marks_of_one_alert_record_one_shown_time(cache: Cache) -> None:
    cache.store_alerts([alert()], receipt_author="alex")
    receipts = Receipts(cache, lambda: "alex")
    results: list[bool] = []
    lock = threading.Lock()

    def mark() -> None:
        marked = receipts.mark_shown(ALERT_ID)
        with lock:
            results.append(marked)

    threads = [threading.Thread(target=mark) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results.count(True) == 1 and len(results) == 40


@pytest.mark.parametrize("alert_id", ["", "\u202e" + "x" * 5000, "<b>x</b>"])
def test_hostile_alert_ids_are_kept_as_text_or_refused_when_empty(
    cache: Cache, alert_id: str
) -> None:
    receipts = Receipts(cache, lambda: "alex")
    assert receipts.mark_shown(alert_id) is bool(alert_id)
    queued = cache.unsent_receipts(author="alex")
    assert [r.alert_id for r in queued] == ([alert_id] if alert_id else [])


# SIGKILL between recording a receipt and sending it

CHILD = textwrap.dedent(
    """
    import sys
    import threading
    from pathlib import Path

    from client.core.cache import Cache
    from client.core.models import Alert

    cache_path, alert_id = sys.argv[1:3]
    sys.stdin.readline()
    cache = Cache.open(Path(cache_path))
    alert = Alert(alert_id, 1, "critical", "Video down", "Use phone.", None, (), True,
                  "2026-12-03T10:00:00.000Z", None, "dora")
    cache.store_alerts([alert], receipt_author="alex")
    print("stored", flush=True)
    cache.mark_shown(alert_id, author="alex")
    print("shown", flush=True)
    threading.Event().wait(60)
    """
)


def test_a_sigkill_between_recording_a_receipt_and_sending_it_loses_nothing(
    hub: EmbeddedHub, tmp_path: Path
) -> None:
    agent = sign_in(hub.url, "alex", DEFAULT_PASSWORD, create_user(hub.store, "alex"))
    dispatcher = sign_in(
        hub.url, "dora", DEFAULT_PASSWORD, create_user(hub.store, "dora", "dispatcher")
    )
    alert_id = publish_alert(hub.url, dispatcher["access_token"])["id"]
    cache_path = tmp_path / "cache.sqlite3"
    script = tmp_path / "child.py"
    script.write_text(CHILD)

    child = ChildProcess(script, [str(cache_path), alert_id], "go")
    try:
        assert child.next_line() == "stored"
        assert child.next_line() == "shown"
    finally:
        code = child.kill()
        child.remaining_lines()
    assert code == -signal.SIGKILL

    cache = Cache.open(cache_path)
    client = HubClient(hub.url, allow_plain_http=True)
    client.set_access_token(agent["access_token"])
    try:
        [queued] = cache.unsent_receipts(author="alex")
        assert queued.alert_id == alert_id and queued.shown_at is not None
        report = ReceiptSender(cache, client, author="alex").flush()
        assert not report.unsupported
        assert report.accepted == 1 and report.refused == 0
        assert cache.unsent_receipts(author="alex") == []
        # Accepted once: a second flush sends nothing.
        assert ReceiptSender(cache, client, author="alex").flush().accepted == 0
    finally:
        cache.close()
        client.close()


def test_a_sync_as_another_user_sends_none_of_the_first_users_receipts(
    hub: EmbeddedHub, tmp_path: Path
) -> None:
    blair = sign_in(hub.url, "blair", DEFAULT_PASSWORD, create_user(hub.store, "blair"))
    dispatcher = sign_in(
        hub.url, "dora", DEFAULT_PASSWORD, create_user(hub.store, "dora", "dispatcher")
    )
    alert_id = publish_alert(hub.url, dispatcher["access_token"])["id"]
    cache = Cache.open(tmp_path / "cache.sqlite3")
    outbox = Outbox.open(tmp_path / "outbox.sqlite3")
    client = HubClient(hub.url, allow_plain_http=True)
    client.set_access_token(blair["access_token"])
    try:
        cache.store_alerts([alert(alert_id)], receipt_author="alex")
        engine = SyncEngine(
            client,
            cache,
            outbox,
            verifier_factory=lambda keys: ContentVerifier.from_keys_response(keys, None),
            session=FixedSession("blair"),
        )
        engine.flush_now()
        state = cache.receipt(alert_id, author="alex")
        assert state is not None and not state.received_sent, "sent under another user's session"
        assert cache.receipt(alert_id, author="blair") is None
    finally:
        cache.close()
        outbox.close()
        client.close()


def test_receipts_to_a_hub_without_the_endpoint_stay_queued_and_never_fail_a_sync(
    hub: EmbeddedHub, tmp_path: Path
) -> None:
    agent = sign_in(hub.url, "alex", DEFAULT_PASSWORD, create_user(hub.store, "alex"))
    cache = Cache.open(tmp_path / "cache.sqlite3")
    outbox = Outbox.open(tmp_path / "outbox.sqlite3")
    client = HubClient(hub.url, allow_plain_http=True)
    client.set_access_token(agent["access_token"])
    try:
        engine = SyncEngine(
            client,
            cache,
            outbox,
            verifier_factory=lambda keys: ContentVerifier.from_keys_response(keys, None),
            session=FixedSession("alex"),
        )
        cache.store_alerts([alert()], receipt_author="alex")
        engine.sync_now()
        probe = requests.post(
            f"{hub.url}/v1/receipts",
            json={"receipts": []},
            headers={"Authorization": f"Bearer {agent['access_token']}"},
            timeout=10,
        )
        queued = cache.unsent_receipts(author="alex")
        if probe.status_code == 404:
            assert [r.alert_id for r in queued] == [ALERT_ID]
        else:
            # A hub with receipts refuses an unknown alert for good: kept with why, not resent.
            assert queued == []
            state = cache.receipt(ALERT_ID, author="alex")
            assert state is not None and (state.received_sent or state.refused)
    finally:
        cache.close()
        outbox.close()
        client.close()


def test_receipt_json_leaves_out_a_time_not_yet_known() -> None:
    assert Receipt(ALERT_ID, "2026-12-03T10:00:00.000Z").to_json() == {
        "alert_id": ALERT_ID,
        "received_at": "2026-12-03T10:00:00.000Z",
    }


def test_a_receipt_goes_to_the_hub_as_soon_as_the_alert_arrives_and_when_shown(
    hub: EmbeddedHub, tmp_path: Path
) -> None:
    agent = sign_in(hub.url, "alex", DEFAULT_PASSWORD, create_user(hub.store, "alex"))
    dispatcher = sign_in(
        hub.url, "dora", DEFAULT_PASSWORD, create_user(hub.store, "dora", "dispatcher")
    )
    probe = requests.post(
        f"{hub.url}/v1/receipts",
        json={"receipts": []},
        headers={"Authorization": f"Bearer {agent['access_token']}"},
        timeout=10,
    )
    assert probe.status_code != 404, probe.text
    cache = Cache.open(tmp_path / "cache.sqlite3")
    outbox = Outbox.open(tmp_path / "outbox.sqlite3")
    client = HubClient(hub.url, allow_plain_http=True)
    client.set_access_token(agent["access_token"])
    stream = AlertStream(client, cache, current_user=lambda: "alex")
    engine = SyncEngine(
        client,
        cache,
        outbox,
        verifier_factory=lambda keys: ContentVerifier.from_keys_response(keys, None),
        session=FixedSession("alex"),
        alert_catch_up=stream.catch_up,
        interval=3600.0,
    )
    receipts = Receipts(cache, lambda: "alex")
    # As CoreServices wires them: a queued receipt asks for a flush at once.
    stream.receipts_queued.connect(lambda _n: engine.request_flush())
    receipts.queued.connect(lambda _n: engine.request_flush())
    engine.start()
    stream.start()
    try:
        alert_id = publish_alert(hub.url, dispatcher["access_token"])["id"]

        def accepted(shown: bool) -> bool:
            state = cache.receipt(alert_id, author="alex")
            return state is not None and state.received_sent and (state.shown_sent or not shown)

        wait_until(lambda: accepted(False), timeout=10)
        assert receipts.mark_shown(alert_id)
        wait_until(lambda: accepted(True), timeout=10)
        assert cache.unsent_receipts(author="alex") == []
    finally:
        stream.stop()
        engine.stop()
        cache.close()
        outbox.close()
        client.close()


class _ReceiptsHub(BaseHTTPRequestHandler):
    """Plays the contract's POST /v1/receipts on loopback until the hub's own lands: refuses
    the alert named REFUSED, leaves out the one named SILENT, accepts the rest."""

    bodies: ClassVar[list[Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        results = [
            {"alert_id": r["alert_id"], "status": "rejected", "error": "unknown_alert"}
            if r["alert_id"] == "REFUSED"
            else {"alert_id": r["alert_id"], "status": "accepted"}
            for r in body["receipts"]
            if r["alert_id"] != "SILENT"
        ]
        answer = json.dumps({"results": results}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def receipts_hub() -> Iterator[str]:
    _ReceiptsHub.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ReceiptsHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_accepted_receipts_are_done_refused_ones_kept_and_unanswered_ones_sent_again(
    receipts_hub: str, cache: Cache
) -> None:
    cache.store_alerts(
        [alert(ALERT_ID, 1), alert("REFUSED", 2), alert("SILENT", 3)], receipt_author="alex"
    )
    cache.mark_shown(ALERT_ID, author="alex")
    client = HubClient(receipts_hub, allow_plain_http=True)
    client.set_access_token("token")
    try:
        with pytest.raises(BadResponse, match="2 of 3 receipts"):
            ReceiptSender(cache, client, author="alex").flush()
        [sent] = _ReceiptsHub.bodies
        assert {r["alert_id"]: "shown_at" in r for r in sent["receipts"]} == {
            ALERT_ID: True,
            "REFUSED": False,
            "SILENT": False,
        }
        assert [r.alert_id for r in cache.unsent_receipts(author="alex")] == ["SILENT"]
        refused = cache.receipt("REFUSED", author="alex")
        assert refused is not None and refused.refused == "unknown_alert"
        done = cache.receipt(ALERT_ID, author="alex")
        assert done is not None and done.received_sent and done.shown_sent
    finally:
        client.close()
