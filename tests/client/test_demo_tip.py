"""The demo's "try the vigil command in another terminal" tip works headless: with the demo's own
private keyring (gnome-keyring on a private D-Bus), the exports it prints let a separate `vigil`
process find the demo's sign-in."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import keyring
import pytest

REPO = Path(__file__).resolve().parents[2]
PROCESS_TIMEOUT = 60

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("dbus-daemon") and shutil.which("gnome-keyring-daemon")),
        reason="needs dbus-daemon and gnome-keyring-daemon for the demo's private keyring",
    ),
]


@pytest.fixture
def demo_script(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("vigil_demo_script", REPO / "scripts/demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    # As `python scripts/demo.py` runs it: its own folder first on the path, for its helpers.
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    spec.loader.exec_module(module)
    # The private keyring points this process's D-Bus address and keyring at itself: put back.
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    previous = keyring.get_keyring()
    yield module
    keyring.set_keyring(previous)


def test_the_tip_hands_over_the_private_keyring(
    demo_script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = demo_script.DemoProfile(tmp_path / "demo")
    private = demo_script.PrivateKeyring()
    demo = demo_script.DemoHub.start(profile.hub_dir, 0)
    try:
        profile.prepare(demo.url)
        private.start()
        demo_script.auto_sign_in(demo, profile)
        capsys.readouterr()

        demo_script.keep_hub_running(demo, profile, 0.01, private.bus_address)

        printed = capsys.readouterr().out
        exports = dict(
            shlex.split(line.strip().removeprefix("export "))[0].split("=", 1)
            for line in printed.splitlines()
            if line.strip().startswith("export ")
        )
        assert exports["DBUS_SESSION_BUS_ADDRESS"] == private.bus_address
        other_terminal = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DBUS_SESSION_BUS_ADDRESS", "VIGIL_TEST_REAL_KEYRING")
        }
        status = subprocess.run(
            [sys.executable, "-m", "client.launch", "status"],
            env={**other_terminal, **exports},
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT,
            check=False,
            cwd=REPO,
        )
        assert status.returncode == 0, status.stderr
        assert "(saved sign-in)" in status.stdout, status.stdout + status.stderr
    finally:
        demo.stop()
        private.stop()
