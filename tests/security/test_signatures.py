"""Content signatures against public test vectors, and 10,000 tampered items against a real cache.

- Project Wycheproof's Ed25519 vectors: the client's ContentVerifier (keys loaded the way the hub's
  key list is loaded) agrees with every verdict.
- The RFC 8785 reference test data: the canonical encoder both hub and client sign with gives the
  reference bytes.
- Seeded random mutations of signed items are all refused by the Cache; the good copy stays.
Sources and licences of the vectors: tests/security/vectors/README.md.
"""

from __future__ import annotations

import base64
import copy
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from client.core.cache import Cache
from client.core.content_verifier import ContentVerifier, key_id_of, signed_bytes
from client.core.errors import SignatureError
from tests.client.test_cache import ItemSigner, playbook_data

VECTORS = Path(__file__).parent / "vectors"
WYCHEPROOF = json.loads((VECTORS / "wycheproof" / "ed25519_test.json").read_text())
JCS_CASES = sorted(path.stem for path in (VECTORS / "rfc8785" / "input").glob("*.json"))
MUTATIONS = 10_000
MUTATION_SEED = 8785


def _wycheproof_cases() -> list[Any]:
    cases = []
    for group in WYCHEPROOF["testGroups"]:
        for test in group["tests"]:
            label = f"tc{test['tcId']}-{test['result']}-{'-'.join(test['flags'])}"
            cases.append(pytest.param(group["publicKey"]["pk"], test, id=label))
    return cases


def _verifier_for(raw_key: bytes) -> ContentVerifier:
    """A verifier built from a key list, as the client builds one from GET /v1/keys."""
    entry = {
        "key_id": key_id_of(raw_key),
        "public_key": base64.b64encode(raw_key).decode(),
        "algorithm": "Ed25519",
    }
    return ContentVerifier.from_keys_response({"content_keys": [entry]}, key_id_of(raw_key))


def test_every_wycheproof_vector_applies_to_the_client_verifier() -> None:
    # Vigil content keys are raw 32-byte Ed25519 keys and signatures are 64 bytes carried in
    # base64; every vector of the file has a 32-byte key, so none is set aside as not applicable.
    cases = _wycheproof_cases()
    assert len(cases) == WYCHEPROOF["numberOfTests"] == 210
    assert all(len(bytes.fromhex(case.values[0])) == 32 for case in cases)


@pytest.mark.parametrize(("public_key", "test"), _wycheproof_cases())
def test_client_verifier_agrees_with_wycheproof(public_key: str, test: dict[str, Any]) -> None:
    verifier = _verifier_for(bytes.fromhex(public_key))
    key_id = verifier.key_ids[0]
    signature, message = bytes.fromhex(test["sig"]), bytes.fromhex(test["msg"])

    try:
        verifier.check_signature(key_id, signature, message)
        accepted = True
    except SignatureError:
        accepted = False

    if test["result"] == "valid":
        assert accepted, test["comment"]
    elif test["result"] == "invalid":
        assert not accepted, test["comment"]
    else:
        # "acceptable": small- and mixed-order public keys, where RFC 8032 lets a verifier go
        # either way. Vigil only trusts the hub's key (pinned by IT), never one an item names.
        assert test["result"] == "acceptable"
        assert {"SmallOrderPublicKey", "MixedOrderPublicKey"} & set(test["flags"])


@pytest.mark.parametrize("name", JCS_CASES)
def test_rfc8785_encoder_matches_the_reference_output(name: str) -> None:
    source = (VECTORS / "rfc8785" / "input" / f"{name}.json").read_bytes()
    expected = (VECTORS / "rfc8785" / "output" / f"{name}.json").read_bytes()
    expected_hex = (VECTORS / "rfc8785" / "outhex" / f"{name}.txt").read_text().split()

    encoded = rfc8785.dumps(json.loads(source))

    assert encoded == expected
    assert encoded == bytes.fromhex("".join(expected_hex))


