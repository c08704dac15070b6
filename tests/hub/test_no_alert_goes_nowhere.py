"""No alert goes nowhere: data commands need an existing hub, alerts need existing content, a
named publisher, and a retried publish stores one alert."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from hub.cli import main
from hub.clock import ManualClock
from hub.config import HubSettings
from hub.content_import import import_content
from hub.demo import demo_content_dir
from hub.server import EmbeddedHub
from hub.storage import Store
from hub.storage.alerts import PUBLISH_KEY_SECONDS
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    access_token,
    auth_headers,
    create_user,
    settings_for,
    sign_in,
)

PLAYBOOK = "pb-video-visit-outage"
TEMPLATE = "tpl-video-outage-phone"
PARALLEL_COPIES = 40


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory: pytest.TempPathFactory, module_hub_database: str | None) -> Path:
    """A hub's data dir with its demo content, a dispatcher and an agent, not being served.

    Shared by the module's command-line tests: each compares the alerts before and after.
    """
    settings = HubSettings(
        data_dir=tmp_path_factory.mktemp("cli") / "hub", database_url=module_hub_database
    )
    with EmbeddedHub(settings) as hub:
        import_content(hub.store, hub.app.state.signer, demo_content_dir())
        create_user(hub.store, "dora", "dispatcher")
        create_user(hub.store, "ana", "agent")
    return settings.data_dir


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def stored_alerts(data_dir: Path) -> list[dict[str, Any]]:
    store = Store.open(settings_for(data_dir).database, ManualClock())
    try:
        return [alert.to_wire() for alert in store.alerts.since(None, 100).alerts]
    finally:
        store.close()


def publish_args(data_dir: Path, *extra: str) -> list[str]:
    return [
        "alert",
        "publish",
        "--severity",
        "critical",
        "--title",
        "Video visits down",
        "--body",
        "Use phone.",
        "--data",
        str(data_dir),
        *extra,
    ]


@pytest.mark.sqlite_only
@pytest.mark.parametrize("state", ["missing", "empty"])
def test_data_commands_refuse_a_folder_without_a_hub_and_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], state: str
) -> None:
    data = tmp_path / "mistyped"
    if state == "empty":
        data.mkdir()
    commands = {
        "alert publish": publish_args(data, "--as", "dora"),
        "content import": ["content", "import", str(demo_content_dir()), "--data", str(data)],
    }
    for name, args in commands.items():
        status, out, err = run(capsys, *args)

        assert status == 1, name
        assert err.strip() == (
            f"vigil-hub: no hub at {data}; start one with `vigil-hub serve --data {data}`"
        ), name
        assert "Published" not in out
        assert data.exists() is (state == "empty"), name
        assert not (data / "hub.sqlite3").exists(), name
        assert not (data / "content-signing-key.pem").exists(), name


@pytest.mark.sqlite_only
def test_user_add_creates_a_hub_only_with_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "new-hub"
    add = ["user", "add", "root", "--role", "admin", "--password-stdin", "--data", str(data)]

    monkeypatch.setattr(sys, "stdin", _Lines("a long enough password\n"))
    status, out, err = run(capsys, *add)
    assert status == 1
    assert err.strip() == (
        f"vigil-hub: no hub at {data}; start one with `vigil-hub serve --data {data}`, "
        "or add its first user with --init"
    )
    assert not data.exists()

    monkeypatch.setattr(sys, "stdin", _Lines("a long enough password\n"))
    status, out, err = run(capsys, *add, "--init")
    assert status == 0, err
    assert out.startswith("Added admin root.")
    assert (data / "hub.sqlite3").is_file()
    assert data.stat().st_mode & 0o077 == 0


def test_cli_publish_records_the_named_dispatcher(
    hub_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = stored_alerts(hub_dir)
    status, out, err = run(capsys, *publish_args(hub_dir, "--as", "DORA", "--playbook", PLAYBOOK))

    assert status == 0, err
    *earlier, alert = stored_alerts(hub_dir)
    assert earlier == before
    assert out.startswith(f"Published critical alert seq {alert['seq']} (id {alert['id']}) to ")
    assert (alert["issued_by"], alert["playbook_id"]) == ("dora", PLAYBOOK)


@pytest.mark.parametrize(
    ("publisher", "message"),
    [
        ("nobody", "alert not published: no user 'nobody' on this hub."),
        ("ana", "alert not published: 'ana' is an agent; only a dispatcher or an admin may"),
        ("\u202edora", "alert not published: no user '\\u202edora' on this hub."),
    ],
)
def test_cli_publish_as_anyone_but_a_dispatcher_is_refused(
    hub_dir: Path, capsys: pytest.CaptureFixture[str], publisher: str, message: str
) -> None:
    before = stored_alerts(hub_dir)
    status, _out, err = run(capsys, *publish_args(hub_dir, "--as", publisher))

    assert status == 1
    assert err.startswith(f"vigil-hub: {message}")
    assert stored_alerts(hub_dir) == before


def test_cli_publish_without_as_is_a_usage_error(hub_dir: Path) -> None:
    before = stored_alerts(hub_dir)
    result = subprocess.run(
        [sys.executable, "-m", "hub", *publish_args(hub_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "--as" in result.stderr
    assert stored_alerts(hub_dir) == before


def test_cli_publish_with_unknown_content_names_it_and_stores_nothing(
    hub_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = stored_alerts(hub_dir)
    status, out, err = run(
        capsys,
        *publish_args(
            hub_dir,
            "--as",
            "dora",
            "--playbook",
            "pb-video-visit-outgae",
            "--template",
            TEMPLATE,
            "--template",
            "tpl-<b>missing</b>",
        ),
    )

    assert status == 1
    assert err.strip() == (
        "vigil-hub: alert not published: no such playbook 'pb-video-visit-outgae', "
        "template 'tpl-<b>missing</b>' on this hub; import the content first or fix the id."
    )
    assert out == ""
    assert stored_alerts(hub_dir) == before


@pytest.fixture
def dispatcher(hub: EmbeddedHub) -> str:
    import_content(hub.store, hub.app.state.signer, demo_content_dir())
    return access_token(hub.store, hub.url, "dora", "dispatcher")


def post(
    hub: EmbeddedHub,
    token: str,
    key: str | None = None,
    session: requests.Session | None = None,
    **fields: Any,
) -> requests.Response:
    body = {"severity": "critical", "title": "Video visits down", "body": "Use phone.", **fields}
    headers = auth_headers(token)
    if key is not None:
        headers["Idempotency-Key"] = key
    return (session or requests).post(
        f"{hub.url}/v1/alerts", json=body, headers=headers, timeout=HTTP_TIMEOUT
    )


def catch_up(hub: EmbeddedHub, token: str) -> list[dict[str, Any]]:
    response = requests.get(f"{hub.url}/v1/alerts", headers=auth_headers(token), timeout=30)
    assert response.status_code == 200, response.text
    alerts: list[dict[str, Any]] = response.json()["alerts"]
    return alerts


def test_unknown_or_deleted_content_is_refused_by_name_over_http(
    hub: EmbeddedHub, dispatcher: str
) -> None:
    hub.store.content.delete("template", "tpl-video-outage-sms", hub.app.state.signer)

    unknown = post(hub, dispatcher, playbook_id="pb-nope", template_ids=[TEMPLATE, "tpl-nope"])
    deleted = post(hub, dispatcher, template_ids=["tpl-video-outage-sms"])
    known = post(hub, dispatcher, playbook_id=PLAYBOOK, template_ids=[TEMPLATE])

    assert unknown.status_code == 422
    assert unknown.json() == {
        "error": "unknown_content",
        "detail": "Invalid request: no such playbook 'pb-nope', template 'tpl-nope' on this hub; "
        "import the content first or fix the id.",
    }
    assert deleted.status_code == 422
    assert "'tpl-video-outage-sms'" in deleted.json()["detail"]
    assert known.status_code == 201
    assert [alert["id"] for alert in catch_up(hub, dispatcher)] == [known.json()["id"]]


def test_a_retry_with_the_same_key_answers_the_first_alert(
    hub: EmbeddedHub, dispatcher: str
) -> None:
    key = str(uuid.uuid4())

    first = post(hub, dispatcher, key, playbook_id=PLAYBOOK)
    retry = post(hub, dispatcher, f'"{key}"', playbook_id=PLAYBOOK)
    other = post(hub, dispatcher, str(uuid.uuid4()), playbook_id="pb-ehr-downtime")
    # A retry still finds its alert after the playbook it names was retired.
    hub.store.content.delete("playbook", PLAYBOOK, hub.app.state.signer)
    late_retry = post(hub, dispatcher, key, playbook_id=PLAYBOOK)

    assert first.status_code == 201
    assert retry.status_code == 200
    assert retry.json() == first.json()
    assert (late_retry.status_code, late_retry.json()) == (200, first.json())
    assert other.status_code == 201
    assert [alert["seq"] for alert in catch_up(hub, dispatcher)] == [1, 2]


def test_the_same_key_with_another_payload_is_refused_and_stores_nothing(
    hub: EmbeddedHub, dispatcher: str
) -> None:
    key = str(uuid.uuid4())
    post(hub, dispatcher, key)

    changed = post(hub, dispatcher, key, title="Video visits down (West)")

    assert changed.status_code == 422
    assert changed.json()["error"] == "idempotency_key_reused"
    assert changed.json()["detail"].startswith("Invalid request: Idempotency-Key:")
    assert len(catch_up(hub, dispatcher)) == 1


def test_keys_belong_to_one_dispatcher(hub: EmbeddedHub, dispatcher: str) -> None:
    other = access_token(hub.store, hub.url, "dan", "dispatcher")
    key = str(uuid.uuid4())

    mine = post(hub, dispatcher, key)
    theirs = post(hub, other, key)

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert theirs.json()["issued_by"] == "dan"
    assert theirs.json()["id"] != mine.json()["id"]


MALFORMED_KEYS = ["", "k" * 256, "\u202ekey", "a\tb", "é"]


def test_a_malformed_key_is_refused_by_name(hub: EmbeddedHub, dispatcher: str) -> None:
    for key in MALFORMED_KEYS:
        # Headers travel as bytes; Latin-1 maps each byte of the UTF-8 form to one character.
        response = post(hub, dispatcher, key.encode("utf-8").decode("latin-1"))

        assert response.status_code == 422, (key, response.text)
        assert response.json()["error"] == "invalid_request"
        assert "Idempotency-Key" in response.json()["detail"]
    assert catch_up(hub, dispatcher) == []


def test_forty_parallel_copies_with_one_key_publish_one_alert(
    hub: EmbeddedHub, dispatcher: str
) -> None:
    key = str(uuid.uuid4())
    start = threading.Barrier(PARALLEL_COPIES, timeout=30)

    def attempt(_: int) -> requests.Response:
        with requests.Session() as session:
            start.wait()
            return post(hub, dispatcher, key, session, playbook_id=PLAYBOOK)

    with ThreadPoolExecutor(PARALLEL_COPIES) as pool:
        responses = list(pool.map(attempt, range(PARALLEL_COPIES)))

    assert sorted(r.status_code for r in responses) == [200] * (PARALLEL_COPIES - 1) + [201]
    assert len({(r.json()["id"], r.json()["seq"]) for r in responses}) == 1
    assert len(catch_up(hub, dispatcher)) == 1


@pytest.mark.slow
def test_a_key_is_kept_for_a_day(manual_clock: ManualClock, hub: EmbeddedHub) -> None:
    import_content(hub.store, hub.app.state.signer, demo_content_dir())
    secret = create_user(hub.store, "dora", "dispatcher")
    key = str(uuid.uuid4())

    def post_now() -> requests.Response:
        # Access tokens live 15 minutes: sign in again at each time the clock was moved to.
        token = sign_in(hub.url, "dora", DEFAULT_PASSWORD, secret, at=manual_clock.now())
        return post(hub, token["access_token"], key)

    first = post_now()
    manual_clock.advance(PUBLISH_KEY_SECONDS - 60)
    hub.store.alerts.purge_expired(hub.settings.retention_seconds)
    within_a_day = post_now()
    manual_clock.advance(120)
    hub.store.alerts.purge_expired(hub.settings.retention_seconds)
    after_a_day = post_now()

    assert within_a_day.status_code == 200
    assert within_a_day.json()["id"] == first.json()["id"]
    assert after_a_day.status_code == 201
    assert after_a_day.json()["id"] != first.json()["id"]


class _Lines:
    """A stdin that holds some text."""

    def __init__(self, text: str) -> None:
        self._lines: Iterator[str] = iter(text.splitlines(keepends=True))

    def readline(self) -> str:
        return next(self._lines, "")
