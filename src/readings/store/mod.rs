//! The readings store: an embedded SQLite file (the durable source of truth)
//! plus an in-memory, columnar copy of the series rules have asked for.
//!
//! Schema (declared in [`crate::db`]): `series` interns (metric, labels) to
//! an id; `blocks` holds each series' readings one UTC day per row, keyed by
//! (series, day) in a WITHOUT ROWID table, the day's (time, value) pairs
//! packed in a BLOB. A series' time range is then one contiguous B-tree scan
//! of few rows, and a bulk load writes one row per series-day instead of one
//! per reading (row-per-reading topped out near 0.6 M readings/s; see the
//! README's benchmarks). Evaluations read the memory copy: a series is loaded
//! the first time a rule asks for it (from the earliest time asked so far)
//! and kept current by every later write, so repeated evaluations never scan
//! SQLite.
//!
//! Files: [`columns`] (the memory copy), [`days`] (its per-day summaries),
//! [`search`] (finding a time in it), [`grouping`] (its series grouped by a
//! label, for `group()`),
//! [`blocks`] (the BLOB layout), [`known`] (series by their raw key bytes,
//! for parsers), [`write`] (transactions), [`staging`]
//! (HTTP ingest's durable staging, folded into blocks later), [`prune`]
//! (retention: old days deleted in small steps); this file opens
//! the store and answers reads.

mod blocks;
pub(super) mod columns;
pub mod days;
mod grouping;
mod known;
mod prune;
mod search;
mod staging;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rusqlite::{params, Connection, OptionalExtension};

pub use columns::{Series, SeriesId};
pub use grouping::{Grouped, SeriesGroup};
pub use known::KnownSeries;
pub use prune::Pruned;
pub use write::{WriteSummary, WriteTx};

use super::model::{Labels, SeriesKey};
use crate::db::{self, DbError, Durability};
use crate::time::Millis;
use blocks::{block_start, decode_block};
use columns::Memory;

#[derive(Debug, thiserror::Error)]
pub enum ReadingStoreError {
    #[error("store `{path}`: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// Opening the file (its folder, its schema): the error names the file.
    #[error(transparent)]
    Open(#[from] DbError),
}

impl ReadingStoreError {
    /// No room to write (a full disk, or the store's size cap): nothing of
    /// the write was stored, and the same write succeeds once there is room.
    pub fn is_disk_full(&self) -> bool {
        match self {
            ReadingStoreError::Sqlite { source, .. }
            | ReadingStoreError::Open(DbError::Sqlite { source, .. }) => db::is_disk_full(source),
            ReadingStoreError::Open(DbError::NoRoomToMigrate { .. }) => true,
            ReadingStoreError::Open(_) => false,
        }
    }
}

pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    memory: RwLock<Memory>,
    /// The `store_meta` generation the memory copy reflects.
    generation: std::sync::atomic::AtomicI64,
    /// The reader's `PRAGMA data_version` when the generation was last
    /// checked: while it stays the same, no connection has committed since,
    /// and the generation need not be read again.
    checked_version: std::sync::atomic::AtomicI64,
}

