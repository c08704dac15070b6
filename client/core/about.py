"""What the About window says: version, build, the IT policy in force, the hub, and the licences
of the libraries Vigil carries. Plain data, read from package metadata; no Qt here."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from dataclasses import dataclass
from pathlib import Path

# The distributions the client's installer carries (pyproject's client dependencies and theirs).
BUNDLED = (
    "PySide6-Essentials",
    "shiboken6",
    "keyring",
    "requests",
    "urllib3",
    "certifi",
    "charset-normalizer",
    "idna",
    "platformdirs",
    "cryptography",
    "cffi",
    "rfc8785",
    "psutil",
)
# Set by the build (installer) to its commit or pipeline id; a checkout says so instead.
BUILD_ENV = "VIGIL_BUILD"


@dataclass(frozen=True)
class Licence:
    """One bundled library: its name, version and licence as its package declares it."""

    name: str
    version: str
    licence: str


@dataclass(frozen=True)
class AboutFacts:
    """Everything the About window shows."""

    version: str
    build: str
    python: str
    policy_file: str
    hub: str
    licences: tuple[Licence, ...]


def licence_of(metadata: importlib.metadata.PackageMetadata) -> str:
    """A package's licence: its License-Expression or License field, else its classifiers."""
    for field in ("License-Expression", "License"):
        values = metadata.get_all(field) or []
        value = str(values[0]) if values else ""
        if value and len(value) < 120 and "\n" not in value.strip():
            return value.strip()
    classifiers = metadata.get_all("Classifier") or []
    named = [c.split(" :: ")[-1] for c in classifiers if c.startswith("License :: ")]
    return ", ".join(named) if named else "see the package"


def bundled_licences(names: tuple[str, ...] = BUNDLED) -> tuple[Licence, ...]:
    """The licences of the bundled libraries that are installed, in the order given."""
    found = []
    for name in names:
        try:
            metadata = importlib.metadata.metadata(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append(Licence(metadata["Name"], metadata["Version"], licence_of(metadata)))
    return tuple(found)


def app_version() -> str:
    """Vigil's version from its package metadata ("unknown" when run from an unpacked tree)."""
    try:
        return importlib.metadata.version("vigil")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_name() -> str:
    """The build this is: the installer's stamp, or a source checkout."""
    stamp = os.environ.get(BUILD_ENV, "").strip()
    if stamp:
        return stamp[:80]
    if getattr(sys, "frozen", False):
        return "packaged build"
    return "source checkout"


def about_facts(policy_source: Path | None, hub_url: str | None) -> AboutFacts:
    """The About window's facts for the running app (`policy_source`: the policy file read)."""
    policy = str(policy_source) if policy_source else "none (nothing is set by IT)"
    return AboutFacts(
        version=app_version(),
        build=build_name(),
        python=f"Python {sys.version.split()[0]} on {sys.platform}",
        policy_file=policy,
        hub=hub_url or "not set yet",
        licences=bundled_licences(),
    )
