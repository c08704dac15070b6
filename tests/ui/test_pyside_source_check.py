"""PySide6's check of newly imported modules: same answer as before, no source text kept."""

from __future__ import annotations

import linecache
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import client.pyside_source_check


@pytest.fixture
def probe_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "vigil_probe_plain.py").write_text("VALUE = 1\n" + "# filler\n" * 2000)
    (tmp_path / "vigil_probe_qt.py").write_text("import PySide6.QtCore\n\nVALUE = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("vigil_probe_plain", "vigil_probe_qt"):
        sys.modules.pop(name, None)


def test_imports_after_pyside_keep_no_source_text(probe_modules: Path) -> None:
    assert client.pyside_source_check.install()
    linecache.clearcache()

    # The import statement's path (builtins.__import__), which PySide6 hooks.
    __import__("vigil_probe_plain")
    __import__("vigil_probe_qt")

    assert str(probe_modules / "vigil_probe_plain.py") not in linecache.cache
    assert str(probe_modules / "vigil_probe_qt.py") not in linecache.cache


def test_modules_are_told_apart_as_pyside_would(probe_modules: Path) -> None:
    client.pyside_source_check.install()

    # The import statement's path (builtins.__import__), which PySide6 hooks.
    __import__("vigil_probe_plain")
    __import__("vigil_probe_qt")

    # 0: the module uses PySide6 and may switch its features; -1: PySide6 ignores it.
    features = sys.modules["shibokensupport.feature"].pyside_feature_dict
    assert features["vigil_probe_plain"] == -1
    assert features["vigil_probe_qt"] == 0
