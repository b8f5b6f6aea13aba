//! What a reading is, and a parsed batch of them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::Arc;

use crate::time::Millis;

/// Label name → value. Sorted, so equal label sets compare and hash equal.
pub type Labels = BTreeMap<String, String>;

/// A map keyed by series keys (or their bytes): ingest looks every series
/// of every chunk up in one, so a fast hash (foldhash) instead of SipHash;
/// seeded per process, as the keys come from senders.
pub(crate) type KeyMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A series: one metric with one set of labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub metric: String,
    pub labels: Labels,
}

/// Writes the bytes a series is known by before any [`SeriesKey`] is built:
/// the metric, then each label's name and value, each followed by 0xFF (a
/// byte UTF-8 never has, so the bytes name one sequence of strings). The
/// labels come sorted by name, without duplicates or empty values, as a
/// [`SeriesKey`] holds them: then equal bytes mean equal keys.
pub(crate) fn raw_series_key<'a>(
    out: &mut Vec<u8>,
    metric: &str,
    labels: impl Iterator<Item = (&'a str, &'a str)>,
) {
    out.clear();
    out.extend_from_slice(metric.as_bytes());
    out.push(0xFF);
    for (name, value) in labels {
        out.extend_from_slice(name.as_bytes());
        out.push(0xFF);
        out.extend_from_slice(value.as_bytes());
        out.push(0xFF);
    }
}

/// One reading of a batch; `series` indexes [`Batch::series`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchPoint {
    pub series: u32,
    pub time: Millis,
    pub value: f64,
}

/// A parsed batch. Series are interned so that a million readings of two
/// thousand series carry two thousand label maps, not a million.
///
/// A key is shared ([`Arc`]): a parser given the series a store knows
/// (the store's `KnownSeries`) hands out the store's copy
/// with its id instead of building a label map per series and request (at
/// 1,000 series per request that was a fifth of an HTTP request's work),
/// and the writer then looks nothing up for them.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub series: Vec<Arc<SeriesKey>>,
    pub points: Vec<BatchPoint>,
    /// For each entry of `series`, its id in the store whose known series
    /// (the one tagged `known_in`) the parser consulted, if it knew it.
    known: Vec<Option<i64>>,
    /// The `KnownSeries::tag` of that store; 0: none.
    known_in: u64,
    /// Positions in `series`, found by key: each key is held once (a map
    /// from key to position held a second copy of every label map, which
    /// was a tenth of an HTTP request's work). Entries added by
    /// [`Batch::push_series`] are indexed when next looked up.
    index: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch whose series ids come from the known series tagged `tag`.
    pub(crate) fn for_known(tag: u64) -> Self {
        Batch {
            known_in: tag,
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The store id of each entry of [`Batch::series`] that the parser
    /// found among the known series tagged `tag` (`None`: look it up by
    /// key). `None` altogether if the batch was not parsed against them.
    pub(crate) fn known_ids(&self, tag: u64) -> Option<&[Option<i64>]> {
        (tag != 0 && self.known_in == tag).then_some(&self.known[..])
    }

    /// The index of `key` in [`Batch::series`], adding it if new.
    pub fn intern(&mut self, key: SeriesKey) -> u32 {
        self.intern_shared(Arc::new(key), None)
    }

    /// [`Batch::intern`] of a shared key, with its store id if known.
    pub(crate) fn intern_shared(&mut self, key: Arc<SeriesKey>, id: Option<i64>) -> u32 {
        self.index_all();
        let Batch {
            series,
            index,
            hasher,
            known,
            ..
        } = self;
        let hash = hasher.hash_one(&*key);
        if let Some(&i) = index.find(hash, |&i| *series[i as usize] == *key) {
            if known[i as usize].is_none() {
                known[i as usize] = id;
            }
            return i;
        }
        let i = series.len() as u32;
        series.push(key);
        known.push(id);
        index.insert_unique(hash, i, |&j| hasher.hash_one(&*series[j as usize]));
        i
    }

    /// Adds a series the caller knows is not in the batch yet (a parser
    /// that found it new by its raw key bytes), with its store id if known:
    /// no lookup. Returns its index.
    pub(crate) fn push_series(&mut self, key: Arc<SeriesKey>, id: Option<i64>) -> u32 {
        self.series.push(key);
        self.known.push(id);
        self.series.len() as u32 - 1
    }

    /// Indexes the entries [`Batch::push_series`] added.
    fn index_all(&mut self) {
        let Batch {
            series,
            index,
            hasher,
            ..
        } = self;
        for i in index.len()..series.len() {
            let hash = hasher.hash_one(&*series[i]);
            index.insert_unique(hash, i as u32, |&j| hasher.hash_one(&*series[j as usize]));
        }
    }

    /// Adds one reading. Validation (metric name, finite value) is the parser's job.
    pub fn push(&mut self, metric: &str, labels: Labels, time: Millis, value: f64) {
        let series = self.intern(SeriesKey {
            metric: metric.to_string(),
            labels,
        });
        self.points.push(BatchPoint {
            series,
            time,
            value,
        });
    }

    /// Appends every reading of `other`.
    pub fn extend(&mut self, other: Batch) {
        if other.known_in != self.known_in {
            // Ids of two stores (not done today): forget both.
            self.known_in = 0;
        }
        let map: Vec<u32> = other
            .series
            .into_iter()
            .zip(other.known)
            .map(|(k, id)| self.intern_shared(k, id))
            .collect();
        self.points
            .extend(other.points.into_iter().map(|p| BatchPoint {
                series: map[p.series as usize],
                ..p
            }));
    }
}

/// Longest metric or label name accepted at ingest, in bytes: names are
/// identifiers (`pm25`, `county`), and a stored name reaches every rule that
/// reads its series.
pub const MAX_NAME_BYTES: usize = 128;
/// Longest label value accepted at ingest, in bytes (about 340 Chinese
/// characters): far above a county or section name, far below the rule
/// sandbox's string limit, so stored data can never stop a rule.
pub const MAX_LABEL_VALUE_BYTES: usize = 1024;
/// Most labels one reading may carry: far below the sandbox's map limit.
pub const MAX_LABELS: usize = 64;

/// `[A-Za-z_][A-Za-z0-9_]*`: metric names, and label names.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The formats readings arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
    Csv,
}

