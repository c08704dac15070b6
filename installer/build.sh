#!/usr/bin/env bash
# Build Vigil's packages for this platform (see `python -m installer.build --help` and the README's
# section for IT). Sets up the .venv first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap
exec .venv/bin/python -m installer.build "$@"
