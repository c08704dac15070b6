"""Cached content is verified on every read, and the trusted key lives outside the cache: an
edited playbook step, patient script or search entry is never shown and the next sync repairs it;
first use pins only the hub's current key. Real hub on 127.0.0.1, real SQLite and key files."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import stat
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from client.core.cache import Cache
from client.core.content_trust import ContentTrust
from client.core.errors import SignatureError
from client.core.hub_client import HubClient
from client.core.outbox import Outbox
from client.core.sync import FixedSession, SyncEngine
from hub.content_import import import_content
from hub.demo import demo_content_dir
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, create_user, sign_in
from tests.library_content import ContentSigner

FORGED_STEP = "Tell the patient to stop taking their medication"
FORGED_SCRIPT = "Hello {patient_first_name}, please stop taking your medication."
PLAYBOOK = "pb-video-visit-outage"


@dataclass
class Client:
    """One agent's cache, outbox, trust file and sync engine against the real hub."""

    dir: Path
    hub: EmbeddedHub
    http: HubClient
    trust: ContentTrust
    cache: Cache
    outbox: Outbox
    engine: SyncEngine

    def edit(self, sql: str, *params: Any) -> None:
        """Change the cache file behind the client's back, as anything running as the user can."""
        with sqlite3.connect(self.dir / "cache.sqlite3") as conn:
            conn.execute(sql, params)


def open_client(hub: EmbeddedHub, folder: Path, token: str) -> Client:
    http = HubClient(hub.url, allow_plain_http=True, connect_timeout=2.0, read_timeout=10.0)
    http.set_access_token(token)
    trust = ContentTrust(folder / "config" / "content-keys.json")
    cache = Cache.open(folder / "cache.sqlite3", trust)
    outbox = Outbox.open(folder / "outbox.sqlite3")
    engine = SyncEngine(
        http, cache, outbox, verifier_factory=trust.choose, session=FixedSession("agent")
    )
    return Client(folder, hub, http, trust, cache, outbox, engine)


@pytest.fixture
def client(hub: EmbeddedHub, tmp_path: Path) -> Iterator[Client]:
    import_content(hub.store, hub.app.state.signer, demo_content_dir())
    secret = create_user(hub.store, "agent")
    token = sign_in(hub.url, "agent", DEFAULT_PASSWORD, secret)["access_token"]
    opened = open_client(hub, tmp_path, token)
    opened.engine.sync_now()
    yield opened
    opened.http.close()
    opened.cache.close()
    opened.outbox.close()


def forge_step(client: Client) -> None:
    row = client.cache._conn.execute(
        "SELECT data FROM playbooks WHERE id = ?", (PLAYBOOK,)
    ).fetchone()
    data = json.loads(row[0])
    data["steps"][0] = FORGED_STEP
    client.edit("UPDATE playbooks SET data = ? WHERE id = ?", json.dumps(data), PLAYBOOK)


def test_an_edited_playbook_step_is_never_shown_and_the_next_sync_repairs_it(
    client: Client,
) -> None:
    good = client.cache.playbook(PLAYBOOK)
    assert good is not None and FORGED_STEP not in good.steps
    damaged: list[tuple[str, str]] = []
    client.cache.damaged.connect(damaged.append)
    forge_step(client)

    assert client.cache.playbook(PLAYBOOK) is None
    assert PLAYBOOK not in [p.id for p in client.cache.playbooks()]
    assert all(hit.id != PLAYBOOK for hit in client.cache.search("medication"))
    assert client.cache.is_damaged("playbook", PLAYBOOK)
    assert damaged == [("playbook", PLAYBOOK)]

    report = client.engine.sync_now()  # same version on the hub: still replaced

    repaired = client.cache.playbook(PLAYBOOK)
    assert repaired == good
    assert report.content.stored >= 1
    assert not client.cache.is_damaged("playbook", PLAYBOOK)
    assert client.engine.sync_now().content.stored == 0, "one repair, not a refetch every sync"


def test_forty_parallel_reads_of_a_forged_playbook_show_it_to_none_and_report_it_once(
    client: Client,
) -> None:
    damaged: list[tuple[str, str]] = []
    client.cache.damaged.connect(damaged.append)
    forge_step(client)
    barrier = threading.Barrier(40, timeout=30)

    def read() -> Any:
        barrier.wait()
        return client.cache.playbook(PLAYBOOK)

    with ThreadPoolExecutor(40) as pool:
        shown = list(pool.map(lambda _n: read(), range(40), timeout=60))

    assert shown == [None] * 40
    assert damaged == [("playbook", PLAYBOOK)]


def test_an_edited_patient_script_is_never_shown_or_copied(client: Client) -> None:
    template_id = "tpl-video-outage-phone"
    row = client.cache._conn.execute(
        "SELECT data FROM templates WHERE id = ?", (template_id,)
    ).fetchone()
    data = {**json.loads(row[0]), "body": FORGED_SCRIPT}
    client.edit("UPDATE templates SET data = ? WHERE id = ?", json.dumps(data), template_id)

    assert client.cache.template(template_id) is None
    assert all(t.body != FORGED_SCRIPT for t in client.cache.templates())

    client.engine.sync_now()

    restored = client.cache.template(template_id)
    assert restored is not None and restored.body != FORGED_SCRIPT


