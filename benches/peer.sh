#!/usr/bin/env bash
# rulewatch beside Prometheus, in one run, on the same data and the same five
# rules (benches/rules/*.rhai, benches/peer/prometheus-rules.yml): installs
# Debian's prometheus if missing, builds rulewatch (release), then runs
# benches/peer/peer.py, which prints a table of absolute figures and ratios
# and checks that both engines give the same answers.
#
#   benches/peer.sh                       # 2,000 series × 60 days (2.9 M readings)
#   benches/peer.sh --series 2000,10000   # also 10,000 series (14.5 M readings)
#   benches/peer.sh --sizing              # the sizing table: cycle at 500/2,000/10,000 series, 1,000/5,000 rules
#   benches/peer.sh --sizing --rules-scale 1000 --sizing-series 500
#   benches/peer.sh --help                # every option
#
# Data, stores and logs go under $RW_PEER_WORK (default /tmp/rw-peer); data
# is reused while it ends within 3 hours of now (Prometheus evaluates at
# wall-clock time). Only 127.0.0.1 is used; every server started here is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
    exec python3 benches/peer/peer.py --help
fi

# The peer: Debian's package (Prometheus 2.42 on bookworm). The package's
# service is not needed (peer.py starts its own instance on a free port).
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    echo "installing Debian's prometheus" >&2
    export DEBIAN_FRONTEND=noninteractive
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    # Where the package started its service (systemd hosts), stop it: it would
    # compete for the cores being measured.
    if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
        $sudo systemctl stop prometheus
    fi
fi
prometheus --version 2>&1 | head -1 >&2

# rulewatch, release: the binary, the core bench (evaluation alone) and the
# HTTP ingest bench (one client). Cargo tells where it put them.
echo "building rulewatch (release)" >&2
artifacts=$(cargo build --release --bin rulewatch --bench core --bench http_ingest \
    --message-format=json-render-diagnostics -q)
exe() {
    python3 -c 'import json,sys
want = sys.argv[1]
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == want and m.get("executable"):
        print(m["executable"])' "$1" <<<"$artifacts" | tail -1
}
rulewatch=$(exe rulewatch)
core=$(exe core)
http_ingest=$(exe http_ingest)

# peer.py stops what it starts; this trap also catches a kill of the script.
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM
python3 benches/peer/peer.py --rulewatch "$rulewatch" --core "$core" \
    --http-ingest "$http_ingest" "$@" &
pids+=($!)
wait "${pids[0]}"
