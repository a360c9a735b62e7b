#!/usr/bin/env bash
# Install what edgek8s needs on Debian 12 / Raspberry Pi OS (bookworm), as root, into ./.venv.
#   scripts/install.sh          runtime: Python venv with edgek8s and its libraries, Podman for workers
#   scripts/install.sh --test   also what the test suite needs (FUSE for power-cut tests, etcd for benchmarks)
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

with_test=0
[ "${1:-}" = "--test" ] && with_test=1

debs=(python3 python3-venv python3-dev gcc pkg-config ca-certificates curl)
# Workers run pods through Podman; crun (Podman's default) refuses cgroup v1 hybrid hosts, so runc is
# installed and selected by the agent's containers.conf; catatonit builds the local pause image;
# busybox-static builds the sample-app and test images without a registry.
debs+=(podman runc catatonit busybox-static)
if [ "$with_test" = 1 ]; then
  debs+=(fuse3 libfuse3-dev etcd-server etcd-client)
fi

missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "edgek8s install: run as root (missing Debian packages: ${missing[*]})" >&2
    exit 1
  fi
  echo "==> installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating the Python virtual environment in .venv"
  python3 -m venv .venv
fi
echo "==> installing Python packages"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ "$with_test" = 1 ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi
echo "==> edgek8s installed: $(.venv/bin/edgek8s --help >/dev/null && echo ok)"
