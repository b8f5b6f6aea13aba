//! HTTP ingest benchmark (not a test): starts the real daemon (release
//! build) on a loopback port with an empty rules folder, and posts the
//! benchmark's NDJSON in batches of 1,000 readings from a few client
//! threads, each on its own keep-alive connection. Every 200 is a committed
//! transaction. Reports readings/s and request latency percentiles, then
//! times `rulewatch ingest` of the same file into a fresh store.
//!
//! ```sh
//! python3 ../shared/bench/gen_data.py --series 2000 --days 60 --end 1795723200 --out /tmp/rw-bench
//! cargo bench --bench http_ingest                      # all 2.9 M readings, 32 clients
//! RW_BENCH_CLIENTS=8 RW_BENCH_LIMIT=500000 cargo bench --bench http_ingest
//! RW_BENCH_BIN=/path/to/other/rulewatch cargo bench --bench http_ingest   # another build
//! RW_BENCH_FILE=0 cargo bench --bench http_ingest      # HTTP only, no file ingest after
//! ```
//!
//! The client is a minimal HTTP/1.1 writer over `std::net::TcpStream`: on a
//! two-core machine a heavier client would take the cores the daemon needs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(dir: &Path, port: u16) -> PathBuf {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    let config = format!(
        r#"(
    timezone: "Asia/Shanghai",
    rules: "rules",
    store: "data/rulewatch.db",
    listen: "127.0.0.1:{port}",
    api_token_env: Some("RW_BENCH_TOKEN"),
    mail: (from: "bench <bench@example.cn>", transport: File(dir: "outbox")),
    admin: [],
)
"#
    );
    let path = dir.join("rulewatch.ron");
    std::fs::write(&path, config).unwrap();
    path
}

/// One keep-alive connection; `post` returns (status, body).
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    head: Vec<u8>,
}