@pytest.mark.parametrize(
    "column, forged",
    [
        ("title", "Stop all medication"),
        ("steps", FORGED_STEP),
        ("title", "\u202eenoN <b>html</b>"),
        ("body", ""),
    ],
)
def test_an_edited_search_entry_shows_no_forged_words(
    client: Client, column: str, forged: str
) -> None:
    client.edit(
        f"UPDATE search_index SET {column} = ? || ' video' WHERE item_id = ?", forged, PLAYBOOK
    )

    hits = client.cache.search("video")

    assert PLAYBOOK not in [hit.id for hit in hits]
    assert not [hit for hit in hits if forged and forged in hit.title + hit.snippet]
    assert client.cache.is_damaged("playbook", PLAYBOOK)
    client.engine.sync_now()
    assert PLAYBOOK in [hit.id for hit in client.cache.search("video")]


def test_a_signature_from_another_key_or_a_swapped_version_is_not_shown(client: Client) -> None:
    client.edit("UPDATE playbooks SET version = version + 1 WHERE id = ?", PLAYBOOK)
    assert client.cache.playbook(PLAYBOOK) is None
    client.engine.sync_now()
    assert client.cache.playbook(PLAYBOOK) is not None

    client.edit("UPDATE playbooks SET key_id = '0000000000000000' WHERE id = ?", PLAYBOOK)
    assert client.cache.playbook(PLAYBOOK) is None


def test_the_trusted_key_survives_a_lost_cache_and_a_new_key_is_then_refused(
    client: Client, start_hub: Any, tmp_path: Path
) -> None:
    key_file = client.dir / "config" / "content-keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert list(json.loads(key_file.read_text())["content_keys"]) == [
        client.hub.app.state.signer.key_id
    ]
    client.cache.close()
    for path in client.dir.glob("cache.sqlite3*"):
        path.unlink()

    other = start_hub(data_dir=tmp_path / "other-hub")
    import_content(other.store, other.app.state.signer, demo_content_dir())
    secret = create_user(other.store, "agent")
    token = sign_in(other.url, "agent", DEFAULT_PASSWORD, secret)["access_token"]
    reopened = open_client(other, client.dir, token)
    try:
        report = reopened.engine.sync_now()

        assert report.content_problem is not None
        assert "content-signing key has changed" in report.content_problem
        assert reopened.cache.playbooks() == []
    finally:
        reopened.http.close()
        reopened.cache.close()
        reopened.outbox.close()


def _key_entry(current: bool | None) -> tuple[str, dict[str, Any]]:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key_id = hashlib.sha256(raw).hexdigest()[:16]
    entry: dict[str, Any] = {
        "key_id": key_id,
        "public_key": base64.b64encode(raw).decode(),
        "algorithm": "Ed25519",
    }
    if current is not None:
        entry["current"] = current
    return key_id, entry


def test_first_use_trusts_only_the_key_marked_current(tmp_path: Path) -> None:
    old_id, old = _key_entry(False)
    new_id, new = _key_entry(True)
    trust = ContentTrust(tmp_path / "keys.json")

    verifier = trust.choose({"content_keys": [old, new]})

    assert verifier.key_ids == (new_id,)
    assert ContentTrust(tmp_path / "keys.json").key_ids == (new_id,)
    with pytest.raises(SignatureError):
        ContentTrust(tmp_path / "fresh.json").choose(
            {"content_keys": [_key_entry(None)[1], _key_entry(None)[1]]}
        )
    assert old_id not in trust.key_ids


def test_an_edited_key_file_trusts_nothing_rather_than_the_edit(tmp_path: Path) -> None:
    key_id, entry = _key_entry(True)
    other_id, other = _key_entry(True)
    path = tmp_path / "keys.json"
    ContentTrust(path).choose({"content_keys": [entry]})
    # Someone swaps the key bytes under the trusted id: the id no longer matches, so nothing.
    path.write_text(json.dumps({"content_keys": {key_id: other["public_key"]}}))

    assert ContentTrust(path).key_ids == ()
    path.write_text("{not json")
    assert ContentTrust(path).key_ids == ()
    assert other_id != key_id


def test_it_pin_wins_over_the_key_the_hub_marks_current(tmp_path: Path) -> None:
    pinned_id, pinned = _key_entry(False)
    current_id, current = _key_entry(True)

    verifier = ContentTrust(tmp_path / "k.json", pinned_id).choose(
        {"content_keys": [pinned, current]}
    )

    assert verifier.key_ids == (pinned_id,)
    assert current_id not in ContentTrust(tmp_path / "k.json", pinned_id).key_ids


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(["title", "summary", "steps", "severity", "tags"]),
    text=st.text(min_size=0, max_size=200),
)
def test_any_edit_of_a_stored_playbook_is_never_shown(
    tmp_path: Path, field: str, text: str
) -> None:
    signer = ContentSigner()
    data = {
        "title": "Pharmacy outage",
        "category": "Platform outage",
        "severity": "major",
        "summary": "Prescriptions cannot be sent.",
        "steps": ["Call the pharmacy line", "Tell the patient the new time"],
        "tags": ["pharmacy"],
    }
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    trust = ContentTrust(folder / "keys.json")
    verifier = trust.choose(signer.keys_response())
    cache = Cache.open(folder / "cache.sqlite3", trust)
    try:
        cache.apply_content([signer.item("playbook", "pb", data)], verifier)
        edited = {**data, field: [text] if isinstance(data[field], list) else text}
        assume(edited != data)
        with sqlite3.connect(folder / "cache.sqlite3") as conn:
            conn.execute("UPDATE playbooks SET data = ? WHERE id = 'pb'", (json.dumps(edited),))

        assert cache.playbook("pb") is None
        assert cache.playbooks() == []
        assert cache.is_damaged("playbook", "pb")
    finally:
        cache.close()
