//! Deleting old readings (retention), a little at a time.
//!
//! Why in small steps: the delete takes the store's one write lock, which
//! HTTP ingest and `rulewatch ingest` also need, and a first pass over years
//! of hourly data deletes millions of day blocks. Each call deletes at most
//! a given number of blocks in its own short transaction, so a writer waits
//! for one step (milliseconds), never for the whole pass; the caller
//! (the daemon's retention task) pauses between steps.
//!
//! Readings go by whole UTC days (a day's block is deleted once all of its
//! day lies before the cut): a reading is kept up to a day longer than asked,
//! never deleted early. The memory copy follows the delete, so rules see what
//! the file holds. Series rows stay (a few bytes each, and a process holding
//! one in memory may still write to it).

use std::sync::atomic::Ordering;

use rusqlite::params;

use super::blocks::block_start;
use super::{ReadingStoreError, Store};
use crate::time::Millis;

/// What one step deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub blocks: usize,
    pub readings: u64,
}

impl Store {
    /// Deletes readings of `metric` from the days that end at or before
    /// `before`, at most `max_blocks` day blocks, in one transaction.
    /// Returns what it deleted: call again until it deletes nothing.
    pub fn prune_step(
        &self,
        metric: &str,
        before: Millis,
        max_blocks: usize,
    ) -> Result<Pruned, ReadingStoreError> {
        let err = |source| ReadingStoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        // Blocks whose day starts before this one end at or before `before`.
        let cut = block_start(before);
        // Staged readings first: an old one folded after the delete would
        // bring its day back. A fold that fails (a full store) must not stop
        // retention, which is what frees the room.
        self.fold_staged_or_warn();
        let conn = self.writer.lock();
        conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
        let deleted = (|| -> rusqlite::Result<(Pruned, Vec<i64>, i64)> {
            let ids: Vec<i64> = conn
                .prepare_cached("SELECT id FROM series WHERE metric = ?1 ORDER BY id")?
                .query_map([metric], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut delete = conn.prepare_cached(
                "DELETE FROM blocks WHERE series_id = ?1 AND start IN
                   (SELECT start FROM blocks WHERE series_id = ?1 AND start < ?2 ORDER BY start LIMIT ?3)
                 RETURNING count",
            )?;
            let mut pruned = Pruned::default();
            let mut touched = Vec::new();
            for id in ids {
                let room = max_blocks.saturating_sub(pruned.blocks);
                if room == 0 {
                    break;
                }
                let counts: Vec<i64> = delete
                    .query_map(params![id, cut, room as i64], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                if !counts.is_empty() {
                    pruned.blocks += counts.len();
                    pruned.readings += counts.iter().map(|&n| n.max(0) as u64).sum::<u64>();
                    touched.push(id);
                }
            }
            let generation = if pruned.blocks > 0 {
                conn.query_row(
                    "UPDATE store_meta SET value = value + 1 WHERE key = 'generation' RETURNING value",
                    [],
                    |r| r.get(0),
                )?
            } else {
                0
            };
            conn.execute_batch("COMMIT")?;
            Ok((pruned, touched, generation))
        })();
        let (pruned, touched, generation) = match deleted {
            Ok(d) => d,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(err(e));
            }
        };
        if pruned.blocks > 0 {
            // The memory copy drops what the file no longer has, before the
            // write lock is released (as every write does).
            let mut memory = self.memory.write();
            for id in touched {
                if let Some(s) = memory.series.get_mut(&id) {
                    s.drop_before(cut);
                }
            }
            drop(memory);
            let _ = self.generation.compare_exchange(
                generation - 1,
                generation,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
        drop(conn);
        Ok(pruned)
    }

    /// Every metric the file holds (memory may not know the series another
    /// process created yet), for retention.
    pub fn stored_metrics(&self) -> Result<Vec<String>, ReadingStoreError> {
        let reader = self.reader.lock();
        let mut stmt = reader
            .prepare_cached("SELECT DISTINCT metric FROM series ORDER BY metric")
            .map_err(|source| ReadingStoreError::Sqlite {
                path: self.path.clone(),
                source,
            })?;
        let names = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(|source| ReadingStoreError::Sqlite {
                path: self.path.clone(),
                source,
            })?;
        Ok(names)
    }

    /// Gives up to `pages` freed pages back to the disk (see [`crate::db::reclaim`]),
    /// on the writer's connection: one short write.
    pub fn reclaim(&self, pages: u64) -> Result<u64, ReadingStoreError> {
        crate::db::reclaim(&self.writer.lock(), pages).map_err(|source| ReadingStoreError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::{Batch, Labels};
    use crate::time::{DAY, HOUR};

    fn labels(county: &str) -> Labels {
        [("county".to_string(), county.to_string())].into()
    }

    fn times(store: &Store, metric: &str) -> Vec<Millis> {
        store
            .with_series(metric, &Labels::new(), Millis::MIN, |it| {
                let mut out: Vec<Millis> = it
                    .flat_map(|s| s.range(Millis::MIN, Millis::MAX).0.to_vec())
                    .collect();
                out.sort();
                out
            })
            .unwrap()
    }

    #[test]
    fn old_days_go_in_small_steps_and_memory_follows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path).unwrap();
        let mut b = Batch::new();
        for county in ["南宫", "清河"] {
            for h in 0..(10 * 24) {
                b.push("pm25", labels(county), h * HOUR, 1.0);
            }
        }
        b.push("gdp", Labels::new(), 0, 5.0);
        store.write(&b).unwrap();
        assert_eq!(times(&store, "pm25").len(), 2 * 240, "loaded in memory");
        // Cut in the middle of day 4: days 0..=3 go, day 4 (partly older) stays.
        let before = 4 * DAY + 5 * HOUR;
        let mut steps = Vec::new();
        loop {
            let p = store.prune_step("pm25", before, 3).unwrap();
            if p.blocks == 0 {
                break;
            }
            assert!(p.blocks <= 3);
            steps.push(p);
        }
        assert_eq!(steps.len(), 3, "8 blocks in steps of at most 3");
        assert_eq!(steps.iter().map(|p| p.readings).sum::<u64>(), 8 * 24);
        let left = times(&store, "pm25");
        assert_eq!(left.len(), 2 * 6 * 24);
        assert_eq!(left[0], 4 * DAY, "whole days only: day 4 is kept whole");
        // Other metrics are untouched; the file agrees with memory.
        assert_eq!(times(&store, "gdp"), vec![0]);
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(times(&store, "pm25").len(), 2 * 6 * 24);
        assert_eq!(store.count_readings().unwrap(), 2 * 6 * 24 + 1);
        assert_eq!(
            store.stored_metrics().unwrap(),
            vec!["gdp".to_string(), "pm25".to_string()]
        );
        // New readings still go in, to the same series.
        let mut b = Batch::new();
        b.push("pm25", labels("南宫"), 20 * DAY, 2.0);
        let s = store.write(&b).unwrap();
        assert_eq!(s.new_series, 0);
    }
}
