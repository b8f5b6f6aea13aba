//! The seam between rules and stored readings: rules read through
//! [`ReadingSource`], never through a concrete store. The daemon, `eval` and
//! the status page hand them the SQLite-backed [`Store`]; rule tests hand
//! them [`MemoryReadings`], the readings a test file lists, held in memory
//! for the length of one test case (no temporary SQLite file).

use std::sync::Arc;

use super::model::{Batch, Labels};
use super::store::columns::Memory;
use super::store::{Grouped, Series, Store};
use crate::time::Millis;

/// Why readings could not be read (the SQLite file failed, for the store).
pub type ReadError = Box<dyn std::error::Error + Send + Sync>;

/// Where rules read readings from.
pub trait ReadingSource: Send + Sync {
    /// Calls `visit` once with the series of `metric` whose labels include
    /// `filter`, each holding its readings from at least `from` on.
    fn visit_series(
        &self,
        metric: &str,
        filter: &Labels,
        from: Millis,
        visit: &mut dyn FnMut(&mut dyn Iterator<Item = &Series>),
    ) -> Result<(), ReadError>;

    /// Calls `visit` once with the series of `metric` whose labels include
    /// `filter`, grouped by label `by`, each holding its readings from at
    /// least `from` on.
    fn visit_groups(
        &self,
        metric: &str,
        filter: &Labels,
        by: &str,
        from: Millis,
        visit: &mut dyn FnMut(&Grouped),
    ) -> Result<(), ReadError>;
}

impl dyn ReadingSource + '_ {
    /// [`ReadingSource::visit_series`] for a closure that returns a result.
    pub fn with_series<R>(
        &self,
        metric: &str,
        filter: &Labels,
        from: Millis,
        f: impl FnOnce(&mut dyn Iterator<Item = &Series>) -> R,
    ) -> Result<R, ReadError> {
        let mut f = Some(f);
        let mut out = None;
        self.visit_series(metric, filter, from, &mut |series| {
            if let Some(f) = f.take() {
                out = Some(f(series));
            }
        })?;
        Ok(out.expect("visit_series calls visit once"))
    }

    /// [`ReadingSource::visit_groups`] for a closure that returns a result.
    pub fn with_groups<R>(
        &self,
        metric: &str,
        filter: &Labels,
        by: &str,
        from: Millis,
        f: impl FnOnce(&Grouped) -> R,
    ) -> Result<R, ReadError> {
        let mut f = Some(f);
        let mut out = None;
        self.visit_groups(metric, filter, by, from, &mut |grouped| {
            if let Some(f) = f.take() {
                out = Some(f(grouped));
            }
        })?;
        Ok(out.expect("visit_groups calls visit once"))
    }
}

impl ReadingSource for Store {
    fn visit_series(
        &self,
        metric: &str,
        filter: &Labels,
        from: Millis,
        visit: &mut dyn FnMut(&mut dyn Iterator<Item = &Series>),
    ) -> Result<(), ReadError> {
        Ok(self.with_series(metric, filter, from, visit)?)
    }

    fn visit_groups(
        &self,
        metric: &str,
        filter: &Labels,
        by: &str,
        from: Millis,
        visit: &mut dyn FnMut(&Grouped),
    ) -> Result<(), ReadError> {
        Ok(self.with_groups(metric, filter, by, from, visit)?)
    }
}

/// Readings held in memory only, all of them from the start: what a rule
/// test lists. Built once; read by any number of evaluations.
pub struct MemoryReadings {
    memory: Memory,
}

impl MemoryReadings {
    /// The readings of `batch`; a later reading of the same series and time
    /// replaces an earlier one, as in the store.
    pub fn new(batch: &Batch) -> Arc<MemoryReadings> {
        let mut memory = Memory::default();
        for (id, key) in batch.series.iter().enumerate() {
            memory.add_series(id as i64, (**key).clone(), Millis::MIN);
        }
        // By (series, time, position): each series is then appended in order.
        let mut order: Vec<usize> = (0..batch.points.len()).collect();
        order.sort_by_key(|&i| {
            let p = &batch.points[i];
            (p.series, p.time, i)
        });
        for i in order {
            let p = &batch.points[i];
            if let Some(s) = memory.series.get_mut(&(p.series as i64)) {
                s.upsert(p.time, p.value);
            }
        }
        Arc::new(MemoryReadings { memory })
    }
}

impl ReadingSource for MemoryReadings {
    fn visit_series(
        &self,
        metric: &str,
        filter: &Labels,
        _from: Millis,
        visit: &mut dyn FnMut(&mut dyn Iterator<Item = &Series>),
    ) -> Result<(), ReadError> {
        visit(&mut self.memory.matching(metric, filter));
        Ok(())
    }

    fn visit_groups(
        &self,
        metric: &str,
        filter: &Labels,
        by: &str,
        _from: Millis,
        visit: &mut dyn FnMut(&Grouped),
    ) -> Result<(), ReadError> {
        visit(&self.memory.grouped(metric, filter, by));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(county: &str) -> Labels {
        [("county".to_string(), county.to_string())].into()
    }

    fn read(
        source: &dyn ReadingSource,
        metric: &str,
        filter: &Labels,
    ) -> Vec<(String, Vec<(Millis, f64)>)> {
        source
            .with_series(metric, filter, Millis::MIN, |it| {
                it.map(|s| {
                    let (t, v) = s.range(Millis::MIN, Millis::MAX);
                    let points = t.iter().copied().zip(v.iter().copied()).collect();
                    (s.key.labels["county"].clone(), points)
                })
                .collect()
            })
            .unwrap()
    }

    #[test]
    fn memory_and_store_answer_alike() {
        let mut batch = Batch::new();
        for (county, t, v) in [
            ("南宫", 10, 1.0),
            ("清河", 5, 9.0),
            ("南宫", 5, 0.5),
            ("南宫", 10, 2.0),
        ] {
            batch.push("pm25", labels(county), t, v);
        }
        batch.push("pm10", labels("南宫"), 1, 3.0);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        store.write(&batch).unwrap();
        let memory = MemoryReadings::new(&batch);
        for filter in [Labels::new(), labels("南宫"), labels("无")] {
            for metric in ["pm25", "pm10", "so2"] {
                assert_eq!(
                    read(memory.as_ref(), metric, &filter),
                    read(&store, metric, &filter),
                    "{metric} {filter:?}"
                );
            }
        }
        assert_eq!(
            read(memory.as_ref(), "pm25", &labels("南宫")),
            vec![("南宫".to_string(), vec![(5, 0.5), (10, 2.0)])]
        );
    }
}
