"""`vigil-hub alert ...` and `vigil-hub settings ...` on a served hub's data: the same rules and
audit as the API, what the running hub and its streams see, and one-line refusals."""

from __future__ import annotations

import getpass
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hub.cli import main
from hub.config import HubSettings
from hub.server import EmbeddedHub
from hub.storage import Store
from hub.storage.alerts import NewAck
from hub.storage.audit import AuditQuery
from tests.hub.test_stream import open_stream
from tests.hubtools import HTTP_TIMEOUT, access_token, auth_headers, create_user


def run(capsys: pytest.CaptureFixture[str], hub: EmbeddedHub, *args: str) -> tuple[int, str, str]:
    database = hub.settings.database_url
    status = main(
        [*args, "--data", str(hub.settings.data_dir)]
        + (["--database", database] if database else [])
    )
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def publish(capsys: pytest.CaptureFixture[str], hub: EmbeddedHub, *extra: str) -> str:
    """Publish as dora from the command line; the new alert's id."""
    status, out, err = run(
        capsys,
        hub,
        "alert",
        "publish",
        "--severity",
        "major",
        "--title",
        "Video visits down",
        "--body",
        "Use phone.",
        "--as",
        "dora",
        *extra,
    )
    assert status == 0, err
    found = re.search(r"\(id ([0-9a-f-]{36})\)", out)
    assert found is not None, out
    return found.group(1)


def add_people(store: Store) -> None:
    for name, role in (("dora", "dispatcher"), ("dan", "dispatcher"), ("ana", "agent")):
        create_user(store, name, role)  # type: ignore[arg-type]
    create_user(store, "ben")
    store.groups.create("West", "region")
    store.groups.create("East", "region")
    store.groups.add_members("West", ["ana"])
    store.groups.add_members("East", ["ben", "ana"])


@pytest.fixture
def people(hub: EmbeddedHub) -> None:
    add_people(hub.store)


@pytest.fixture(scope="module")
def shared_hub(
    tmp_path_factory: pytest.TempPathFactory, module_hub_database: str | None
) -> Iterator[EmbeddedHub]:
    """One hub for the refusal cases: each publishes its own alert and checks only that one."""
    settings = HubSettings(
        data_dir=tmp_path_factory.mktemp("cli") / "hub", database_url=module_hub_database
    )
    with EmbeddedHub(settings) as hub:
        add_people(hub.store)
        yield hub


@pytest.mark.usefixtures("people")
def test_publish_to_groups_as_a_drill_with_a_next_update(
    hub: EmbeddedHub, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys,
        hub,
        "alert",
        "publish",
        "--severity",
        "critical",
        "--title",
        "Evacuation drill",
        "--body",
        "Walk out.",
        "--drill",
        "--group",
        "west",
        "--group",
        "East",
        "--next-update-in-minutes",
        "30",
        "--as",
        "DORA",
    )

    assert status == 0, err
    alert = hub.store.alerts.since(None, 10).alerts[-1]
    assert out == (f"Published DRILL critical alert seq {alert.seq} (id {alert.id}) to 2 agents.\n")
    assert (alert.drill, alert.audience, alert.issued_by) == (True, ["West", "East"], "dora")
    assert alert.next_update_by is not None
    assert 29 * 60 < alert.next_update_by - alert.issued_at <= 30 * 60
    [event] = hub.store.audit.query(AuditQuery(event="alert.published"))
    assert (event.actor, event.source, event.detail["by"]) == (
        f"cli:{getpass.getuser()}",
        "cli",
        "dora",
    )


