//! The daemon's counters, rendered in the Prometheus text format (0.0.4).
//!
//! Hand-rolled on atomics and one small map: a dozen series do not need a
//! metrics crate, and every name here is part of what operators alert on.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// Upper bounds (seconds) of the evaluation-duration histogram: a cached rule
/// runs in microseconds, a scan of months of readings in tens of
/// milliseconds, and the default wall-clock limit is 5 s.
const EVAL_BUCKETS: [f64; 10] = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];
/// Upper bounds (seconds) of the ingest-request histogram: a 1,000-reading
/// batch takes a few milliseconds; a 64 MiB body a few seconds.
const INGEST_BUCKETS: [f64; 9] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0, 10.0];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, secs: f64) {
        for (i, b) in self.bounds.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), self.count);
    }
}

/// Per-rule evaluation figures.
#[derive(Debug, Clone)]
struct RuleStats {
    ok: u64,
    failed: u64,
    skipped: u64,
    duration: Histogram,
}

impl Default for RuleStats {
    fn default() -> Self {
        RuleStats {
            ok: 0,
            failed: 0,
            skipped: 0,
            duration: Histogram::new(&EVAL_BUCKETS),
        }
    }
}

/// Extra gauges other modules contribute at render time (alerts by state,
/// mails by status), as already-formatted exposition text.
pub type ExtraMetrics = Box<dyn Fn(&mut String) + Send + Sync>;

pub struct Metrics {
    pub readings_ingested: AtomicU64,
    pub batches_accepted: AtomicU64,
    pub batches_rejected: AtomicU64,
    ingest_duration: Mutex<Histogram>,
    rules: Mutex<BTreeMap<String, RuleStats>>,
    pub reloads: AtomicU64,
    pub dst_reschedules: AtomicU64,
    started_at: f64,
    extra: Mutex<Vec<ExtraMetrics>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Gauges sampled when `/metrics` is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    pub rules_loaded: usize,
    /// Rule files whose current version does not load (last good kept or not).
    pub rule_files_broken: usize,
    pub evaluations_in_flight: usize,
}

impl Metrics {
    pub fn new() -> Self {
        Metrics {
            readings_ingested: AtomicU64::new(0),
            batches_accepted: AtomicU64::new(0),
            batches_rejected: AtomicU64::new(0),
            ingest_duration: Mutex::new(Histogram::new(&INGEST_BUCKETS)),
            rules: Mutex::new(BTreeMap::new()),
            reloads: AtomicU64::new(0),
            dst_reschedules: AtomicU64::new(0),
            started_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            extra: Mutex::new(Vec::new()),
        }
    }

    pub fn ingested(&self, readings: usize, took: Duration) {
        self.readings_ingested
            .fetch_add(readings as u64, Ordering::Relaxed);
        self.batches_accepted.fetch_add(1, Ordering::Relaxed);
        self.ingest_duration.lock().observe(took.as_secs_f64());
    }

