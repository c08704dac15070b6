"""Files only their owner reads: the client's folders are 0700 and every file in them 0600,
including an existing profile made with looser modes, SQLite's WAL and SHM, and logs."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.core.cache import Cache
from client.core.paths import AppPaths
from client.core.policy import Policy
from client.core.services import CoreServices
from client.core.settings import Settings

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture(autouse=True)
def keep_umask() -> Iterator[None]:
    """Tests here set this process's umask to make loose files; put the runner's back after."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def loose_profile(tmp_path: Path) -> AppPaths:
    """A profile as an older Vigil left it: 0755 folders, 0644 files."""
    os.umask(0o022)
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    Cache.open(paths.cache_db).close()
    for path in (
        paths.settings_file,
        paths.outbox_db,
        Path(f"{paths.outbox_db}-wal"),
        Path(f"{paths.cache_db}-shm"),
        paths.log_dir / "vigil.log",
        paths.data_dir / "cache.sqlite3.corrupt-20261201T000000Z",
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    for path in [paths.config_dir, paths.data_dir, *paths.data_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return paths


def test_an_existing_profile_is_made_owner_only_at_start(tmp_path: Path) -> None:
    paths = loose_profile(tmp_path)
    settings = Settings.load(paths, Policy(values={"hub_url": "http://127.0.0.1:9"}))

    core = CoreServices.build(paths, settings)
    try:
        entries = [paths.config_dir, paths.data_dir]
        entries += [*paths.config_dir.rglob("*"), *paths.data_dir.rglob("*")]
        assert Path(f"{paths.cache_db}-wal").exists(), "SQLite's own files are covered too"
        loose = {str(p): oct(mode(p)) for p in entries if mode(p) not in (0o700, 0o600)}
        assert loose == {}
        assert all(mode(p) == 0o700 for p in entries if p.is_dir())
        assert all(mode(p) == 0o600 for p in entries if p.is_file())
    finally:
        core.close()


def test_a_new_cache_and_its_wal_are_created_owner_only(tmp_path: Path) -> None:
    os.umask(0o022)
    cache = Cache.open(tmp_path / "fresh" / "cache.sqlite3")
    try:
        cache.set_state("k", "v")
        for suffix in ("", "-wal", "-shm"):
            assert mode(tmp_path / "fresh" / f"cache.sqlite3{suffix}") == 0o600
        assert mode(tmp_path / "fresh") == 0o700
    finally:
        cache.close()


def test_a_fresh_profile_made_by_the_vigil_program_is_owner_only(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VIGIL_CONFIG_DIR": str(tmp_path / "config"),
        "VIGIL_DATA_DIR": str(tmp_path / "data"),
        "VIGIL_POLICY": str(tmp_path / "policy.json"),
    }
    (tmp_path / "policy.json").write_text('{"hub_url": "http://127.0.0.1:9"}')

    result = subprocess.run(
        [sys.executable, "-m", "client.launch", "acks"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    made = [tmp_path / "config", tmp_path / "data"]
    made += [*(tmp_path / "config").rglob("*"), *(tmp_path / "data").rglob("*")]
    assert tmp_path / "data" / "outbox.sqlite3" in made
    assert {str(p): oct(mode(p)) for p in made if mode(p) not in (0o700, 0o600)} == {}


def test_symlinks_in_the_profile_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not Vigil's")
    outside.chmod(0o644)
    paths = AppPaths(config_dir=tmp_path / "c", data_dir=tmp_path / "d")
    paths.data_dir.mkdir()
    (paths.data_dir / "link").symlink_to(outside)

    paths.make_private()

    assert mode(outside) == 0o644
