//! Per-UTC-day summaries of a series' readings (count, sum, min, max), kept
//! beside its columns, so that an aggregate over a long window reads one
//! summary per whole day inside it and scans only the partial days at its
//! edges: a 30-day mean over hourly readings reads ~30 summaries instead of
//! 720 readings (the scan was most of an evaluation over thousands of
//! series).
//!
//! Where each day starts is kept current by every change to the columns; a
//! day's summary is computed the first time it is read and forgotten when a
//! write touches that day, so writing costs no summing.
//!
//! A window's sum is added day by day in time order, each day's part being
//! [`lane_sum`] of its readings inside the window: the same order whether a
//! day comes from its summary or is scanned, so a result never depends on
//! which (nor on what was read before).

use std::sync::OnceLock;

use crate::time::{Millis, DAY};

/// UTC day number of `t`.
fn day_of(t: Millis) -> i64 {
    t.div_euclid(DAY)
}

/// Sum in eight independent lanes: the compiler vectorises it, where one
/// running total (each add waiting for the last) cannot be.
pub fn lane_sum(values: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = values.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..8 {
            lanes[i] += c[i];
        }
    }
    lanes.iter().sum::<f64>() + rest
}

/// Count, sum, minimum and maximum of some readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub const EMPTY: Summary = Summary {
        count: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    /// The summary of one day's readings (or of the part of a day inside a window).
    fn of(values: &[f64]) -> Summary {
        Summary {
            count: values.len(),
            sum: lane_sum(values),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    /// Count and sum only (min and max left empty): for a window's edge
    /// days when only a mean, sum or count is wanted.
    fn count_and_sum(values: &[f64]) -> Summary {
        Summary {
            count: values.len(),
            sum: lane_sum(values),
            ..Summary::EMPTY
        }
    }

    /// Adds the readings of `later` (which come after this summary's).
    fn then(&mut self, later: &Summary) {
        self.count += later.count;
        self.sum += later.sum;
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
    }
}

/// Where each UTC day starts in a series' sorted times, and the days'
/// summaries once computed.
#[derive(Debug, Default)]
pub(super) struct Days {
    /// UTC day number of `starts[0]`.
    first: i64,
    /// `starts[k]`: index of the first reading on day `first + k` or later.
    /// A day without readings starts where the next one does.
    starts: Vec<usize>,
    /// `summaries[k]`: day `first + k`, computed when first read.
    summaries: Vec<OnceLock<Summary>>,
}

impl Days {
    /// The index of `times` (sorted), built from scratch.
    pub(super) fn build(times: &[Millis]) -> Days {
        let mut days = Days::default();
        let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
            return days;
        };
        days.first = day_of(first);
        let n = (day_of(last) - days.first + 1) as usize;
        days.starts.reserve_exact(n);
        let mut i = 0;
        for k in 0..n as i64 {
            let start = (days.first + k).saturating_mul(DAY);
            i += times[i..].partition_point(|&t| t < start);
            days.starts.push(i);
        }
        days.summaries = (0..n).map(|_| OnceLock::new()).collect();
        days
    }

    /// Slot of day `d`, if the index covers it.
    fn slot(&self, d: i64) -> Option<usize> {
        let k = d.checked_sub(self.first)?;
        (0..self.starts.len() as i64)
            .contains(&k)
            .then_some(k as usize)
    }

    fn forget(&mut self, t: Millis) {
        if let Some(k) = self.slot(day_of(t)) {
            self.summaries[k] = OnceLock::new();
        }
    }

    /// A reading at `t` was appended after every other one, at index `i`.
    pub(super) fn appended(&mut self, t: Millis, i: usize) {
        let d = day_of(t);
        if self.starts.is_empty() {
            self.first = d;
        }
        while self.first + (self.starts.len() as i64) <= d {
            self.starts.push(i);
            self.summaries.push(OnceLock::new());
        }
        self.forget(t);
    }

    /// The value of the reading at `t` changed (its place did not).
    pub(super) fn replaced(&mut self, t: Millis) {
        self.forget(t);
    }

    /// A reading at `t` was inserted before the last one (`times` holds it now).
    pub(super) fn inserted(&mut self, t: Millis, times: &[Millis]) {
        match self.slot(day_of(t)) {
            Some(k) => {
                for start in &mut self.starts[k + 1..] {
                    *start += 1;
                }
                self.summaries[k] = OnceLock::new();
            }
            // Before the first day: a new first day, rare enough to rebuild.
            None => *self = Days::build(times),
        }
    }

    /// The readings with `from <= time <= to` summarised; `times` and
    /// `values` are the columns this index describes. Without `extremes`,
    /// the minimum and maximum may be left out (partial days skip them).
    pub(super) fn summarize(
        &self,
        times: &[Millis],
        values: &[f64],
        a: usize,
        b: usize,
        extremes: bool,
    ) -> Summary {
        let mut out = Summary::EMPTY;
        if a >= b {
            return out;
        }
        let first = self.slot(day_of(times[a])).expect("indexed");
        let last = self.slot(day_of(times[b - 1])).expect("indexed");
        for k in first..=last {
            let (start, end) = (self.starts[k], self.end(k, times.len()));
            let (s, e) = (start.max(a), end.min(b));
            if s >= e {
                continue;
            }
            if s == start && e == end {
                out.then(self.summaries[k].get_or_init(|| Summary::of(&values[s..e])));
            } else if extremes {
                out.then(&Summary::of(&values[s..e]));
            } else {
                out.then(&Summary::count_and_sum(&values[s..e]));
            }
        }
        out
    }

    /// One past the last reading of slot `k`.
    fn end(&self, k: usize, len: usize) -> usize {
        self.starts.get(k + 1).copied().unwrap_or(len)
    }
}
