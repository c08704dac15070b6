"""The local cache: only verified content is stored, search is safe and ranked, corrupt files are
quarantined and rebuilt. Real SQLite files, real Ed25519 keys made here."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from client.core.cache import MIGRATIONS, Cache, fts_query
from client.core.content import HIGHLIGHT_END, HIGHLIGHT_START, highlight_parts
from client.core.content_trust import ContentTrust
from client.core.content_verifier import ContentVerifier
from client.core.errors import BadResponse, SignatureError
from client.core.models import Alert


class ItemSigner:
    """Signs content items the way the protocol says the hub does."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.raw_public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = hashlib.sha256(self.raw_public).hexdigest()[:16]

    def keys_response(self) -> dict[str, Any]:
        return {
            "content_keys": [
                {
                    "key_id": self.key_id,
                    "public_key": base64.b64encode(self.raw_public).decode(),
                    "algorithm": "Ed25519",
                }
            ]
        }

    def verifier(self) -> ContentVerifier:
        return ContentVerifier.from_keys_response(self.keys_response(), self.key_id)

    def item(
        self, kind: str, item_id: str, version: int, data: dict[str, Any] | None
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "kind": kind,
            "id": item_id,
            "version": version,
            "deleted": data is None,
            "data": data,
        }
        signature = self.private.sign(rfc8785.dumps(item))
        return {**item, "signature": base64.b64encode(signature).decode(), "key_id": self.key_id}


def playbook_data(title: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": title,
        "category": "Platform outage",
        "severity": "critical",
        "summary": "Patients cannot join or stay in video visits.",
        "steps": ["Confirm the outage on the status page", "Move visits to phone"],
        "escalation_path": [
            {"level": 1, "role": "Shift lead", "contact": "ext. 4100", "after_minutes": 0}
        ],
        "phone_tree": [
            {
                "order": 1,
                "name": "NOC on-call",
                "role": "Network operations",
                "phone": "+1-555-0100",
                "notes": "24/7",
            }
        ],
        "template_ids": ["tpl-video-outage-phone"],
        "tags": ["video", "outage"],
    }
    data.update(extra)
    return data


def template_data(title: str, body: str) -> dict[str, Any]:
    return {
        "title": title,
        "channel": "phone_script",
        "subject": None,
        "body": body,
        "placeholders": [{"name": "patient_first_name", "description": "First name only"}],
        "approved_by": "Patient Communications, R. Alvarez",
        "approved_at": "2026-09-02",
        "locale": "en-US",
        "tags": ["refill"],
    }


@pytest.fixture
def signer() -> ItemSigner:
    return ItemSigner()


@pytest.fixture
def cache(tmp_path: Path) -> Any:
    opened = Cache.open(tmp_path / "cache.sqlite3")
    yield opened
    opened.close()


def alert(seq: int, alert_id: str | None = None) -> Alert:
    return Alert.from_json(
        {
            "id": alert_id or f"00000000-0000-4000-8000-{seq:012d}",
            "seq": seq,
            "severity": "major",
            "title": f"Alert {seq}",
            "body": "Body",
            "playbook_id": None,
            "template_ids": [],
            "requires_ack": True,
            "issued_at": "2026-11-27T10:42:00.123Z",
            "expires_at": None,
            "issued_by": "dispatch",
        }
    )


def test_signed_items_are_stored_and_read_back(cache: Cache, signer: ItemSigner) -> None:
    report = cache.apply_content(
        [
            signer.item("playbook", "pb-video", 1, playbook_data("Video visit platform outage")),
            signer.item("template", "tpl-phone", 2, template_data("Moved to phone", "Hello {x}")),
        ],
        signer.verifier(),
    )

    assert (report.stored, report.refused) == (2, ())
    playbook = cache.playbook("pb-video")
    assert playbook is not None
    assert playbook.version == 1
    assert playbook.steps[1] == "Move visits to phone"
    assert playbook.phone_tree[0].phone == "+1-555-0100"
    assert playbook.escalation_path[0].contact == "ext. 4100"
    template = cache.template("tpl-phone")
    assert template is not None
    assert (template.version, template.body) == (2, "Hello {x}")
    assert template.placeholders[0].name == "patient_first_name"
    assert [p.id for p in cache.playbooks()] == ["pb-video"]
    assert [t.id for t in cache.templates()] == ["tpl-phone"]
    assert cache.playbook("missing") is None


