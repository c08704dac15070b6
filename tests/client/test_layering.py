"""The layers hold: client/core runs without Qt, and the tray icon shows before the heavy parts
(HTTP, keyring, cryptography, SQLite, the command line) are imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import client.core

PROCESS_TIMEOUT = 60
# Loaded by the core on worker threads once the icon is up (docs/benchmarks.md, cold start).
NOT_BEFORE_THE_ICON = (
    "requests",
    "urllib3",
    "cryptography",
    "keyring",
    "sqlite3",
    "client.cli",
    "client.core.services",
    "client.core.outbox",
    "client.core.cache",
    "client.core.hub_client",
    "client.core.auth",
)


def _python(program: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", program],
        env=env,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )


def test_every_core_module_imports_where_qt_cannot_be_imported() -> None:
    core_dir = Path(client.core.__file__).parent
    modules = sorted(f"client.core.{path.stem}" for path in core_dir.glob("*.py"))
    assert "client.core.answers" in modules and "client.core.status" in modules
    program = (
        "import importlib, importlib.abc, json, sys\n"
        "class NoQt(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('PySide6', 'shiboken6'):\n"
        "            raise ImportError(f'{name} is not allowed in client/core')\n"
        "        return None\n"
        "sys.meta_path.insert(0, NoQt())\n"
        "failed = {}\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        failed[name] = str(exc)\n"
        "qt = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6'))\n"
        "print(json.dumps({'failed': failed, 'qt': qt}))\n"
    )

    result = _python(program, dict(os.environ))

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome == {"failed": {}, "qt": []}


def test_the_tray_icon_shows_before_the_core_libraries_load(tmp_path: Path) -> None:
    program = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from PySide6.QtWidgets import QApplication\n"
        "import client.app as app_module\n"
        "from client.core.paths import AppPaths\n"
        "from client.core.policy import Policy\n"
        "from client.core.settings import Settings\n"
        "seen = {}\n"
        "mark = app_module.startup_mark\n"
        "def watch(name):\n"
        "    if name == 'tray_shown':\n"
        "        seen['modules'] = sorted(sys.modules)\n"
        "    mark(name)\n"
        "app_module.startup_mark = watch\n"
        "qt = QApplication([])\n"
        "paths = AppPaths(config_dir=Path(sys.argv[1]) / 'c', data_dir=Path(sys.argv[1]) / 'd')\n"
        "settings = Settings.load(paths, Policy())\n"
        "settings.set('hub_url', 'http://127.0.0.1:9')\n"
        "app = app_module.VigilApp(qt, paths, settings, tray_available=True)\n"
        "app.start()\n"
        "app.quit()\n"
        f"loaded = [m for m in {NOT_BEFORE_THE_ICON!r} if m in seen.get('modules', ['none'])]\n"
        "print(json.dumps({'shown': 'modules' in seen, 'loaded': loaded}))\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("VIGIL_PERF_MARKS", None)

    result = subprocess.run(
        [sys.executable, "-c", program, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"shown": True, "loaded": []}
