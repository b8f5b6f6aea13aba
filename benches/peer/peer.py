#!/usr/bin/env python3
"""Side by side with Prometheus, in one run (driven by benches/peer.sh).

Why a script of its own: the figures in the README must be ratios measured in
the same run on the same data, and the answers must be checked against the
peer's, so one program runs both engines one after the other and prints both.

For each series count it: generates the data (gen_data.py, ending at the
current hour, because Prometheus evaluates rule groups at wall-clock time),
backfills Prometheus with promtool (timed), lets Prometheus evaluate the five
rules as a rule group and reads the median of its own
prometheus_rule_group_last_duration_seconds, asks Prometheus the five
expressions at the data's end time, then runs rulewatch on the same data:
`rulewatch ingest` (timed, peak RSS), `rulewatch eval --at END` (answers
compared with Prometheus's), the core bench's evaluation alone, the daemon's
whole cycle through `POST /api/v1/evaluate`, and HTTP ingest with one client.

`--sizing` instead measures the daemon's cycle at several series counts and
rule counts, for the README's sizing table.

Stdlib only; every server is on 127.0.0.1 and stopped on exit.
"""
import argparse
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
RHAI_RULES = os.path.join(os.path.dirname(HERE), "rules")
PROM_RULES = os.path.join(HERE, "prometheus-rules.yml")
GEN = os.path.join(HERE, "..", "gen_data.py")  # the one generator, shared with benches/run.sh
TOKEN = "peer-bench-token"
RULE_GROUP = "bench"

RUNNING = []  # processes to stop on exit


