"""The console's third-party browser files are the npm registry's, as pinned and recorded."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "hub" / "console" / "static" / "vendor"
MODULES = ROOT / "web" / "node_modules"
# Served name -> (package, file inside the package), as scripts/vendor-console copies them.
SOURCES = {
    "htmx.min.js": ("htmx.org", "dist/htmx.min.js"),
    "sse.min.js": ("htmx-ext-sse", "dist/sse.min.js"),
    "chart.umd.min.js": ("chart.js", "dist/chart.umd.min.js"),
}


def _recorded() -> dict[str, tuple[str, str, str]]:
    rows = re.findall(
        r"^\| (\S+) \| (\S+) \| (\S+) \| \S+ \| `([0-9a-f]{64})` \|$",
        (VENDOR / "README.md").read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    return {served: (package, version, digest) for served, package, version, digest in rows}


def test_each_vendored_file_has_its_recorded_sum_pinned_version_and_licence() -> None:
    recorded = _recorded()
    assert set(recorded) == set(SOURCES)
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text(encoding="utf-8"))
    for served, (package, version, digest) in recorded.items():
        data = (VENDOR / served).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"{served} differs from its record"
        assert lock["packages"][f"node_modules/{package}"]["version"] == version
        assert (VENDOR / "licenses" / f"{package}.txt").is_file(), f"no licence for {package}"


def test_the_vendored_files_are_the_installed_packages_files() -> None:
    # scripts/test installs web/ with `npm ci` (integrity-checked) before the suite runs.
    assert MODULES.is_dir(), "web/node_modules is missing: run scripts/bootstrap --test"
    for served, (package, inside) in SOURCES.items():
        assert (VENDOR / served).read_bytes() == (MODULES / package / inside).read_bytes()
