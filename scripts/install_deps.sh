#!/usr/bin/env bash
# Installs the Debian packages convfuse builds and tests with (idempotent). Needs root or sudo;
# where neither is possible it says what is missing and carries on (the build then turns off
# what it cannot find).
set -euo pipefail
pkgs="build-essential cmake pkg-config libcriterion-dev ocl-icd-opencl-dev opencl-c-headers
      pocl-opencl-icd clinfo valgrind clang libclang-rt-dev"
missing=()
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
  echo "install_deps: not root and no sudo; missing: ${missing[*]}" >&2; exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "install_deps: no apt-get; install these yourself: ${missing[*]}" >&2; exit 0; fi
echo "install_deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