    pub fn rejected(&self) {
        self.batches_rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub fn evaluated(&self, rule: &str, failed: bool, took: Duration) {
        let mut rules = self.rules.lock();
        let s = rules.entry(rule.to_string()).or_default();
        if failed {
            s.failed += 1;
        } else {
            s.ok += 1;
        }
        s.duration.observe(took.as_secs_f64());
    }

    pub fn skipped(&self, rule: &str) {
        self.rules
            .lock()
            .entry(rule.to_string())
            .or_default()
            .skipped += 1;
    }

    pub fn skipped_count(&self, rule: &str) -> u64 {
        self.rules.lock().get(rule).map_or(0, |s| s.skipped)
    }

    /// Adds a contributor of extra series (e.g. the alerts module's gauges).
    pub fn add_extra(&self, f: ExtraMetrics) {
        self.extra.lock().push(f);
    }

    /// The exposition text.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

        family(
            &mut out,
            "rulewatch_readings_ingested_total",
            "counter",
            "Readings stored through the HTTP API.",
        );
        let _ = writeln!(
            out,
            "rulewatch_readings_ingested_total {}",
            load(&self.readings_ingested)
        );
        family(
            &mut out,
            "rulewatch_ingest_batches_total",
            "counter",
            "Reading batches posted, by result (a rejected batch stores nothing).",
        );
        let _ = writeln!(
            out,
            "rulewatch_ingest_batches_total{{result=\"accepted\"}} {}",
            load(&self.batches_accepted)
        );
        let _ = writeln!(
            out,
            "rulewatch_ingest_batches_total{{result=\"rejected\"}} {}",
            load(&self.batches_rejected)
        );
        family(
            &mut out,
            "rulewatch_ingest_duration_seconds",
            "histogram",
            "Time to parse and commit an accepted batch.",
        );
        self.ingest_duration
            .lock()
            .render(&mut out, "rulewatch_ingest_duration_seconds", "");

        let rules = self.rules.lock().clone();
        family(
            &mut out,
            "rulewatch_evaluations_total",
            "counter",
            "Rule evaluations, by rule and result.",
        );
        for (id, s) in &rules {
            let _ = writeln!(
                out,
                "rulewatch_evaluations_total{{rule=\"{id}\",result=\"ok\"}} {}",
                s.ok
            );
            let _ = writeln!(
                out,
                "rulewatch_evaluations_total{{rule=\"{id}\",result=\"error\"}} {}",
                s.failed
            );
        }
        family(
            &mut out,
            "rulewatch_rule_errors_total",
            "counter",
            "Evaluations that failed (script error, limit reached), by rule.",
        );
        for (id, s) in &rules {
            let _ = writeln!(
                out,
                "rulewatch_rule_errors_total{{rule=\"{id}\"}} {}",
                s.failed
            );
        }
        family(
            &mut out,
            "rulewatch_evaluations_skipped_total",
            "counter",
            "Scheduled runs skipped because the previous run of the rule was still going.",
        );
        for (id, s) in &rules {
            let _ = writeln!(
                out,
                "rulewatch_evaluations_skipped_total{{rule=\"{id}\"}} {}",
                s.skipped
            );
        }
        family(
            &mut out,
            "rulewatch_evaluation_duration_seconds",
            "histogram",
            "Wall time of one rule evaluation.",
        );
        for (id, s) in &rules {
            s.duration.render(
                &mut out,
                "rulewatch_evaluation_duration_seconds",
                &format!("rule=\"{id}\""),
            );
        }
        family(
            &mut out,
            "rulewatch_evaluations_in_flight",
            "gauge",
            "Evaluations running now.",
        );
        let _ = writeln!(
            out,
            "rulewatch_evaluations_in_flight {}",
            gauges.evaluations_in_flight
        );
        family(
            &mut out,
            "rulewatch_rules_loaded",
            "gauge",
            "Rules being evaluated (including last good versions of broken files).",
        );
        let _ = writeln!(out, "rulewatch_rules_loaded {}", gauges.rules_loaded);
        family(
            &mut out,
            "rulewatch_rule_files_broken",
            "gauge",
            "Rule files whose current version does not load.",
        );
        let _ = writeln!(
            out,
            "rulewatch_rule_files_broken {}",
            gauges.rule_files_broken
        );
        family(
            &mut out,
            "rulewatch_rule_reloads_total",
            "counter",
            "Rescans of the rules folder (file change or SIGHUP).",
        );
        let _ = writeln!(out, "rulewatch_rule_reloads_total {}", load(&self.reloads));
        family(
            &mut out,
            "rulewatch_schedule_offset_changes_total",
            "counter",
            "Times the jobs were re-created at a UTC offset change of the configured zone.",
        );
        let _ = writeln!(
            out,
            "rulewatch_schedule_offset_changes_total {}",
            load(&self.dst_reschedules)
        );
        family(
            &mut out,
            "rulewatch_start_time_seconds",
            "gauge",
            "When the daemon started, seconds since the Unix epoch.",
        );
        let _ = writeln!(out, "rulewatch_start_time_seconds {}", self.started_at);
        for f in self.extra.lock().iter() {
            f(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::new();
        m.ingested(1000, Duration::from_millis(3));
        m.evaluated("pm25-mean", false, Duration::from_millis(2));
        m.evaluated("pm25-mean", true, Duration::from_millis(20));
        m.skipped("pm25-mean");
        let text = m.render(Gauges {
            rules_loaded: 1,
            ..Gauges::default()
        });
        assert!(
            text.contains("rulewatch_readings_ingested_total 1000\n"),
            "{text}"
        );
        assert!(
            text.contains("rulewatch_evaluations_total{rule=\"pm25-mean\",result=\"error\"} 1\n")
        );
        assert!(text.contains("rulewatch_evaluations_skipped_total{rule=\"pm25-mean\"} 1\n"));
        assert!(text.contains(
            "rulewatch_evaluation_duration_seconds_bucket{rule=\"pm25-mean\",le=\"0.005\"} 1\n"
        ));
        assert!(text.contains(
            "rulewatch_evaluation_duration_seconds_bucket{rule=\"pm25-mean\",le=\"+Inf\"} 2\n"
        ));
        assert!(text.contains("rulewatch_ingest_duration_seconds_count 1\n"));
        // Every sample line belongs to a declared family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {base} "))
                    || text.contains(&format!("# TYPE {name} ")),
                "{line}"
            );
        }
    }
}