def log(msg):
    print(f"[peer {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def stop_all():
    for p in RUNNING:
        if p.poll() is None:
            p.terminate()
    for p in RUNNING:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    RUNNING.clear()


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, timeout=900):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def wait_http(port, path, proc, what, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode} before it was up")
        try:
            status, _ = request(port, "GET", path, timeout=5)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{what} not up after {timeout} s")


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def rss_kib(pid, field):
    """VmRSS / VmHWM of a running process, in KiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def timed(cmd, env=None, stdout_path=None):
    """Runs cmd to the end; returns (wall seconds, peak RSS KiB, stdout text).
    Output goes to files, not pipes: nothing can block on a full pipe."""
    import tempfile
    out = open(stdout_path, "w+") if stdout_path else tempfile.TemporaryFile("w+")
    err = tempfile.TemporaryFile("w+")
    started = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
    RUNNING.append(p)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - started
    p.returncode = os.waitstatus_to_exitcode(status)
    RUNNING.remove(p)
    out.seek(0)
    err.seek(0)
    text, err_text = out.read(), err.read()
    out.close()
    err.close()
    if p.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))}: exit {p.returncode}\n{err_text[-3000:]}")
    return wall, usage.ru_maxrss, text


# --- data -----------------------------------------------------------------


def data_for(work, series, days):
    """Generated data ending at the current hour (reused if it ends within 3 h)."""
    out = os.path.join(work, f"data-{series}-{days}")
    meta_path = os.path.join(out, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path) as fh:
            meta = json.load(fh)
        fresh = time.time() - meta["end_epoch"] < 3 * 3600
        files = all(os.path.exists(os.path.join(out, f"data.{x}")) for x in ("om", "ndjson"))
        if fresh and files:
            return out, meta
    shutil.rmtree(out, ignore_errors=True)
    log(f"generating {series} series × {days} days into {out}")
    subprocess.run(
        [sys.executable, GEN, "--series", str(series), "--days", str(days), "--end", "now",
         "--out", out, "--formats", "om,ndjson"],
        check=True, stdout=subprocess.DEVNULL)
    with open(meta_path) as fh:
        return out, json.load(fh)


# --- Prometheus -------------------------------------------------------------


def prom_exprs():
    """(rulewatch rule id, PromQL) of the five rules, from the rule file."""
    text = open(PROM_RULES).read()
    exprs = re.findall(r"expr: (.+)\n\s+labels: \{rule: ([\w-]+)\}", text)
    return [(rule, expr.strip()) for expr, rule in exprs]


def prom_metric(port, name, group):
    _, body = request(port, "GET", "/metrics", timeout=30)
    for line in body.decode().splitlines():
        if line.startswith(name + "{") and f'rule_group="' in line and f';{group}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def run_prometheus(a, data_dir, meta, work):
    """Backfill, rule group medians, answers at END, memory. Returns a dict."""
    tsdb = os.path.join(work, "prometheus-tsdb")
    shutil.rmtree(tsdb, ignore_errors=True)
    log("promtool tsdb create-blocks-from openmetrics")
    wall, _, _ = timed([a.promtool, "tsdb", "create-blocks-from", "openmetrics",
                        "--max-block-duration", a.block, os.path.join(data_dir, "data.om"), tsdb])
    res = {"backfill_s": wall, "backfill_rate": meta["samples_total"] / wall}

    rules = os.path.join(work, "prometheus-rules.yml")
    with open(PROM_RULES) as fh, open(rules, "w") as out:
        out.write(fh.read().replace("INTERVAL", a.interval))
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as fh:
        fh.write(f"global:\n  evaluation_interval: {a.interval}\nrule_files: [{rules}]\n")
    port = free_port()
    log(f"prometheus on 127.0.0.1:{port}, rule group every {a.interval}")
    plog = open(os.path.join(work, "prometheus.log"), "w")
    p = subprocess.Popen(
        [a.prometheus, f"--config.file={config}", f"--storage.tsdb.path={tsdb}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=10y",
         "--log.level=warn"],
        stdout=plog, stderr=subprocess.STDOUT)
    RUNNING.append(p)
    try:
        wait_http(port, "/-/ready", p, "prometheus")
        # One sample per evaluation: the last evaluation's timestamp changes.
        seen, durations = None, []
        want = a.warmup + a.n
        deadline = time.time() + want * (parse_secs(a.interval) + 30) + 120
        while len(durations) < want and time.time() < deadline:
            ts = prom_metric(port, "prometheus_rule_group_last_evaluation_timestamp_seconds", RULE_GROUP)
            if ts and ts > 0 and ts != seen:
                d = prom_metric(port, "prometheus_rule_group_last_duration_seconds", RULE_GROUP)
                seen = ts
                durations.append(d * 1e3)
                log(f"prometheus rule group: {d * 1e3:.1f} ms")
            time.sleep(0.25)
        if len(durations) < want:
            sys.exit(f"prometheus evaluated the rule group {len(durations)} times, wanted {want}")
        timed_ds = durations[a.warmup:]
        res["group_ms"] = median(timed_ds)
        res["group_all_ms"] = timed_ds
        res["rss_mib"] = rss_kib(p.pid, "VmRSS") / 1024
        res["hwm_mib"] = rss_kib(p.pid, "VmHWM") / 1024
        # Instant queries at the data's end time: the answers, and their time.
        answers, query_ms = {}, []
        for rule, expr in prom_exprs():
            q = urllib.parse.urlencode({"query": expr, "time": str(meta["end_epoch"])})
            times = []
            for _ in range(a.query_repeat):
                t = time.perf_counter()
                status, body = request(port, "GET", f"/api/v1/query?{q}")
                times.append((time.perf_counter() - t) * 1e3)
            if status != 200:
                sys.exit(f"prometheus query {expr}: {status} {body[:300]!r}")
            result = json.loads(body)["data"]["result"]
            answers[rule] = {subject_key(r["metric"]): float(r["value"][1]) for r in result}
            query_ms.append(median(times[1:] or times))
        res["queries_ms"] = sum(query_ms)
        res["answers"] = answers
    finally:
        p.terminate()
        p.wait(timeout=60)
        RUNNING.remove(p)
    return res


def parse_secs(d):
    unit = {"s": 1, "m": 60, "h": 3600}[d[-1]]
    return float(d[:-1]) * unit


def subject_key(labels):
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")


# --- rulewatch -------------------------------------------------------------


def rw_config(work, rules_dir, port):
    path = os.path.join(work, "rulewatch.ron")
    with open(path, "w") as fh:
        fh.write(f"""(
    timezone: "Asia/Shanghai",
    rules: "{rules_dir}",
    store: "store/rulewatch.db",
    listen: "127.0.0.1:{port}",
    api_token_env: Some("RW_PEER_TOKEN"),
    mail: (from: "bench <bench@example.cn>", transport: File(dir: "outbox")),
    recipients: {{ "bench": ["bench@example.cn"] }},
    admin: [],
)
""")
    return path


def fresh_store(work):
    for sub in ("store", "outbox"):
        shutil.rmtree(os.path.join(work, sub), ignore_errors=True)


def rw_ingest(a, config, data_dir, meta):
    log("rulewatch ingest")
    wall, peak, out = timed([a.rulewatch, "ingest", "--config", config,
                             os.path.join(data_dir, "data.ndjson")])
    return {"ingest_s": wall, "ingest_rate": meta["samples_total"] / wall,
            "ingest_peak_mib": peak / 1024, "ingest_says": out.strip()}


def rw_answers(a, config, meta, work):
    log("rulewatch eval --at END")
    _, _, out = timed([a.rulewatch, "eval", "--config", config, "--at", meta["end"],
                       "--format", "json"], stdout_path=os.path.join(work, "eval.json"))
    answers = {}
    for f in json.loads(out):
        if f["kind"] != "breach":
            sys.exit(f"rulewatch eval: {f}")
        answers.setdefault(f["rule"], {})[subject_key(f["subject"])] = f["details"]["value"]
    return answers


def compare(prom, rw):
    """Differences between the two engines' answers (empty: equal)."""
    problems = []
    for rule in sorted(set(prom) | set(rw)):
        p, r = prom.get(rule, {}), rw.get(rule, {})
        only_p, only_r = sorted(set(p) - set(r)), sorted(set(r) - set(p))
        if only_p:
            problems.append(f"{rule}: only Prometheus finds {len(only_p)}: {only_p[:5]}")
        if only_r:
            problems.append(f"{rule}: only rulewatch finds {len(only_r)}: {only_r[:5]}")
        off = [k for k in set(p) & set(r) if abs(p[k] - r[k]) > 1e-6 * max(1.0, abs(p[k]))]
        if off:
            k = sorted(off)[0]
            problems.append(f"{rule}: {len(off)} values differ, e.g. {k}: {p[k]} vs {r[k]}")
    return problems


