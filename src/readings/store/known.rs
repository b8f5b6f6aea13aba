//! The series a store knows, found by the bytes a parser reads them by
//! ([`raw_series_key`]), with their ids and shared keys.
//!
//! Why: an HTTP request of 1,000 readings names 1,000 series, nearly always
//! known ones. Building each one's [`SeriesKey`] (a label map: a handful of
//! allocations) and then finding its id by that key (hashing and comparing
//! label maps) was a third of the request's work. A parser given this table
//! finds a known series by the bytes it has already assembled, takes the
//! store's key (shared) and id, and the writer looks nothing up.
//!
//! Correct because the bytes name exactly one key (see
//! [`raw_series_key`]), a series is never deleted and its id never changes
//! (`series.id` is an `INTEGER PRIMARY KEY`, kept by `VACUUM`), and the
//! table only learns what the store's memory copy learns
//! ([`super::columns::Memory::add_series`]). The parser still checks every
//! name and value as before: the table saves building, not checking.
//! Memory: one entry per series the store holds.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use super::columns::SeriesId;
use crate::readings::model::{raw_series_key, SeriesKey};

/// Tags tell one store's table from another's (0 is no table).
static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

/// See the top of this file.
pub struct KnownSeries {
    tag: u64,
    table: RwLock<Table>,
}

#[derive(Default)]
struct Table {
    /// Positions in `entries`, by the hash of their bytes.
    index: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    entries: Vec<Entry>,
    /// Every entry's bytes, one after the other.
    bytes: Vec<u8>,
}

struct Entry {
    start: usize,
    end: usize,
    id: SeriesId,
    key: Arc<SeriesKey>,
}

impl Table {
    fn raw(&self, e: u32) -> &[u8] {
        let e = &self.entries[e as usize];
        &self.bytes[e.start..e.end]
    }
}

impl Default for KnownSeries {
    fn default() -> Self {
        KnownSeries {
            tag: NEXT_TAG.fetch_add(1, Ordering::Relaxed),
            table: RwLock::new(Table::default()),
        }
    }
}

impl KnownSeries {
    /// Tells this table from any other: a batch records the tag of the
    /// table its ids came from, and a store uses them only if it is its own.
    pub fn tag(&self) -> u64 {
        self.tag
    }

    /// The id and key of the series whose bytes are `raw`, if known.
    pub fn get(&self, raw: &[u8]) -> Option<(SeriesId, Arc<SeriesKey>)> {
        let table = self.table.read();
        let hash = table.hasher.hash_one(raw);
        let &e = table.index.find(hash, |&e| table.raw(e) == raw)?;
        let e = &table.entries[e as usize];
        Some((e.id, e.key.clone()))
    }

    /// How many series it knows.
    pub fn len(&self) -> usize {
        self.table.read().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Learns (or, known already, keeps) the series `key` with id `id`.
    pub(super) fn insert(&self, id: SeriesId, key: &Arc<SeriesKey>) {
        let mut raw = Vec::with_capacity(64);
        raw_series_key(
            &mut raw,
            &key.metric,
            key.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        );
        let mut table = self.table.write();
        let hash = table.hasher.hash_one(raw.as_slice());
        if let Some(&e) = table.index.find(hash, |&e| table.raw(e) == raw) {
            // One key, one series (`UNIQUE (metric, labels)`): the same id.
            table.entries[e as usize].id = id;
            return;
        }
        let start = table.bytes.len();
        table.bytes.extend_from_slice(&raw);
        let e = table.entries.len() as u32;
        table.entries.push(Entry {
            start,
            end: start + raw.len(),
            id,
            key: key.clone(),
        });
        let Table {
            index,
            hasher,
            entries,
            bytes,
        } = &mut *table;
        index.insert_unique(hash, e, |&j| {
            let j = &entries[j as usize];
            hasher.hash_one(&bytes[j.start..j.end])
        });
    }
}
