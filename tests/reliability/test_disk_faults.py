"""Disk faults: a damaged cache file, a full disk when acknowledging, a read-only data folder.
Each gives a clear message, loses nothing recorded, and recovers as docs/operations.md says.

The full disk and the read-only folder are real: a tiny tmpfs and a read-only bind mount, made in
the test's own folder (that needs root, as in the CI container). Without root the full disk falls
back to capping the outbox file with PRAGMA max_page_count, which makes SQLite fail exactly as a
full disk does, and the read-only case is skipped (chmod cannot stop root, and without root it is
covered by tests/client/test_outbox.py).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from client.app import VigilApp
from client.core.cache import Cache
from client.core.errors import CacheError, OutboxError, VigilError
from client.core.hub_client import HubClient
from client.core.models import Alert
from client.core.outbox import Outbox
from client.core.paths import AppPaths
from client.core.policy import Policy
from client.core.services import CoreServices
from client.core.settings import Settings
from client.core.sync import FixedSession, SyncEngine
from hub.content_import import import_content
from hub.demo import demo_content_dir
from hub.server import EmbeddedHub
from tests.hubtools import DEFAULT_PASSWORD, create_user, next_code, wait_until
from tests.reliability.bench import Dispatcher, trust_on_first_use
from tests.reliability.exactly_once import assert_exactly_once

WAIT_MS = 15_000
SMALL_DISK = "2m"


def _can_mount() -> str | None:
    """Why mounting is impossible here, or None when it works."""
    if os.geteuid() != 0:
        return "mounting a small or read-only filesystem needs root"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "no mount command"
    return None


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


def _unmount(point: Path) -> None:
    result = subprocess.run(["umount", str(point)], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        # Busy (a file still open somewhere): detach it now, the kernel frees it when closed.
        subprocess.run(["umount", "-l", str(point)], check=True, timeout=30)


class DiskFiller:
    """Fills the disk the outbox is on, and frees it again."""

    def __init__(self, mount_point: Path | None) -> None:
        self.mount_point = mount_point
        self._filler = mount_point / "filler" if mount_point else None
        self._outbox: Outbox | None = None

    def fill(self, outbox: Outbox) -> None:
        """Take every free block (or, as the fallback, forbid the outbox file to grow)."""
        if self._filler is None:
            self._outbox = outbox
            pages = outbox._conn.execute("PRAGMA page_count").fetchone()[0]
            outbox._conn.execute(f"PRAGMA max_page_count = {pages}")
            return
        block = b"\0" * 4096
        # Unbuffered, so that the write that finds the disk full is the one that fails.
        with self._filler.open("wb", buffering=0) as filler:
            # Bounded by the filesystem's size: 2 MiB is 512 blocks.
            for _ in range(1_000_000):
                try:
                    filler.write(block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break

    def free(self) -> None:
        """Give the space back."""
        if self._filler is not None:
            self._filler.unlink()
        elif self._outbox is not None:
            self._outbox._conn.execute("PRAGMA max_page_count = 1073741823")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[DiskFiller]:
    point = tmp_path / "small-disk"
    point.mkdir()
    if _can_mount() is not None:
        yield DiskFiller(None)
        return
    result = _mount("-t", "tmpfs", "-o", f"size={SMALL_DISK},mode=0700", "tmpfs", str(point))
    if result.returncode != 0:
        yield DiskFiller(None)
        return
    yield DiskFiller(point)
    _unmount(point)


@pytest.fixture
def make_app(qtbot: QtBot, tmp_path: Path) -> Iterator[Callable[[Path, str], VigilApp]]:
    made: list[VigilApp] = []
    qt_app = QApplication.instance()
    assert isinstance(qt_app, QApplication)

    def make(data_dir: Path, hub_url: str) -> VigilApp:
        paths = AppPaths(config_dir=tmp_path / "config", data_dir=data_dir)
        settings = Settings.load(paths, Policy())
        settings.set("sounds", False)
        settings.set("hub_url", hub_url)
        app = VigilApp(qt_app, paths, settings, tray_available=False)
        qtbot.addWidget(app.popup)
        qtbot.addWidget(app.library)
        made.append(app)
        return app

    yield make
    for app in made:
        app.quit()
    qt_app.setStyleSheet("")
    qt_app.setQuitOnLastWindowClosed(True)


def hub_playbook_count(hub: EmbeddedHub) -> int:
    items, _, _ = hub.store.content.changes(None, 1000)
    return sum(1 for item in items if item.kind == "playbook" and not item.deleted)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _zero_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle - 8192 : middle + 8192] = bytes(16384)
    path.write_bytes(bytes(data))


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(64 * 1024))


DAMAGE = [_truncate, _zero_middle, _garbage]
DAMAGE_IDS = ["truncated", "zeroed_in_the_middle", "garbage"]


def _filled_cache(hub: EmbeddedHub, token: str, data_dir: Path, alert_id: str) -> list[str]:
    """Sync a cache full of content, and leave two acks queued in the outbox; returns their ids."""
    client = HubClient(hub.url, allow_plain_http=True)
    client.set_access_token(token)
    cache = Cache.open(data_dir / "cache.sqlite3")
    outbox = Outbox.open(data_dir / "outbox.sqlite3")
    try:
        SyncEngine(
            client,
            cache,
            outbox,
            verifier_factory=trust_on_first_use,
            session=FixedSession("agent"),
        ).sync_now()
        assert len(cache.playbooks()) == hub_playbook_count(hub)
        # Queued, not yet sent: the damage below must not touch them.
        return [outbox.record(alert_id, "acknowledged", author="agent").ack_id for _ in range(2)]
    finally:
        # Closing checkpoints the WAL: the damage below hits the database pages themselves.
        client.close()
        cache.close()
        outbox.close()


@pytest.mark.parametrize("damage", DAMAGE, ids=DAMAGE_IDS)
def test_damaged_cache_is_set_aside_rebuilt_by_sync_and_queued_acks_survive(
    damage: Callable[[Path], None],
    shared_hub: EmbeddedHub,
    dispatcher: Dispatcher,
    agent_access_token: str,
    tmp_path: Path,
) -> None:
    import_content(shared_hub.store, shared_hub.app.state.signer, demo_content_dir())
    alert_id = dispatcher.publish("Pharmacy system down")
    queued = _filled_cache(shared_hub, agent_access_token, tmp_path, alert_id)
    damage(tmp_path / "cache.sqlite3")
    damaged = (tmp_path / "cache.sqlite3").read_bytes()

    client = HubClient(shared_hub.url, allow_plain_http=True)
    client.set_access_token(agent_access_token)
    cache = Cache.open(tmp_path / "cache.sqlite3")
    outbox = Outbox.open(tmp_path / "outbox.sqlite3")
    try:
        assert cache.quarantined is not None
        assert cache.quarantined.read_bytes() == damaged, "the damaged file is kept for IT"
        assert cache.playbooks() == []
        SyncEngine(
            client,
            cache,
            outbox,
            verifier_factory=trust_on_first_use,
            session=FixedSession("agent"),
        ).sync_now()
        assert len(cache.playbooks()) == hub_playbook_count(shared_hub)
        assert cache.search("outage"), "search works again on the rebuilt cache"
        assert outbox.counts().pending == 0
        assert_exactly_once("queued acks", queued, dispatcher.acks_on_hub(alert_id))
    finally:
        client.close()
        cache.close()
        outbox.close()


def test_the_agent_is_told_when_the_cache_was_set_aside(
    qtbot: QtBot, make_app: Callable[[Path, str], VigilApp], shared_hub: EmbeddedHub, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    Cache.open(data_dir / "cache.sqlite3").close()
    _garbage(data_dir / "cache.sqlite3")
    app = make_app(data_dir, shared_hub.url)
    warnings: list[str] = []
    app.bridge.warning.connect(warnings.append)

    app.start()
    qtbot.waitUntil(lambda: bool(warnings), timeout=WAIT_MS)

    core = app.core
    assert core is not None and core.cache.quarantined is not None
    (text,) = warnings
    assert str(core.cache.quarantined) in text
    assert "acknowledgements" in text.lower()


def _present_alert(qtbot: QtBot, app: VigilApp, dispatcher: Dispatcher, title: str) -> str:
    """Publish an alert on the hub and show it in the pop-up as the alert stream would."""
    alert_id = dispatcher.publish(title)
    core = app.core
    assert core is not None
    alert = next(
        Alert.from_json(raw)
        for raw in core.hub.get_json("/v1/alerts", params={"limit": 1000})["alerts"]
        if raw["id"] == alert_id
    )
    core.alert_stream.alert_received.emit(alert)
    qtbot.waitUntil(lambda: alert_id in app.popup.alert_ids(), timeout=WAIT_MS)
    _bring_up(qtbot, app, alert_id)
    return alert_id


def _bring_up(qtbot: QtBot, app: VigilApp, alert_id: str) -> None:
    """Put the alert on screen with its actions live, as an agent picks it in the waiting list.

    Alerts other tests left unanswered on the shared hub wait ahead of it (oldest first) and may
    still be arriving by catch-up, taking the screen as they come.
    """

    def on_screen() -> bool:
        if app.popup.current_alert_id() != alert_id:
            app.popup.show_alert(alert_id)
        return app.popup.current_alert_id() == alert_id and app.popup.actions_armed()

    qtbot.waitUntil(on_screen, timeout=WAIT_MS)


def test_disk_full_when_acknowledging_never_shows_recorded(
    qtbot: QtBot,
    make_app: Callable[[Path, str], VigilApp],
    small_disk: DiskFiller,
    shared_hub: EmbeddedHub,
    dispatcher: Dispatcher,
    tmp_path: Path,
) -> None:
    data_dir = small_disk.mount_point or tmp_path / "data"
    app = make_app(data_dir, shared_hub.url)
    app.start()
    qtbot.waitUntil(lambda: app.core is not None, timeout=WAIT_MS)
    core = app.core
    assert core is not None
    # Acknowledging needs a signed-in agent: an ack is recorded under its author.
    _sign_in(core, shared_hub, "disk-full-agent")
    alert_id = _present_alert(qtbot, app, dispatcher, "EHR read-only")
    shown: list[tuple[str, str]] = []
    app.alert_desk.ack_state_shown.connect(lambda alert, state: shown.append((alert, state)))

    small_disk.fill(core.outbox)
    _bring_up(qtbot, app, alert_id)
    qtbot.mouseClick(app.popup.action_buttons["acknowledged"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(shown), timeout=WAIT_MS)

    assert shown == [(alert_id, "failed")]
    text = app.popup.ack_state_text(alert_id)
    assert text.startswith("Not recorded:") and "could NOT be saved" in text
    assert "full" in text
    assert core.outbox.for_alert(alert_id) == []

    small_disk.free()
    _bring_up(qtbot, app, alert_id)
    qtbot.mouseClick(app.popup.action_buttons["acknowledged"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: (alert_id, "recorded") in shown, timeout=WAIT_MS)
    assert len(core.outbox.for_alert(alert_id)) == 1


class ReadOnlyMount:
    """A folder made read-only with a read-only bind mount over itself, and made writable again."""

    def __init__(self) -> None:
        self._mounted: list[Path] = []

    def apply(self, folder: Path) -> None:
        result = _mount("--bind", str(folder), str(folder))
        if result.returncode != 0:
            pytest.skip(f"a bind mount is not possible here: {result.stderr.strip()}")
        self._mounted.append(folder)
        result = _mount("-o", "remount,ro,bind", str(folder))
        if result.returncode != 0:
            self.release()
            pytest.skip(f"a read-only remount is not possible here: {result.stderr.strip()}")

    def release(self) -> None:
        """Writable again (safe to call twice)."""
        while self._mounted:
            _unmount(self._mounted.pop())


@pytest.fixture
def read_only_mount() -> Iterator[ReadOnlyMount]:
    reason = _can_mount()
    if reason is not None:
        pytest.skip(f"{reason}: chmod does not stop root, and test_outbox covers non-root")
    mount = ReadOnlyMount()
    yield mount
    mount.release()


def _sign_in(core: CoreServices, hub: EmbeddedHub, username: str) -> None:
    """Sign `core` in as a new agent, through both steps, as the sign-in window does."""
    secret = create_user(hub.store, username)
    challenge = core.auth.begin(username, DEFAULT_PASSWORD)
    core.auth.complete(challenge, next_code(secret))


def _services(data_dir: Path, config_dir: Path, hub_url: str) -> CoreServices:
    paths = AppPaths(config_dir=config_dir, data_dir=data_dir)
    settings = Settings.load(paths, Policy())
    settings.set("hub_url", hub_url)
    return CoreServices.build(paths, settings)


@pytest.mark.keyring
def test_read_only_data_folder_is_a_clear_error_and_queued_acks_survive(
    read_only_mount: ReadOnlyMount,
    shared_hub: EmbeddedHub,
    dispatcher: Dispatcher,
    tmp_path: Path,
) -> None:
    data_dir, config_dir = tmp_path / "data", tmp_path / "config"
    alert_id = dispatcher.publish("Lab results delayed")
    outbox = Outbox.open(data_dir / "outbox.sqlite3")
    author = "read-only-agent"
    queued = [outbox.record(alert_id, "acknowledged", author=author).ack_id for _ in range(2)]
    outbox.close()
    Cache.open(data_dir / "cache.sqlite3").close()
    before = {path.name: path.read_bytes() for path in data_dir.iterdir()}

    read_only_mount.apply(data_dir)
    with pytest.raises((CacheError, OutboxError)) as caught:
        _services(data_dir, config_dir, shared_hub.url).close()
    message = caught.value.message
    assert str(data_dir) in message and "could not be opened" in message
    with pytest.raises(OutboxError, match="cannot be") as refused:
        Outbox.open(data_dir / "outbox.sqlite3").close()
    assert isinstance(refused.value, VigilError)
    assert {path.name: path.read_bytes() for path in data_dir.iterdir()} == before

    read_only_mount.release()
    services = _services(data_dir, config_dir, shared_hub.url)
    try:
        _sign_in(services, shared_hub, author)
        assert services.outbox.counts().pending == 2
        services.sync.sync_now()
        wait_until(lambda: services.outbox.counts().pending == 0)
        assert_exactly_once("queued acks", queued, dispatcher.acks_on_hub(alert_id))
    finally:
        services.close()
