#!/usr/bin/env bash
# The status page in a real browser: Debian's Chromium, headless, on loopback.
#
# 1. Against the daemon (`rulewatch run`): the shipped config and rules plus
#    one rule whose strings carry markup, the 2021 fixtures ingested, every
#    rule evaluated once through the API.
# 2. Against the replay server (examples/status_server.rs): the same rules
#    evaluated on their schedules through 2021 up to 2021-12-16, so the page
#    shows the fixtures' designed breaches, history and charts.
#
# On each: the page renders every rule title, the browser logs nothing to the
# console (the page runs no script: any console line is a CSP violation, a
# failed load or an injected script), and the markup rule's strings are text.
# `UPDATE_SCREENSHOT=1` writes the README's screenshots to docs/ (replay
# server, shipped rules only).
#
# Installs chromium (and a CJK font for readable screenshots) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# A Chinese font, or the screenshots show boxes (the checks read the DOM).
fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk\|droid sans fallback" || need+=(fonts-wqy-microhei)
if [ ${#need[@]} -gt 0 ]; then
    echo "browser-test: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --quiet --bin rulewatch --example status_server
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
rulewatch="$target_dir/debug/rulewatch"
replay_server="$target_dir/debug/examples/status_server"

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "${KEEP_BROWSER_TEST:-}" ]; then echo "browser-test: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# workspace DIR [EXTRA_RULE…]: the shipped config and rules in DIR.
workspace() {
    local dir=$1; shift
    scripts/copy-shipped-rules.sh "$dir"
    if [ $# -gt 0 ]; then
        mkdir -p "$dir/rules/extra"
        cp "$@" "$dir/rules/extra/"
    fi
}

# wait_for URL PID LOG: until URL answers (or the process is gone).
wait_for() {
    for _ in $(seq 1 240); do
        if curl -sf -o /dev/null "$1"; then return 0; fi
        if ! kill -0 "$2" 2>/dev/null; then
            echo "browser-test: the server exited:"; cat "$3"; exit 1
        fi
        sleep 0.5
    done
    echo "browser-test: no answer from $1"; cat "$3"; exit 1
}

# start_daemon DIR: `rulewatch run` over DIR's config; sets $url.
start_daemon() {
    local dir=$1 port
    port=$(free_port)
    sed -i "s/listen: \"[^\"]*\"/listen: \"127.0.0.1:$port\"/" "$dir/rulewatch.ron"
    "$rulewatch" ingest --config "$dir/rulewatch.ron" fixtures/2021/*.csv >/dev/null
    RULEWATCH_TOKEN=browser-test RUST_LOG=warn \
        "$rulewatch" run --config "$dir/rulewatch.ron" >"$dir/server.out" 2>"$dir/server.err" &
    pids+=($!)
    url="http://127.0.0.1:$port"
    wait_for "$url/healthz" "$!" "$dir/server.err"
    # Every rule evaluated once (now), so each has a last evaluation and state.
    curl -sf -X POST -H "Authorization: Bearer browser-test" "$url/api/v1/evaluate" >/dev/null
}

# start_replay DIR: the replay server over DIR's config; sets $url.
start_replay() {
    local dir=$1
    "$replay_server" "$dir/rulewatch.ron" 2021-12-16T12:00 --listen 127.0.0.1:0 \
        --ingest fixtures/2021/*.csv >"$dir/server.out" 2>"$dir/server.err" &
    local pid=$!
    pids+=($pid)
    url=""
    for _ in $(seq 1 240); do
        url=$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$dir/server.out")
        [ -n "$url" ] && break
        kill -0 "$pid" 2>/dev/null || { echo "browser-test: the replay server exited:"; cat "$dir/server.err"; exit 1; }
        sleep 0.5
    done
    [ -n "$url" ] || { echo "browser-test: the replay server did not start"; cat "$dir/server.err"; exit 1; }
}

chrome() { # chrome OUT_PREFIX ARGS… : DOM (or nothing) to OUT_PREFIX.out, browser log to OUT_PREFIX.log
    local out=$1; shift
    timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-default-apps --mute-audio --hide-scrollbars \
        --user-data-dir="$(mktemp -d -p "$work")" --enable-logging=stderr --v=0 \
        "$@" >"$out.out" 2>"$out.log"
}

# visit DIR URL: the pages the checks read, and screenshots.
visit() {
    local dir=$1 url=$2
    chrome "$dir/index" --dump-dom "$url/"
    chrome "$dir/rule" --dump-dom "$url/rules/markup-title"
    chrome "$dir/detail" --dump-dom "$url/rules/park-revenue"
    chrome "$dir/shot" --screenshot="$dir/status-page.png" --window-size=1280,2200 "$url/"
    chrome "$dir/phone" --screenshot="$dir/status-page-phone.png" --window-size=390,1600 "$url/"
}

cat >"$work/check.py" <<'EOF'
import glob, html.parser, re, struct, subprocess, sys

label, dirs = sys.argv[1], sys.argv[2:]
passed = failed = 0

def check(ok, what):
    global passed, failed
    passed, failed = passed + bool(ok), failed + (not ok)
    print(f"  {'ok  ' if ok else 'FAIL'}  {what}")

def console(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return [l.strip() for l in f if ":CONSOLE" in l]

class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []
    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
    def handle_data(self, data):
        self.text.append(data)

def parse(path):
    p = Page()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    return p, "".join(p.text)

def rule_titles(rules_dir):
    out = {}
    for f in sorted(glob.glob(f"{rules_dir}/**/*.rhai", recursive=True)):
        src = open(f, encoding="utf-8").read()
        meta = src[src.index("const RULE"):]
        rid = re.search(r'\bid:\s*"((?:[^"\\]|\\.)*)"', meta).group(1)
        title = re.search(r'\btitle:\s*"((?:[^"\\]|\\.)*)"', meta).group(1)
        out[rid] = title.replace('\\"', '"').replace("\\\\", "\\")
    return out

if label == "control":
    check(any("browser-test-control" in l for l in console(f"{dirs[0]}/control.log")),
          "control: a console.error on a test page is detected")
    sys.exit(1 if failed else 0)

d = dirs[0]
print(f"{label}:")
titles = rule_titles(f"{d}/rules")
# The shipped rules: those git tracks (an official's draft in rules/ is not copied).
tracked = subprocess.run(["git", "ls-files", "rules"], capture_output=True, text=True)
shipped = (sum(1 for l in tracked.stdout.split() if l.endswith(".rhai")) if tracked.returncode == 0
           else len(rule_titles("rules")))
check(len(titles) == shipped + 1, f"{shipped + 1} rule files ({shipped} shipped + markup): {len(titles)}")
index, text = parse(f"{d}/index.out")
missing = [t for t in titles.values() if t not in text]
check(not missing, f"every rule title rendered ({len(titles) - len(missing)}/{len(titles)})"
      + (f"; missing {missing}" if missing else ""))
links = {a.get("href") for tag, a in index.tags if tag == "a"}
check(all(f"/rules/{rid}" in links for rid in titles), "every rule links to its page")
states = set(re.findall(r"正常|待定|告警|无数据|错误|未评估", text))
check(len(states) >= 2, f"states shown as text: {sorted(states)}")
for name in ["index", "rule", "detail", "shot", "phone"]:
    lines = console(f"{d}/{name}.log")
    check(not lines, f"no console output ({name})" + "".join("\n        " + l for l in lines))
evil = titles["markup-title"]
for name in ["index", "rule"]:
    page, text = parse(f"{d}/{name}.out")
    tags = {t for t, _ in page.tags}
    check(evil in text, f"{name}: the markup title is shown as text")
    check("script" not in tags and "img" not in tags, f"{name}: no <script> or <img> element")
page, text = parse(f"{d}/rule.out")
check(sum(1 for t, _ in page.tags if t == "style") == 1, "rule page: only the page's own <style>")
check("<img src=x onerror=console.error('xss-message')>超标" in text, "rule page: the markup message is text")
detail, text = parse(f"{d}/detail.out")
check("园区营业收入突破220亿元" in text and "规则源码" in text and "告警历史" in text,
      "rule page: title, history, source")
check(any(t == "svg" for t, _ in detail.tags), "rule page: the chart is an inline SVG")
for shot in ["status-page.png", "status-page-phone.png"]:
    data = open(f"{d}/{shot}", "rb").read()
    w, h = struct.unpack(">II", data[16:24])
    check(data[:8] == b"\x89PNG\r\n\x1a\n" and w >= 390 and h >= 1600, f"screenshot {shot} {w}x{h}")
print(f"{label}: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
EOF

status=0
# The detector itself: a console.error on a test page is seen.
chrome "$work/control" --dump-dom 'data:text/html,<p>control</p><script>console.error("browser-test-control")</script>'
python3 "$work/check.py" control "$work" || status=1

workspace "$work/daemon" tests/fixtures/web/markup-title.rhai
start_daemon "$work/daemon"
visit "$work/daemon" "$url"
python3 "$work/check.py" "daemon" "$work/daemon" || status=1

# A rendered HTML mail (the daemon's file transport wrote .eml files) and a
# probe of the page's font stack: Ⅴ (U+2164) must not render blank (it does
# in WenQuanYi Micro Hei alone), so its width is compared with a space's.
for _ in $(seq 1 40); do ls "$work/daemon/outbox/"*.eml >/dev/null 2>&1 && break; sleep 0.5; done
python3 - "$work/daemon" <<'PY'
import email, glob, sys
d = sys.argv[1]
for f in sorted(glob.glob(f"{d}/outbox/*.eml")):
    m = email.message_from_binary_file(open(f, "rb"))
    # A shipped rule's own mail: the markup rule's text is literal markup on
    # purpose, and the digest (no rule header) lists that rule's title too.
    rules = [r.strip() for r in (m.get("X-Rulewatch-Rule") or "").split(",") if r.strip()]
    if not rules or "markup-title" in rules:
        continue
    for part in m.walk():
        if part.get_content_type() == "text/html" and "致：" in str(part.get_payload(decode=True), "utf-8"):
            open(f"{d}/mail.html", "wb").write(part.get_payload(decode=True))
            sys.exit(0)
PY
chrome "$work/daemon/mail" --dump-dom "file://$work/daemon/mail.html"
chrome "$work/daemon/mailshot" --screenshot="$work/daemon/mail.png" --window-size=900,1400 "file://$work/daemon/mail.html"
{
    echo '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><style>'
    cat src/web/style.css
    echo '</style></head><body><span id="v">Ⅴ</span><span id="s">&#32;&#32;</span><span id="x">劣Ⅴ类</span><span id="x0">劣类</span><p id="out"></p><script>'
    echo 'const w = id => document.getElementById(id).getBoundingClientRect().width;'
    echo 'document.getElementById("out").textContent = "widths " + w("v") + " " + w("x") + " " + w("x0");'
    echo '</script></body></html>'
} >"$work/daemon/glyph.html"
chrome "$work/daemon/glyph" --dump-dom "file://$work/daemon/glyph.html"
python3 - "$work/daemon" <<'PY' || status=1
import re, sys
d = sys.argv[1]
ok = True
def check(c, what):
    global ok
    ok = ok and c
    print(f"  {'ok  ' if c else 'FAIL'}  {what}")
html = open(f"{d}/mail.out", encoding="utf-8").read()
text = re.sub(r"<[^>]+>", " ", html)
check("rulewatch" in text and "致：" in text, "mail: rendered, greets its group")
raw = re.findall(r"\b[a-z_]{2,}=[^\s<]+", text)
check(not raw, f"mail: no raw key=value {raw[:3]}")
for name in ["index", "detail"]:
    page = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", open(f"{d}/{name}.out", encoding="utf-8").read(), flags=re.S)
    page = re.sub(r"<pre>.*?</pre>", " ", page, flags=re.S)  # the rule source shown as written
    raw = re.findall(r"\b(?:county|section|item|metric|project|concentration_unit)=[^\s<]+", re.sub(r"<[^>]+>", " ", page))
    check(not raw, f"{name}: no raw key=value {raw[:3]}")
m = re.search(r"widths ([\d.]+) ([\d.]+) ([\d.]+)", open(f"{d}/glyph.out", encoding="utf-8").read())
check(m is not None, "glyph probe ran")
if m:
    v, x, x0 = map(float, m.groups())
    check(v > 4 and x - x0 > 4, f"Ⅴ has a visible width in the page's fonts (Ⅴ {v}px; 劣Ⅴ类 − 劣类 = {x - x0:.1f}px)")
sys.exit(0 if ok else 1)
PY

workspace "$work/replay" tests/fixtures/web/markup-title.rhai
start_replay "$work/replay"
visit "$work/replay" "$url"
python3 "$work/check.py" "replay" "$work/replay" || status=1
# The replay shows the designed events: grain output is firing on 2021-12-16.
if grep -q '<article class="card firing" id="rule-grain-output">' "$work/replay/index.out"; then
    echo "  ok    replay: grain-output firing on 2021-12-16"
else
    echo "  FAIL  replay: grain-output firing on 2021-12-16"; status=1
fi

if [ "${UPDATE_SCREENSHOT:-}" = 1 ]; then
    # The README's pictures: the shipped rules only.
    workspace "$work/docs"
    start_replay "$work/docs"
    chrome "$work/docs/shot" --screenshot=docs/status-page.png --window-size=1280,2200 "$url/"
    chrome "$work/docs/phone" --screenshot=docs/status-page-phone.png --window-size=390,1600 "$url/"
    chrome "$work/docs/rule" --screenshot=docs/rule-page.png --window-size=1000,2000 "$url/rules/unemployment-rate"
    echo "browser-test: screenshots written to docs/"
fi

# The upload page: sign-in, a workbook uploaded, previewed and confirmed.
scripts/browser-upload-test.sh || status=1

if [ $status = 0 ]; then echo "browser test: passed"; else echo "browser test: FAILED"; fi
exit $status