impl Format {
    /// By file extension: `.json`, `.ndjson` / `.jsonl`, `.csv`.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    /// By HTTP `Content-Type` (parameters such as `; charset=utf-8` ignored).
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Format::Json),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
                Some(Format::Ndjson)
            }
            "text/csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

/// Where in the input a bad reading was, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ItemError {
    /// 1-based line in the input (0: not known).
    pub line: usize,
    /// 1-based column in characters (0: not known).
    pub col: usize,
    /// Index of the reading in the batch (JSON array element, NDJSON line
    /// or CSV record), when the error belongs to one reading. 0-based here;
    /// shown and serialized 1-based (`item 1` is the first reading), as
    /// line numbers are.
    #[serde(serialize_with = "one_based")]
    pub item: Option<usize>,
    pub message: String,
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.col) {
            (0, _) => {}
            (l, 0) => write!(f, "{l}: ")?,
            (l, c) => write!(f, "{l}:{c}: ")?,
        }
        if let Some(i) = self.item {
            write!(f, "第{}项：", i + 1)?;
        }
        write!(f, "{}", self.message)
    }
}

fn one_based<S: serde::Serializer>(item: &Option<usize>, s: S) -> Result<S::Ok, S::Error> {
    match item {
        Some(i) => s.serialize_some(&(i + 1)),
        None => s.serialize_none(),
    }
}

/// A rejected batch: every bad item found (up to a cap), nothing stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParseError {
    pub errors: Vec<ItemError>,
    /// How many bad items there were in all (`errors` is capped).
    pub total: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        if self.total > self.errors.len() {
            let more = self.total - self.errors.len();
            write!(f, "\n… 另有 {more} 处错误未列出 / and {more} more")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("pm25"));
        assert!(is_valid_name("_x"));
        assert!(!is_valid_name("2x"));
        assert!(!is_valid_name("pm-25"));
        assert!(!is_valid_name(""));
    }

    #[test]
    fn batch_interns_series() {
        let mut b = Batch::new();
        let l: Labels = [("county".to_string(), "南宫".to_string())].into();
        b.push("pm25", l.clone(), 1, 2.0);
        b.push("pm25", l, 2, 3.0);
        assert_eq!(b.series.len(), 1);
        assert_eq!(b.len(), 2);
    }
}
