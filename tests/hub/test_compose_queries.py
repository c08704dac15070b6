"""The store queries behind the console's compose page: the audience count a dispatcher sees
before publishing is the number of targets the publish then fixes, and content search offers
only items the hub holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import passwords, totp
from hub.clock import SystemClock
from hub.signing import ContentSigner
from hub.storage import Store
from hub.storage.accounts import Role

AGENTS = [f"agent{number}" for number in range(6)]
GROUPS = ["West", "East", "Nights"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = Store.open(tmp_path_factory.mktemp("compose") / "hub.db", SystemClock())
    digest = passwords.hash_password("correct horse battery staple")
    roles: dict[str, Role] = {"disp": "dispatcher", "boss": "admin"}
    for username in [*AGENTS, "disp", "boss", "gone"]:
        opened.accounts.create_user(
            username=username,
            display_name=username,
            role=roles.get(username, "agent"),
            password_hash=digest,
            totp_secret=totp.new_secret(),
        )
    for name in GROUPS:
        opened.groups.create(name, "team")
    try:
        yield opened
    finally:
        opened.close()


def _publish(store: Store, audience: list[str] | None) -> str:
    alert, _ = store.alerts.publish(
        severity="minor",
        title="Count check",
        body="Body",
        playbook_id=None,
        template_ids=[],
        requires_ack=True,
        expires_at=None,
        issued_by="disp",
        audience=audience,
    )
    return alert.id


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    memberships=st.dictionaries(
        st.sampled_from(GROUPS),
        st.sets(st.sampled_from([*AGENTS, "disp", "boss", "gone"]), max_size=9),
        max_size=3,
    ),
    audience=st.one_of(
        st.none(), st.lists(st.sampled_from([*GROUPS, "west", "NoSuchGroup"]), max_size=5)
    ),
    disabled=st.booleans(),
)
def test_audience_count_is_the_targets_publish_fixes(
    store: Store,
    memberships: dict[str, set[str]],
    audience: list[str] | None,
    disabled: bool,
) -> None:
    for group in GROUPS:
        store.groups.remove_members(group, [*AGENTS, "disp", "boss", "gone"])
        store.groups.add_members(group, sorted(memberships.get(group, set())))
    if disabled:
        store.accounts.disable_user(username="gone")
    else:
        store.accounts.enable_user(username="gone")

    counted = store.alerts.count_audience(audience)
    alert_id = _publish(store, audience)

    assert counted == store.alerts.count_targets(alert_id)
    # Dispatchers and admins oversee alerts: never counted, never targeted.
    assert not {"disp", "boss"} & set(store.alerts.targets(alert_id))


def test_content_search_finds_only_live_items_literally(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "hub.db", SystemClock())
    signer = ContentSigner(Ed25519PrivateKey.generate())
    try:
        store.content.upsert("playbook", "pb-video", {"title": "Video visits down"}, signer)
        store.content.upsert("playbook", "pb-100%", {"title": "Full 100% outage"}, signer)
        store.content.upsert("playbook", "pb-old", {"title": "Video (old)"}, signer)
        store.content.delete("playbook", "pb-old", signer)
        store.content.upsert("template", "tpl-video", {"title": "Video banner"}, signer)

        assert [item.id for item in store.content.search("playbook", "video", 10)] == ["pb-video"]
        assert [item.id for item in store.content.search("playbook", "pb-", 10)] == [
            "pb-100%",
            "pb-video",
        ]
        # % and _ are the dispatcher's characters, not wildcards.
        assert [item.id for item in store.content.search("playbook", "100%", 10)] == ["pb-100%"]
        assert store.content.search("playbook", "%", 10)[0].id == "pb-100%"
        assert store.content.search("playbook", "_", 10) == []
        assert store.content.search("playbook", "<script>", 10) == []
        assert store.content.search("playbook", "\u202e", 10) == []
        assert [item.id for item in store.content.search("template", "video", 10)] == ["tpl-video"]
        assert len(store.content.search("playbook", "", 1)) == 1
    finally:
        store.close()