@pytest.mark.usefixtures("people")
def test_update_resolve_and_closed_refusals(
    hub: EmbeddedHub, capsys: pytest.CaptureFixture[str]
) -> None:
    alert_id = publish(capsys, hub)

    updated = run(
        capsys,
        hub,
        "alert",
        "update",
        alert_id,
        "--text",
        "Phones too.",
        "--severity",
        "critical",
        "--title",
        "Video and phones down",
        "--link",
        "https://status.example.org/1",
        "--link",
        "https://status.example.org/2",
        "--next-update-in-minutes",
        "15",
        "--as",
        "dan",
    )
    resolved = run(capsys, hub, "alert", "resolve", alert_id, "--note", "Fixed.", "--as", "dora")
    again = run(capsys, hub, "alert", "update", alert_id, "--text", "More", "--as", "dora")
    retract = run(capsys, hub, "alert", "retract", alert_id, "--note", "x", "--as", "dora")

    assert updated[0] == 0, updated[2]
    assert updated[1].startswith(f"Update 1 of alert {alert_id} sent as seq ")
    assert resolved[0] == 0 and resolved[1].startswith(f"Alert {alert_id} resolved (seq ")
    assert again == (
        1,
        "",
        "vigil-hub: alert not updated: This alert is already resolved: it takes no more "
        "changes. Publish a new alert if there is more to say.\n",
    )
    assert retract[0] == 1 and retract[2].startswith("vigil-hub: alert not retracted: ")
    alert = hub.store.alerts.get(alert_id)
    assert alert is not None
    assert [(c.kind, c.by) for c in alert.changes] == [("update", "dan"), ("resolved", "dora")]
    assert alert.changes[0].links == [
        "https://status.example.org/1",
        "https://status.example.org/2",
    ]
    assert (alert.severity, alert.title, alert.status) == (
        "critical",
        "Video and phones down",
        "resolved",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["update", "{id}", "--text", "x", "--as", "ana"], "alert not updated: 'ana' is an agent"),
        (["update", "{id}", "--text", "x", "--as", "nobody"], "no user 'nobody'"),
        (["update", "{id}", "--text", "", "--as", "dora"], "alert not updated: text:"),
        (["update", "{id}", "--text", "a\u202eb", "--as", "dora"], "U+202E"),
        (["update", "{id}", "--text", "x", "--link", "http://x.org", "--as", "dora"], "links."),
        (["update", "{id}", "--text", "x" * 10_001, "--as", "dora"], "text:"),
        (
            ["update", "{id}", "--text", "x", "--next-update-in-minutes", "20000", "--as", "dora"],
            "next_update_by is more than 7 days ahead",
        ),
        (["update", str(uuid.uuid4()), "--text", "x", "--as", "dora"], "No such alert"),
        (["update", "not-an-id", "--text", "x", "--as", "dora"], "is not an alert id"),
        (["resolve", "{id}", "--note", "", "--as", "dora"], "alert not resolved: note:"),
        (["retract", "{id}", "--note", "n" * 2_001, "--as", "dora"], "alert not retracted"),
        (["approve", str(uuid.uuid4()), "--as", "dora"], "No such approval request"),
        (["reject", "bad", "--reason", "x", "--as", "dora"], "not an approval request id"),
        (["show", str(uuid.uuid4())], "No such alert"),
        (
            [
                "publish",
                "--severity",
                "major",
                "--title",
                "T",
                "--body",
                "B",
                "--group",
                "Nowhere",
                "--as",
                "dora",
            ],
            "audience: no group named 'Nowhere'",
        ),
    ],
)
def test_refusals_are_one_line_and_change_nothing(
    shared_hub: EmbeddedHub, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    hub = shared_hub
    alert_id = publish(capsys, hub)
    seq = hub.store.alerts.last_seq()

    status, out, err = run(capsys, hub, "alert", *[arg.format(id=alert_id) for arg in argv])

    assert (status, out) == (1, "")
    assert err.startswith("vigil-hub: ") and err.count("\n") == 1, err
    assert message in err
    assert hub.store.alerts.last_seq() == seq
    assert hub.store.alerts.get(alert_id).changes == ()  # type: ignore[union-attr]


@pytest.mark.usefixtures("people")
def test_settings_hold_critical_alerts_for_approve_and_reject_on_the_running_hub_too(
    hub: EmbeddedHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, hub, "settings", "show")[1] == "require-approval: off\n"
    assert run(capsys, hub, "settings", "set", "require-approval", "on")[1] == (
        "require-approval is now on.\n"
    )
    assert run(capsys, hub, "settings", "show")[1] == "require-approval: on\n"
    critical = ["--severity", "critical", "--title", "Fire", "--body", "Out.", "--as", "dora"]

    held = [run(capsys, hub, "alert", "publish", *critical) for _ in range(2)]
    ids = [re.search(r"pending approval ([0-9a-f-]{36})", out) for _, out, _ in held]
    own = run(capsys, hub, "alert", "approve", ids[0].group(1), "--as", "dora")  # type: ignore[union-attr]
    approved = run(capsys, hub, "alert", "approve", ids[0].group(1), "--as", "dan")  # type: ignore[union-attr]
    rejected = run(
        capsys,
        hub,
        "alert",
        "reject",
        ids[1].group(1),
        "--reason",
        "Wrong site",
        "--as",
        "dan",  # type: ignore[union-attr]
    )
    overridden = run(
        capsys, hub, "alert", "publish", *critical, "--override-approval", "Dan is off sick"
    )
    # The served hub reads the same setting: its API holds the alert too.
    token = access_token(hub.store, hub.url, "dina", "dispatcher")
    served = requests.post(
        f"{hub.url}/v1/alerts",
        json={"severity": "critical", "title": "Fire", "body": "Out."},
        headers=auth_headers(token),
        timeout=HTTP_TIMEOUT,
    )

    assert [status for status, _, _ in held] == [0, 0] and all(ids)
    assert own[0] == 1 and "another dispatcher must approve it" in own[2]
    assert approved[0] == 0 and approved[1].startswith("Approved: published critical alert seq ")
    assert approved[1].endswith("to 2 agents.\n")
    assert rejected == (
        0,
        f"Rejected approval request {ids[1].group(1)}: the alert is not sent.\n",  # type: ignore[union-attr]
        "",
    )
    assert overridden[0] == 0 and overridden[1].startswith("Published critical alert seq ")
    assert served.status_code == 202, served.text
    alerts = hub.store.alerts.since(None, 10).alerts
    assert [(a.issued_by, a.approved_by) for a in alerts] == [("dora", "dan"), ("dora", None)]
    assert hub.store.alerts.approval_override(alerts[1].id) == "Dan is off sick"
    changes = hub.store.audit.query(AuditQuery(event="settings.changed"))
    assert [(e.actor, e.outcome, e.detail) for e in changes] == [
        (f"cli:{getpass.getuser()}", "ok", {"value": "on"})
    ]


@pytest.mark.usefixtures("people")
def test_list_marks_overdue_updates_and_filters(
    hub: EmbeddedHub, capsys: pytest.CaptureFixture[str]
) -> None:
    live = publish(capsys, hub, "--next-update-in-minutes", "60")
    drill = publish(capsys, hub, "--drill")
    closed = publish(capsys, hub)
    run(capsys, hub, "alert", "resolve", closed, "--note", "Done", "--as", "dora")
    # Written straight to the store: the command line refuses a next update in the past.
    overdue, _ = hub.store.alerts.publish(
        severity="minor",
        title="Printer \u202e<b>jam</b>",
        body="Use floor 2.",
        playbook_id=None,
        template_ids=[],
        requires_ack=True,
        expires_at=None,
        issued_by="dora",
        next_update_by=hub.settings.clock.now() - 60,
    )

    def rows(*flags: str) -> list[list[str]]:
        status, out, err = run(capsys, hub, "alert", "list", *flags)
        assert status == 0, err
        return [line.split() for line in out.splitlines()]

    everything = rows()
    assert everything[0] == [
        "SEQ",
        "ID",
        "STATUS",
        "DRILL",
        "SEVERITY",
        "UPDATES",
        "NEXT",
        "UPDATE",
        "TITLE",
    ]
    assert [row[1] for row in everything[1:]] == [overdue.id, closed, drill, live]
    assert everything[1][7] == "OVERDUE" and everything[1][8:] == ["Printer", "\\u202e<b>jam</b>"]
    assert everything[2][2:6] == ["resolved", "live", "major", "1"]
    assert everything[3][3] == "DRILL"
    assert "OVERDUE" not in everything[4]
    assert [row[1] for row in rows("--open", "--live")[1:]] == [overdue.id, live]
    assert [row[1] for row in rows("--closed")[1:]] == [closed]
    assert [row[1] for row in rows("--drill")[1:]] == [drill]
    assert rows("--closed", "--drill")[1:] == [["(no", "alerts)"]]


@pytest.mark.usefixtures("people")
def test_show_prints_the_alert_its_updates_targets_and_answers(
    hub: EmbeddedHub, capsys: pytest.CaptureFixture[str]
) -> None:
    alert_id = publish(capsys, hub, "--group", "East", "--drill")
    run(capsys, hub, "alert", "update", alert_id, "--text", "Line 1\nLine 2", "--as", "dan")
    acted_at = round(hub.settings.clock.now() * 1000)
    hub.store.alerts.record_acks(
        "ben", [NewAck(str(uuid.uuid4()), alert_id, "escalated", "Need help", acted_at)]
    )

    status, out, err = run(capsys, hub, "alert", "show", alert_id)

    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "DRILL: no action with real patients"
    assert re.search(rf"^id: +{alert_id}$", out, re.MULTILINE)
    assert re.search(r"^audience: +East$", out, re.MULTILINE)
    assert any(re.fullmatch(r"  #1 update \S+ by dan: Line 1\\u000aLine 2", line) for line in lines)
    assert "targets (2): ana, ben" in lines
    assert any(re.fullmatch(r"  ben escalated \S+: Need help", line) for line in lines)


@pytest.mark.usefixtures("people")
def test_a_command_line_update_reaches_open_streams_of_its_audience_only(
    hub: EmbeddedHub, capsys: pytest.CaptureFixture[str]
) -> None:
    alert_id = publish(capsys, hub, "--group", "West")
    dispatcher = access_token(hub.store, hub.url, "dina", "dispatcher")
    outsider = access_token(hub.store, hub.url, "amy")
    seq = str(hub.store.alerts.last_seq())

    with (
        open_stream(hub, dispatcher, last_event_id=seq) as dispatcher_stream,
        open_stream(hub, outsider, last_event_id=seq) as outsider_stream,
    ):
        dispatcher_stream.wait_until_live()
        outsider_stream.wait_until_live()
        run(capsys, hub, "alert", "update", alert_id, "--text", "Still down", "--as", "dora")
        # The command line is another process as far as the hub knows: the stream gets the
        # update from the database, without a notification.
        seen: dict[str, Any] = dispatcher_stream.next_event().json()
        later = publish(capsys, hub)
        outsider_event: dict[str, Any] = outsider_stream.next_event().json()

    assert (seen["id"], seen["revision"], seen["updates"][0]["text"]) == (alert_id, 1, "Still down")
    # amy is in no group of the audience: her first event is the alert for everyone after it.
    assert outsider_event["id"] == later
