"""The idle lock follows the whole desktop: input in another application keeps Vigil unlocked,
measured by the X server's screensaver extension on a real (virtual) X display."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from client.core.idle import IdleTimer, X11Idle, logind_idle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_recent_input_elsewhere_on_the_desktop_keeps_vigil_unlocked() -> None:
    clock = Clock()
    desktop = {"idle": 5.0}
    timer = IdleTimer(5, clock=clock, desktop_idle=lambda: desktop["idle"])
    clock.now += 10 * 60  # no input in Vigil's windows for ten minutes
    assert not timer.check()
    assert timer.seconds_until_lock() == pytest.approx(5 * 60 - 5.0)
    desktop["idle"] = 6 * 60.0  # and none anywhere else either
    assert timer.check()


@pytest.mark.parametrize("reported", [None, -3.0])
def test_an_unknown_or_odd_desktop_idle_time_falls_back_to_vigils_own(
    reported: float | None,
) -> None:
    clock = Clock()
    timer = IdleTimer(5, clock=clock, desktop_idle=lambda: reported)
    clock.now += 4 * 60
    assert timer.idle_seconds() == (4 * 60 if reported is None else 0.0)
    assert not timer.check()


def test_input_in_vigil_counts_even_when_the_desktop_says_idle() -> None:
    clock = Clock()
    timer = IdleTimer(5, clock=clock, desktop_idle=lambda: 3600.0)
    clock.now += 60
    assert timer.idle_seconds() == 60


def test_logind_without_a_session_is_unknown_not_an_error() -> None:
    assert logind_idle("no-such-session-for-vigil") in (None, 0.0)


@pytest.fixture
def x_display() -> Iterator[str]:
    if shutil.which("Xvfb") is None:
        pytest.skip("needs Xvfb")
    display = f":{150 + os.getpid() % 80}"
    server = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "640x480x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        socket = f"/tmp/.X11-unix/X{display[1:]}"
        deadline = time.monotonic() + 10
        while not os.path.exists(socket) and time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.skip("Xvfb did not start")
            time.sleep(0.05)  # polling for the server's socket, bounded by the deadline
        yield display
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_x_screensaver_extension_reports_the_displays_idle_time(x_display: str) -> None:
    idle = None
    source = None
    deadline = time.monotonic() + 10
    while source is None and time.monotonic() < deadline:
        try:
            source = X11Idle(x_display)
        except OSError:
            time.sleep(0.05)  # the server accepts connections shortly after its socket appears
    assert source is not None, "could not connect to Xvfb"
    try:
        idle = source()
        assert idle is not None
        assert 0.0 <= idle < 600
    finally:
        source.close()
    assert source() is None