def rw_eval_alone(a, config, meta):
    log("core bench: evaluation alone")
    _, _, out = timed([a.core, "eval", config, meta["end"]],
                      env=dict(os.environ, RW_BENCH_WARMUP="3"))
    m = re.search(r"warm median of 15 ([\d.]+) ms", out)
    return {"eval_ms": float(m.group(1)), "eval_says": out.strip()}


class Daemon:
    def __init__(self, a, config, work):
        self.port = int(re.search(r"127\.0\.0\.1:(\d+)", open(config).read()).group(1))
        self.log = open(os.path.join(work, "daemon.log"), "w")
        self.p = subprocess.Popen(
            [a.rulewatch, "run", "--config", config],
            env=dict(os.environ, RW_PEER_TOKEN=TOKEN, RUST_LOG="warn"),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, cwd=work)
        RUNNING.append(self.p)
        wait_http(self.port, "/healthz", self.p, "rulewatch daemon")

    def evaluate(self):
        t = time.perf_counter()
        status, body = request(self.port, "POST", "/api/v1/evaluate",
                            headers={"Authorization": f"Bearer {TOKEN}"})
        ms = (time.perf_counter() - t) * 1e3
        if status != 200:
            sys.exit(f"POST /api/v1/evaluate: {status} {body[:500]!r}")
        answer = json.loads(body)
        if answer["failed"]:
            sys.exit(f"POST /api/v1/evaluate: {answer['failed']} rules failed: {answer['rules'][:3]}")
        return ms, answer

    def cycles(self, warmup, n):
        """Median wall time of n whole cycles after warm-up, as the client sees it."""
        times = []
        for i in range(warmup + n):
            ms, answer = self.evaluate()
            log(f"cycle {i + 1}/{warmup + n}: {ms:.1f} ms, {answer['evaluated']} rules, "
                f"{len(answer['findings'])} findings")
            if i >= warmup:
                times.append(ms)
        return times

    def stop(self):
        hwm = rss_kib(self.p.pid, "VmHWM") / 1024
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=120)
        RUNNING.remove(self.p)
        return hwm


def rw_http_ingest(a, data_dir):
    log(f"HTTP ingest, one client, batches of 1,000, first {a.http_readings} readings")
    env = dict(os.environ, RW_BENCH_DATA=data_dir, RW_BENCH_CLIENTS="1",
               RW_BENCH_BATCH="1000", RW_BENCH_LIMIT=str(a.http_readings))
    _, _, out = timed([a.http_ingest], env=env)
    m = re.search(r"HTTP\s*: \d+ readings in [\d.]+ s = (\d+) readings/s.*?p99 ([\d.]+) ms", out)
    return {"http_rate": float(m.group(1)), "http_p99_ms": float(m.group(2))}


# --- the runs --------------------------------------------------------------


