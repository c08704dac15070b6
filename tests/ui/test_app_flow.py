"""The whole tray app against a real hub: sign-in through the dialog, an alert published on the
hub becomes a pop-up, Acknowledge is written to the outbox and the pop-up follows it to the hub,
reminders until acknowledged, and the no-tray fallback."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from client.app import NO_TRAY_NOTICE, VigilApp
from client.controllers import library as library_controller_module
from client.core.outbox import AckState
from client.core.paths import AppPaths
from client.core.policy import Policy
from client.core.reminders import AlertAttention
from client.core.settings import Settings
from hub.server import EmbeddedHub
from tests.hubtools import (
    DEFAULT_PASSWORD,
    HTTP_TIMEOUT,
    auth_headers,
    create_user,
    next_code,
    publish_alert,
    sign_in,
)

WAIT_MS = 15_000


class StepClock:
    """The reminders' clock, moved by the test, so a 3-minute reminder needs no waiting."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
def make_app(qtbot: QtBot, tmp_path: Path, clock: StepClock) -> Iterator[Any]:
    made: list[VigilApp] = []
    qt_app = QApplication.instance()
    assert isinstance(qt_app, QApplication)

    def make(hub_url: str | None) -> VigilApp:
        paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
        settings = Settings.load(paths, Policy())
        settings.set("sounds", False)
        if hub_url:
            settings.set("hub_url", hub_url)
        app = VigilApp(
            qt_app,
            paths,
            settings,
            tray_available=False,
            attention=AlertAttention(clock=clock),
            reminder_tick_ms=20,
        )
        qtbot.addWidget(app.popup)
        qtbot.addWidget(app.library)
        made.append(app)
        app.start()
        return app

    yield make
    for app in made:
        app.quit()
    qt_app.setStyleSheet("")
    qt_app.setQuitOnLastWindowClosed(True)


@pytest.fixture
def agent_secret(hub: EmbeddedHub) -> str:
    return create_user(hub.store, "amira", "agent", display_name="Amira Haddad")


@pytest.fixture
def dispatcher_token(hub: EmbeddedHub) -> str:
    secret = create_user(hub.store, "dora", "dispatcher")
    token: str = sign_in(hub.url, "dora", DEFAULT_PASSWORD, secret)["access_token"]
    return token


def sign_in_through_dialog(qtbot: QtBot, app: VigilApp, secret: str) -> None:
    qtbot.waitUntil(lambda: app.signin is not None and app.signin.isVisible(), timeout=WAIT_MS)
    dialog = app.signin
    assert dialog is not None
    qtbot.keyClicks(dialog.username_edit, "amira")
    qtbot.keyClicks(dialog.password_edit, DEFAULT_PASSWORD)
    qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.step == "code" and not dialog.busy, timeout=WAIT_MS)
    qtbot.keyClicks(dialog.code_edit, next_code(secret))
    qtbot.waitUntil(lambda: app.signin is None, timeout=WAIT_MS)
    core = app.core
    assert core is not None
    assert core.auth.account is not None
    assert core.auth.account.username == "amira"


