"""`vigil-hub migrate-to`: a running SQLite hub's data copied into PostgreSQL, verified, and the
hub carrying on there; a target that holds anything is refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hub.cli import main
from hub.config import HubSettings
from hub.server import EmbeddedHub
from tests.hubtools import (
    DEFAULT_PASSWORD,
    access_token,
    create_user,
    publish_alert,
    sign_in,
)
from tests.postgres import PostgresCluster

HOSTILE_TITLE = "Call \u202e0010-555-1+ now <script>alert(1)</script>"


def test_a_running_site_is_copied_verified_and_carries_on_in_postgres(
    start_hub: Callable[..., EmbeddedHub],
    postgres_cluster: PostgresCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site = HubSettings(data_dir=tmp_path / "site", signin_refusal_delay_seconds=0)
    old = start_hub(settings=site)
    secret = create_user(old.store, "ana", display_name="Ana \u202e<b>")
    dispatcher = access_token(old.store, old.url, "dora", "dispatcher")
    published = [
        publish_alert(old.url, dispatcher, title=HOSTILE_TITLE),
        publish_alert(old.url, dispatcher, title="x" * 200, body="<b>bold</b>" * 900),
    ]
    url = postgres_cluster.new_database(migrated=False)

    # The SQLite hub is still running while its data is copied.
    status = main(["migrate-to", url, "--data", str(site.data_dir)])

    out = capsys.readouterr().out
    assert status == 0, out
    assert "users" in out and "verified" in out
    # The snapshot, a full copy of the hub's secrets, is gone.
    assert not list(site.data_dir.glob("vigil-migrate-*"))
    old.stop()
    new = start_hub(settings=HubSettings(data_dir=site.data_dir, database_url=url))
    assert sign_in(new.url, "ana", DEFAULT_PASSWORD, secret)["user"]["username"] == "ana"
    page = new.store.alerts.since(0, 100)
    assert [(a.seq, a.title) for a in page.alerts] == [
        (alert["seq"], alert["title"]) for alert in published
    ]
    # Seqs and ids go on after the copied ones, never reusing one.
    later = publish_alert(new.url, dispatcher)
    assert later["seq"] == published[-1]["seq"] + 1
    create_user(new.store, "bo")
    postgres_cluster.drop_database(url)


def test_a_target_with_hub_data_is_refused_and_left_as_it_was(
    start_hub: Callable[..., EmbeddedHub],
    postgres_cluster: PostgresCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site = HubSettings(data_dir=tmp_path / "site")
    old = start_hub(settings=site)
    create_user(old.store, "ana")
    url = postgres_cluster.new_database(migrated=False)
    assert main(["migrate-to", url, "--data", str(site.data_dir)]) == 0
    capsys.readouterr()
    create_user(old.store, "bo")

    status = main(["migrate-to", url, "--data", str(site.data_dir)])

    assert status == 1
    assert "already holds hub data" in capsys.readouterr().err
    target = start_hub(settings=HubSettings(data_dir=tmp_path / "other", database_url=url))
    assert [user.username for user in target.store.accounts.list_users()] == ["ana"]
    postgres_cluster.drop_database(url)


def test_a_folder_without_a_hub_is_refused(
    postgres_cluster: PostgresCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_cluster.new_database(migrated=False)

    status = main(["migrate-to", url, "--data", str(tmp_path / "typo")])

    assert status == 1
    assert "no hub at" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
    postgres_cluster.drop_database(url)


def test_text_with_u0000_is_carried_over_and_reads_back_as_sent(
    start_hub: Callable[..., EmbeddedHub],
    postgres_cluster: PostgresCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site, old, published = _site_with_an_alert(
        start_hub, tmp_path, "NUL\x00inside \ue000\ue001 kept"
    )
    url = postgres_cluster.new_database(migrated=False)

    status = main(["migrate-to", url, "--data", str(site.data_dir)])

    assert status == 0, capsys.readouterr().err
    old.stop()
    new = start_hub(settings=HubSettings(data_dir=site.data_dir, database_url=url))
    [alert] = new.store.alerts.since(0, 10).alerts
    assert (alert.seq, alert.body) == (published["seq"], "NUL\x00inside \ue000\ue001 kept")
    postgres_cluster.drop_database(url)


def test_a_row_postgres_cannot_take_is_refused_by_table_and_nothing_is_kept(
    start_hub: Callable[..., EmbeddedHub],
    postgres_cluster: PostgresCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site, old, _ = _site_with_an_alert(start_hub, tmp_path, "to be damaged")
    old.stop()
    # A file damaged outside the hub: bytes that are not UTF-8 in a text column.
    damaged = sqlite3.connect(site.database_path)
    damaged.execute("UPDATE alerts SET body = CAST(x'41ff42' AS TEXT)")
    damaged.commit()
    damaged.close()
    url = postgres_cluster.new_database(migrated=False)

    status = main(["migrate-to", url, "--data", str(site.data_dir)])

    err = capsys.readouterr().err
    assert status == 1
    assert "Table alerts:" in err and "nothing was kept" in err
    assert "Traceback" not in err and "A\ufffdB" not in err
    assert not list(site.data_dir.glob("vigil-migrate-*"))
    assert main(["user", "list", "--data", str(tmp_path / "none"), "--database", url]) == 0
    assert "dora" not in capsys.readouterr().out
    postgres_cluster.drop_database(url)


def _site_with_an_alert(
    start_hub: Callable[..., EmbeddedHub], tmp_path: Path, body: str
) -> tuple[HubSettings, EmbeddedHub, dict[str, Any]]:
    """A running SQLite hub in tmp_path/site with one alert published by dispatcher dora."""
    site = HubSettings(data_dir=tmp_path / "site")
    hub = start_hub(settings=site)
    dispatcher = access_token(hub.store, hub.url, "dora", "dispatcher")
    return site, hub, publish_alert(hub.url, dispatcher, body=body)
