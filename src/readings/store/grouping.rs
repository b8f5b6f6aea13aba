//! Grouping indexes for the rule API's `group()`: for one (metric, filter,
//! label), the label's values in sorted order, each with the series that
//! carry it. Rules group the same series by the same label at every
//! evaluation, and finding, hashing, sorting and copying the keys was most
//! of a `group()` over thousands of series before any reading was read; an
//! index is built once and kept until the metric gains a series.
//!
//! Keys are the rule engine's shared strings, made once here: a `group()`
//! result hands them out without copying.

use std::sync::Arc;

use parking_lot::Mutex;
use rhai::ImmutableString;

use super::columns::{Memory, Series, SeriesTable};
use crate::readings::model::Labels;

/// At most this many indexes are kept; when one more is needed, all are
/// dropped (rules are scripts: a loop over ever new filters must not grow
/// memory without bound). The benchmark rules need three.
const MAX_KEPT: usize = 32;

/// The series of a metric matching a filter, grouped by one label.
struct Grouping {
    metric: String,
    filter: Labels,
    by: String,
    /// How many series the metric had when this was built. A metric's
    /// series are never removed, so while the count is the same, so is
    /// the set (and labels never change).
    built_with: usize,
    /// The label's values, sorted.
    keys: Vec<ImmutableString>,
    /// Group `k`'s members are `members[ends[k - 1]..ends[k]]` (slots in
    /// the series table), in the order first stored.
    ends: Vec<u32>,
    members: Vec<u32>,
}

impl Grouping {
    fn build(memory: &Memory, metric: &str, filter: &Labels, by: &str) -> Grouping {
        let slots = memory.by_metric.get(metric).map_or(&[][..], Vec::as_slice);
        let mut keyed: Vec<(&str, u32)> = slots
            .iter()
            .filter_map(|&i| {
                let s = memory.series.slot(i);
                if !s.matches(filter) {
                    return None;
                }
                s.key.labels.get(by).map(|key| (key.as_str(), i))
            })
            .collect();
        // Stable: a group's members stay in the order first stored.
        keyed.sort_by(|a, b| a.0.cmp(b.0));
        let mut keys = Vec::new();
        let mut ends = Vec::new();
        let mut members = Vec::with_capacity(keyed.len());
        for (i, &(key, slot)) in keyed.iter().enumerate() {
            if i > 0 && keyed[i - 1].0 != key {
                ends.push(members.len() as u32);
            }
            if i == 0 || keyed[i - 1].0 != key {
                keys.push(ImmutableString::from(key));
            }
            members.push(slot);
        }
        if !members.is_empty() {
            ends.push(members.len() as u32);
        }
        Grouping {
            metric: metric.to_string(),
            filter: filter.clone(),
            by: by.to_string(),
            built_with: slots.len(),
            keys,
            ends,
            members,
        }
    }

    fn is_for(&self, metric: &str, filter: &Labels, by: &str) -> bool {
        self.metric == metric && self.by == by && self.filter == *filter
    }
}

/// The grouping indexes built so far (see the top of this file).
#[derive(Default)]
pub(in crate::readings) struct Groupings {
    kept: Mutex<Vec<Arc<Grouping>>>,
}

impl Groupings {
    pub(super) fn grouped<'a>(
        &self,
        memory: &'a Memory,
        metric: &str,
        filter: &Labels,
        by: &str,
    ) -> Grouped<'a> {
        let count = memory.by_metric.get(metric).map_or(0, Vec::len);
        let found = self
            .kept
            .lock()
            .iter()
            .find(|g| g.is_for(metric, filter, by))
            .filter(|g| g.built_with == count)
            .cloned();
        let grouping = found.unwrap_or_else(|| {
            // Built outside the lock: other rules' lookups need not wait.
            let built = Arc::new(Grouping::build(memory, metric, filter, by));
            let mut kept = self.kept.lock();
            kept.retain(|g| !g.is_for(metric, filter, by));
            if kept.len() >= MAX_KEPT {
                kept.clear();
            }
            kept.push(built.clone());
            built
        });
        Grouped {
            grouping,
            series: &memory.series,
        }
    }
}

/// The series of a metric matching a filter, grouped by a label: the groups
/// in key order, each group's series in the order first stored. Series
/// without the label are in no group.
pub struct Grouped<'a> {
    grouping: Arc<Grouping>,
    series: &'a SeriesTable,
}

