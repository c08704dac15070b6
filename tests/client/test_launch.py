"""The `vigil` program picks the tray app or a terminal command before loading either."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROCESS_TIMEOUT = 60
# The tray app loads these on worker threads after its icon shows; the command line needs them
# at once. None may be in the way of the icon.
CORE_LIBRARIES = ("client.cli", "client.core.services", "requests", "keyring", "cryptography")


def _run(program: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    env["VIGIL_CONFIG_DIR"] = str(tmp_path / "config")
    return subprocess.run(
        [sys.executable, "-c", program],
        env=env,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )


def test_vigil_alone_goes_to_the_tray_app_without_the_core(tmp_path: Path) -> None:
    # With no display the tray app stops at once, saying so: proof it was the tray app that ran.
    program = (
        "import sys\n"
        "from client.launch import main\n"
        "code = main([])\n"
        f"print(sorted(name for name in {CORE_LIBRARIES!r} if name in sys.modules))\n"
        "sys.exit(code)\n"
    )

    result = _run(program, tmp_path)

    assert result.returncode == 2, result.stderr
    assert "no graphical display" in result.stderr
    assert result.stdout.strip() == "[]"


def test_a_command_goes_to_the_command_line(tmp_path: Path) -> None:
    program = "import sys\nfrom client.launch import main\nsys.exit(main(['--help']))"

    result = _run(program, tmp_path)

    assert result.returncode == 0, result.stderr
    assert "usage: vigil" in result.stdout
    assert "`vigil` alone starts the tray app" in result.stdout