def peer_run(a):
    results = []
    for series in a.series:
        work = os.path.join(a.work, f"run-{series}")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        data_dir, meta = data_for(a.work, series, a.days)
        r = {"series": series, "readings": meta["samples_total"], "end": meta["end"]}
        log(f"{series} series: {meta['samples_total']:,} readings ending {meta['end']}")
        r.update(run_prometheus(a, data_dir, meta, work))

        config = rw_config(work, RHAI_RULES, free_port())
        fresh_store(work)
        r.update(rw_ingest(a, config, data_dir, meta))
        rw = rw_answers(a, config, meta, work)
        r["answer_problems"] = compare(r.pop("answers"), rw)
        r["findings"] = {k: len(v) for k, v in sorted(rw.items())}
        r.update(rw_eval_alone(a, config, meta))
        d = Daemon(a, config, work)
        r["cycle_all_ms"] = d.cycles(a.warmup, a.n)
        r["cycle_ms"] = median(r["cycle_all_ms"])
        r["daemon_peak_mib"] = d.stop()
        if a.http_readings > 0:
            r.update(rw_http_ingest(a, data_dir))
        results.append(r)
        with open(os.path.join(a.work, "results.json"), "w") as fh:
            json.dump(results, fh, indent=1)
        print_table([r], a)
    return results


def scaled_rules(dst, n):
    """n rule files: the five rules copied round-robin, each with its own id
    and (for the threshold rules) its own threshold, so no two are the same."""
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    templates = sorted(f for f in os.listdir(RHAI_RULES) if f.endswith(".rhai"))
    sources = {f: open(os.path.join(RHAI_RULES, f)).read() for f in templates}
    for i in range(n):
        name = templates[i % len(templates)]
        k = i // len(templates)
        text = re.sub(r'id: "([\w-]+)"', lambda m: f'id: "{m.group(1)}-{k:05}"', sources[name])
        pm25, jobs = f"{75 + k % 5}.0", f"{4.5 + (k % 5) / 10:.1f}"
        for old, new in (("75.0", pm25), ("4.5", jobs)):
            text = text.replace(f"> {old}", f"> {new}").replace(f"above({old})", f"above({new})")
        with open(os.path.join(dst, f"{name[:-5]}-{k:05}.rhai"), "w") as fh:
            fh.write(text)
    return dst


def sizing_run(a):
    rows = []

    def measure(series, rules):
        work = os.path.join(a.work, f"sizing-{series}-{rules}")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        data_dir, meta = data_for(a.work, series, a.days)
        rules_dir = RHAI_RULES if rules == 5 else scaled_rules(os.path.join(work, "rules"), rules)
        config = rw_config(work, rules_dir, free_port())
        fresh_store(work)
        ingest = rw_ingest(a, config, data_dir, meta)
        log(f"sizing: {series} series, {rules} rules")
        d = Daemon(a, config, work)
        n = a.n if rules <= 5 else max(1, min(a.n, 3))
        times = d.cycles(1, n)
        hwm = d.stop()
        row = {"series": series, "rules": rules, "readings": meta["samples_total"],
               "cycle_ms": median(times), "cycle_all_ms": times, "daemon_peak_mib": hwm,
               "ingest_rate": ingest["ingest_rate"]}
        rows.append(row)
        with open(os.path.join(a.work, "sizing.json"), "w") as fh:
            json.dump(rows, fh, indent=1)
        log(f"sizing row: {row}")

    for series in a.sizing_series:
        measure(series, 5)
    for rules in a.rules_scale:
        measure(a.sizing_rules_at, rules)
    print_sizing(rows)
    return rows


# --- output ----------------------------------------------------------------


