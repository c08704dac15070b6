"""`vigil-hub user ...` and `vigil-hub audit`, run as real processes next to a real hub."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import pytest
import requests

from hub.clock import SystemClock
from hub.server import EmbeddedHub
from hub.storage import Store
from tests.hub.test_cli import COMMAND, PROCESS_TIMEOUT, _vigil_hub
from tests.hubtools import (
    HTTP_TIMEOUT,
    auth_headers,
    create_user,
    login,
    next_code,
    settings_for,
    sign_in,
    stored_bytes,
    submit_code,
)

ADMIN_PASSWORD = "the admin's own long passphrase"
FIRST_PASSWORD = "jlee's first long passphrase"
SECOND_PASSWORD = "jlee's second long passphrase"


def _ok(*args: str, stdin: str = "") -> str:
    result = _vigil_hub(*args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _refused(*args: str, stdin: str = "") -> str:
    result = _vigil_hub(*args, stdin=stdin)
    assert result.returncode == 1, result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def _secret(output: str) -> str:
    match = re.search(r"otpauth://totp/\S+secret=([A-Z2-7]+)", output)
    assert match is not None, output
    return match.group(1)


def _me(hub: EmbeddedHub, token: str) -> int:
    response = requests.get(f"{hub.url}/v1/me", headers=auth_headers(token), timeout=HTTP_TIMEOUT)
    return response.status_code


@pytest.mark.slow
def test_it_runs_an_account_from_creation_to_removal_and_nothing_secret_is_kept(
    tmp_path: Path,
) -> None:
    data = str(tmp_path / "data")
    d = ("--data", data)
    admin_out = _ok(
        "user", "add", "it-admin", "--role", "admin", "--password-stdin", "--init", *d,
        stdin=ADMIN_PASSWORD + "\n",
    )  # fmt: skip
    add_out = _ok(
        "user", "add", "jlee", "--role", "agent", "--password-stdin",
        "--display-name", "J <b>Lee</b>", *d, stdin=FIRST_PASSWORD + "\n",
    )  # fmt: skip
    first_secret = _secret(add_out)
    secrets = [ADMIN_PASSWORD, FIRST_PASSWORD, SECOND_PASSWORD, _secret(admin_out), first_secret]
    quiet_outputs: list[str] = []
    codes: list[str] = []

    with EmbeddedHub(settings_for(Path(data))) as hub:
        first = sign_in(hub.url, "jlee", FIRST_PASSWORD, first_secret)
        secrets += [first["access_token"], first["refresh_token"]]

        listing = _ok("user", "list", *d)
        assert re.search(r"jlee\s+agent\s+active\s+1\s+\S+Z\s+J <b>Lee</b>", listing), listing
        shown = _ok("user", "show", "JLEE", *d)
        assert "status:           active" in shown
        quiet_outputs += [listing, shown]

        disabled = _ok("user", "disable", "jlee", *d)
        assert disabled.strip() == "Disabled jlee; 1 session ended."
        assert _me(hub, first["access_token"]) == 401
        assert "last enabled admin" in _refused("user", "disable", "it-admin", *d)
        assert "last enabled admin" in _refused("user", "remove", "it-admin", *d)
        assert "no user named 'ghost'" in _refused("user", "enable", "ghost", *d)
        quiet_outputs += [disabled, _ok("user", "enable", "jlee", *d)]

        weak = _refused("user", "passwd", "jlee", "--password-stdin", *d, stdin="password\n")
        assert "common and breached passwords" in weak
        assert "password\n" not in weak.replace("The password", "")
        assert "only spaces" in _refused(
            "user", "passwd", "jlee", "--password-stdin", *d, stdin=" " * 8 + "\n"
        )
        quiet_outputs.append(
            _ok("user", "passwd", "jlee", "--password-stdin", *d, stdin=SECOND_PASSWORD + "\n")
        )
        assert login(hub.url, "jlee", FIRST_PASSWORD).status_code == 401

        reset = _ok("user", "reset-mfa", "jlee", *d)
        second_secret = _secret(reset)
        secrets.append(second_secret)
        second = sign_in(hub.url, "jlee", SECOND_PASSWORD, second_secret)
        secrets += [second["access_token"], second["refresh_token"]]

        for attempt in range(5):
            login(hub.url, "jlee", f"a wrong guess number {attempt}")
        assert login(hub.url, "jlee", SECOND_PASSWORD).status_code == 429
        assert "status:           locked" in _ok("user", "show", "jlee", *d)
        quiet_outputs.append(_ok("user", "unlock", "jlee", *d))
        pending = login(hub.url, "jlee", SECOND_PASSWORD)
        assert pending.status_code == 200
        codes.append(next_code(second_secret))
        third = submit_code(hub.url, pending.json()["mfa_token"], codes[-1]).json()
        secrets += [third["access_token"], third["refresh_token"], pending.json()["mfa_token"]]

        revoked = _ok("user", "revoke-sessions", "jlee", *d)
        assert revoked.strip() == "Ended 2 sessions of jlee."
        assert _me(hub, third["access_token"]) == 401
        removed = _ok("user", "remove", "jlee", *d)
        assert removed.strip() == "Removed jlee; 0 sessions ended."
        assert login(hub.url, "jlee", SECOND_PASSWORD).status_code == 401
        quiet_outputs += [revoked, removed]

    as_csv = _ok("audit", "--user", "jlee", *d)
    as_json = json.loads(_ok("audit", "--format", "json", "--event", "user.*", *d))
    quiet_outputs += [as_csv, json.dumps(as_json)]
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    events = [(row["event"], row["outcome"]) for row in rows]
    for expected in [
        ("user.created", "ok"),
        ("signin.ok", "ok"),
        ("user.disabled", "ok"),
        ("user.enabled", "ok"),
        ("user.password_set", "password_refused"),
        ("user.password_set", "ok"),
        ("signin.failed", "password"),
        ("user.mfa_reset", "ok"),
        ("signin.locked", "locked"),
        ("signin.failed", "locked_out"),
        ("user.unlocked", "ok"),
        ("user.sessions_revoked", "ok"),
        ("user.removed", "ok"),
    ]:
        assert expected in events, expected
    assert {row["source"] for row in rows} == {"cli", "127.0.0.1"}
    assert {row["actor"] for row in rows if row["source"] == "cli"} == {f"cli:{_os_user()}"}
    assert [item["subject"] for item in as_json if item["outcome"] == "last_admin"] == [
        "it-admin",
        "it-admin",
    ]

    settings = settings_for(Path(data))
    store = Store.open(settings.database, SystemClock())
    try:
        stored = stored_bytes(store, settings)
        with store.db.read() as conn:
            trail = "\n".join(str(tuple(row)) for row in conn.execute("SELECT * FROM audit_events"))
    finally:
        store.close()
    for secret in secrets:
        assert secret not in "".join(quiet_outputs)
        assert secret not in trail
    for raw in [*secrets[:3], *secrets[5:7], *secrets[8:]]:  # passwords and tokens
        assert raw.encode() not in stored
    for code in codes:
        assert code not in trail


def test_audit_csv_cells_cannot_run_as_spreadsheet_formulas(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data")
    store = Store.open(settings.database, SystemClock())
    hostile = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "plain"]
    try:
        for text in hostile:
            store.audit.record("test.hostile", actor=text, subject="\u202e" + text, source=text)
    finally:
        store.close()

    out = _ok("audit", "--event", "test.hostile", "--data", str(settings.data_dir))

    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["actor"] for row in rows] == [
        '\'=HYPERLINK("http://x")',
        "'+1+1",
        "'-2+3",
        "'@SUM(A1)",
        "'\tTAB",
        "plain",
    ]
    assert all(row["subject"].startswith("\u202e") for row in rows)
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_audit_filters_refuse_bad_times_with_one_line_and_take_year_1_and_9999(
    tmp_path: Path,
) -> None:
    data = ("--data", str(tmp_path / "data"))
    Store.open(settings_for(tmp_path / "data").database, SystemClock()).close()

    bad = _refused("audit", "--since", "last tuesday", *data)
    wide = _ok("audit", "--since", "0001-01-01", "--until", "9999-12-31T23:59:59Z", *data)
    empty_json = _ok("audit", "--format", "json", "--since", "9999-12-31", *data)

    assert "--since" in bad and "2026-12-03" in bad
    assert wide.splitlines() == ["id,at,event,actor,subject,source,outcome,detail"]
    assert json.loads(empty_json) == []


def _os_user() -> str:
    import getpass

    return getpass.getuser()


def test_list_and_show_print_control_and_bidi_characters_as_escapes(tmp_path: Path) -> None:
    # Display names from before the checks (or written straight into the file) are shown safely.
    settings = settings_for(tmp_path / "data")
    store = Store.open(settings.database, SystemClock())
    try:
        create_user(store, "mallory", display_name="Admin\u202e\x1b[31m <b>x</b>")
    finally:
        store.close()
    data = ("--data", str(settings.data_dir))

    for output in (_ok("user", "list", *data), _ok("user", "show", "mallory", *data)):
        assert "Admin\\u202e\\u001b[31m <b>x</b>" in output
        assert "\u202e" not in output and "\x1b" not in output


def test_reset_mfa_draws_the_qr_code_on_a_terminal(tmp_path: Path) -> None:
    data = ("--data", str(tmp_path / "data"))
    _ok(
        "user", "add", "qr", "--role", "agent", "--password-stdin", "--init", *data,
        stdin=FIRST_PASSWORD,
    )  # fmt: skip
    controller, terminal = pty.openpty()
    with subprocess.Popen(
        [*COMMAND, "user", "reset-mfa", "qr", *data], stdout=terminal, stderr=subprocess.PIPE
    ) as process:
        os.close(terminal)
        shown = _read_until_closed(controller, deadline=time.monotonic() + PROCESS_TIMEOUT)
        assert process.wait(timeout=PROCESS_TIMEOUT) == 0
    os.close(controller)

    assert "otpauth://totp/" in shown
    assert "\u2588" in shown or "\u2580" in shown  # the QR code's block characters


def test_serve_refuses_a_retention_that_is_not_positive(tmp_path: Path) -> None:
    result = _vigil_hub("serve", "--audit-retention-days", "0", "--data", str(tmp_path / "data"))

    assert result.returncode == 2
    assert "--audit-retention-days" in result.stderr and "more than 0" in result.stderr


def _read_until_closed(fd: int, deadline: float) -> str:
    chunks = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")