impl Grouped<'_> {
    /// How many groups.
    pub fn len(&self) -> usize {
        self.grouping.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grouping.keys.is_empty()
    }

    /// The groups, in key order.
    pub fn groups(&self) -> impl Iterator<Item = SeriesGroup<'_>> {
        let g = &*self.grouping;
        g.keys.iter().enumerate().map(move |(k, key)| {
            let start = if k == 0 { 0 } else { g.ends[k - 1] as usize };
            SeriesGroup {
                key,
                members: &g.members[start..g.ends[k] as usize],
                series: self.series,
            }
        })
    }

    /// Every series in a group.
    pub(super) fn all_series(&self) -> impl Iterator<Item = &Series> {
        self.grouping.members.iter().map(|&i| self.series.slot(i))
    }
}

/// One group: its key (the label's value) and its series.
pub struct SeriesGroup<'a> {
    pub key: &'a ImmutableString,
    members: &'a [u32],
    series: &'a SeriesTable,
}

impl<'a> SeriesGroup<'a> {
    /// The group's series, in the order first stored.
    pub fn series(&self) -> impl Iterator<Item = &'a Series> + 'a {
        let table = self.series;
        self.members.iter().map(move |&i| table.slot(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::model::SeriesKey;
    use crate::time::Millis;

    fn add(memory: &mut Memory, id: i64, metric: &str, labels: &[(&str, &str)]) {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let key = SeriesKey {
            metric: metric.to_string(),
            labels,
        };
        memory.add_series(id, key, Millis::MIN);
    }

    /// (key, ids of its series) of every group.
    fn groups(
        memory: &Memory,
        metric: &str,
        filter: &[(&str, &str)],
        by: &str,
    ) -> Vec<(String, Vec<i64>)> {
        let filter: Labels = filter
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let grouped = memory.grouped(metric, &filter, by);
        grouped
            .groups()
            .map(|g| (g.key.to_string(), g.series().map(|s| s.id).collect()))
            .collect()
    }

    #[test]
    fn groups_in_key_order_and_follows_new_series() {
        let mut memory = Memory::default();
        add(&mut memory, 1, "pm25", &[("county", "清河"), ("site", "a")]);
        add(&mut memory, 2, "pm25", &[("county", "南宫"), ("site", "b")]);
        add(&mut memory, 3, "pm10", &[("county", "巨鹿")]);
        add(&mut memory, 4, "pm25", &[("site", "c")]);
        add(&mut memory, 5, "pm25", &[("county", "清河"), ("site", "d")]);
        let want = |v: &[(&str, &[i64])]| -> Vec<(String, Vec<i64>)> {
            v.iter()
                .map(|(k, ids)| (k.to_string(), ids.to_vec()))
                .collect()
        };
        assert_eq!(
            groups(&memory, "pm25", &[], "county"),
            want(&[("南宫", &[2]), ("清河", &[1, 5])])
        );
        assert_eq!(
            groups(&memory, "pm25", &[("site", "d")], "county"),
            want(&[("清河", &[5])])
        );
        assert_eq!(groups(&memory, "so2", &[], "county"), want(&[]));
        assert_eq!(groups(&memory, "pm25", &[], "river"), want(&[]));
        // A new series of the metric: the kept index is rebuilt.
        add(&mut memory, 6, "pm25", &[("county", "巨鹿"), ("site", "e")]);
        assert_eq!(
            groups(&memory, "pm25", &[], "county"),
            want(&[("南宫", &[2]), ("巨鹿", &[6]), ("清河", &[1, 5])])
        );
        // Other metrics' series do not matter; an index is kept per
        // (metric, filter, label), and only so many of them.
        assert_eq!(
            groups(&memory, "pm10", &[], "county"),
            want(&[("巨鹿", &[3])])
        );
        for i in 0..(2 * MAX_KEPT) {
            let site = format!("s{i}");
            assert_eq!(
                groups(&memory, "pm25", &[("site", &site)], "county"),
                want(&[])
            );
        }
        assert!(memory.groupings.kept.lock().len() <= MAX_KEPT);
        assert_eq!(
            groups(&memory, "pm25", &[], "site"),
            want(&[
                ("a", &[1]),
                ("b", &[2]),
                ("c", &[4]),
                ("d", &[5]),
                ("e", &[6])
            ])
        );
    }
}
