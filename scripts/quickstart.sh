#!/usr/bin/env bash
# One command on a fresh Debian machine: a real pipeline in embedded mode, no broker.
#
# Installs what is missing (the build dependencies, PostgreSQL 15), starts a private PostgreSQL
# cluster with logical replication, creates a demo shop (customers and orders) with a few rows,
# builds cdc, and runs examples/quickstart.yaml: cdc reads the shop's logical replication itself
# and keeps a replica of both tables and an audit log of every change in a second database. A
# small load generator inserts, updates and deletes meanwhile; at the end the script compares the
# replica with the source and prints the counts. Then it stops cdc and PostgreSQL; `--keep` leaves
# them running (stop them later with `scripts/test-env.sh pg-down` and the printed kill).
set -euo pipefail
cd "$(dirname "$0")/.."

keep=false
[[ ${1:-} == --keep ]] && keep=true

export CDC_TEST_ENV_DIR=${QUICKSTART_DIR:-/var/tmp/cdc-quickstart}
export CDC_TEST_PG_PORT=${QUICKSTART_PG_PORT:-25432}
export QUICKSTART_PG_PORT=$CDC_TEST_PG_PORT
export QUICKSTART_DLQ_DIR=$CDC_TEST_ENV_DIR/dlq
changes=${QUICKSTART_CHANGES:-300}

bash scripts/setup-build.sh
bash scripts/test-env.sh pg-up

echo "quickstart: building cdc (the first build takes a while)"
cargo build --locked -p cdc-host --bin cdc -j"${CARGO_BUILD_JOBS:-2}"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
cdc_bin=$target_dir/debug/cdc

psql() { command psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CDC_TEST_PG_PORT" -U postgres "$@"; }
psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'quickstart'" | grep -q 1 ||
    psql -d postgres -c "CREATE DATABASE quickstart"
psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'quickstart_replica'" | grep -q 1 ||
    psql -d postgres -c "CREATE DATABASE quickstart_replica"
psql -d quickstart <<'SQL'
CREATE TABLE IF NOT EXISTS customers (
    id bigint PRIMARY KEY, name text NOT NULL, email text, tier text NOT NULL DEFAULT 'basic',
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS orders (
    id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    amount numeric(12,2) NOT NULL, items jsonb NOT NULL DEFAULT '[]', placed_on date NOT NULL DEFAULT current_date);
INSERT INTO customers (id, name, email)
    SELECT i, 'customer ' || i, 'c' || i || '@example.com' FROM generate_series(1, 50) i
    ON CONFLICT (id) DO NOTHING;
INSERT INTO orders (id, customer_id, amount)
    SELECT i, 1 + i % 50, round((i * 7.31)::numeric % 500, 2) FROM generate_series(1, 200) i
    ON CONFLICT (id) DO NOTHING;
SQL

log=$CDC_TEST_ENV_DIR/cdc.log
echo "quickstart: starting cdc in embedded mode (log: $log)"
"$cdc_bin" run examples/quickstart.yaml --platform-config examples/quickstart-platform.yaml >"$log" 2>&1 &
cdc=$!
stop_all() {
    if [[ $keep == true ]]; then
        echo "quickstart: left running: cdc (pid $cdc, kill $cdc) and PostgreSQL on port $CDC_TEST_PG_PORT"
        return
    fi
    kill -TERM "$cdc" 2>/dev/null && wait "$cdc" 2>/dev/null || true
    bash scripts/test-env.sh pg-down
    echo "quickstart: stopped cdc and PostgreSQL"
}
trap stop_all EXIT

ready=false
for _ in $(seq 1 120); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "http://127.0.0.1:${QUICKSTART_HEALTH_PORT:-18090}/readyz" >/dev/null 2>&1; then
        ready=true
        break
    fi
    kill -0 "$cdc" 2>/dev/null || break
    sleep 0.5
done
if [[ $ready != true ]]; then
    echo "quickstart: cdc did not become ready; its log:" >&2
    cat "$log" >&2
    exit 1
fi

echo "quickstart: cdc is streaming; generating $changes changes"
for i in $(seq 1 "$changes"); do
    case $((i % 5)) in
    0) echo "UPDATE customers SET tier = 'gold' WHERE id = $((1 + i % 50));" ;;
    1) echo "INSERT INTO orders (id, customer_id, amount, items) VALUES ($((1000 + i)), $((1 + i % 50)), $i.99, '[{\"sku\": \"s$i\"}]');" ;;
    2) echo "UPDATE orders SET amount = amount + 1 WHERE id = $((1 + i % 200));" ;;
    3) echo "DELETE FROM orders WHERE id = $((1000 + i - 2));" ;;
    4) echo "INSERT INTO customers (id, name) VALUES ($((1000 + i)), 'walk-in $i');" ;;
    esac
done | psql -d quickstart

# A table's rows, as one checksum: equal in both databases once the replica caught up.
fingerprint() {
    psql -d "$1" -tAc "SELECT count(*) || ' rows, md5 ' || md5(coalesce(string_agg(t::text, ',' ORDER BY t.id), '')) FROM ($2) t"
}
same() { [[ $(fingerprint quickstart "$1") == $(fingerprint quickstart_replica "$1") ]]; }
converged=false
for _ in $(seq 1 120); do
    if same "SELECT id, name, email, tier, created_at FROM customers" &&
        same "SELECT id, customer_id, amount, items, placed_on FROM orders"; then
        converged=true
        break
    fi
    sleep 0.5
done

echo
echo "table       source                                replica"
for table in customers orders; do
    printf '%-11s %-37s %s\n' "$table" \
        "$(psql -d quickstart -tAc "SELECT count(*) FROM $table") rows" \
        "$(psql -d quickstart_replica -tAc "SELECT count(*) FROM $table") rows"
done
echo
echo "audit log (quickstart_replica.audit.changes), changes by table and operation:"
psql -d quickstart_replica -c "SELECT event_value->'source'->>'table' AS table, event_value->>'op' AS op, count(*) \
    FROM audit.changes GROUP BY 1, 2 ORDER BY 1, 2"
if [[ $converged != true ]]; then
    echo "quickstart: the replica did not match the source; cdc's log:" >&2
    tail -n 50 "$log" >&2
    exit 1
fi
echo "quickstart: the replica matches the source, row for row."
