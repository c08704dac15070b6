"""Content over HTTP: the public key, paging the signed change feed, tombstones, the key file."""

from __future__ import annotations

import base64
import hashlib
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.server import EmbeddedHub
from hub.signing import KEY_FILENAME, ContentKeyError, ContentSigner
from tests.hubtools import HTTP_TIMEOUT, auth_headers, create_user, sign_in

PLAYBOOK = {
    "title": "Video visit platform outage",
    "category": "Platform outage",
    "severity": "critical",
    "summary": "Patients cannot join video visits.",
    "steps": ["Confirm the outage on the status page", "Move visits to phone"],
    "escalation_path": [
        {"level": 1, "role": "Shift lead", "contact": "ext. 4100", "after_minutes": 0}
    ],
    "phone_tree": [],
    "template_ids": [],
    "tags": ["video", "outage"],
}


def agent_token(hub: EmbeddedHub, username: str = "ana") -> str:
    secret = create_user(hub.store, username, "agent")
    token: str = sign_in(hub.url, username, "correct horse battery staple", secret)["access_token"]
    return token


def get_content(hub: EmbeddedHub, token: str, **params: Any) -> requests.Response:
    return requests.get(
        f"{hub.url}/v1/content", params=params, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )


def public_key(hub: EmbeddedHub) -> tuple[str, Ed25519PublicKey]:
    response = requests.get(f"{hub.url}/v1/keys", timeout=HTTP_TIMEOUT)
    assert response.status_code == 200
    [key] = response.json()["content_keys"]
    return key["key_id"], Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))


def verify(item: dict[str, Any], key: Ed25519PublicKey) -> None:
    """What any client does before storing an item; raises InvalidSignature when it fails."""
    signed = {name: item[name] for name in ("kind", "id", "version", "deleted", "data")}
    key.verify(base64.b64decode(item["signature"]), rfc8785.dumps(signed))


def playbook(title: str) -> dict[str, Any]:
    return {**PLAYBOOK, "title": title}


def signer_of(hub: EmbeddedHub) -> ContentSigner:
    signer: ContentSigner = hub.app.state.signer
    return signer


def test_keys_publish_the_raw_ed25519_key_with_its_id(hub: EmbeddedHub) -> None:
    response = requests.get(f"{hub.url}/v1/keys", timeout=HTTP_TIMEOUT)

    [key] = response.json()["content_keys"]
    raw = base64.b64decode(key["public_key"], validate=True)
    assert len(raw) == 32
    assert key["key_id"] == hashlib.sha256(raw).hexdigest()[:16]
    assert key["algorithm"] == "Ed25519"


def test_keys_mark_the_signing_key_current_for_first_use(hub: EmbeddedHub) -> None:
    keys = requests.get(f"{hub.url}/v1/keys", timeout=HTTP_TIMEOUT).json()["content_keys"]

    assert [key["current"] for key in keys] == [True]
    assert keys[0]["key_id"] == signer_of(hub).key_id


def test_content_pages_through_changes_with_since_exclusive(hub: EmbeddedHub) -> None:
    signer = signer_of(hub)
    for number in range(5):
        hub.store.content.upsert("playbook", f"pb-{number}", playbook(f"Playbook {number}"), signer)
    token = agent_token(hub)

    seen: list[str] = []
    cursors: list[int] = []
    mores: list[bool] = []
    since: int | None = None
    for _ in range(10):
        params = {"limit": 2} if since is None else {"limit": 2, "since": since}
        body = get_content(hub, token, **params).json()
        seen += [item["id"] for item in body["items"]]
        cursors.append(body["cursor"])
        mores.append(body["more"])
        since = body["cursor"]
        if not body["more"]:
            break

    assert seen == [f"pb-{number}" for number in range(5)]
    assert mores == [True, True, False]
    assert cursors == sorted(set(cursors))
    last = get_content(hub, token, since=since).json()
    assert last == {"cursor": since, "more": False, "items": []}


def test_an_update_appears_once_at_its_latest_change(hub: EmbeddedHub) -> None:
    signer = signer_of(hub)
    hub.store.content.upsert("playbook", "pb-a", playbook("First"), signer)
    hub.store.content.upsert("playbook", "pb-b", playbook("Second"), signer)
    token = agent_token(hub)
    cursor = get_content(hub, token).json()["cursor"]

    hub.store.content.upsert("playbook", "pb-a", playbook("First, revised"), signer)

    everything = get_content(hub, token).json()["items"]
    assert [(item["id"], item["version"]) for item in everything] == [("pb-b", 1), ("pb-a", 2)]
    [changed] = get_content(hub, token, since=cursor).json()["items"]
    assert changed["data"]["title"] == "First, revised"


