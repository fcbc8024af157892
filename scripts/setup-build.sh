#!/usr/bin/env bash
# Installs what building cdc needs on Debian: the packages of scripts/build-packages.txt (a C
# toolchain, cmake and headers: librdkafka is built from source), and the wasm32-wasip2 target for
# plugins. Idempotent and quiet.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' scripts/build-packages.txt)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "setup-build: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "setup-build: adding the wasm32-wasip2 target"
    rustup target add wasm32-wasip2 >/dev/null
fi

# componentize-py builds the Python example plugin (plugins/python-mask); it works offline.
if [[ "$(componentize-py --version 2>/dev/null)" != "componentize-py 0.25.1" ]]; then
    echo "setup-build: installing componentize-py 0.25.1"
    python3 -m pip install --quiet componentize-py==0.25.1
fi
