"""PySide6's check of each newly imported module, made to read the module's file once.

After PySide6 is imported it looks at every module imported later for the text "PySide6" (to
know which modules may switch on its `__feature__` options). It does that with
`inspect.getsource`, which tokenizes the whole module and keeps its text in `linecache` for good:
about 14 MiB of text once the core's libraries are in, and a heap left fragmented when that cache
is dropped. Reading the file's bytes gives the same answer and keeps nothing. Importing this
module installs the lighter check; it must come right after the first PySide6 import.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType

import PySide6.QtCore  # noqa: F401  (loads PySide6's import hook, which this module adjusts)

FEATURE_MODULE = "shibokensupport.feature"


def _raw_check(original: Callable[[ModuleType], bool]) -> Callable[[ModuleType], bool]:
    def uses_pyside(module: ModuleType) -> bool:
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py"):
            return original(module)
        try:
            with open(path, "rb") as source:
                return b"PySide6" in source.read()
        except OSError:
            # No file (a frozen build, a zip): the original asks the module's loader.
            return original(module)

    uses_pyside.vigil_raw_check = True  # type: ignore[attr-defined]
    return uses_pyside


def install() -> bool:
    """Install the lighter check; False when this PySide6 has no such check to adjust."""
    feature = sys.modules.get(FEATURE_MODULE)
    original = getattr(feature, "_mod_uses_pyside", None)
    if feature is None or not callable(original):
        return False
    if not getattr(original, "vigil_raw_check", False):
        feature._mod_uses_pyside = _raw_check(original)  # type: ignore[attr-defined]
    return True


install()