def print_table(results, a):
    load = open("/proc/loadavg").read().split()[:3]
    for r in results:
        print()
        print(f"## {r['series']:,} series × {a.days} days: {r['readings']:,} readings, "
              f"ending {r['end']} (load average {' '.join(load)})")
        print()
        print("| measure | rulewatch | Prometheus 2.42 | ratio |")
        print("|---|---|---|---|")
        print(f"| whole cycle: five rules + alert bookkeeping (rulewatch `POST /api/v1/evaluate`, "
              f"Prometheus rule group), median of {a.n} after {a.warmup} warm-up | "
              f"{r['cycle_ms']:.1f} ms | {r['group_ms']:.1f} ms | "
              f"**{r['group_ms'] / r['cycle_ms']:.1f}×** |")
        print(f"| evaluation alone (core bench, median of 15; Prometheus: the five instant "
              f"queries at the end time, sum of medians) | {r['eval_ms']:.1f} ms | "
              f"{r['queries_ms']:.1f} ms | {r['queries_ms'] / r['eval_ms']:.1f}× |")
        print(f"| file ingest, readings/s (`rulewatch ingest` NDJSON; "
              f"`promtool tsdb create-blocks-from openmetrics`) | "
              f"{r['ingest_rate'] / 1e6:.2f} M ({r['ingest_s']:.1f} s) | "
              f"{r['backfill_rate'] / 1e6:.2f} M ({r['backfill_s']:.1f} s) | "
              f"{r['ingest_rate'] / r['backfill_rate']:.2f}× |")
        if "http_rate" in r:
            print(f"| HTTP ingest, one client, NDJSON batches of 1,000, each after a synced "
                  f"commit | {r['http_rate'] / 1e3:.0f} k/s (p99 {r['http_p99_ms']:.0f} ms) | | |")
        print(f"| peak memory (rulewatch daemon VmHWM; `rulewatch ingest`; Prometheus RSS "
              f"after the rules) | {r['daemon_peak_mib']:.0f} MiB; ingest "
              f"{r['ingest_peak_mib']:.0f} MiB | {r['rss_mib']:.0f} MiB | |")
        ok = "equal" if not r["answer_problems"] else "DIFFER: " + "; ".join(r["answer_problems"])
        print(f"| answers at the end time | {ok} ({', '.join(f'{k} {v}' for k, v in r['findings'].items())}) | | |")
        print()
        print(f"cycles (ms): rulewatch {', '.join(f'{x:.1f}' for x in r['cycle_all_ms'])}; "
              f"Prometheus {', '.join(f'{x:.1f}' for x in r['group_all_ms'])}")
        sys.stdout.flush()


def print_sizing(rows):
    print()
    print("## How the daemon's cycle grows (the five rules, or as many copies of them, "
          "with the alert bookkeeping: `POST /api/v1/evaluate`, median)")
    print()
    print("| series | readings | rules | cycle | per rule | daemon peak memory |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['series']:,} | {r['readings']:,} | {r['rules']:,} | "
              f"{r['cycle_ms']:.0f} ms | {r['cycle_ms'] / r['rules']:.2f} ms | "
              f"{r['daemon_peak_mib']:.0f} MiB |")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=lambda s: [int(x) for x in s.split(",")], default=[2000],
                    help="series counts, comma-separated (default 2000)")
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--n", type=int, default=9, help="timed evaluations (median)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--interval", default=None,
                    help="Prometheus rule group interval (default 5s, 15s above 5,000 series)")
    ap.add_argument("--block", default="486h",
                    help="promtool --max-block-duration (486h: Prometheus's largest compaction level)")
    ap.add_argument("--query-repeat", type=int, default=5)
    ap.add_argument("--http-readings", type=int, default=500_000,
                    help="readings posted by the HTTP client (0: skip)")
    ap.add_argument("--sizing", action="store_true", help="the sizing table instead")
    ap.add_argument("--sizing-series", type=lambda s: [int(x) for x in s.split(",")],
                    default=[500, 2000, 10000])
    ap.add_argument("--rules-scale", type=lambda s: [int(x) for x in s.split(",")],
                    default=[1000, 5000],
                    help="rule counts for the sizing table (copies of the five; at 1,000 rules a "
                         "cycle takes minutes on 2 cores, so these rows time at most 3 cycles)")
    ap.add_argument("--sizing-rules-at", type=int, default=2000,
                    help="series count of the rule-count rows")
    ap.add_argument("--work", default=os.environ.get("RW_PEER_WORK", "/tmp/rw-peer"))
    for tool in ("rulewatch", "core", "http-ingest", "prometheus", "promtool"):
        ap.add_argument(f"--{tool}", required=tool not in ("prometheus", "promtool"),
                        help="path (peer.sh passes the release builds; Prometheus's from PATH)")
    a = ap.parse_args()
    a.prometheus = a.prometheus or shutil.which("prometheus")
    a.promtool = a.promtool or shutil.which("promtool")
    os.makedirs(a.work, exist_ok=True)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if a.sizing:
            sizing_run(a)
        else:
            if a.interval is None:
                a.interval = "15s" if max(a.series) > 5000 else "5s"
            peer_run(a)
    finally:
        stop_all()


if __name__ == "__main__":
    main()
