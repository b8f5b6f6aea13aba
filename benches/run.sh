#!/usr/bin/env bash
# The core benchmark (data from benches/gen_data.py): ingest of the NDJSON and the
# CSV, the five rules at the data's end time, peak memory. Usage: benches/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
data=${RW_BENCH_DATA:-/tmp/rw-bench}
gen=${RW_BENCH_GEN:-benches/gen_data.py}
if [ ! -f "$data/data.ndjson" ]; then
    python3 "$gen" --series 2000 --days 60 --end 1795723200 --out "$data" --formats ndjson,csv >/dev/null
fi
cargo build --release --bench core -q 2>/dev/null || true
bin=$(cargo bench --bench core --no-run --message-format=json 2>/dev/null \
      | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="core" and m.get("executable"): print(m["executable"])' | tail -1)
"$bin" ingest "$data/data.csv" "$data/store.db"
"$bin" ingest "$data/data.ndjson" "$data/store.db"
"$bin" eval benches/bench.ron 2026-11-27T04:00:00+08:00
