#!/usr/bin/env bash
# Sets up everything the tests need on a fresh Debian machine and runs them:
# build dependencies, the wasm32-wasip2 target, the real services of scripts/test-env.sh
# (broker, PostgreSQL, Kafka Connect with Debezium), then every test of the workspace and of the
# example plugins. The services are stopped again at the end, pass or fail.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh --keep     # leave the services running afterwards
set -euo pipefail
cd "$(dirname "$0")/.."

keep=false
[[ ${1:-} == --keep ]] && keep=true

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/cdc-target}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
# Every run builds a fresh clone: incremental caches only pile up in the shared target dir
# (20 GB after a day of runs filled this machine's disk).
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
export CARGO_TERM_COLOR=never

bash scripts/setup-build.sh

bash scripts/test-env.sh up
if ! $keep; then
    trap 'bash scripts/test-env.sh down' EXIT
fi
eval "$(bash scripts/test-env.sh env)"

log=$(mktemp)
echo "== plugin SDK, its shared event crate and the example plugins (native tests)"
cargo test --manifest-path sdk/Cargo.toml --workspace --locked 2>&1 | tee -a "$log"
for plugin in plugins/*/; do
    # A plugin without native tests (a sink that is only glue) builds for wasm in the e2e suite.
    if grep -q 'rlib' "$plugin/Cargo.toml"; then
        cargo test --manifest-path "$plugin/Cargo.toml" --locked 2>&1 | tee -a "$log"
    fi
done

echo "== workspace (unit, config fixtures, Debezium fixtures, end-to-end)"
cargo test --workspace --locked 2>&1 | tee -a "$log"

# One closing line over every test binary above.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
rm -f "$log"
