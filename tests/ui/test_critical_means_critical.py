"""Critical means critical: the tone repeats until answered, a critical alert may take the whole
screen (IT's choice), the agent picks the audio output, and "with a patient" delays only
non-critical alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from client.core.models import Alert
from client.core.paths import AppPaths
from client.core.policy import load_policy
from client.core.reminders import AlertAttention
from client.core.settings import Settings
from client.ui.alert_popup import AlertPopup
from client.ui.settings_dialog import SettingsDialog
from client.ui.sound import AlertSound, RepeatingTone, player_arguments
from client.ui.view_models import AlertCard


def make_alert(seq: int, severity: str) -> Alert:
    return Alert(
        id=f"alert-{seq}",
        seq=seq,
        severity=severity,
        title=f"{severity} {seq}",
        body="Body.",
        playbook_id=None,
        template_ids=(),
        requires_ack=True,
        issued_at="2026-12-03T08:00:00Z",
        expires_at=None,
        issued_by="dispatch",
    )


def test_the_critical_tone_repeats_while_a_critical_waits_and_stops_once_answered(
    qtbot: QtBot,
) -> None:
    sound = AlertSound(enabled=True)
    waiting = {"critical": True}
    tone = RepeatingTone(sound, lambda: waiting["critical"], interval_ms=20)
    played: list[str] = []
    sound.played.connect(lambda severity, _how: played.append(severity))
    tone.start()
    qtbot.waitUntil(lambda: len(played) >= 3, timeout=5000)
    assert set(played) == {"critical"}
    waiting["critical"] = False
    count = len(played)
    with qtbot.assertNotEmitted(sound.played, wait=200):
        pass
    assert len(played) == count
    tone.stop()


def test_sounds_off_means_no_repeating_tone_either(qtbot: QtBot) -> None:
    sound = AlertSound(enabled=False)
    tone = RepeatingTone(sound, lambda: True, interval_ms=10)
    tone.start()
    with qtbot.assertNotEmitted(sound.played, wait=150):
        pass
    tone.stop()


@pytest.mark.parametrize(
    ("player", "expected"),
    [
        ("/usr/bin/paplay", ["--device=headset", "tone.wav"]),
        ("/usr/bin/pw-play", ["--target", "headset", "tone.wav"]),
        ("/usr/bin/aplay", ["-D", "headset", "tone.wav"]),
        ("/usr/bin/afplay", ["tone.wav"]),
    ],
)
def test_the_agents_audio_output_reaches_the_player(player: str, expected: list[str]) -> None:
    assert player_arguments(player, Path("tone.wav"), "headset") == expected
    assert player_arguments(player, Path("tone.wav"), None) == ["tone.wav"]


def test_with_a_patient_is_offered_for_major_and_never_for_critical(qtbot: QtBot) -> None:
    popup = AlertPopup(arm_ms=0)
    qtbot.addWidget(popup)
    popup.set_snooze_minutes(10)
    with qtbot.waitActive(popup, timeout=5000):
        popup.present(AlertCard(make_alert(1, "major")), sound=False)
    assert popup.snooze_button.isVisible()
    assert "10 min" in popup.snooze_button.text()
    with qtbot.waitSignal(popup.snooze_requested, timeout=2000) as blocker:
        qtbot.keyClick(popup, Qt.Key.Key_W, Qt.KeyboardModifier.AltModifier)
    assert blocker.args == ["alert-1"]
    popup.present(AlertCard(make_alert(2, "critical")), sound=False)
    assert popup.current_alert_id() == "alert-2"
    assert not popup.snooze_button.isVisible()
    with qtbot.assertNotEmitted(popup.snooze_requested):
        qtbot.keyClick(popup, Qt.Key.Key_W, Qt.KeyboardModifier.AltModifier)
    popup.set_snooze_minutes(0)
    popup.show_alert("alert-1")
    assert not popup.snooze_button.isVisible()


def test_a_snooze_delays_a_major_reminder_and_refuses_a_critical() -> None:
    now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    clock = {"now": now}
    attention = AlertAttention(clock=lambda: clock["now"], reshow_minutes=3)
    attention.receive(make_alert(1, "major"))
    attention.receive(make_alert(2, "critical"))
    assert attention.snooze("alert-1", 10)
    assert not attention.snooze("alert-2", 10)
    assert not attention.snooze("alert-1", 0)
    assert not attention.snooze("no-such-alert", 10)
    clock["now"] = now + timedelta(minutes=5)
    assert [a.id for a in attention.due()] == ["alert-2"]
    clock["now"] = now + timedelta(minutes=10)
    assert {a.id for a in attention.due()} == {"alert-1", "alert-2"}


def test_a_critical_alert_takes_the_whole_screen_when_it_says_so(qtbot: QtBot) -> None:
    popup = AlertPopup(arm_ms=0)
    qtbot.addWidget(popup)
    popup.set_critical_fullscreen(True)
    popup.present(AlertCard(make_alert(1, "major")), sound=False)
    assert not popup.isFullScreen()
    popup.present(AlertCard(make_alert(2, "critical")), sound=False)
    qtbot.waitUntil(popup.isFullScreen, timeout=5000)
    popup.set_critical_fullscreen(False)
    qtbot.waitUntil(lambda: not popup.isFullScreen(), timeout=5000)


def test_it_sets_the_alert_policy_and_the_agent_sets_the_audio_output(
    qtbot: QtBot, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.json"
    policy = {
        "alerts": {
            "critical_repeat_seconds": 15,
            "critical_fullscreen": True,
            "patient_snooze_minutes": 5,
        }
    }
    policy_file.write_text(json.dumps(policy), encoding="utf-8")
    paths = AppPaths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    settings = Settings.load(paths, load_policy(policy_file))
    assert settings.get("critical_repeat_seconds") == 15
    assert settings.get("critical_fullscreen") is True
    assert settings.get("patient_snooze_minutes") == 5
    assert settings.is_locked("patient_snooze_minutes")
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.sound_device, "alsa_output.usb-headset")
    assert dialog.changes() == {"sound_device": "alsa_output.usb-headset"}
    dialog.sound_device.clear()
    assert dialog.changes() == {}


@pytest.mark.parametrize("value", [0, 4, 601, -1, "30", None, 1e9])
def test_a_bad_repeat_interval_in_the_policy_is_named(tmp_path: Path, value: object) -> None:
    from client.core.errors import PolicyError

    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps({"alerts": {"critical_repeat_seconds": value}}), "utf-8")
    with pytest.raises(PolicyError, match=r"alerts\.critical_repeat_seconds"):
        load_policy(policy_file)