def test_tampered_item_is_refused_and_old_version_kept(cache: Cache, signer: ItemSigner) -> None:
    cache.apply_content(
        [signer.item("playbook", "pb", 1, playbook_data("Original"))], signer.verifier()
    )
    tampered = signer.item("playbook", "pb", 2, playbook_data("Updated"))
    tampered["data"]["steps"] = ["Call this number instead: +1-555-6666"]

    report = cache.apply_content([tampered], signer.verifier())

    assert report.stored == 0
    assert [(r.id, "does not match its signature" in r.reason) for r in report.refused] == [
        ("pb", True)
    ]
    kept = cache.playbook("pb")
    assert kept is not None
    assert (kept.version, kept.title) == (1, "Original")
    assert [hit.id for hit in cache.search("instead")] == []


def test_item_signed_by_another_key_is_refused(cache: Cache, signer: ItemSigner) -> None:
    intruder = ItemSigner()
    forged = intruder.item("playbook", "pb", 1, playbook_data("Forged"))

    report = cache.apply_content([forged], signer.verifier())

    assert [r.id for r in report.refused] == ["pb"]
    assert "does not trust" in report.refused[0].reason
    assert cache.playbook("pb") is None


def test_forged_key_id_claim_is_caught_by_recomputing_it(signer: ItemSigner) -> None:
    """A hub (or proxy) cannot pass off its key as the pinned one by copying the pinned id."""
    intruder = ItemSigner()
    lying = intruder.keys_response()
    lying["content_keys"][0]["key_id"] = signer.key_id

    with pytest.raises(BadResponse, match="its bytes give the id"):
        ContentVerifier.from_keys_response(lying, signer.key_id)


def test_pinned_key_missing_from_hub_is_refused_clearly(signer: ItemSigner) -> None:
    with pytest.raises(SignatureError, match="IT pinned"):
        ContentVerifier.from_keys_response(signer.keys_response(), "0123456789abcdef")

    unpinned = ContentVerifier.from_keys_response(signer.keys_response(), None)
    assert (unpinned.key_ids, unpinned.pinned_key_id) == ((signer.key_id,), None)


@pytest.mark.parametrize(
    "raw",
    [None, [], {"content_keys": "x"}, {"content_keys": [1]}, {"content_keys": []}]
    + [{"content_keys": [{"key_id": "a", "public_key": key}]} for key in (None, "%%%", "AAAA")],
)
def test_malformed_key_list_is_a_bad_response(raw: Any) -> None:
    with pytest.raises(BadResponse):
        ContentVerifier.from_keys_response(raw, None)


def _malformed_items(signer: ItemSigner) -> list[Any]:
    good = signer.item("playbook", "pb-ok", 1, playbook_data("Fine"))
    return [
        None,
        "not an item",
        {**good, "id": 7},
        {**good, "version": True},
        {**good, "version": "1"},
        {**good, "deleted": "no"},
        {**good, "data": None},
        {**good, "signature": "%%% not base64"},
        {**good, "signature": None},
        {**good, "key_id": None},
        # Signed, but its data does not match the playbook shape.
        signer.item("playbook", "pb-bad-data", 1, {"title": 5}),
        # Beyond what RFC 8785 can encode exactly: refused, not a crash.
        signer.item("playbook", "pb-huge", 1, playbook_data("Huge")) | {"version": 2**60},
    ]


def test_malformed_items_are_refused_one_by_one(cache: Cache, signer: ItemSigner) -> None:
    items = _malformed_items(signer)
    good = signer.item("template", "tpl-ok", 1, template_data("Good one", "Body"))

    report = cache.apply_content([*items, good], signer.verifier())

    assert report.stored == 1
    assert len(report.refused) == len(items)
    assert cache.template("tpl-ok") is not None
    assert cache.playbooks() == []