impl Conn {
    fn open(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            head: Vec::with_capacity(256),
        }
    }

    fn post(&mut self, path: &str, body: &[u8]) -> (u16, String) {
        self.head.clear();
        write!(
            self.head,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        self.writer.write_all(&self.head).unwrap();
        self.writer.write_all(body).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0u8; length];
        self.reader.read_exact(&mut body).unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// Kills the daemon if the benchmark panics.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_daemon(bin: &str, dir: &Path, config: &Path, port: u16) -> Running {
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let child = Running(
        Command::new(bin)
            .args(["run", "--config"])
            .arg(config)
            .env("RW_BENCH_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the daemon"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return child;
            }
        }
        assert!(
            Instant::now() < deadline,
            "daemon not up: {}",
            std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0 // USER_HZ
}

/// Peak resident memory of a process (kB), from /proc.
fn peak_rss_kb(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn metric(port: u16, name: &str) -> f64 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let data =
        PathBuf::from(std::env::var("RW_BENCH_DATA").unwrap_or_else(|_| "/tmp/rw-bench".into()))
            .join("data.ndjson");
    let clients: usize = env_or("RW_BENCH_CLIENTS", 32);
    let batch: usize = env_or("RW_BENCH_BATCH", 1000);
    let limit: usize = env_or("RW_BENCH_LIMIT", usize::MAX);
    // RW_BENCH_BIN: another build of the daemon (a before/after comparison in one run).
    let bin_override = std::env::var("RW_BENCH_BIN").ok();
    let bin = bin_override
        .as_deref()
        .unwrap_or(env!("CARGO_BIN_EXE_rulewatch"));
    let text = std::fs::read(&data).unwrap_or_else(|e| {
        panic!("{}: {e}\ngenerate it: python3 ../shared/bench/gen_data.py --series 2000 --days 60 --end 1795723200 --out /tmp/rw-bench", data.display())
    });

    // Batches of `batch` lines, cut at line ends, up to `limit` readings.
    let mut batches: Vec<&[u8]> = Vec::new();
    let mut readings = 0usize;
    let mut start = 0usize;
    let mut lines = 0usize;
    for (i, &b) in text.iter().enumerate() {
        if b == b'\n' {
            lines += 1;
            if lines == batch {
                batches.push(&text[start..=i]);
                readings += lines;
                start = i + 1;
                lines = 0;
                if readings >= limit {
                    break;
                }
            }
        }
    }
    if lines > 0 && readings < limit && start < text.len() {
        batches.push(&text[start..]);
        readings += lines;
    }
    let bytes: usize = batches.iter().map(|b| b.len()).sum();
    println!(
        "http_ingest: {readings} readings in {} batches of {batch} ({:.1} MB), {clients} clients, daemon {bin}",
        batches.len(),
        bytes as f64 / 1e6
    );

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port);
    let mut daemon = start_daemon(bin, dir.path(), &config, port);

    // Warm-up: one batch (also creates the first series).
    let mut warm = Conn::open(port);
    let (status, body) = warm.post("/api/v1/readings", batches[0]);
    assert_eq!(status, 200, "{body}");

    let next = Arc::new(AtomicUsize::new(1));
    let batches = Arc::new(batches.iter().map(|b| b.to_vec()).collect::<Vec<_>>());
    let daemon_pid = daemon.0.id().to_string();
    let (cpu_daemon, cpu_self) = (cpu_seconds(&daemon_pid), cpu_seconds("self"));
    let (commits0, batches0) = (
        metric(port, "rulewatch_ingest_commits_total"),
        metric(port, "rulewatch_ingest_committed_batches_total"),
    );
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let next = next.clone();
            let batches = batches.clone();
            std::thread::spawn(move || {
                let mut conn = Conn::open(port);
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= batches.len() {
                        break;
                    }
                    let t = Instant::now();
                    let (status, body) = conn.post("/api/v1/readings", &batches[i]);
                    latencies.push(t.elapsed());
                    assert_eq!(status, 200, "batch {i}: {body}");
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let elapsed = started.elapsed();
    let (cpu_daemon, cpu_self) = (
        cpu_seconds(&daemon_pid) - cpu_daemon,
        cpu_seconds("self") - cpu_self,
    );
    let commits = metric(port, "rulewatch_ingest_commits_total") - commits0;
    let grouped = metric(port, "rulewatch_ingest_committed_batches_total") - batches0;
    latencies.sort();
    // Requests that waited on something long (a fold of staged readings
    // into day blocks holds the store's writer): their time in all.
    let stalled: Duration = latencies
        .iter()
        .filter(|l| **l > Duration::from_millis(50))
        .sum();
    let timed_readings = readings - batches[0].iter().filter(|&&b| b == b'\n').count();
    println!(
        "HTTP  : {timed_readings} readings in {:.2} s = {:.0} readings/s ({:.0} requests/s); latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        elapsed.as_secs_f64(),
        timed_readings as f64 / elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    );
    println!(
        "        requests over 50 ms: {} taking {:.2} s in all",
        latencies
            .iter()
            .filter(|l| **l > Duration::from_millis(50))
            .count(),
        stalled.as_secs_f64()
    );
    println!(
        "        daemon CPU {cpu_daemon:.2} s ({:.2} µs/reading: {:.0} readings per CPU-second), client CPU {cpu_self:.2} s; {commits:.0} synced commits, {:.1} batches per commit; machine load {}",
        cpu_daemon * 1e6 / timed_readings as f64,
        timed_readings as f64 / cpu_daemon.max(1e-9),
        grouped / commits.max(1.0),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    );
    println!(
        "        daemon peak memory (VmHWM) {:.0} MB",
        peak_rss_kb(&daemon_pid) as f64 / 1024.0
    );
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status();
    let status = daemon.0.wait().unwrap();
    assert!(status.success(), "daemon exit: {status}");
    if env_or("RW_BENCH_FILE", 1u8) == 0 {
        return;
    }

    // The same readings from a file, into a fresh store.
    let file_dir = tempfile::tempdir().unwrap();
    let file_config = write_config(file_dir.path(), free_port());
    let input = if limit == usize::MAX {
        data.clone()
    } else {
        let p = file_dir.path().join("part.ndjson");
        std::fs::write(&p, batches.concat()).unwrap();
        p
    };
    let started = Instant::now();
    let out = Command::new(bin)
        .args(["ingest", "--config"])
        .arg(&file_config)
        .arg(&input)
        .output()
        .unwrap();
    let file_elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "file  : {readings} readings in {:.2} s = {:.0} readings/s (`rulewatch ingest`, one transaction)",
        file_elapsed.as_secs_f64(),
        readings as f64 / file_elapsed.as_secs_f64()
    );
}
