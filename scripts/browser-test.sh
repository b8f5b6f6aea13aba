#!/usr/bin/env bash
# The status page in a real browser: Debian's Chromium, headless, against a
# server on loopback that serves the page over the shipped rules (plus one
# rule whose strings carry markup) with the 2021 fixtures replayed to
# 2021-12-16. Checks that the page renders every rule title, logs nothing to
# the console (the page runs no script: any console line is a CSP violation,
# a failed load or an injected script), and shows the markup rule's title as
# text. Takes screenshots; `UPDATE_SCREENSHOT=1` copies them to docs/.
#
# Installs chromium (and a CJK font for readable screenshots) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# A Chinese font, or the screenshots show boxes (the test itself reads the DOM).
fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk\|droid sans fallback" || need+=(fonts-wqy-microhei)
if [ ${#need[@]} -gt 0 ]; then
    echo "browser-test: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --quiet --example status_server
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
server_bin="$target_dir/debug/examples/status_server"

work=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# start_server DIR [EXTRA_RULE…]: a copy of the config and rules in DIR;
# sets $url and $server_pid.
start_server() {
    local dir=$1; shift
    mkdir -p "$dir"
    cp rulewatch.ron "$dir/"
    cp -r rules "$dir/rules"
    if [ $# -gt 0 ]; then
        mkdir -p "$dir/rules/extra"
        cp "$@" "$dir/rules/extra/"
    fi
    "$server_bin" "$dir/rulewatch.ron" 2021-12-16T12:00 --listen 127.0.0.1:0 \
        --ingest fixtures/2021/*.csv >"$dir/server.out" 2>"$dir/server.err" &
    server_pid=$!
    url=""
    for _ in $(seq 1 240); do
        url=$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$dir/server.out")
        [ -n "$url" ] && return 0
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "browser-test: the server exited:"; cat "$dir/server.err"; exit 1
        fi
        sleep 0.5
    done
    echo "browser-test: the server did not start"; cat "$dir/server.err"; exit 1
}

start_server "$work" tests/fixtures/web/markup-title.rhai

chrome() { # chrome OUT_PREFIX ARGS... : stdout to OUT_PREFIX.out, log to OUT_PREFIX.log
    local out=$1; shift
    timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-default-apps --mute-audio --hide-scrollbars \
        --user-data-dir="$(mktemp -d -p "$work")" --enable-logging=stderr --v=0 \
        "$@" >"$out.out" 2>"$out.log"
}

# Control: the console detector sees a console.error.
chrome "$work/control" --dump-dom 'data:text/html,<p>control</p><script>console.error("browser-test-control")</script>'
chrome "$work/index" --dump-dom "$url/"
chrome "$work/rule" --dump-dom "$url/rules/markup-title"
chrome "$work/detail" --dump-dom "$url/rules/park-revenue"
chrome "$work/shot" --screenshot="$work/status-page.png" --window-size=1280,2200 "$url/"
chrome "$work/phone" --screenshot="$work/status-page-phone.png" --window-size=390,1600 "$url/"
chrome "$work/ruleshot" --screenshot="$work/rule-page.png" --window-size=1000,2000 "$url/rules/unemployment-rate"

python3 - "$work" <<'EOF'
import glob, html.parser, re, sys
work = sys.argv[1]
passed, failed = 0, 0

def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print(f"  ok    {what}")
    else:
        failed += 1
        print(f"  FAIL  {what}")

def console(name):
    return [l for l in open(f"{work}/{name}.log", encoding="utf-8", errors="replace") if ":CONSOLE" in l]

class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []
    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
    def handle_data(self, data):
        self.text.append(data)

def parse(name):
    p = Page()
    p.feed(open(f"{work}/{name}.out", encoding="utf-8").read())
    return p, "".join(p.text)

def titles():
    out = {}
    for f in sorted(glob.glob(f"{work}/rules/**/*.rhai", recursive=True)):
        src = open(f, encoding="utf-8").read()
        rule = src[src.index("const RULE"):]
        rid = re.search(r'\bid:\s*"((?:[^"\\]|\\.)*)"', rule).group(1)
        title = re.search(r'\btitle:\s*"((?:[^"\\]|\\.)*)"', rule).group(1)
        out[rid] = title.replace('\\"', '"').replace("\\\\", "\\")
    return out

check(any("browser-test-control" in l for l in console("control")),
      "control: a console.error on a test page is detected")

index, text = parse("index")
all_titles = titles()
check(len(all_titles) == 41, f"41 rule files (40 shipped + markup): {len(all_titles)}")
missing = [t for t in all_titles.values() if t not in text]
check(not missing, f"every rule title rendered as text ({len(all_titles) - len(missing)}/{len(all_titles)})" + (f"; missing {missing}" if missing else ""))
links = {a.get("href") for tag, a in index.tags if tag == "a"}
check(all(f"/rules/{rid}" in links for rid in all_titles), "every rule links to its page")
for name in ["index", "rule", "detail", "shot", "phone", "ruleshot"]:
    lines = console(name)
    check(not lines, f"no console output on {name}" + ("".join("\n        " + l.strip() for l in lines)))

evil = all_titles["markup-title"]
for name in ["index", "rule"]:
    page, text = parse(name)
    tags = {t for t, _ in page.tags}
    check(evil in text, f"{name}: the markup title is shown as text")
    check("script" not in tags and "img" not in tags,
          f"{name}: no <script> or <img> element came from rule strings")
page, text = parse("rule")
check(sum(1 for t, _ in page.tags if t == "style") == 1, "rule page: only the page's own <style>")
check("onerror=console.error('xss-message')" in text, "rule page: the markup message is text")

detail, text = parse("detail")
check("园区营业收入突破220亿元" in text and "告警历史" in text and "规则源码" in text, "rule page: title, history and source")
check(any(t == "svg" for t, _ in detail.tags), "rule page: the chart is an inline SVG")

import struct
for shot in ["status-page.png", "status-page-phone.png", "rule-page.png"]:
    data = open(f"{work}/{shot}", "rb").read()
    w, h = struct.unpack(">II", data[16:24])
    check(data[:8] == b"\x89PNG\r\n\x1a\n" and w > 300 and h > 1000, f"screenshot {shot} {w}x{h}")

print(f"browser test: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
EOF

if [ "${UPDATE_SCREENSHOT:-}" = 1 ]; then
    # The README's pictures: the shipped rules only.
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
    start_server "$work/docs"
    chrome "$work/docs/shot" --screenshot=docs/status-page.png --window-size=1280,2200 "$url/"
    chrome "$work/docs/phone" --screenshot=docs/status-page-phone.png --window-size=390,1600 "$url/"
    chrome "$work/docs/rule" --screenshot=docs/rule-page.png --window-size=1000,2000 "$url/rules/unemployment-rate"
    echo "browser-test: screenshots written to docs/"
fi
