#!/usr/bin/env bash
# The upload page in a real browser: `rulewatch run` on loopback with the
# shipped config plus two bureaus (人社局, 医保局) and the 人社月报 mapping;
# headless Chromium (Playwright, scripts/browser/upload.mjs) signs in as
# 人社局, uploads tests/fixtures/excel/bad.xlsx (errors by cell),
# fixtures/excel/人社.xlsx read whole (its 医保 sheet refused by cell: another
# bureau's figures) and through 人社局's mapping (preview table), confirms; then the readings are in
# the store (the API's evaluation of `unemployment-rate` sees them) and
# 医保局's token is refused 人社局's metric through the API.
# `UPDATE_SCREENSHOT=1` copies the page's screenshots to docs/.
#
# Called by scripts/browser-test.sh; runs alone too. Installs playwright-core
# (npm, into the git-ignored scripts/browser/node_modules) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d scripts/browser/node_modules/playwright-core ]; then
    echo "browser-upload-test: installing playwright-core"
    (cd scripts/browser && npm ci --no-audit --no-fund --silent)
fi

cargo build --quiet --bin rulewatch
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
rulewatch="$target_dir/debug/rulewatch"

work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    if [ -n "${KEEP_BROWSER_TEST:-}" ]; then echo "browser-upload-test: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

dir="$work/daemon"
scripts/copy-shipped-rules.sh "$dir"
cp fixtures/excel/人社.xlsx.ron "$dir/人社.ron"
# 人社局's own mapping: the monthly sheet only (the quarterly 医保 sheet is 医保局's).
cat >"$dir/人社局月报.ron" <<'RON'
(
    sheets: [(name: "2021年月报", layout: PeriodPerRow(period_column: "A", header_row: 2), skip: ["注"])],
    indicators: {
        "城镇登记失业率（%）": (metric: "unemployment_rate"),
        "新增城镇就业（人，年累计）": (metric: "new_urban_jobs"),
        "农村劳动力转移就业（人，年累计）": (metric: "rural_labor_transfer"),
        "职业技能培训（人次，年累计）": (metric: "vocational_training"),
    },
)
RON
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$dir/rulewatch.ron" "$port" <<'PY'
import re, sys
path, port = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
text = re.sub(r'listen: "[^"]*"', f'listen: "127.0.0.1:{port}"', text)
extra = '''    bureaus: {
        "人社局": (token_env: "RW_TOKEN_HR", metrics: ["unemployment_rate", "new_urban_jobs", "rural_labor_transfer", "vocational_training"]),
        "医保局": (token_env: "RW_TOKEN_MED", metrics: ["medical_insurance_rate"]),
    },
    http: (mappings: { "人社局月报": "人社局月报.ron", "人社.xlsx 全部（含医保季报）": "人社.ron" }),
'''
end = text.rstrip().rfind(")")
open(path, "w", encoding="utf-8").write(text[:end] + extra + text[end:])
PY
url="http://127.0.0.1:$port"
RULEWATCH_TOKEN=browser-admin RW_TOKEN_HR=browser-hr RW_TOKEN_MED=browser-med RUST_LOG=warn \
    "$rulewatch" run --config "$dir/rulewatch.ron" >"$dir/server.out" 2>"$dir/server.err" &
pid=$!
for _ in $(seq 1 240); do
    curl -sf -o /dev/null "$url/healthz" && break
    kill -0 "$pid" 2>/dev/null || { echo "browser-upload-test: the daemon exited:"; cat "$dir/server.err"; exit 1; }
    sleep 0.5
done

latest_kind() { # the kinds of unemployment-rate's findings, evaluated now
    curl -sf -X POST -H "Authorization: Bearer browser-admin" "$url/api/v1/evaluate?rule=unemployment-rate" |
        python3 -c 'import json,sys; print(sorted({f.get("kind","?") for f in json.load(sys.stdin)["findings"]}))'
}

status=0
echo "upload page:"
before=$(latest_kind)
mkdir -p "$work/shots"
node scripts/browser/upload.mjs "$url" browser-hr "$PWD/fixtures/excel/人社.xlsx" \
    "$PWD/tests/fixtures/excel/bad.xlsx" "人社局月报" "人社.xlsx 全部（含医保季报）" "$work/shots" || status=1
after=$(latest_kind)
if [ "$before" != "$after" ]; then
    echo "  ok    readings in the store: unemployment-rate findings $before -> $after"
else
    echo "  FAIL  readings in the store: unemployment-rate findings unchanged ($before)"; status=1
fi
code=$(curl -s -o "$work/refused.json" -w '%{http_code}' -X POST -H "Authorization: Bearer browser-med" \
    -H "Content-Type: text/csv" --data-binary $'metric,time,value\nunemployment_rate,2021-06-30,9.9\n' "$url/api/v1/readings")
if [ "$code" = 403 ]; then
    echo "  ok    医保局's token refused unemployment_rate through the API (403)"
else
    echo "  FAIL  医保局's token writing unemployment_rate: HTTP $code $(cat "$work/refused.json")"; status=1
fi
if grep -q "browser-hr\|browser-med" "$dir/server.err"; then
    echo "  FAIL  a token appears in the daemon's log"; status=1
fi
if [ "${UPDATE_SCREENSHOT:-}" = 1 ]; then
    cp "$work/shots/upload-preview.png" docs/upload-preview.png
    cp "$work/shots/upload-refused.png" docs/upload-refused.png
    echo "browser-upload-test: screenshots written to docs/"
fi
if [ -n "${KEEP_BROWSER_TEST:-}" ]; then ls "$work/shots"; fi
if [ $status = 0 ]; then echo "browser upload test: passed"; else echo "browser upload test: FAILED"; fi
exit $status
