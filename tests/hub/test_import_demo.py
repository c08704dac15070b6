"""Importing content folders and loading the demo, checked through a running hub over HTTP."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import requests
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.content_import import ContentImportError, import_content
from hub.demo import DEMO_CONTACTS, DEMO_GROUP, DEMO_USERS, demo_content_dir, load_demo
from hub.server import EmbeddedHub
from hub.signing import ContentSigner
from tests.hubtools import DEFAULT_PASSWORD, HTTP_TIMEOUT, auth_headers, create_user, sign_in

PLAYBOOK: dict[str, Any] = {
    "title": "EHR downtime",
    "category": "Clinical systems",
    "severity": "major",
    "summary": "The EHR is read-only or unreachable.",
    "steps": ["Switch to downtime forms", "Log every visit by visit ID"],
    "escalation_path": [
        {"level": 1, "role": "Shift lead", "contact": "ext. 4100", "after_minutes": 0}
    ],
    "phone_tree": [
        {
            "order": 1,
            "name": "EHR on-call",
            "role": "Clinical apps",
            "phone": "+1-555-0110",
            "notes": "24/7",
        }
    ],
    "template_ids": ["tpl-ehr-chat"],
    "tags": ["ehr"],
}
TEMPLATE: dict[str, Any] = {
    "title": "EHR slow: chat reply",
    "channel": "chat",
    "subject": None,
    "body": "Thanks for waiting, {patient_first_name}. Our records system is slow right now.",
    "placeholders": [{"name": "patient_first_name", "description": "First name only"}],
    "approved_by": "Patient Communications",
    "approved_at": "2026-09-02",
    "locale": "en-US",
    "tags": ["ehr", "chat"],
}


def write_item(root: Path, folder: str, item_id: str, data: Any, **extra: Any) -> Path:
    path = root / folder / f"{item_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"id": item_id, "data": data, **extra}), encoding="utf-8")
    return path


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    write_item(root, "playbooks", "pb-ehr", PLAYBOOK)
    write_item(root, "templates", "tpl-ehr-chat", TEMPLATE)
    return root


def signer_of(hub: EmbeddedHub) -> ContentSigner:
    signer: ContentSigner = hub.app.state.signer
    return signer


def agent_token(hub: EmbeddedHub) -> str:
    secret = create_user(hub.store, "ana", "agent")
    token: str = sign_in(hub.url, "ana", DEFAULT_PASSWORD, secret)["access_token"]
    return token


def content(hub: EmbeddedHub, token: str, since: int | None = None) -> dict[str, Any]:
    params = {} if since is None else {"since": since}
    response = requests.get(
        f"{hub.url}/v1/content", params=params, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_import_stores_playbooks_and_templates(hub: EmbeddedHub, content_dir: Path) -> None:
    report = import_content(hub.store, signer_of(hub), content_dir)

    items = content(hub, agent_token(hub))["items"]
    assert sorted(report.changed) == ["playbook/pb-ehr", "template/tpl-ehr-chat"]
    assert {(item["kind"], item["id"], item["version"]) for item in items} == {
        ("playbook", "pb-ehr", 1),
        ("template", "tpl-ehr-chat", 1),
    }
    [template] = [item for item in items if item["kind"] == "template"]
    assert template["data"] == TEMPLATE


def test_importing_unchanged_content_makes_no_new_version(
    hub: EmbeddedHub, content_dir: Path
) -> None:
    import_content(hub.store, signer_of(hub), content_dir)
    token = agent_token(hub)
    cursor = content(hub, token)["cursor"]

    report = import_content(hub.store, signer_of(hub), content_dir)

    assert report.changed == []
    assert len(report.unchanged) == 2
    assert content(hub, token, since=cursor)["items"] == []


def test_importing_changed_content_bumps_only_that_version(
    hub: EmbeddedHub, content_dir: Path
) -> None:
    import_content(hub.store, signer_of(hub), content_dir)
    token = agent_token(hub)
    cursor = content(hub, token)["cursor"]
    write_item(content_dir, "playbooks", "pb-ehr", {**PLAYBOOK, "steps": ["Call the EHR desk"]})

    report = import_content(hub.store, signer_of(hub), content_dir)

    assert report.changed == ["playbook/pb-ehr"]
    [item] = content(hub, token, since=cursor)["items"]
    assert (item["id"], item["version"], item["data"]["steps"]) == (
        "pb-ehr",
        2,
        ["Call the EHR desk"],
    )
    key = requests.get(f"{hub.url}/v1/keys", timeout=HTTP_TIMEOUT).json()["content_keys"][0]
    signed = {name: item[name] for name in ("kind", "id", "version", "deleted", "data")}
    Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"])).verify(
        base64.b64decode(item["signature"]), rfc8785.dumps(signed)
    )


@pytest.mark.parametrize(
    ("folder", "data", "extra", "problem"),
    [
        ("playbooks", {**PLAYBOOK, "owner": "me"}, {}, "owner"),
        ("playbooks", {**PLAYBOOK, "severity": "apocalyptic"}, {}, "severity"),
        ("playbooks", {k: v for k, v in PLAYBOOK.items() if k != "steps"}, {}, "steps"),
        ("templates", {**TEMPLATE, "channel": "fax"}, {}, "channel"),
        ("templates", {**TEMPLATE, "body": "Hi {patient_last_name}"}, {}, "patient_last_name"),
        ("templates", {**TEMPLATE, "channel": "email"}, {}, "subject"),
        ("templates", TEMPLATE, {"version": 3}, "version"),
    ],
    ids=[
        "unknown-field",
        "bad-severity",
        "missing-steps",
        "bad-channel",
        "undescribed-placeholder",
        "email-without-subject",
        "extra-top-level-field",
    ],
)
def test_a_bad_file_is_named_and_nothing_is_imported(
    hub: EmbeddedHub,
    content_dir: Path,
    folder: str,
    data: dict[str, Any],
    extra: dict[str, Any],
    problem: str,
) -> None:
    bad = write_item(content_dir, folder, "zz-bad", data, **extra)

    with pytest.raises(ContentImportError) as raised:
        import_content(hub.store, signer_of(hub), content_dir)

    assert str(bad) in str(raised.value)
    assert problem in str(raised.value)
    assert content(hub, agent_token(hub))["items"] == []


def test_a_file_that_is_not_json_is_named_with_its_line(
    hub: EmbeddedHub, content_dir: Path
) -> None:
    bad = content_dir / "templates" / "broken.json"
    bad.write_text('{"id": "tpl-broken",\n  "data": {', encoding="utf-8")

    with pytest.raises(ContentImportError, match="line 2") as raised:
        import_content(hub.store, signer_of(hub), content_dir)

    assert str(bad) in str(raised.value)


def test_a_folder_without_content_is_refused(hub: EmbeddedHub, tmp_path: Path) -> None:
    with pytest.raises(ContentImportError, match="neither a playbooks/ nor a templates/"):
        import_content(hub.store, signer_of(hub), tmp_path)


def test_the_demo_content_is_complete_and_valid(hub: EmbeddedHub) -> None:
    load_demo(hub.store, signer_of(hub), hub.settings)

    items = content(hub, agent_token(hub))["items"]
    playbooks = [item for item in items if item["kind"] == "playbook"]
    templates = [item for item in items if item["kind"] == "template"]
    assert len(playbooks) >= 8
    assert len(templates) >= 15
    assert {item["data"]["channel"] for item in templates} == {
        "phone_script",
        "sms",
        "email",
        "chat",
        "portal_banner",
    }
    template_ids = {item["id"] for item in templates}
    for item in playbooks:
        assert set(item["data"]["template_ids"]) <= template_ids, item["id"]


def test_loading_the_demo_again_keeps_users_and_content(hub: EmbeddedHub) -> None:
    first = load_demo(hub.store, signer_of(hub), hub.settings)
    second = load_demo(hub.store, signer_of(hub), hub.settings)

    assert [user.created for user in first.users] == [True] * len(DEMO_USERS)
    assert [user.created for user in second.users] == [False] * len(DEMO_USERS)
    # The demo group and its agents' call-out contacts come once, and stay.
    west = hub.store.groups.get(DEMO_GROUP)
    assert west is not None and west.members == sorted(DEMO_CONTACTS)
    assert [user.totp_secret for user in second.users] == [user.totp_secret for user in first.users]
    assert second.content.changed == []
    assert len(second.content.unchanged) == len(first.content.changed)


def test_the_demo_users_sign_in_with_what_the_demo_prints(hub: EmbeddedHub) -> None:
    credentials = load_demo(hub.store, signer_of(hub), hub.settings)

    summary = credentials.summary()
    for user in credentials.users:
        assert user.password is not None
        assert user.password in summary
        assert user.totp_secret in summary
        tokens = sign_in(hub.url, user.username, user.password, user.totp_secret)
        assert tokens["user"]["role"] == user.role
    assert [(user.username, user.role) for user in credentials.users] == [
        (username, role) for username, role, _, _ in DEMO_USERS
    ]


def test_demo_secrets_stay_out_of_repr(hub: EmbeddedHub) -> None:
    credentials = load_demo(hub.store, signer_of(hub), hub.settings)

    text = repr(credentials)
    for user in credentials.users:
        assert user.totp_secret not in text
        assert user.password is not None
        assert user.password not in text


def test_the_demo_folder_is_found_from_the_package() -> None:
    found = demo_content_dir()

    assert (found / "playbooks").is_dir()
    assert (found / "templates").is_dir()