def test_old_versions_are_ignored_and_deletions_remove(cache: Cache, signer: ItemSigner) -> None:
    verifier = signer.verifier()
    cache.apply_content([signer.item("playbook", "pb", 3, playbook_data("Third"))], verifier)

    stale = cache.apply_content(
        [
            signer.item("playbook", "pb", 2, playbook_data("Second")),
            signer.item("playbook", "pb", 3, playbook_data("Third again")),
        ],
        verifier,
    )
    assert (stale.stored, stale.ignored) == (0, 2)
    kept = cache.playbook("pb")
    assert kept is not None
    assert kept.title == "Third"

    gone = cache.apply_content([signer.item("playbook", "pb", 4, None)], verifier)
    assert gone.deleted == 1
    assert cache.playbook("pb") is None
    assert cache.search("Third") == []


def test_search_ranks_title_matches_first_with_marked_snippets(
    cache: Cache, signer: ItemSigner
) -> None:
    cache.apply_content(
        [
            signer.item(
                "playbook",
                "pb-mention",
                1,
                playbook_data(
                    "Pharmacy delays",
                    summary="Unrelated, though video calls are slow.",
                    tags=["pharmacy"],
                ),
            ),
            signer.item("playbook", "pb-title", 1, playbook_data("Video visit outage")),
            signer.item("template", "tpl", 1, template_data("Refill note", "Your refill is late.")),
        ],
        signer.verifier(),
    )

    hits = cache.search("video")

    assert [hit.id for hit in hits] == ["pb-title", "pb-mention"]
    assert hits[0].rank < hits[1].rank
    assert hits[0].title == "Video visit outage"
    assert f"{HIGHLIGHT_START}Video{HIGHLIGHT_END}" in hits[0].snippet
    assert ("Video", True) in highlight_parts(hits[0].snippet)
    assert [hit.kind for hit in cache.search("refill late")] == ["template"]


def test_search_as_you_type_matches_word_prefixes(cache: Cache, signer: ItemSigner) -> None:
    cache.apply_content(
        [signer.item("playbook", "pb", 1, playbook_data("Pharmacy outage"))], signer.verifier()
    )

    assert [hit.id for hit in cache.search("pharm")] == ["pb"]
    assert cache.search("pharm ") == []  # a finished word must match whole
    assert [hit.id for hit in cache.search("NOC on")] == ["pb"]  # phone tree is searchable


@pytest.mark.parametrize(
    "text",
    [
        '"',
        '"unbalanced',
        "*",
        "video*",
        "AND",
        "video AND",
        "OR NOT",
        "-outage",
        "video -",
        "NEAR(video outage)",
        "title:video",
        "^video",
        "(",
        "{title}: x",
        "'; DROP TABLE playbooks; --",
        "\x00\x02\x03",
        "   ",
        "",
        "vidéo",
        "😀 video",
        "x" * 10_000,
    ],
)
def test_hostile_search_text_never_raises(cache: Cache, signer: ItemSigner, text: str) -> None:
    cache.apply_content(
        [signer.item("playbook", "pb", 1, playbook_data("Video outage"))], signer.verifier()
    )

    hits = cache.search(text)

    assert all(hit.id == "pb" for hit in hits)
    assert cache.playbook("pb") is not None


def test_search_query_quotes_every_word() -> None:
    assert fts_query('video AND "out') == '"video" "AND" "out"*'
    assert fts_query("video ") == '"video"'
    assert fts_query("-- ** ") is None


def test_untrusted_text_cannot_fake_a_highlight(cache: Cache, signer: ItemSigner) -> None:
    sneaky = f"Outage {HIGHLIGHT_START}FAKE{HIGHLIGHT_END} marker"
    cache.apply_content(
        [signer.item("playbook", "pb", 1, playbook_data("Plain title", summary=sneaky))],
        signer.verifier(),
    )

    (hit,) = cache.search("marker")

    assert [part for part in highlight_parts(hit.snippet) if part[1]] == [("marker", True)]