def test_signed_bytes_are_the_rfc8785_encoding_of_the_signed_fields_only() -> None:
    item = {
        "kind": "playbook",
        "id": "pb-€",
        "version": 3,
        "deleted": False,
        "data": {"title": "</script>", "n": 4.50},
        "signature": "ignored",
        "key_id": "ignored",
    }

    assert (
        signed_bytes(item)
        == (
            '{"data":{"n":4.5,"title":"</script>"},"deleted":false,"id":"pb-€","kind":"playbook",'
            '"version":3}'
        ).encode()
    )


def _flip_bit(text: str, rng: random.Random) -> str:
    raw = bytearray(text.encode("utf-8"))
    if not raw:
        return "x"
    index = rng.randrange(len(raw))
    raw[index] ^= 1 << rng.randrange(8)
    return raw.decode("utf-8", errors="replace")


def _flip_signature_bit(item: dict[str, Any], rng: random.Random) -> None:
    raw = bytearray(base64.b64decode(item["signature"]))
    raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
    item["signature"] = base64.b64encode(bytes(raw)).decode()


def _strings_in(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for key, child in value.items() for p in _strings_in(child, (*path, key))]
    if isinstance(value, list):
        return [p for index, child in enumerate(value) for p in _strings_in(child, (*path, index))]
    return []


def _flip_data_bit(item: dict[str, Any], rng: random.Random) -> None:
    paths = _strings_in(item["data"])
    if not paths:
        return
    path = rng.choice(paths)
    parent = item["data"]
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = _flip_bit(parent[path[-1]], rng)


def _retype(item: dict[str, Any], rng: random.Random) -> None:
    field = rng.choice(["kind", "id", "version", "deleted", "data", "signature", "key_id"])
    value = item[field]
    replacements: list[Any] = [None, 0, 1, -1, 2.0, True, False, "", "2", [], {}, [value]]
    item[field] = rng.choice([r for r in replacements if type(r) is not type(value)])


# Each keeps the field's type; _retype then changes one field's type in a share of the items.
_BIT_FLIPS: list[Callable[[dict[str, Any], random.Random], None]] = [
    _flip_signature_bit,
    _flip_data_bit,
    lambda item, rng: item.update(version=item["version"] ^ (1 << rng.randrange(8))),
    lambda item, rng: item.update(kind=_flip_bit(item["kind"], rng)),
    lambda item, rng: item.update(id=_flip_bit(item["id"], rng)),
    lambda item, rng: item.update(deleted=not item["deleted"]),
    lambda item, rng: item.update(deleted=True, data=None),
    lambda item, rng: item.update(key_id=_flip_bit(item["key_id"], rng)),
]


def _mutate(signed: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    item = copy.deepcopy(signed)
    for _ in range(rng.randint(1, 3)):
        rng.choice(_BIT_FLIPS)(item, rng)
    if rng.random() < 0.25:
        _retype(item, rng)
    return item


def test_ten_thousand_tampered_items_are_all_refused_and_the_good_version_stays(
    tmp_path: Path,
) -> None:
    signer = ItemSigner()
    verifier = signer.verifier()
    cache = Cache.open(tmp_path / "cache.sqlite3")
    good = signer.item("playbook", "pb-video", 1, playbook_data("Video visit outage"))
    assert cache.apply_content([good], verifier).stored == 1
    before = cache.playbook("pb-video")
    newer = signer.item("playbook", "pb-video", 2, playbook_data("Video visit outage, v2"))
    rng = random.Random(MUTATION_SEED)
    tampered: list[dict[str, Any]] = []
    while len(tampered) < MUTATIONS:
        item = _mutate(newer, rng)
        if item != newer:
            tampered.append(item)

    stored = deleted = refused = bad_signature = 0
    for start in range(0, MUTATIONS, 500):
        report = cache.apply_content(tampered[start : start + 500], verifier)
        stored += report.stored
        deleted += report.deleted
        refused += len(report.refused)
        bad_signature += sum("does not match its signature" in r.reason for r in report.refused)

    try:
        assert (stored, deleted, refused) == (0, 0, MUTATIONS)
        # Well-formed enough to reach the signature check itself, not just the shape checks.
        assert bad_signature > MUTATIONS // 3
        assert cache.playbook("pb-video") == before
        assert [hit.id for hit in cache.search("outage")] == ["pb-video"]
        assert cache.apply_content([newer], verifier).stored == 1
    finally:
        cache.close()
