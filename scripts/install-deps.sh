#!/usr/bin/env bash
# Installs the Debian packages weir needs to build, test and benchmark.
# Idempotent: asks dpkg what is already installed and only calls apt-get for
# what is missing. `--check` only reports (exit 1 if anything is missing);
# the Makefile runs the check before every build and installs on demand.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libcjson-dev libyaml-dev libxxhash-dev libmicrohttpd-dev libhiredis-dev librdkafka-dev
  libcmocka-dev python3-pytest python3-xxhash
  python3-xgboost libxgboost-dev python3-numpy wrk nginx redis-server
  python3-confluent-kafka
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  exit 1
fi

echo "installing Debian packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
