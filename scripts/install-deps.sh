#!/usr/bin/env bash
# Installs the Debian 12 packages qlc builds and tests with. Idempotent: only what is missing is
# installed, so a second run does no network access.
set -euo pipefail
pkgs=(cmake ninja-build g++ python3 llvm-19-dev llvm-19-tools libzstd-dev libeigen3-dev libfmt-dev
      libgtest-dev libgmock-dev libbenchmark-dev clang-19 libclang-rt-19-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