def test_migration_from_first_schema_keeps_content_and_indexes_it(
    tmp_path: Path, signer: ItemSigner
) -> None:
    path = tmp_path / "cache.sqlite3"
    item = signer.item("playbook", "pb", 1, playbook_data("Pharmacy outage"))
    old = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](old)
    old.execute(
        "INSERT INTO playbooks (id, version, title, data, signature, key_id, stored_at) "
        "VALUES ('pb', 1, 'Pharmacy outage', ?, ?, ?, '2026-11-01T00:00:00Z')",
        (json.dumps(item["data"]), item["signature"], item["key_id"]),
    )
    old.execute("INSERT INTO sync_state (key, value) VALUES ('content_cursor', '41')")
    old.execute("PRAGMA user_version = 1")
    old.close()
    trust = ContentTrust(tmp_path / "content-keys.json")
    trust.choose(signer.keys_response())

    cache = Cache.open(path, trust)
    try:
        assert cache.quarantined is None
        assert cache.content_cursor() == 41
        assert [hit.id for hit in cache.search("pharmacy")] == ["pb"]
    finally:
        cache.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _filled_cache(path: Path, signer: ItemSigner) -> None:
    cache = Cache.open(path)
    cache.apply_content(
        [
            signer.item("playbook", f"pb-{n}", 1, playbook_data(f"Playbook {n} " + "words " * 200))
            for n in range(30)
        ],
        signer.verifier(),
    )
    cache.set_content_cursor(99)
    cache.close()


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database, just bytes\n" * 200)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _zero_page(path: Path) -> None:
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    data[page_size : 2 * page_size] = bytes(page_size)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_garbage, _truncate, _zero_page])
def test_corrupt_cache_is_quarantined_and_rebuilt(
    tmp_path: Path, signer: ItemSigner, damage: Any
) -> None:
    path = tmp_path / "cache.sqlite3"
    _filled_cache(path, signer)
    damage(path)
    damaged_bytes = path.read_bytes()

    cache = Cache.open(path)
    try:
        assert cache.quarantined is not None
        assert cache.quarantined.name.startswith("cache.sqlite3.corrupt-")
        assert cache.quarantined.read_bytes() == damaged_bytes
        # A fresh, empty cache: no cursor, so the next sync downloads everything again.
        assert cache.content_cursor() is None
        assert cache.playbooks() == []
        cache.apply_content(
            [signer.item("playbook", "pb", 1, playbook_data("Back"))], signer.verifier()
        )
        assert [hit.id for hit in cache.search("back")] == ["pb"]
    finally:
        cache.close()

    reopened = Cache.open(path)
    assert reopened.quarantined is None
    reopened.close()


def test_cache_from_a_newer_vigil_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    Cache.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")

    cache = Cache.open(path)
    assert cache.quarantined is not None
    cache.close()


def test_alerts_are_deduplicated_and_last_seq_tracked(tmp_path: Path) -> None:
    cache = Cache.open(tmp_path / "cache.sqlite3")
    assert cache.last_alert_seq() == 0

    first = cache.add_alerts([alert(3), alert(1)])
    again = cache.add_alerts([alert(1), alert(2), alert(3)])

    assert [a.seq for a in first] == [1, 3]
    assert [a.seq for a in again] == [2]
    assert cache.last_alert_seq() == 3
    assert [a.seq for a in cache.alerts()] == [3, 2, 1]
    assert cache.alert(alert(2).id) == alert(2)
    cache.close()

    reopened = Cache.open(tmp_path / "cache.sqlite3")
    assert reopened.add_alerts([alert(3)]) == []
    assert reopened.last_alert_seq() == 3
    reopened.close()


def test_sync_state_survives_reopen(tmp_path: Path) -> None:
    cache = Cache.open(tmp_path / "cache.sqlite3")
    cache.set_content_cursor(17)
    cache.set_state("content_key_ids", "abc")
    cache.close()

    reopened = Cache.open(tmp_path / "cache.sqlite3")
    assert reopened.content_cursor() == 17
    assert reopened.get_state("content_key_ids") == "abc"
    assert reopened.get_state("missing") is None
    reopened.close()


def test_cache_serves_several_threads_at_once(cache: Cache, signer: ItemSigner) -> None:
    """The sync thread, the alert stream and the UI's worker use one Cache together."""
    verifier = signer.verifier()
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(20):
                cache.apply_content(
                    [signer.item("playbook", f"pb-{worker}-{n}", 1, playbook_data(f"Outage {n}"))],
                    verifier,
                )
                cache.add_alerts([alert(worker * 100 + n + 1)])
                cache.search("outage")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(cache.playbooks()) == 80
    assert len(cache.alerts(limit=500)) == 80
