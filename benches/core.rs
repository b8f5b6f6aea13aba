//! The core benchmark (data from `benches/gen_data.py`), one phase per process so
//! each phase's peak memory is its own:
//!
//!   core ingest FILE STORE   store a data file (NDJSON or CSV), readings/s
//!   core eval CONFIG AT       the five rules at AT: warm-up, then median of 15
//!
//! Run through `benches/run.sh`, which generates the data and prints a table.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rulewatch::config::Config;
use rulewatch::readings::store::Store;
use rulewatch::readings::stream::ingest;
use rulewatch::readings::Format;
use rulewatch::rules::{load_rules, Evaluator};

// The daemon's allocator (src/main.rs), so that the bench measures what the
// daemon does: glibc's malloc gave memory back and faulted it in again on
// every evaluation (a seventh of an evaluation's time in the kernel).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Peak resident memory of this process (VmHWM), in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU time this process has used (user + system, all threads), in ms: unlike wall time,
/// barely moved by other processes competing for the cores.
fn thread_cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`: utime and stime are the 12th and 13th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks * 10.0 // USER_HZ is 100 on Linux
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("ingest") => {
            let (file, store_path) = (Path::new(&args[1]), Path::new(&args[2]));
            let _ = std::fs::remove_file(store_path);
            let _ = std::fs::remove_file(store_path.with_extension("db-wal"));
            let store = Store::open(store_path).expect("store opens");
            let format = Format::from_path(file).expect("known extension");
            let started = Instant::now();
            let f = std::fs::File::open(file).expect("data file exists");
            let summary = ingest(
                &store,
                std::io::BufReader::with_capacity(1 << 20, f),
                format,
                chrono_tz::Asia::Shanghai,
                |_| {},
            )
            .expect("bench data is valid");
            let secs = started.elapsed().as_secs_f64();
            println!(
                "ingest {}: {} readings in {:.2} s = {:.0} readings/s, peak {:.0} MiB",
                file.display(),
                summary.readings,
                secs,
                summary.readings as f64 / secs,
                peak_mib()
            );
        }
        Some("eval") => {
            let config = Config::load(Path::new(&args[1])).expect("bench config loads");
            let at = rulewatch::time::parse_time(&args[2], config.timezone).expect("time");
            let store = Arc::new(Store::open(&config.store_path).expect("store opens"));
            let evaluator = Evaluator::new(&config, store);
            let (rules, problems) = load_rules(evaluator.engine(), &config);
            assert!(problems.is_empty(), "{problems:?}");
            let started = Instant::now();
            let first = evaluator.evaluate_all(&rules, at);
            let cold = started.elapsed();
            for o in &first {
                assert!(o.error.is_none(), "{:?}", o.error);
                println!("  {:<22} {:>5} findings", o.rule, o.findings.len());
            }
            // RW_BENCH_WARMUP: more warm runs, e.g. to profile the warm path.
            let warmup: usize = std::env::var("RW_BENCH_WARMUP")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(3);
            for _ in 0..warmup {
                evaluator.evaluate_all(&rules, at);
            }
            let cpu_before = thread_cpu_ms();
            let rounds = 100;
            for _ in 0..rounds {
                evaluator.evaluate_all(&rules, at);
            }
            let cpu_per_eval = (thread_cpu_ms() - cpu_before) / rounds as f64;
            let mut times: Vec<f64> = (0..15)
                .map(|_| {
                    let t = Instant::now();
                    evaluator.evaluate_all(&rules, at);
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            times.sort_by(f64::total_cmp);
            // RW_BENCH_RULE_ROUNDS: more runs of each rule alone; the minimum
            // (printed in brackets) is the figure least moved by a busy machine.
            let rule_rounds: usize = std::env::var("RW_BENCH_RULE_ROUNDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(15);
            let mut per_rule = Vec::new();
            for r in &rules {
                let mut ts: Vec<f64> = (0..rule_rounds.max(1))
                    .map(|_| evaluator.evaluate(r, at).duration.as_secs_f64() * 1000.0)
                    .collect();
                ts.sort_by(f64::total_cmp);
                per_rule.push(format!(
                    "{} {:.2} ms ({:.2})",
                    r.meta.id,
                    ts[ts.len() / 2],
                    ts[0]
                ));
            }
            println!(
                "eval five rules: first (loads series from SQLite) {:.0} ms; warm median of 15 {:.2} ms (min {:.2}, max {:.2}); peak {:.0} MiB",
                cold.as_secs_f64() * 1000.0,
                times[7],
                times[0],
                times[14],
                peak_mib()
            );
            println!("  per rule alone, median (min): {}", per_rule.join(", "));
            println!(
                "  CPU time per evaluation of the five (mean of {rounds}): {cpu_per_eval:.2} ms"
            );
        }
        _ => {
            eprintln!("usage: core ingest FILE STORE | core eval CONFIG AT   (see benches/run.sh)");
        }
    }
}