def hub_acks(hub: EmbeddedHub, token: str, alert_id: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{hub.url}/v1/alerts/{alert_id}/acks", headers=auth_headers(token), timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 200, response.text
    acks: list[dict[str, Any]] = response.json()["acks"]
    return acks


def test_alert_from_the_hub_pops_up_and_its_ack_is_recorded_then_synced(
    qtbot: QtBot, hub: EmbeddedHub, make_app: Any, agent_secret: str, dispatcher_token: str
) -> None:
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    shown: list[tuple[str, str]] = []
    app.alert_desk.ack_state_shown.connect(lambda alert_id, state: shown.append((alert_id, state)))

    alert = publish_alert(hub.url, dispatcher_token, title="<b>West</b> <script>alert(1)</script>")
    qtbot.waitUntil(lambda: app.popup.current_alert_id() == alert["id"], timeout=WAIT_MS)
    assert app.popup.isVisible()
    assert app.popup.title_label.text() == "<b>West</b> <script>alert(1)</script>"
    assert app.popup.windowFlags() & Qt.WindowType.WindowStaysOnTopHint

    qtbot.keyClicks(app.popup.note_edit, "On it")
    qtbot.mouseClick(app.popup.action_buttons["acknowledged"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: (alert["id"], "synced") in shown, timeout=WAIT_MS)
    # "Recorded" was shown first, and only once the outbox held the ack on disk.
    assert shown == [(alert["id"], "recorded"), (alert["id"], "synced")]
    assert app.popup.ack_state_text(alert["id"]) == "Acknowledged · Synced"
    # A settled alert leaves nothing behind for reminders: a day of alerts must not pile up.
    assert alert["id"] not in app.alert_desk._cards

    core = app.core
    assert core is not None
    records = core.outbox.for_alert(alert["id"])
    assert [(r.action, r.note, r.state) for r in records] == [
        ("acknowledged", "On it", AckState.SYNCED)
    ]
    acks = hub_acks(hub, dispatcher_token, alert["id"])
    assert [(a["username"], a["action"], a["note"]) for a in acks] == [
        ("amira", "acknowledged", "On it")
    ]


def test_unacknowledged_alert_comes_back_until_acknowledged(
    qtbot: QtBot,
    hub: EmbeddedHub,
    make_app: Any,
    agent_secret: str,
    dispatcher_token: str,
    clock: StepClock,
) -> None:
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    alert = publish_alert(hub.url, dispatcher_token, severity="major")
    qtbot.waitUntil(lambda: app.popup.current_alert_id() == alert["id"], timeout=WAIT_MS)

    qtbot.keyClick(app.popup.body_view, Qt.Key.Key_Escape)
    assert not app.popup.isVisible()
    clock.advance(minutes=2)
    app.alert_desk.check_reminders()
    assert not app.popup.isVisible()
    clock.advance(minutes=1)
    qtbot.waitUntil(app.popup.isVisible, timeout=WAIT_MS)
    assert app.popup.current_alert_id() == alert["id"]

    qtbot.mouseClick(app.popup.action_buttons["acknowledged"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: (
            "Recorded" in app.popup.ack_state_text(alert["id"])
            or "Synced" in app.popup.ack_state_text(alert["id"])
        ),
        timeout=WAIT_MS,
    )
    qtbot.keyClick(app.popup.body_view, Qt.Key.Key_Escape)
    clock.advance(minutes=10)
    app.alert_desk.check_reminders()
    assert not app.popup.isVisible()
    assert app.attention.waiting() == []


def test_minor_alert_does_not_pop_up(
    qtbot: QtBot, hub: EmbeddedHub, make_app: Any, agent_secret: str, dispatcher_token: str
) -> None:
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    alert = publish_alert(hub.url, dispatcher_token, severity="minor", title="Portal slow")
    alert_list = app.library.alert_list

    def listed() -> bool:
        items = [alert_list.topLevelItem(i) for i in range(alert_list.topLevelItemCount())]
        titles = [item.text(2) for item in items if item is not None]
        return "Portal slow" in titles

    qtbot.waitUntil(listed, timeout=WAIT_MS)
    assert app.popup.current_alert_id() is None
    assert alert["id"] not in app.popup.alert_ids()
    assert app.attention.waiting() == []


def test_without_a_system_tray_the_library_opens_and_says_why(qtbot: QtBot, make_app: Any) -> None:
    app: VigilApp = make_app(None)
    assert app.tray is None
    assert app.library.isVisible()
    assert app.notice is not None
    assert app.notice.text() == NO_TRAY_NOTICE
    # No hub address yet: the sign-in dialog asks for it.
    qtbot.waitUntil(lambda: app.signin is not None and app.signin.isVisible(), timeout=WAIT_MS)
    assert app.signin is not None
    assert not app.signin.hub_edit.isReadOnly()


def test_wrong_code_is_shown_in_the_dialog(
    qtbot: QtBot, hub: EmbeddedHub, make_app: Any, agent_secret: str
) -> None:
    app: VigilApp = make_app(hub.url)
    qtbot.waitUntil(lambda: app.signin is not None and app.signin.isVisible(), timeout=WAIT_MS)
    dialog = app.signin
    assert dialog is not None
    qtbot.keyClicks(dialog.username_edit, "amira")
    qtbot.keyClicks(dialog.password_edit, DEFAULT_PASSWORD)
    qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.step == "code" and not dialog.busy, timeout=WAIT_MS)
    good = next_code(agent_secret)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    qtbot.keyClicks(dialog.code_edit, wrong)
    qtbot.waitUntil(lambda: dialog.error_label.isVisible(), timeout=WAIT_MS)
    assert dialog.error_label.text()
    assert dialog.step == "code"
    assert app.core is not None
    assert app.core.auth.account is None


real_keyring = pytest.mark.skipif(
    os.environ.get("VIGIL_TEST_REAL_KEYRING") != "1",
    reason="needs a real Secret Service keyring: run the tests with scripts/test, which starts "
    "gnome-keyring on a private D-Bus and sets VIGIL_TEST_REAL_KEYRING=1",
)


@real_keyring
def test_next_start_signs_in_from_the_keyring_without_the_dialog(
    qtbot: QtBot, hub: EmbeddedHub, make_app: Any, agent_secret: str
) -> None:
    first: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, first, agent_secret)
    first.quit()

    second: VigilApp = make_app(hub.url)
    qtbot.waitUntil(
        lambda: second.core is not None and second.core.auth.account is not None,
        timeout=WAIT_MS,
    )
    qtbot.waitUntil(
        lambda: second.library.lock_screen.user.text() == "Signed in as amira", timeout=WAIT_MS
    )
    assert second.signin is None


@real_keyring
def test_idle_lock_hides_lesser_alerts_and_unlocks_offline_with_the_password(
    qtbot: QtBot, hub: EmbeddedHub, make_app: Any, agent_secret: str, dispatcher_token: str
) -> None:
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    qtbot.waitUntil(lambda: app.idle_lock.unlocker.is_enrolled("amira"), timeout=WAIT_MS)
    major = publish_alert(hub.url, dispatcher_token, severity="major", title="Portal down")
    qtbot.waitUntil(lambda: app.popup.current_alert_id() == major["id"], timeout=WAIT_MS)

    app.idle_lock.watcher.lock()
    assert app.library.is_locked
    assert major["id"] not in app.popup.alert_ids()
    critical = publish_alert(hub.url, dispatcher_token, severity="critical", title="Video down")
    qtbot.waitUntil(lambda: app.popup.current_alert_id() == critical["id"], timeout=WAIT_MS)
    assert app.popup.alert_ids() == [critical["id"]]

    hub.stop()
    screen = app.library.lock_screen
    qtbot.keyClicks(screen.password, "not my password")
    qtbot.keyClick(screen.password, Qt.Key.Key_Return)
    qtbot.waitUntil(screen.error.isVisible, timeout=WAIT_MS)
    assert app.library.is_locked
    qtbot.keyClicks(screen.password, DEFAULT_PASSWORD)
    qtbot.keyClick(screen.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not app.library.is_locked, timeout=WAIT_MS)
    # The alert held back while locked is back in the queue.
    assert set(app.popup.alert_ids()) == {critical["id"], major["id"]}


def test_settings_changes_apply_at_once_and_are_saved(
    qtbot: QtBot, make_app: Any, tmp_path: Path
) -> None:
    app: VigilApp = make_app(None)
    app.settings_controller.show()
    dialog = app.settings_dialog
    assert dialog is not None
    dialog.checkboxes["minor_alert_notifications"].setChecked(False)
    dialog.checkboxes["sounds"].setChecked(True)
    dialog.idle_minutes.setValue(7)
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert app.attention.notify_lesser is False
    assert app.alert_desk.sound.enabled is True
    assert app.idle_lock.timer.idle_minutes == 7
    settings_file = tmp_path / "config" / "settings.json"
    qtbot.waitUntil(settings_file.exists, timeout=WAIT_MS)
    qtbot.waitUntil(
        lambda: '"idle_lock_minutes": 7' in settings_file.read_text(encoding="utf-8"),
        timeout=WAIT_MS,
    )


def test_a_burst_of_alerts_reads_the_library_lists_once_more_not_once_each(
    qtbot: QtBot,
    hub: EmbeddedHub,
    make_app: Any,
    agent_secret: str,
    dispatcher_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each read holds the whole history; one per alert piled up hundreds at once in memory.
    started: list[int] = []
    finished: list[int] = []
    real_lists = library_controller_module._lists

    def counted_lists(core: Any) -> Any:
        # How many reads were under way when this one began, itself included.
        started.append(len(started) - len(finished) + 1)
        try:
            return real_lists(core)
        finally:
            finished.append(1)

    monkeypatch.setattr(library_controller_module, "_lists", counted_lists)
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    alerts = [publish_alert(hub.url, dispatcher_token, title=f"Burst {n}") for n in range(3)]
    qtbot.waitUntil(lambda: len(app.popup.alert_ids()) == len(alerts), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: app.library.alert_list.topLevelItemCount() == 3, timeout=WAIT_MS)

    before = len(started)
    for _ in range(10):
        app.library_controller.reload()
    controller = app.library_controller
    qtbot.waitUntil(
        lambda: (
            len(started) > before and len(finished) == len(started) and not controller._reloading
        ),
        timeout=WAIT_MS,
    )
    # Other changes (a sync finishing) may ask for a read too, but never a second one at once.
    assert len(started) - before < 10
    assert max(started) == 1
    alert_list = app.library.alert_list
    rows = [alert_list.topLevelItem(row) for row in range(alert_list.topLevelItemCount())]
    assert {row.text(2) for row in rows if row is not None} == {"Burst 0", "Burst 1", "Burst 2"}


def test_a_burst_of_acks_all_show_synced_with_one_read_of_their_states_at_a_time(
    qtbot: QtBot,
    hub: EmbeddedHub,
    make_app: Any,
    agent_secret: str,
    dispatcher_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app: VigilApp = make_app(hub.url)
    sign_in_through_dialog(qtbot, app, agent_secret)
    core = app.core
    assert core is not None
    # Reads of ack states under way at once: each refresh reads every followed ack in turn, so
    # more than one at a time means refreshes overlap (one per ack used to pile up).
    reading = threading.Lock()
    overlaps: list[int] = []
    real_get = core.outbox.get

    def watched_get(ack_id: str) -> Any:
        if not reading.acquire(blocking=False):
            overlaps.append(1)
            return real_get(ack_id)
        try:
            return real_get(ack_id)
        finally:
            reading.release()

    monkeypatch.setattr(core.outbox, "get", watched_get)
    shown: list[tuple[str, str]] = []
    app.alert_desk.ack_state_shown.connect(lambda alert_id, state: shown.append((alert_id, state)))
    alerts = [publish_alert(hub.url, dispatcher_token, title=f"Burst {n}") for n in range(8)]
    qtbot.waitUntil(lambda: len(app.popup.alert_ids()) == len(alerts), timeout=WAIT_MS)

    for alert in alerts:
        app.popup.ack_requested.emit(alert["id"], "acknowledged", "")
    qtbot.waitUntil(
        lambda: all((alert["id"], "synced") in shown for alert in alerts), timeout=WAIT_MS
    )

    assert overlaps == []
    assert not app.alert_desk._acks
    for alert in alerts:
        assert [a["username"] for a in hub_acks(hub, dispatcher_token, alert["id"])] == ["amira"]
