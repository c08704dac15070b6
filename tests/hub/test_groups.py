"""Groups and call-out contacts over real HTTP and the real command line: who an audience reaches,
what the admin user object shows, and hostile names, phones and addresses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from hub import cli
from hub.config import HubSettings
from hub.server import EmbeddedHub
from hub.storage.audit import AuditQuery
from tests.hubtools import HTTP_TIMEOUT, access_token, auth_headers, create_user

PARALLEL = 40


def call(
    hub: EmbeddedHub, token: str, method: str, path: str, body: Any = None
) -> requests.Response:
    return requests.request(
        method, f"{hub.url}{path}", json=body, headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )


@dataclass(frozen=True)
class SharedHub:
    """One hub and admin for the many hostile-value cases, which each leave it as they found it."""

    hub: EmbeddedHub
    admin: str


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedHub]:
    settings = HubSettings(data_dir=tmp_path_factory.mktemp("shared") / "hub")
    with EmbeddedHub(settings) as hub:
        admin = access_token(hub.store, hub.url, "root", "admin")
        create_user(hub.store, "ana")
        yield SharedHub(hub, admin)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_groups_reach_their_enabled_agents_and_show_on_the_user_object(hub: EmbeddedHub) -> None:
    admin = access_token(hub.store, hub.url, "root", "admin")
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    for name in ("ana", "ben", "cal"):
        create_user(hub.store, name)

    created = call(hub, admin, "POST", "/v1/admin/groups", {"name": "West", "kind": "region"})
    added = call(
        hub, admin, "POST", "/v1/admin/groups/west/members", {"usernames": ["ANA", "ben", "dora"]}
    )
    again = call(hub, admin, "POST", "/v1/admin/groups/West/members", {"usernames": ["ana"]})
    call(hub, admin, "POST", "/v1/admin/users/ben/disable")
    listed = call(hub, dispatcher, "GET", "/v1/groups")
    ana = call(hub, admin, "GET", "/v1/admin/users/ana").json()
    cal = call(hub, admin, "GET", "/v1/admin/users/cal").json()

    assert created.status_code == 201, created.text
    assert created.json()["group"]["members"] == []
    assert added.json()["added"] == ["ana", "ben", "dora"]
    assert again.json()["added"] == []
    # Only enabled agents count: ben is disabled, dora is a dispatcher.
    assert listed.json() == {
        "groups": [{"name": "West", "kind": "region", "description": "", "agents": 1}]
    }
    assert (ana["groups"], ana["phone"], ana["fallback_email"]) == (["West"], None, None)
    assert cal["groups"] == []
    events = hub.store.audit.query(AuditQuery(event="group.*"))
    assert [(e.event, e.actor, e.subject, e.outcome) for e in events] == [
        ("group.created", "root", "West", "ok"),
        ("group.members_added", "root", "West", "ok"),
        ("group.members_added", "root", "West", "no_change"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "kind": "team"},
        {"name": "x" * 65, "kind": "team"},
        {"name": "West\u202eTSAE", "kind": "region"},
        {"name": "Night\nshift", "kind": "shift"},
        {"name": " West", "kind": "region"},
        {"name": "   ", "kind": "region"},
        {"name": "a/b", "kind": "team"},
        {"name": "Squad", "kind": "squad"},
        {"name": "Squad"},
        {"name": "Squad", "kind": "team", "description": "d" * 501},
        {"name": "Squad", "kind": "team", "description": "bell\x07"},
        {"name": "Squad", "kind": "team", "members": ["ana"]},
        ["Squad"],
    ],
)
def test_a_hostile_group_is_refused_and_nothing_is_created(shared: SharedHub, body: Any) -> None:
    hub, admin = shared.hub, shared.admin

    response = call(hub, admin, "POST", "/v1/admin/groups", body)

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"
    assert hub.store.groups.all() == []


def test_group_names_are_data_unique_in_any_case_and_unknown_ones_are_404(
    hub: EmbeddedHub,
) -> None:
    admin = access_token(hub.store, hub.url, "root", "admin")
    create_user(hub.store, "ana")
    html = "<img src=x onerror=alert(1)> & Team \u00e9\U0001f6a8"

    kept = call(hub, admin, "POST", "/v1/admin/groups", {"name": html, "kind": "team"})
    # Letter case is folded for ASCII letters (SQLite's NOCASE).
    other_case = html.replace("Team", "tEAM")
    taken = call(hub, admin, "POST", "/v1/admin/groups", {"name": other_case, "kind": "team"})
    missing = [
        call(hub, admin, "DELETE", "/v1/admin/groups/Nowhere"),
        call(hub, admin, "POST", "/v1/admin/groups/Nowhere/members", {"usernames": ["ana"]}),
        call(hub, admin, "DELETE", "/v1/admin/groups/Nowhere/members/ana"),
        call(hub, admin, "GET", "/v1/admin/groups/Nowhere"),
    ]
    unknown_member = call(
        hub, admin, "POST", f"/v1/admin/groups/{html}/members", {"usernames": ["ana", "nobody"]}
    )

    assert kept.status_code == 201 and kept.json()["group"]["name"] == html
    assert (taken.status_code, taken.json()["error"]) == (409, "group_exists")
    assert [(r.status_code, r.json()["error"]) for r in missing] == [(404, "unknown_group")] * 4
    assert (unknown_member.status_code, unknown_member.json()["error"]) == (404, "unknown_user")
    # The batch is one transaction: ana was not added either.
    assert hub.store.groups.get(html).members == []  # type: ignore[union-attr]


def test_forty_parallel_adds_of_one_member_add_them_once(hub: EmbeddedHub) -> None:
    admin = access_token(hub.store, hub.url, "root", "admin")
    create_user(hub.store, "ana")
    call(hub, admin, "POST", "/v1/admin/groups", {"name": "West", "kind": "region"})

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        answers = list(
            pool.map(
                lambda _: call(
                    hub, admin, "POST", "/v1/admin/groups/West/members", {"usernames": ["ana"]}
                ),
                range(PARALLEL),
            )
        )

    assert [r.status_code for r in answers] == [200] * PARALLEL
    assert sorted(len(r.json()["added"]) for r in answers) == [0] * (PARALLEL - 1) + [1]
    assert hub.store.groups.get("West").members == ["ana"]  # type: ignore[union-attr]


def test_removing_members_groups_and_users(hub: EmbeddedHub) -> None:
    admin = access_token(hub.store, hub.url, "root", "admin")
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    create_user(hub.store, "ana")
    create_user(hub.store, "ben")
    call(hub, admin, "POST", "/v1/admin/groups", {"name": "West", "kind": "region"})
    call(hub, admin, "POST", "/v1/admin/groups/West/members", {"usernames": ["ana", "ben"]})
    alert = call(
        hub,
        dispatcher,
        "POST",
        "/v1/alerts",
        {"severity": "major", "title": "T", "body": "B", "audience": ["West"]},
    ).json()

    out = call(hub, admin, "DELETE", "/v1/admin/groups/West/members/BEN")
    not_in = call(hub, admin, "DELETE", "/v1/admin/groups/West/members/ben")
    call(hub, admin, "DELETE", "/v1/admin/users/ana")
    create_user(hub.store, "ana")
    removed = call(hub, admin, "DELETE", "/v1/admin/groups/West")

    assert out.json()["removed"] == ["ben"] and out.json()["group"]["members"] == ["ana"]
    assert not_in.json()["removed"] == []
    # A new account of a removed user's name starts in no group.
    assert call(hub, admin, "GET", "/v1/admin/users/ana").json()["groups"] == []
    assert removed.status_code == 200 and hub.store.groups.all() == []
    # An alert already sent keeps who it was for.
    assert sorted(hub.store.alerts.targets(alert["id"])) == ["ana", "ben"]


def test_only_admins_manage_groups_and_only_dispatchers_list_them(hub: EmbeddedHub) -> None:
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    agent = access_token(hub.store, hub.url, "ana")
    hub.store.groups.create("West", "region")

    refused = [
        call(hub, token, method, path, body)
        for token in (dispatcher, agent)
        for method, path, body in (
            ("POST", "/v1/admin/groups", {"name": "East", "kind": "region"}),
            ("DELETE", "/v1/admin/groups/West", None),
            ("POST", "/v1/admin/groups/West/members", {"usernames": ["ana"]}),
            ("POST", "/v1/admin/users/ana/contact", {"phone": "555 0100"}),
        )
    ]
    refused.append(call(hub, agent, "GET", "/v1/groups"))

    assert [r.status_code for r in refused] == [403] * len(refused)
    assert [g.name for g in hub.store.groups.all()] == ["West"]
    assert hub.store.groups.get("West").members == []  # type: ignore[union-attr]
    assert hub.store.groups.profile("ana").phone is None


def test_contact_is_set_cleared_and_left_alone_field_by_field(hub: EmbeddedHub) -> None:
    admin = access_token(hub.store, hub.url, "root", "admin")
    create_user(hub.store, "ana")
    path = "/v1/admin/users/ANA/contact"

    both = call(
        hub, admin, "POST", path, {"phone": "+1 (555) 010-2030", "fallback_email": "p@sms.ex.org"}
    )
    phone_only = call(hub, admin, "POST", path, {"phone": "555.0100"})
    cleared = call(hub, admin, "POST", path, {"fallback_email": None})
    unknown = call(hub, admin, "POST", "/v1/admin/users/nobody/contact", {"phone": "555 0100"})

    assert both.status_code == 200, both.text
    assert (both.json()["user"]["phone"], both.json()["user"]["fallback_email"]) == (
        "+1 (555) 010-2030",
        "p@sms.ex.org",
    )
    assert (phone_only.json()["user"]["phone"], phone_only.json()["user"]["fallback_email"]) == (
        "555.0100",
        "p@sms.ex.org",
    )
    assert (cleared.json()["user"]["phone"], cleared.json()["user"]["fallback_email"]) == (
        "555.0100",
        None,
    )
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_user")
    events = hub.store.audit.query(AuditQuery(event="user.contact_set"))
    assert [(e.subject, e.outcome, e.detail) for e in events][-3:] == [
        ("ana", "ok", {"phone": "set"}),
        ("ana", "ok", {"fallback_email": "cleared"}),
        ("nobody", "unknown_user", {"phone": "set"}),
    ]
    # The audit says what changed, never the number or address itself.
    assert all("555" not in str(e.detail) for e in events)


@pytest.mark.parametrize(
    "body",
    [
        {"phone": "12"},
        {"phone": "1" * 41},
        {"phone": "call me"},
        {"phone": "+1 555\n0100"},
        {"phone": "555 0100\u202e"},
        {"phone": "---"},
        {"phone": ""},
        {"fallback_email": "no-at-sign"},
        {"fallback_email": "a@b"},
        {"fallback_email": "a b@example.org"},
        {"fallback_email": "a@example.org\u202e"},
        {"fallback_email": "<script>@x.org>"},
        {"fallback_email": "x" * 250 + "@example.org"},
        {"fallback_email": ""},
        {"phone": 5550100},
        {"pager": "555 0100"},
    ],
)
def test_a_hostile_contact_is_refused_and_changes_nothing(shared: SharedHub, body: Any) -> None:
    hub, admin = shared.hub, shared.admin
    start = {"phone": "555 0100", "fallback_email": None}
    assert call(hub, admin, "POST", "/v1/admin/users/ana/contact", start).status_code == 200

    response = call(hub, admin, "POST", "/v1/admin/users/ana/contact", body)

    assert response.status_code == 422, response.text
    profile = hub.store.groups.profile("ana")
    assert (profile.phone, profile.fallback_email) == ("555 0100", None)


def test_group_and_contact_commands(hub: EmbeddedHub, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(hub.settings.data_dir)
    create_user(hub.store, "ana")
    create_user(hub.store, "dora", "dispatcher")

    steps = [
        run(
            capsys,
            "group",
            "add",
            "West",
            "--kind",
            "region",
            "--description",
            "<b>W</b>",
            "--data",
            data,
        ),
        run(capsys, "group", "add-member", "West", "ana", "dora", "--data", data),
        run(capsys, "group", "list", "--data", data),
        run(capsys, "group", "show", "west", "--data", data),
        run(capsys, "user", "contact", "ana", "--phone", "+44 20 7946 0000", "--data", data),
        run(capsys, "user", "show", "ana", "--data", data),
        run(capsys, "group", "remove-member", "West", "dora", "--data", data),
        run(capsys, "user", "contact", "ana", "--clear-phone", "--data", data),
        run(capsys, "group", "remove", "West", "--data", data),
    ]

    assert [status for status, _, _ in steps] == [0] * len(steps), steps
    assert steps[1][1] == "Added to West: ana, dora.\n"
    table = steps[2][1].splitlines()
    assert table[0].split() == ["NAME", "KIND", "MEMBERS", "AGENTS", "DESCRIPTION"]
    assert table[1].split() == ["West", "region", "2", "1", "<b>W</b>"]
    assert re.search(r"^members: +ana, dora$", steps[3][1], re.MULTILINE)
    assert re.search(r"^phone: +\+44 20 7946 0000$", steps[5][1], re.MULTILINE)
    assert re.search(r"^groups: +West$", steps[5][1], re.MULTILINE)
    assert steps[6][1] == "Removed from West: dora.\n"
    assert hub.store.groups.all() == []
    assert hub.store.groups.profile("ana").phone is None
    actors = {e.actor for e in hub.store.audit.query(AuditQuery(event="group.*"))}
    assert len(actors) == 1 and actors.pop().startswith("cli:")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["group", "add", "West", "--kind", "region"], "already exists"),
        (["group", "add", "We\u202est", "--kind", "region"], "control character U+202E"),
        (["group", "show", "Nowhere"], "There is no group named 'Nowhere'"),
        (["group", "remove", "Nowhere"], "There is no group named 'Nowhere'"),
        (["group", "add-member", "West", "nobody"], "There is no user named 'nobody'"),
        (["group", "add-member", "Nowhere", "ana"], "There is no group named 'Nowhere'"),
        (["user", "contact", "ana", "--phone", "call me"], "phone: use 3 to 40"),
        (["user", "contact", "ana"], "nothing to change"),
        (["user", "contact", "ana", "--phone", "555 0100", "--clear-phone"], "not both"),
        (["user", "contact", "nobody", "--phone", "555 0100"], "no user named 'nobody'"),
    ],
)
def test_group_and_contact_command_refusals_are_one_line(
    hub: EmbeddedHub, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    data = str(hub.settings.data_dir)
    create_user(hub.store, "ana")
    hub.store.groups.create("West", "region")

    status, out, err = run(capsys, *argv, "--data", data)

    assert status == 1 and out == ""
    assert err.startswith("vigil-hub: ") and err.count("\n") == 1
    assert message in err
    assert [g.name for g in hub.store.groups.all()] == ["West"]
    assert hub.store.groups.get("West").members == []  # type: ignore[union-attr]
    assert hub.store.groups.profile("ana").phone is None


def test_the_group_commands_need_an_existing_hub(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "group", "list", "--data", str(tmp_path / "none"))

    assert status == 1 and "no hub at" in err
    assert not (tmp_path / "none").exists()
