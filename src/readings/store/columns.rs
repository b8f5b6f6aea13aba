//! The in-memory, columnar copy of the series rules have asked for: each
//! series' times and values in two dense arrays, sorted by time, from the
//! earliest instant asked for so far (see [`super`]).

use std::collections::HashMap;
use std::sync::Arc;

use super::search::{first_after, first_at_or_after};
use crate::readings::model::{Labels, SeriesKey};
use crate::time::Millis;

pub type SeriesId = i64;

/// One series in memory: its key and, once loaded, its readings from
/// `loaded_from` on, sorted by time (columnar: times and values apart, so
/// range lookups binary-search a dense `i64` array).
#[derive(Debug)]
pub struct Series {
    pub id: SeriesId,
    pub key: SeriesKey,
    /// `key.labels`, shared: rule results hand them out without copying.
    pub labels: Arc<Labels>,
    /// Readings before this instant are not in memory. `Millis::MAX`: nothing loaded yet.
    pub(super) loaded_from: Millis,
    pub(super) times: Vec<Millis>,
    pub(super) values: Vec<f64>,
}

impl Series {
    /// The readings with `from <= time <= to`, as (times, values).
    pub fn range(&self, from: Millis, to: Millis) -> (&[Millis], &[f64]) {
        let a = first_at_or_after(&self.times, from);
        let b = first_after(&self.times, to);
        if a >= b {
            return (&[], &[]);
        }
        (&self.times[a..b], &self.values[a..b])
    }

    /// The last reading at or before `t`.
    pub fn last_at_or_before(&self, t: Millis) -> Option<(Millis, f64)> {
        let i = first_after(&self.times, t);
        (i > 0).then(|| (self.times[i - 1], self.values[i - 1]))
    }

    pub fn matches(&self, filter: &Labels) -> bool {
        filter
            .iter()
            .all(|(k, v)| self.key.labels.get(k) == Some(v))
    }

    /// Inserts or replaces one reading (identity is the time).
    pub(in crate::readings) fn upsert(&mut self, t: Millis, v: f64) {
        if t < self.loaded_from {
            return; // not in memory; loaded from SQLite when asked for
        }
        match self.times.last() {
            Some(&last) if last < t => {
                self.times.push(t);
                self.values.push(v);
            }
            None => {
                self.times.push(t);
                self.values.push(v);
            }
            _ => match self.times.binary_search(&t) {
                Ok(i) => self.values[i] = v,
                Err(i) => {
                    self.times.insert(i, t);
                    self.values.insert(i, v);
                }
            },
        }
    }
}

#[derive(Default)]
pub(in crate::readings) struct Memory {
    pub(in crate::readings) series: HashMap<SeriesId, Series>,
    pub(in crate::readings) by_metric: HashMap<String, Vec<SeriesId>>,
    pub(in crate::readings) by_key: HashMap<SeriesKey, SeriesId>,
}

impl Memory {
    /// The series of `metric` whose labels include `filter`, in the order
    /// they were first stored.
    pub(in crate::readings) fn matching<'a>(
        &'a self,
        metric: &str,
        filter: &'a Labels,
    ) -> impl Iterator<Item = &'a Series> + 'a {
        self.by_metric
            .get(metric)
            .into_iter()
            .flatten()
            .filter_map(|id| self.series.get(id))
            .filter(move |s| s.matches(filter))
    }

    pub(in crate::readings) fn add_series(
        &mut self,
        id: SeriesId,
        key: SeriesKey,
        loaded_from: Millis,
    ) {
        self.by_metric
            .entry(key.metric.clone())
            .or_default()
            .push(id);
        self.by_key.insert(key.clone(), id);
        self.series.insert(
            id,
            Series {
                id,
                labels: Arc::new(key.labels.clone()),
                key,
                loaded_from,
                times: Vec::new(),
                values: Vec::new(),
            },
        );
    }
}
