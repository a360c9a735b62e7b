#!/usr/bin/env bash
# Install what edgek8s needs and bring up a local cluster (3 masters, a Podman worker, a sample app) on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/edgek8s up "$@"