impl Store {
    /// Opens (creating if missing) the store file and its folder.
    pub fn open(path: &Path) -> Result<Store, ReadingStoreError> {
        let err = |source| ReadingStoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let writer = db::open(path, Durability::Normal)?;
        db::tune_for_bulk_writes(&writer).map_err(err)?;
        let reader = db::open(path, Durability::Normal)?;
        let store = Store {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            memory: RwLock::new(Memory {
                known: Some(Arc::new(KnownSeries::default())),
                ..Memory::default()
            }),
            generation: std::sync::atomic::AtomicI64::new(0),
            checked_version: std::sync::atomic::AtomicI64::new(i64::MIN),
        };
        // Readings staged by HTTP ingest (of a daemon that stopped, or is
        // running): into the blocks, so this memory copy sees them.
        store.fold_staged_or_warn();
        let generation = store.stored_generation().map_err(err)?;
        store.load_series_index().map_err(err)?;
        store.generation.store(generation, Ordering::SeqCst);
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The series this store knows, by their raw key bytes: for parsers,
    /// so that batches name known series by id ([`KnownSeries`]).
    pub fn known_series(&self) -> Arc<KnownSeries> {
        self.memory
            .read()
            .known
            .clone()
            .expect("a store's memory knows its series")
    }

    fn load_series_index(&self) -> rusqlite::Result<()> {
        let reader = self.reader.lock();
        let mut stmt = reader.prepare("SELECT id, metric, labels FROM series")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut memory = self.memory.write();
        for row in rows {
            let (id, metric, labels) = row?;
            if memory.series.contains_key(&id) {
                continue;
            }
            let labels: Labels = serde_json::from_str(&labels).unwrap_or_default();
            memory.add_series(id, SeriesKey { metric, labels }, Millis::MAX);
        }
        Ok(())
    }

    fn stored_generation(&self) -> rusqlite::Result<i64> {
        self.reader
            .lock()
            .prepare_cached("SELECT value FROM store_meta WHERE key = 'generation'")?
            .query_row([], |r| r.get(0))
    }

    /// Changes whenever any other connection (another process, or this
    /// store's writer) commits; cheaper than reading the generation.
    fn data_version(&self) -> rusqlite::Result<i64> {
        self.reader
            .lock()
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))
    }

    /// Another process wrote readings since our memory copy was made: forget
    /// what memory holds (it is reloaded on demand) and learn new series.
    fn follow_other_writers(&self) -> Result<(), ReadingStoreError> {
        let err = |source| ReadingStoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        // Read before the generation: a commit after this read changes the
        // version again, so the next call checks again.
        let version = self.data_version().map_err(err)?;
        if version == self.checked_version.load(Ordering::SeqCst) {
            return Ok(());
        }
        let stored = self.stored_generation().map_err(err)?;
        if stored == self.generation.load(Ordering::SeqCst) {
            self.checked_version.store(version, Ordering::SeqCst);
            return Ok(());
        }
        // What that process staged goes into the blocks we reload from.
        self.fold_staged_or_warn();
        // Hold the writer so our own commits cannot interleave with the reset.
        let _writer = self.writer.lock();
        let stored = self.stored_generation().map_err(err)?;
        if stored == self.generation.load(Ordering::SeqCst) {
            // Our own commit, whose memory update we were waiting for.
            self.checked_version.store(version, Ordering::SeqCst);
            return Ok(());
        }
        {
            let mut memory = self.memory.write();
            for s in memory.series.values_mut() {
                s.unload();
            }
        }
        self.load_series_index().map_err(err)?;
        self.generation.store(stored, Ordering::SeqCst);
        self.checked_version.store(version, Ordering::SeqCst);
        tracing::debug!(store = %self.path.display(), "readings written by another process: memory copy reset");
        Ok(())
    }

    /// Runs `f` over the series of `metric` matching `filter`, each loaded
    /// into memory from at least `from` on.
    pub fn with_series<R>(
        &self,
        metric: &str,
        filter: &Labels,
        from: Millis,
        f: impl FnOnce(&mut dyn Iterator<Item = &Series>) -> R,
    ) -> Result<R, ReadingStoreError> {
        self.follow_other_writers()?;
        loop {
            {
                let memory = self.memory.read();
                let matching = || memory.matching(metric, filter);
                // Usually all there (one walk to check, one to answer). A
                // write that reset a series (a file ingest) may also have
                // come in since the load below: then load again rather than
                // answer from half the data.
                if matching().all(|s| s.loaded_from <= from) {
                    return Ok(f(&mut matching()));
                }
            }
            self.ensure_loaded(metric, filter, from)?;
        }
    }

    /// Runs `f` over the series of `metric` matching `filter` grouped by
    /// label `by` (those without it left out), each loaded into memory from
    /// at least `from` on.
    pub fn with_groups<R>(
        &self,
        metric: &str,
        filter: &Labels,
        by: &str,
        from: Millis,
        f: impl FnOnce(&Grouped) -> R,
    ) -> Result<R, ReadingStoreError> {
        self.follow_other_writers()?;
        loop {
            {
                let memory = self.memory.read();
                let grouped = memory.grouped(metric, filter, by);
                // As in `with_series`: load (again) if any lacks part of the window.
                if grouped.all_series().all(|s| s.loaded_from <= from) {
                    return Ok(f(&grouped));
                }
            }
            self.ensure_loaded(metric, filter, from)?;
        }
    }

    /// Loads from SQLite whatever part of the matching series before their
    /// `loaded_from` and at or after `from` is not yet in memory.
    fn ensure_loaded(
        &self,
        metric: &str,
        filter: &Labels,
        from: Millis,
    ) -> Result<(), ReadingStoreError> {
        let missing: Vec<(SeriesId, Millis)> = {
            let memory = self.memory.read();
            memory
                .matching(metric, filter)
                .filter(|s| s.loaded_from > from)
                .map(|s| (s.id, s.loaded_from))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let err = |source| ReadingStoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let reader = self.reader.lock();
        let mut stmt = reader
            .prepare_cached(
                "SELECT data FROM blocks WHERE series_id = ?1 AND start >= ?2 AND start < ?3 ORDER BY start",
            )
            .map_err(err)?;
        let mut loaded = Vec::with_capacity(missing.len());
        for (id, until) in missing {
            let mut times = Vec::new();
            let mut values = Vec::new();
            let mut rows = stmt
                .query(params![id, block_start(from), until])
                .map_err(err)?;
            while let Some(row) = rows.next().map_err(err)? {
                let data = row
                    .get_ref(0)
                    .map_err(err)?
                    .as_blob()
                    .map_err(|e| err(e.into()))?;
                for (t, v) in decode_block(data) {
                    if t >= from && t < until {
                        times.push(t);
                        values.push(v);
                    }
                }
            }
            loaded.push((id, until, times, values));
        }
        drop(stmt);
        drop(reader);
        let mut memory = self.memory.write();
        for (id, until, times, values) in loaded {
            let Some(s) = memory.series.get_mut(&id) else {
                continue;
            };
            // Another caller may have loaded part of the range meanwhile
            // (memory then starts between `from` and `until`): keep only what
            // memory lacks. If memory was reset instead (it starts after
            // `until`), our piece would leave a gap: the caller loads again.
            if s.loaded_from > until || s.loaded_from <= from {
                continue;
            }
            s.prepend(times, values, from);
        }
        Ok(())
    }

    /// Every metric name stored, sorted.
    pub fn metrics(&self) -> Vec<String> {
        let mut names: Vec<String> = self.memory.read().by_metric.keys().cloned().collect();
        names.sort();
        names
    }

    /// How many readings the file holds (staged ones folded first).
    pub fn count_readings(&self) -> Result<u64, ReadingStoreError> {
        self.fold_all_staged()?;
        let reader = self.reader.lock();
        reader
            .query_row("SELECT coalesce(sum(count), 0) FROM blocks", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|source| ReadingStoreError::Sqlite {
                path: self.path.clone(),
                source,
            })
    }

    /// The latest reading time of a metric (any series), for status pages.
    pub fn last_time(&self, metric: &str) -> Result<Option<Millis>, ReadingStoreError> {
        let err = |source| ReadingStoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let reader = self.reader.lock();
        let mut stmt = reader
            .prepare_cached(
                "SELECT b.data FROM blocks b JOIN series s ON s.id = b.series_id
                 WHERE s.metric = ?1 ORDER BY b.start DESC LIMIT 1",
            )
            .map_err(err)?;
        let last = stmt
            .query_row([metric], |r| r.get::<_, Vec<u8>>(0))
            .optional()
            .map_err(err)?;
        Ok(last.and_then(|data| decode_block(&data).map(|(t, _)| t).last()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readings::Batch;

    fn labels(county: &str) -> Labels {
        [("county".to_string(), county.to_string())].into()
    }

    fn batch(points: &[(&str, &str, Millis, f64)]) -> Batch {
        let mut b = Batch::new();
        for &(metric, county, t, v) in points {
            b.push(metric, labels(county), t, v);
        }
        b
    }

    fn values(
        store: &Store,
        metric: &str,
        county: &str,
        from: Millis,
        to: Millis,
    ) -> Vec<(Millis, f64)> {
        store
            .with_series(metric, &labels(county), from, |it| {
                it.flat_map(|s| {
                    let (t, v) = s.range(from, to);
                    t.iter().copied().zip(v.iter().copied()).collect::<Vec<_>>()
                })
                .collect()
            })
            .unwrap()
    }

    #[test]
    fn write_read_and_upsert() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a/b.db")).unwrap();
        store
            .write(&batch(&[
                ("pm25", "南宫", 10, 1.0),
                ("pm25", "南宫", 5, 0.5),
                ("pm25", "清河", 5, 9.0),
            ]))
            .unwrap();
        store.write(&batch(&[("pm25", "南宫", 10, 2.0)])).unwrap();
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 100),
            vec![(5, 0.5), (10, 2.0)]
        );
        assert_eq!(store.count_readings().unwrap(), 3);
        drop(store);
        // Reopened: read back from SQLite, lazily.
        let store = Store::open(&dir.path().join("a/b.db")).unwrap();
        assert_eq!(values(&store, "pm25", "南宫", 6, 100), vec![(10, 2.0)]);
        assert_eq!(values(&store, "pm25", "南宫", Millis::MIN, 100).len(), 2);
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 100),
            vec![(5, 0.5), (10, 2.0)]
        );
        store.write(&batch(&[("pm25", "南宫", 7, 3.0)])).unwrap();
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 100),
            vec![(5, 0.5), (7, 3.0), (10, 2.0)]
        );
        assert_eq!(store.metrics(), vec!["pm25".to_string()]);
    }

    fn effects(s: &WriteSummary) -> (usize, usize, usize, usize) {
        (s.readings, s.new, s.unchanged, s.changed)
    }

    #[test]
    fn writes_count_new_unchanged_and_changed_readings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path).unwrap();
        let day = crate::time::DAY;
        let first = batch(&[
            ("pm25", "南宫", 10, 1.0),
            ("pm25", "南宫", day + 10, 2.0),
            ("pm25", "清河", 10, 3.0),
        ]);
        assert_eq!(effects(&store.write(&first).unwrap()), (3, 3, 0, 0));
        // The same file again: nothing new, nothing rewritten.
        let writes = |store: &Store| -> i64 {
            store
                .writer
                .lock()
                .query_row("SELECT total_changes()", [], |r| r.get(0))
                .unwrap()
        };
        let before = writes(&store);
        assert_eq!(effects(&store.write(&first).unwrap()), (3, 0, 3, 0));
        assert_eq!(writes(&store) - before, 1, "only the generation is bumped");
        // A correction, a repeat and a new reading; the correction is kept.
        let second = batch(&[
            ("pm25", "南宫", 10, 1.5),
            ("pm25", "南宫", day + 10, 2.0),
            ("pm25", "南宫", 20, 4.0),
        ]);
        assert_eq!(effects(&store.write(&second).unwrap()), (3, 1, 1, 1));
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 100),
            vec![(10, 1.5), (20, 4.0)]
        );
        // A transaction over several chunks (a large file) counts the same.
        let mut tx = store.begin().unwrap();
        tx.add(&batch(&[
            ("pm25", "南宫", 10, 1.5),
            ("pm25", "清河", 30, 5.0),
        ]))
        .unwrap();
        tx.add(&batch(&[("pm25", "清河", 10, 3.5)])).unwrap();
        assert_eq!(effects(&tx.commit().unwrap()), (3, 1, 1, 1));
        // A group commit counts each request on its own.
        let a = batch(&[("pm25", "南宫", 10, 1.5), ("pm10", "南宫", 10, 1.0)]);
        let b = batch(&[("pm25", "清河", 10, 9.0)]);
        let s = store.write_many(&[&a, &b], false).unwrap();
        let got: Vec<_> = s.iter().map(effects).collect();
        assert_eq!(got, [(2, 1, 1, 0), (1, 0, 0, 1)]);
        let s = store.write_many(&[&a], false).unwrap();
        assert_eq!(effects(&s[0]), (2, 0, 2, 0));
    }

    #[test]
    fn write_many_is_one_transaction_and_keeps_memory_current() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let a = batch(&[("pm25", "南宫", 10, 1.0), ("pm25", "清河", 10, 2.0)]);
        let b = batch(&[("pm25", "南宫", 20, 3.0), ("pm10", "南宫", 20, 4.0)]);
        let s = store.write_many(&[&a, &b], true).unwrap();
        let counts: Vec<_> = s.iter().map(|s| (s.readings, s.new_series)).collect();
        assert_eq!(counts, [(2, 2), (2, 1)]);
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 100),
            vec![(10, 1.0), (20, 3.0)]
        );
        assert_eq!(store.count_readings().unwrap(), 4);
        // A failure anywhere stores none of it.
        let late = 40 * crate::time::DAY;
        store
            .writer
            .lock()
            .execute_batch(&format!("CREATE TRIGGER no_late BEFORE INSERT ON blocks WHEN NEW.start >= {late} BEGIN SELECT RAISE(ABORT, 'too late'); END;"))
            .unwrap();
        let c = batch(&[("pm25", "南宫", 30, 5.0)]);
        let d = batch(&[("so2", "南宫", late, 500.0)]);
        assert!(store.write_many(&[&c, &d], true).is_err());
        assert_eq!(store.count_readings().unwrap(), 4);
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 100),
            vec![(10, 1.0), (20, 3.0)]
        );
        assert_eq!(
            store.metrics(),
            vec!["pm10".to_string(), "pm25".to_string()]
        );
        // Equal (series, time) in two batches: the later one wins.
        let e = batch(&[("pm25", "南宫", 20, 7.0)]);
        let f = batch(&[("pm25", "南宫", 20, 8.0)]);
        store.write_many(&[&e, &f], false).unwrap();
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 100),
            vec![(10, 1.0), (20, 8.0)]
        );
        // The connection is back to its usual setting.
        let sync: i64 = store
            .writer
            .lock()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
    }

    #[test]
    fn concurrent_writers_creating_the_same_series() {
        // Each round, four threads write to the same brand-new series: one
        // creates it, the others must find it (not create it again).
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        for round in 0..30 {
            let county = format!("c{round}");
            std::thread::scope(|scope| {
                for t in 0..4 {
                    let (store, county) = (&store, county.clone());
                    scope.spawn(move || {
                        store.write(&batch(&[("pm25", &county, t, 1.0)])).unwrap();
                    });
                }
            });
        }
        assert_eq!(store.count_readings().unwrap(), 120);
    }

    #[test]
    fn follows_readings_written_by_another_process() {
        // Two stores on one file stand for the daemon and `rulewatch ingest`.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let daemon = Store::open(&path).unwrap();
        let cli = Store::open(&path).unwrap();
        daemon.write(&batch(&[("pm25", "南宫", 1, 1.0)])).unwrap();
        assert_eq!(values(&daemon, "pm25", "南宫", 0, 100), vec![(1, 1.0)]);
        cli.write(&batch(&[
            ("pm25", "南宫", 2, 2.0),
            ("pm25", "清河", 2, 5.0),
        ]))
        .unwrap();
        // The daemon sees the new reading and the new series…
        assert_eq!(
            values(&daemon, "pm25", "南宫", 0, 100),
            vec![(1, 1.0), (2, 2.0)]
        );
        assert_eq!(values(&daemon, "pm25", "清河", 0, 100), vec![(2, 5.0)]);
        // …and can write to a series the other process created.
        let mut tx = daemon.begin().unwrap();
        tx.add(&batch(&[("pm10", "巨鹿", 3, 3.0)])).unwrap();
        tx.commit().unwrap();
        cli.write(&batch(&[("pm10", "巨鹿", 4, 4.0)])).unwrap();
        daemon.write(&batch(&[("pm10", "巨鹿", 5, 5.0)])).unwrap();
        assert_eq!(
            values(&daemon, "pm10", "巨鹿", 0, 100),
            vec![(3, 3.0), (4, 4.0), (5, 5.0)]
        );
        assert_eq!(
            values(&cli, "pm10", "巨鹿", 0, 100),
            vec![(3, 3.0), (4, 4.0), (5, 5.0)]
        );
    }

    #[test]
    fn sees_every_commit_of_another_process_between_reads() {
        // The daemon checks the stored generation only when SQLite's
        // data_version says some connection committed: each of these
        // writes by another process, however small and however soon after
        // a read, must show up at the next read.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let daemon = Store::open(&path).unwrap();
        let cli = Store::open(&path).unwrap();
        daemon.write(&batch(&[("pm25", "南宫", 1, 1.0)])).unwrap();
        let loaded_from = |store: &Store| {
            let memory = store.memory.read();
            let from = memory
                .matching("pm25", &labels("南宫"))
                .next()
                .unwrap()
                .loaded_from;
            from
        };
        for round in 0..5i64 {
            assert_eq!(
                values(&daemon, "pm25", "南宫", 0, 100).len(),
                round as usize + 1
            );
            // A file ingest (one transaction that resets what it touched)…
            let mut tx = cli.begin().unwrap();
            tx.add(&batch(&[("pm25", "南宫", 1, 10.0 + round as f64)]))
                .unwrap();
            tx.commit().unwrap();
            assert_eq!(
                values(&daemon, "pm25", "南宫", 0, 100)[0],
                (1, 10.0 + round as f64)
            );
            // …then a small write.
            cli.write(&batch(&[("pm25", "南宫", 2 + round, 2.0)]))
                .unwrap();
        }
        // The daemon's own writes keep its memory copy: no reset, no reload.
        assert_eq!(values(&daemon, "pm25", "南宫", 0, 100).len(), 6);
        assert_eq!(loaded_from(&daemon), 0);
        daemon.write(&batch(&[("pm25", "南宫", 50, 5.0)])).unwrap();
        assert_eq!(values(&daemon, "pm25", "南宫", 0, 100).len(), 7);
        assert_eq!(loaded_from(&daemon), 0, "kept, not reloaded");
        // And a commit by the other process right after still shows.
        cli.write(&batch(&[("pm25", "南宫", 60, 6.0)])).unwrap();
        assert_eq!(values(&daemon, "pm25", "南宫", 0, 100).len(), 8);
    }

    #[test]
    fn concurrent_readers_of_different_windows_see_every_reading() {
        // One rule asks for 30 days while another asks for 1: whichever
        // loads first, both must see all their readings.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let store = Store::open(&path).unwrap();
            let mut b = Batch::new();
            for county in 0..200 {
                for h in 0..(30 * 24) {
                    b.push(
                        "pm25",
                        labels(&format!("c{county}")),
                        h * crate::time::HOUR,
                        1.0,
                    );
                }
            }
            store.write(&b).unwrap();
        }
        let end = 30 * 24 * crate::time::HOUR;
        let count = |store: &Store, from: Millis| {
            store
                .with_series("pm25", &Labels::new(), from, |it| {
                    it.map(|s| s.range(from, end).0.len()).sum::<usize>()
                })
                .unwrap()
        };
        for _ in 0..10 {
            let store = Store::open(&path).unwrap();
            let (long, short) = std::thread::scope(|scope| {
                let long = scope.spawn(|| count(&store, 0));
                let short = scope.spawn(|| count(&store, end - crate::time::DAY));
                (long.join().unwrap(), short.join().unwrap())
            });
            assert_eq!(long, 200 * 30 * 24);
            assert_eq!(short, 200 * 24);
        }
    }

    #[test]
    fn readings_across_days_and_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let day = crate::time::DAY;
        let mut tx = store.begin().unwrap();
        tx.add(&batch(&[
            ("pm25", "南宫", day - 1, 1.0),
            ("pm25", "南宫", day, 2.0),
        ]))
        .unwrap();
        tx.add(&batch(&[
            ("pm25", "南宫", day + 5, 3.0),
            ("pm25", "南宫", day, 2.5),
        ]))
        .unwrap();
        tx.commit().unwrap();
        assert_eq!(store.count_readings().unwrap(), 3);
        assert_eq!(
            values(&store, "pm25", "南宫", 0, 10 * day),
            vec![(day - 1, 1.0), (day, 2.5), (day + 5, 3.0)]
        );
        assert_eq!(store.last_time("pm25").unwrap(), Some(day + 5));
        // A dropped transaction stores nothing.
        let mut tx = store.begin().unwrap();
        tx.add(&batch(&[("pm25", "南宫", 3 * day, 9.0)])).unwrap();
        drop(tx);
        assert_eq!(store.count_readings().unwrap(), 3);
    }

    #[test]
    fn a_failed_write_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path).unwrap();
        // Make the readings insert fail part-way through by a trigger.
        store
            .writer
            .lock()
            .execute_batch("CREATE TRIGGER no_big BEFORE INSERT ON blocks WHEN NEW.count > 1 BEGIN SELECT RAISE(ABORT, 'too big'); END;")
            .unwrap();
        let err = store.write(&batch(&[
            ("pm25", "南宫", 1, 1.0),
            ("pm25", "新", 2, 500.0),
            ("pm25", "新", 3, 500.0),
        ]));
        assert!(err.is_err());
        assert_eq!(store.count_readings().unwrap(), 0);
        assert!(
            store
                .with_series("pm25", &Labels::new(), 0, |it| it.count())
                .unwrap()
                == 0
        );
    }
    /// (series metric, labels, start, count, data) of every stored block.
    fn stored_blocks(path: &Path) -> Vec<(String, String, i64, i64, Vec<u8>)> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT s.metric, s.labels, b.start, b.count, b.data FROM blocks b \
                 JOIN series s ON s.id = b.series_id ORDER BY 1, 2, 3",
            )
            .unwrap();
        stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// Counts every block row written (each `INSERT OR REPLACE` inserts).
    fn count_block_writes(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "CREATE TABLE block_writes (n INTEGER);
             CREATE TRIGGER count_block_writes AFTER INSERT ON blocks
             BEGIN INSERT INTO block_writes VALUES (1); END;",
        )
        .unwrap();
    }

    fn block_writes(path: &Path) -> i64 {
        let conn = Connection::open(path).unwrap();
        conn.query_row("SELECT count(*) FROM block_writes", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_file_in_time_ordered_chunks_writes_each_block_once() {
        // Every series each hour, in chunks of a few hours: each chunk
        // touches every series' day block. Some readings repeat (the later
        // one wins) and one day already holds a stored reading.
        let dir = tempfile::tempdir().unwrap();
        let hour = crate::time::HOUR;
        let counties: Vec<String> = (0..30).map(|c| format!("c{c}")).collect();
        let reading = |c: usize, h: i64| (c as f64) * 1000.0 + h as f64;
        let chunks: Vec<Batch> = (0..(3 * 24 / 5 + 1))
            .map(|k| {
                let mut b = Batch::new();
                for h in (k * 5)..((k * 5 + 6).min(3 * 24)) {
                    for (c, county) in counties.iter().enumerate() {
                        // Hour k*5+5 appears in two chunks; the second wins.
                        b.push("pm25", labels(county), h * hour, reading(c, h) + k as f64);
                    }
                }
                b
            })
            .collect();
        let before = |store: &Store| {
            store
                .write(&batch(&[("pm25", "c3", 30 * hour + 30, -1.0)]))
                .unwrap();
        };
        // The expected blocks: the same readings in one sorted batch.
        let sorted_path = dir.path().join("sorted.db");
        {
            let store = Store::open(&sorted_path).unwrap();
            before(&store);
            let mut all: Vec<(usize, i64, f64)> = Vec::new();
            for (k, b) in chunks.iter().enumerate() {
                for p in &b.points {
                    let c: usize = b.series[p.series as usize].labels["county"][1..]
                        .parse()
                        .unwrap();
                    all.push((c, p.time, reading(c, p.time / hour) + k as f64));
                }
            }
            // Stable: for equal (series, time) the later chunk stays last.
            all.sort_by_key(|&(c, t, _)| (c, t));
            let mut b = Batch::new();
            for (c, t, v) in all {
                b.push("pm25", labels(&counties[c]), t, v);
            }
            store.write(&b).unwrap();
        }
        let expected = stored_blocks(&sorted_path);
        assert_eq!(expected.len(), 30 * 3);
        // Chunked, with the default cap: each block written once.
        let chunked_path = dir.path().join("chunked.db");
        {
            let store = Store::open(&chunked_path).unwrap();
            before(&store);
            count_block_writes(&chunked_path);
            let mut tx = store.begin().unwrap();
            for b in &chunks {
                tx.add(b).unwrap();
            }
            tx.commit().unwrap();
            assert_eq!(block_writes(&chunked_path), 30 * 3);
            // The memory copy has the stored reading and the file's.
            assert!(
                values(&store, "pm25", "c3", 0, 3 * 24 * hour).contains(&(30 * hour + 30, -1.0))
            );
            assert_eq!(
                values(&store, "pm25", "c3", 0, 3 * 24 * hour).len(),
                3 * 24 + 1
            );
        }
        assert_eq!(stored_blocks(&chunked_path), expected);
        // Chunked, with a cap small enough to write blocks before the
        // commit (and some twice): the same blocks in the end.
        let capped_path = dir.path().join("capped.db");
        {
            let store = Store::open(&capped_path).unwrap();
            before(&store);
            let mut tx = store.begin().unwrap();
            tx.set_open_blocks_cap(4096);
            for b in &chunks {
                tx.add(b).unwrap();
            }
            tx.commit().unwrap();
        }
        assert_eq!(stored_blocks(&capped_path), expected);
    }
}
