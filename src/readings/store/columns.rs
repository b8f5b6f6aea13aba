//! The in-memory, columnar copy of the series rules have asked for: each
//! series' times and values in two dense arrays, sorted by time, from the
//! earliest instant asked for so far (see [`super`]), and where each UTC
//! day starts in them ([`super::days`]). Every change to the arrays goes
//! through the methods here, which keep the day index in step.

use std::collections::HashMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::days::{Days, Summary};
use super::grouping::{Grouped, Groupings};
use super::known::KnownSeries;
use super::search::{first_after, first_at_or_after};
use crate::readings::model::{KeyMap, Labels, SeriesKey};
use crate::time::Millis;

pub type SeriesId = i64;

/// One series in memory: its key and, once loaded, its readings from
/// `loaded_from` on, sorted by time (columnar: times and values apart, so
/// range lookups binary-search a dense `i64` array).
#[derive(Debug)]
pub struct Series {
    pub id: SeriesId,
    /// Shared with `Memory::by_key` and the known series: one copy a series.
    pub key: Arc<SeriesKey>,
    /// `key.labels`, shared: rule results hand them out without copying.
    pub labels: Arc<Labels>,
    /// Readings before this instant are not in memory. `Millis::MAX`: nothing loaded yet.
    pub(super) loaded_from: Millis,
    times: Vec<Millis>,
    values: Vec<f64>,
    /// Where each UTC day starts in `times`, and the days' summaries.
    days: Days,
}

impl Series {
    fn new(id: SeriesId, key: SeriesKey, loaded_from: Millis) -> Series {
        Series {
            id,
            labels: Arc::new(key.labels.clone()),
            key: Arc::new(key),
            loaded_from,
            times: Vec::new(),
            values: Vec::new(),
            days: Days::default(),
        }
    }

    /// The readings with `from <= time <= to`, as (times, values).
    pub fn range(&self, from: Millis, to: Millis) -> (&[Millis], &[f64]) {
        let a = first_at_or_after(&self.times, from);
        let b = first_after(&self.times, to);
        if a >= b {
            return (&[], &[]);
        }
        (&self.times[a..b], &self.values[a..b])
    }

    /// Count, sum, minimum and maximum of the readings with `from <= time
    /// <= to`: whole days from their summaries, partial days scanned.
    pub fn summarize(&self, from: Millis, to: Millis) -> Summary {
        let a = first_at_or_after(&self.times, from);
        let b = first_after(&self.times, to);
        self.days.summarize(&self.times, &self.values, a, b, true)
    }

    /// [`Series::summarize`] where only the count and sum are wanted: the
    /// minimum and maximum may be wrong (edge days skip them; the sum is
    /// the same).
    pub fn count_and_sum(&self, from: Millis, to: Millis) -> Summary {
        let a = first_at_or_after(&self.times, from);
        let b = first_after(&self.times, to);
        self.days.summarize(&self.times, &self.values, a, b, false)
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
            Some(&last) if last >= t => match self.times.binary_search(&t) {
                Ok(i) => {
                    self.values[i] = v;
                    self.days.replaced(t);
                }
                Err(i) => {
                    self.times.insert(i, t);
                    self.values.insert(i, v);
                    self.days.inserted(t, &self.times);
                }
            },
            _ => {
                self.times.push(t);
                self.values.push(v);
                self.days.appended(t, self.times.len() - 1);
            }
        }
    }

    /// Forgets the readings in memory: they are loaded again when asked for.
    pub(super) fn unload(&mut self) {
        self.loaded_from = Millis::MAX;
        self.times = Vec::new();
        self.values = Vec::new();
        self.days = Days::default();
    }

    /// Puts readings loaded from SQLite, all before those in memory, in
    /// front of them; memory then holds everything from `from` on.
    pub(super) fn prepend(&mut self, mut times: Vec<Millis>, mut values: Vec<f64>, from: Millis) {
        let keep = times.partition_point(|&t| t < self.loaded_from);
        times.truncate(keep);
        values.truncate(keep);
        times.append(&mut self.times);
        values.append(&mut self.values);
        self.times = times;
        self.values = values;
        self.loaded_from = from;
        self.days = Days::build(&self.times);
    }

    /// Drops the readings before `cut` (retention deleted them from the file).
    pub(super) fn drop_before(&mut self, cut: Millis) {
        let keep = self.times.partition_point(|&t| t < cut);
        if keep > 0 {
            self.times.drain(..keep);
            self.values.drain(..keep);
            self.days = Days::build(&self.times);
        }
    }
}

/// The series in memory, each in a slot of one vector, found by id through
/// `slot_of`. Series are never removed, so a slot stays put and a metric's
/// list of slots only grows ([`super::grouping`] relies on both).
#[derive(Default)]
pub(in crate::readings) struct SeriesTable {
    slots: Vec<Series>,
    /// Fx: looked up once per reading written (SipHash was a visible part
    /// of writes and evaluations over thousands of series).
    slot_of: FxHashMap<SeriesId, u32>,
}

impl SeriesTable {
    pub(in crate::readings) fn get(&self, id: &SeriesId) -> Option<&Series> {
        self.slot_of.get(id).map(|&i| &self.slots[i as usize])
    }

    pub(in crate::readings) fn get_mut(&mut self, id: &SeriesId) -> Option<&mut Series> {
        self.slot_of.get(id).map(|&i| &mut self.slots[i as usize])
    }

    pub(in crate::readings) fn contains_key(&self, id: &SeriesId) -> bool {
        self.slot_of.contains_key(id)
    }