def test_every_item_verifies_with_the_published_key(hub: EmbeddedHub) -> None:
    signer = signer_of(hub)
    hub.store.content.upsert("playbook", "pb-1", playbook("Outage"), signer)
    template = {
        "title": "Visit moved to phone",
        "channel": "sms",
        "subject": None,
        "body": "Hi {patient_first_name}, your visit today is by phone.",
        "placeholders": [{"name": "patient_first_name", "description": "First name only"}],
        "approved_by": "Patient Communications",
        "approved_at": "2026-09-02",
        "locale": "en-US",
        "tags": ["sms", "ünïcode ✓"],
    }
    hub.store.content.upsert("template", "tpl-1", template, signer)
    key_id, key = public_key(hub)

    items = get_content(hub, agent_token(hub)).json()["items"]

    assert len(items) == 2
    for item in items:
        assert item["key_id"] == key_id
        verify(item, key)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda item: item["data"].update(title="Call this number instead: +1-555-0199"),
        lambda item: item.update(version=item["version"] + 1),
        lambda item: item.update(kind="template"),
        lambda item: item.update(deleted=True, data=None),
    ],
    ids=["data", "version", "kind", "deleted"],
)
def test_a_tampered_item_fails_verification(
    hub: EmbeddedHub, tamper: Callable[[dict[str, Any]], None]
) -> None:
    hub.store.content.upsert("playbook", "pb-1", playbook("Outage"), signer_of(hub))
    _, key = public_key(hub)
    [item] = get_content(hub, agent_token(hub)).json()["items"]
    verify(item, key)

    tamper(item)

    with pytest.raises(InvalidSignature):
        verify(item, key)


def test_a_deletion_is_a_signed_tombstone_with_null_data(hub: EmbeddedHub) -> None:
    signer = signer_of(hub)
    hub.store.content.upsert("playbook", "pb-gone", playbook("Retired"), signer)
    token = agent_token(hub)
    cursor = get_content(hub, token).json()["cursor"]

    assert hub.store.content.delete("playbook", "pb-gone", signer) is True
    assert hub.store.content.delete("playbook", "pb-gone", signer) is False

    body = get_content(hub, token, since=cursor).json()
    [item] = body["items"]
    assert (item["id"], item["deleted"], item["data"], item["version"]) == (
        "pb-gone",
        True,
        None,
        2,
    )
    verify(item, public_key(hub)[1])
    assert body["cursor"] > cursor


def test_unchanged_data_makes_no_new_version(hub: EmbeddedHub) -> None:
    signer = signer_of(hub)
    assert hub.store.content.upsert("playbook", "pb-1", playbook("Same"), signer) is True
    token = agent_token(hub)
    cursor = get_content(hub, token).json()["cursor"]

    assert hub.store.content.upsert("playbook", "pb-1", playbook("Same"), signer) is False

    assert get_content(hub, token, since=cursor).json()["items"] == []


def test_content_needs_a_signed_in_agent(hub: EmbeddedHub) -> None:
    response = requests.get(f"{hub.url}/v1/content", timeout=HTTP_TIMEOUT)

    assert response.status_code == 401
    assert response.json()["error"] == "token_invalid"


@pytest.mark.parametrize(
    "params",
    [{"since": -1}, {"since": "abc"}, {"limit": 0}, {"limit": 1001}, {"limit": "many"}],
    ids=["negative-since", "text-since", "zero-limit", "limit-over-max", "text-limit"],
)
def test_bad_paging_parameters_get_invalid_request(
    hub: EmbeddedHub, params: dict[str, Any]
) -> None:
    response = get_content(hub, agent_token(hub), **params)

    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_the_key_file_is_private_and_reused_after_a_restart(
    start_hub: Callable[..., EmbeddedHub],
) -> None:
    first = start_hub()
    key_before = public_key(first)
    data_dir = first.settings.data_dir
    first.stop()

    second = start_hub()

    assert public_key(second)[0] == key_before[0]
    key_file = data_dir / KEY_FILENAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def test_a_damaged_key_file_is_refused_and_kept(tmp_path: Path) -> None:
    ContentSigner.load_or_create(tmp_path)
    key_file = tmp_path / KEY_FILENAME
    key_file.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")

    with pytest.raises(ContentKeyError, match=str(key_file)):
        ContentSigner.load_or_create(tmp_path)

    assert b"not a key" in key_file.read_bytes()
