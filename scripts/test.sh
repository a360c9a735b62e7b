#!/usr/bin/env bash
# Install what the tests need and run the whole suite (unit, component, chaos, code quality).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
