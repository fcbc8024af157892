#!/usr/bin/env bash
# One command on a fresh Debian machine: sets up the local stack and runs a real pipeline,
# PostgreSQL → Debezium → Kafka → cdc (wasm transform) → a webhook that prints each event.
# See examples/quickstart/README.md. Ctrl-C stops it. (scripts/quickstart.sh runs the embedded
# mode instead: no broker, no Connect.)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-build.sh
bash scripts/test-env.sh up
eval "$(bash scripts/test-env.sh env)"

echo "quickstart: building cdc and the filter-mask plugin (the first build takes a while)"
cargo build --release --locked -p cdc-host --bin cdc -j"${CARGO_BUILD_JOBS:-2}"
cdc_bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/cdc"
(cd plugins/filter-mask && CARGO_TARGET_DIR="$PWD/target" cargo build --release --locked --target wasm32-wasip2 -q)

psql() { command psql -X -q -v ON_ERROR_STOP=1 -h "$CDC_TEST_PG_HOST" -p "$CDC_TEST_PG_PORT" -U postgres -d postgres "$@"; }
psql <<'SQL'
CREATE TABLE IF NOT EXISTS public.customers (
    id bigint PRIMARY KEY, name text NOT NULL, email text, status text NOT NULL DEFAULT 'new');
INSERT INTO public.customers VALUES
    (1, 'Ada', 'ada@example.com', 'new'), (2, 'Grace', 'grace@example.com', 'test')
ON CONFLICT (id) DO NOTHING;
SQL

# Own sessions, so that Ctrl-C reaches only cdc, which then drains into a receiver still up.
setsid python3 examples/quickstart/receiver.py 18089 &
receiver=$!
setsid bash examples/quickstart/changes.sh >/dev/null 2>&1 &
changes=$!
trap 'kill $receiver $changes 2>/dev/null || true' EXIT

echo "quickstart: running the pipeline; events print below. Ctrl-C stops it."
"$cdc_bin" run examples/quickstart/pipeline.yaml --platform-config examples/quickstart/platform.yaml
