#!/usr/bin/env bash
# Makes a stream of changes to public.customers for the quickstart to show: an insert and an
# update every two seconds, a delete every tenth second. Reads CDC_TEST_PG_HOST/PORT.
set -u
psql() { command psql -X -q -h "${CDC_TEST_PG_HOST:-127.0.0.1}" -p "${CDC_TEST_PG_PORT:-15432}" -U postgres -d postgres "$@"; }
for i in $(seq 100 160); do
    sleep 2
    status=new
    ((i % 7 == 0)) && status=test
    psql -c "INSERT INTO public.customers VALUES ($i, 'user $i', 'user$i@example.com', '$status') ON CONFLICT DO NOTHING"
    psql -c "UPDATE public.customers SET status = 'active' WHERE id = $((i - 1))"
    if ((i % 5 == 0)); then psql -c "DELETE FROM public.customers WHERE id = $((i - 2))"; fi
done