    pub(in crate::readings) fn values_mut(&mut self) -> impl Iterator<Item = &mut Series> {
        self.slots.iter_mut()
    }

    /// The series in slot `i` (a slot from [`Memory::by_metric`]).
    pub(in crate::readings) fn slot(&self, i: u32) -> &Series {
        &self.slots[i as usize]
    }
}

#[derive(Default)]
pub(in crate::readings) struct Memory {
    pub(in crate::readings) series: SeriesTable,
    /// Each metric's series (their slots in `series`), in the order first
    /// stored: a rule's scan walks them without a lookup per series.
    pub(in crate::readings) by_metric: HashMap<String, Vec<u32>>,
    pub(in crate::readings) by_key: KeyMap<Arc<SeriesKey>, SeriesId>,
    /// The same series by their raw key bytes, for parsers (a store's
    /// memory has one; a rule test's has none).
    pub(in crate::readings) known: Option<Arc<KnownSeries>>,
    /// Groupings `group()` asked for, kept for the next evaluation.
    pub(in crate::readings) groupings: Groupings,
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
            .map(|&i| self.series.slot(i))
            .filter(move |s| s.matches(filter))
    }

    /// The series of `metric` matching `filter` grouped by label `by`
    /// (see [`Groupings`]).
    pub(in crate::readings) fn grouped<'a>(
        &'a self,
        metric: &str,
        filter: &Labels,
        by: &str,
    ) -> Grouped<'a> {
        self.groupings.grouped(self, metric, filter, by)
    }

    pub(in crate::readings) fn add_series(
        &mut self,
        id: SeriesId,
        key: SeriesKey,
        loaded_from: Millis,
    ) {
        let series = Series::new(id, key, loaded_from);
        if let Some(s) = self.series.get_mut(&id) {
            *s = series; // known already: its slot and place stay
            return;
        }
        let slot = self.series.slots.len() as u32;
        self.by_metric
            .entry(series.key.metric.clone())
            .or_default()
            .push(slot);
        self.by_key.insert(series.key.clone(), id);
        if let Some(known) = &self.known {
            known.insert(id, &series.key);
        }
        self.series.slots.push(series);
        self.series.slot_of.insert(id, slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::store::days::lane_sum;
    use crate::time::{DAY, HOUR};

    /// The summary of a window computed the slow way: day by day, in time
    /// order, each day's readings inside the window lane-summed.
    fn scanned(s: &Series, from: Millis, to: Millis) -> Summary {
        let (t, v) = s.range(from, to);
        let mut out = Summary::EMPTY;
        let mut i = 0;
        while i < t.len() {
            let day = t[i].div_euclid(DAY);
            let n = t[i..].partition_point(|&x| x.div_euclid(DAY) == day);
            let part = &v[i..i + n];
            out.count += n;
            out.sum += lane_sum(part);
            out.min = part.iter().copied().fold(out.min, f64::min);
            out.max = part.iter().copied().fold(out.max, f64::max);
            i += n;
        }
        out
    }

    fn series() -> Series {
        let key = SeriesKey {
            metric: "pm25".into(),
            labels: Labels::new(),
        };
        Series::new(1, key, Millis::MIN)
    }

    /// Every window over the series, summarised both ways, after reading
    /// each summary once (so that a write that does not forget its day's
    /// summary shows up).
    fn check(s: &Series, what: &str) {
        let windows = [
            (-DAY, 10 * DAY),
            (0, DAY - 1),
            (3 * HOUR, 5 * DAY + 7 * HOUR),
            (2 * DAY, 4 * DAY - 1),
            (2 * DAY + 1, 4 * DAY),
            (5 * HOUR, 5 * HOUR + 30),
            (9 * DAY, 12 * DAY),
        ];
        for (from, to) in windows {
            let slow = scanned(s, from, to);
            assert_eq!(s.summarize(from, to), slow, "{what}: window {from}..={to}");
            let fast = s.count_and_sum(from, to);
            assert_eq!(
                (fast.count, fast.sum),
                (slow.count, slow.sum),
                "{what}: count and sum of window {from}..={to}"
            );
        }
    }

    #[test]
    fn day_summaries_follow_every_kind_of_write() {
        let mut s = series();
        // Appended in order, with a day left empty (day 3).
        for h in (0..3 * 24).chain(4 * 24..6 * 24) {
            s.upsert(h * HOUR, (h % 17) as f64 * 1.1 + 0.3);
        }
        check(&s, "appended");
        s.upsert(30 * HOUR, 99.5);
        check(&s, "replaced");
        s.upsert(30 * HOUR + 5, -3.25);
        check(&s, "inserted inside a day");
        s.upsert(3 * DAY + HOUR, 7.0);
        check(&s, "inserted into the empty day");
        s.upsert(-2 * HOUR, 1.5);
        check(&s, "inserted before the first day");
        s.upsert(9 * DAY + 1, 4.0);
        check(&s, "appended after empty days");
        s.drop_before(DAY + 3);
        check(&s, "older readings dropped");
        let (t, v) = (vec![-3 * DAY, -DAY, 0, DAY], vec![1.0, 2.0, 3.0, 4.0]);
        s.loaded_from = DAY + 3;
        s.prepend(t, v, -3 * DAY);
        check(&s, "older readings loaded in front");
        assert_eq!(s.summarize(-10 * DAY, 20 * DAY).count, s.times.len());
        s.unload();
        assert_eq!(s.summarize(Millis::MIN, Millis::MAX), Summary::EMPTY);
        s.loaded_from = Millis::MIN;
        s.upsert(5, 1.0);
        check(&s, "after an unload");
    }
}
