"""`vigil alerts` and `vigil alert ID` show an alert's status, drill marking, revision, latest
update and next update time, as text a terminal cannot be tricked by, and as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from client.core.cache import Cache
from client.core.models import Alert
from hub.server import EmbeddedHub
from tests.vigil_cli import run_vigil

ALERT_ID = "6f1c1f7e-8f0e-4d57-9a39-0b4b3e1f2a10"
DRILL_ID = "5d0c1b7e-0000-4000-8000-000000000001"
HOSTILE = "\u202eevil\x1b[31mred\x07<b>x</b>"


def update(number: int, kind: str, text: str, **fields: Any) -> dict[str, Any]:
    return {
        "number": number,
        "kind": kind,
        "at": f"2026-12-03T10:0{number}:00.000Z",
        "by": "dora",
        "text": text,
        "severity": None,
        "title": None,
        "links": [],
        "next_update_by": None,
        **fields,
    }


def raw_alert(alert_id: str, seq: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": alert_id,
        "seq": seq,
        "severity": "critical",
        "title": "Video visits down",
        "body": "Move visits to phone.",
        "issued_at": "2026-12-03T10:00:00.000Z",
        "issued_by": "dora",
        **fields,
    }


@pytest.fixture
def env(hub: EmbeddedHub, tmp_path: Path) -> dict[str, str]:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"hub_url": hub.url}))
    cache = Cache.open(tmp_path / "data" / "cache.sqlite3")
    try:
        cache.store_alerts(
            [
                Alert.from_json(
                    raw_alert(
                        ALERT_ID,
                        3,
                        severity="major",
                        next_update_by="9999-12-31T23:59:59.999Z",
                        updates=[
                            update(1, "update", "Phones still work"),
                            update(
                                2,
                                "update",
                                "Video back in the East\n" + HOSTILE,
                                severity="major",
                                links=["https://status.example.org/" + "x" * 50],
                            ),
                        ],
                    )
                ),
                Alert.from_json(
                    raw_alert(
                        DRILL_ID,
                        5,
                        title=HOSTILE,
                        drill=True,
                        status="retracted",
                        next_update_by="0001-01-01T00:00:00.000Z",
                        updates=[update(1, "retracted", "Sent in error")],
                    )
                ),
            ]
        )
    finally:
        cache.close()
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DBUS_SESSION_BUS_ADDRESS", "VIGIL_TEST_REAL_KEYRING")
    }
    return environment | {
        "VIGIL_CONFIG_DIR": str(tmp_path / "config"),
        "VIGIL_DATA_DIR": str(tmp_path / "data"),
        "VIGIL_POLICY": str(policy),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }


def test_alerts_lists_status_drill_revision_latest_update_and_next_update(
    env: dict[str, str],
) -> None:
    listed = run_vigil(env, "alerts")

    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    drill_heading = next(line for line in lines if "RETRACTED" in line)
    assert "  critical  RETRACTED  DRILL  " in drill_heading
    assert "DRILL: no action with real patients" in listed.stdout
    assert "  major     OPEN  Video visits down" in listed.stdout
    assert f"  id {ALERT_ID}  playbook -  revision 2  Not answered yet" in listed.stdout
    assert "Update 2 · 2026-12-03T10:02:00.000Z · by dora · severity major: Video back" in (
        listed.stdout
    )
    assert "next update by 9999-12-31T23:59:59.999Z" in listed.stdout
    # A closed alert asks for no more updates, however late the last promise was.
    assert "0001-01-01" not in listed.stdout
    # What must NOT reach the terminal: escapes, bells, bidi overrides.
    for char in ("\x1b", "\x07", "\u202e"):
        assert char not in listed.stdout
    assert "\ufffdevil\ufffd[31mred\ufffd<b>x</b>" in listed.stdout


def test_alerts_json_carries_the_new_fields(env: dict[str, str]) -> None:
    listed = run_vigil(env, "alerts", "--json")

    assert listed.returncode == 0, listed.stderr
    alerts = {a["id"]: a for a in json.loads(listed.stdout)["alerts"]}
    updated, drill = alerts[ALERT_ID], alerts[DRILL_ID]
    assert (updated["status"], updated["revision"], updated["drill"]) == ("open", 2, False)
    assert updated["updates"][-1]["text"].endswith(HOSTILE), "JSON keeps the text as sent"
    assert updated["next_update_by"] == "9999-12-31T23:59:59.999Z"
    assert updated["update_overdue"] is False
    assert (drill["status"], drill["drill"], drill["title"]) == ("retracted", True, HOSTILE)
    assert drill["answer"] == {
        "state": "unanswered",
        "action": None,
        "reason": "",
        "device_name": None,
    }


def test_alert_shows_every_update_in_order(env: dict[str, str]) -> None:
    shown = run_vigil(env, "alert", ALERT_ID)

    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.index("Update 1 ·") < text.index("Phones still work") < text.index("Update 2 ·")
    assert "  link https://status.example.org/" in text
    assert "\x1b" not in text and "\u202e" not in text
    as_json = json.loads(run_vigil(env, "alert", DRILL_ID, "--json").stdout)
    assert [u["kind"] for u in as_json["updates"]] == ["retracted"]


@pytest.mark.parametrize("alert_id", ["missing", "\u202e" + "x" * 5000, "<b>"])
def test_an_unknown_alert_is_exit_4_with_one_line(env: dict[str, str], alert_id: str) -> None:
    shown = run_vigil(env, "alert", alert_id)

    assert shown.returncode == 4
    assert "Traceback" not in shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1
    assert shown.stdout == ""
