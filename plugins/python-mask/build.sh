#!/usr/bin/env bash
# Builds the python-mask component: target/python_mask.wasm (world `transform` of ../../wit).
# Needs componentize-py 0.25.1 (scripts/setup-build.sh installs it); works offline.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p target
componentize-py -d ../../wit -w transform componentize app -o target/python_mask.wasm
