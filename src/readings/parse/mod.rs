//! Parsers for readings: JSON (one object or an array of them), NDJSON and CSV.
//!
//! A batch is all or nothing: every bad item is found and reported (the first
//! [`MAX_ERRORS`] with where and what, the rest counted), and a batch with any
//! bad item is never returned, not even in part.
//!
//! Beyond the contract: an empty label value means the label is absent, as an
//! empty CSV cell does, so a reading has one identity in every format; a UTF-8
//! byte-order mark is skipped; CSV header names and `metric`, `time` and
//! `value` cells are trimmed, label values are kept as they are.
//!
//! Speed matters (ingest, SQLite write included, must beat a million readings a
//! second), so:
//! - a reading of the usual plain shape (flat, no escapes) is read by a small
//!   hand-written scanner; anything else by serde visitors that borrow strings
//!   from the input and never stop at the first problem of an item;
//! - a series is looked up by its raw metric + labels bytes before any
//!   [`SeriesKey`] is built, so names are validated and label maps allocated
//!   once per series, not once per reading;
//! - the last few time strings are cached (hourly data repeats each one across
//!   thousands of series);
//! - big inputs are cut at item boundaries and the pieces parsed on several
//!   threads, then merged in order with line and item numbers kept right.
//!
//! Files: this one drives (cuts, threads, merges, interns series);
//! [`errors`] words problems; [`json`], [`ndjson`] and [`csv`] read each format.

mod csv;
mod errors;
mod json;
mod ndjson;
mod repeats;
#[cfg(test)]
mod tests;

use std::hash::BuildHasher;

use chrono_tz::Tz;

use super::model::{raw_series_key, Batch, Format, ItemError, ParseError, SeriesKey};
use super::store::KnownSeries;
use crate::time::{parse_time, Millis};

use self::csv::{csv_cut, parse_csv, record_end, Quoting};
use self::errors::{label_value_problems, name_problems, no_readings, utf8_errors, Problem};
use self::json::parse_json;
use self::ndjson::parse_ndjson;

pub use self::errors::NO_READINGS;
pub use self::repeats::Before;

/// Bad items listed with their place; the rest are only counted (a file of a
/// million bad lines should not answer with a million lines).
pub const MAX_ERRORS: usize = 100;

/// Inputs smaller than this are parsed on one thread: starting threads would
/// cost more than it saves.
const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// At most this many parser threads: ingest shares the machine with rule
/// evaluation and the HTTP server.
const MAX_THREADS: usize = 4;

/// How many distinct time strings are remembered: data usually arrives time
/// by time, so one suffices; a few cover interleaved metrics.
const TIME_CACHE: usize = 4;

/// Parses a whole input. All or nothing: any bad reading rejects the batch and
/// the error lists every bad item with its line (and column) or index.
/// The same series and time twice with one value is kept once; with two
/// values it is an error naming both places.
pub fn parse(input: &[u8], format: Format, tz: Tz) -> Result<Batch, ParseError> {
    parse_at(input, format, tz, Before::default()).map(|(batch, _)| batch)
}

/// [`parse`], naming each series `known` holds by its store id and the
/// store's shared key instead of building the key ([`KnownSeries`]): the
/// same readings, series and errors, found faster. Names and values are
/// checked as [`parse`] checks them.
pub fn parse_known(
    input: &[u8],
    format: Format,
    tz: Tz,
    known: &KnownSeries,
) -> Result<Batch, ParseError> {
    parse_at_with(input, format, tz, Before::default(), Some(known)).map(|(batch, _)| batch)
}

/// [`parse`] of a piece of a larger input that has `before` lines and
/// readings before it: every line and item number named is the input's.
/// Also returns how many readings the piece held (repeats included).
pub fn parse_at(
    input: &[u8],
    format: Format,
    tz: Tz,
    before: Before,
) -> Result<(Batch, usize), ParseError> {
    parse_at_with(input, format, tz, before, None)
}

/// [`parse_at`], with the series a store knows if given.
fn parse_at_with(
    input: &[u8],
    format: Format,
    tz: Tz,
    before: Before,
    known: Option<&KnownSeries>,
) -> Result<(Batch, usize), ParseError> {
    let shift = |mut e: ParseError| {
        for item in &mut e.errors {
            if item.line > 0 {
                item.line += before.lines;
            }
            if let Some(i) = item.item.as_mut() {
                *i += before.items;
            }
        }
        e
    };
    let batch = parse_on(input, format, tz, None, known).map_err(shift)?;
    // Valid UTF-8: the batch was parsed from it.
    let text = std::str::from_utf8(input).unwrap_or_default();
    let items = batch.len();
    Ok((repeats::check(batch, text, format, before)?, items))
}

/// [`parse`] cut into `threads` pieces however small the input, for the fuzz
/// targets (`fuzz/`): cutting must never change what is read. Not API.
#[doc(hidden)]
pub fn parse_with_threads(
    input: &[u8],
    format: Format,
    tz: Tz,
    threads: usize,
) -> Result<Batch, ParseError> {
    parse_on(input, format, tz, Some(threads), None)
}

/// [`parse`] on `threads` threads (`None`: as many as the input is worth).
fn parse_on(
    input: &[u8],
    format: Format,
    tz: Tz,
    threads: Option<usize>,
    known: Option<&KnownSeries>,
) -> Result<Batch, ParseError> {
    let text = std::str::from_utf8(input).map_err(|_| utf8_errors(input))?;
    // A byte-order mark (spreadsheets write one) is not part of the data.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(no_readings());
    }
    let (chunks, line_base) = match format {
        Format::Json => (parse_json(text, tz, threads, known)?, 0),
        Format::Ndjson => (parse_ndjson(text, tz, threads, known), 0),
        Format::Csv => parse_csv(text, tz, threads, known)?,
    };
    merge(chunks, line_base)
}

// ---------------------------------------------------------------------------
// Results of one piece of the input, and merging them.

/// What parsing one piece of the input gave. Lines and items of errors are
/// relative to the piece; [`merge`] makes them absolute.
#[derive(Default)]
struct Chunk {
    batch: Batch,
    errors: Vec<ItemError>,
    /// Bad items in all (`errors` is capped).
    bad: usize,
    /// Line breaks in the piece: the next piece's line numbers start after them.
    lines: usize,
    /// Items (good or bad) in the piece: the next piece's item indices start after them.
    items: usize,
    /// A JSON array element that is not JSON at all: the document is malformed.
    malformed: bool,
}

impl Chunk {
    /// Counts a bad item, and lists it (building the error only if listed).
    fn fail(&mut self, error: impl FnOnce() -> ItemError) {
        self.bad += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(error());
        }
    }
}

/// Puts the pieces together in order; `line_base` is the number of lines
/// before the first piece (a CSV header).
fn merge(chunks: Vec<Chunk>, line_base: usize) -> Result<Batch, ParseError> {
    let mut errors = Vec::new();
    let mut total = 0;
    let (mut line_base, mut item_base) = (line_base, 0);
    let mut batch: Option<Batch> = None;
    let points: usize = chunks.iter().map(|c| c.batch.len()).sum();
    for chunk in chunks {
        total += chunk.bad;
        for mut e in chunk.errors {
            if errors.len() == MAX_ERRORS {
                break;
            }
            if e.line > 0 {
                e.line += line_base;
            }
            if let Some(item) = &mut e.item {
                *item += item_base;
            }
            errors.push(e);
        }
        line_base += chunk.lines;
        item_base += chunk.items;
        if total == 0 {
            match &mut batch {
                None => {
                    let mut first = chunk.batch;
                    first.points.reserve(points - first.points.len());
                    batch = Some(first);
                }
                Some(b) => b.extend(chunk.batch),
            }
        }
    }
    if total > 0 {
        return Err(ParseError { errors, total });
    }
    match batch {
        Some(b) if !b.is_empty() => Ok(b),
        _ => Err(no_readings()),
    }
}

/// Runs `f` on every part, the first on this thread and the rest on their own.
fn run_parallel<T: Sync>(parts: &[T], f: impl Fn(&T) -> Chunk + Sync) -> Vec<Chunk> {
    let Some((first, rest)) = parts.split_first() else {
        return Vec::new();
    };
    if rest.is_empty() {
        return vec![f(first)];
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = rest.iter().map(|p| s.spawn(move || f(p))).collect();
        let mut out = vec![f(first)];
        for h in handles {
            out.push(
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        out
    })
}

/// How many threads an input of `len` bytes is worth (or as `forced`).
fn threads_for(len: usize, forced: Option<usize>) -> usize {
    if let Some(n) = forced {
        return n.max(1);
    }
    if len < PARALLEL_MIN_BYTES {
        return 1;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores
        .min(MAX_THREADS)
        .min(len / (PARALLEL_MIN_BYTES / 2))
        .max(1)
}

/// Cuts `text` into about `n` pieces, each but the last ending just after a
/// line break that ends a record (for CSV: one outside quotes).
fn split_records(text: &str, n: usize, csv: bool) -> Vec<&str> {
    let b = text.as_bytes();
    let mut pieces = Vec::with_capacity(n);
    let mut start = 0;
    for k in 1..n {
        let target = (b.len() / n * k).max(start);
        let cut = if csv {
            csv_cut(b, start, target)
        } else {
            memchr_newline(b, target).map(|i| i + 1)
        };
        match cut {
            Some(cut) if cut < b.len() => {
                pieces.push(&text[start..cut]);
                start = cut;
            }
            _ => break,
        }
    }
    pieces.push(&text[start..]);
    pieces
}

/// For cutting a CSV stream into chunks ([`super::stream`]): the index of
/// the last LF in `b` outside quotes, `b` starting at a record.
pub(crate) fn csv_last_newline(b: &[u8]) -> Option<usize> {
    // No quote at all (the usual file): every LF is outside quotes, and a
    // SIMD search from the end finds the last one without a per-byte walk.
    if memchr::memchr(b'"', b).is_none() {
        return memchr::memrchr(b'\n', b);
    }
    let mut q = Quoting::Start;
    let mut last = None;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' && q != Quoting::Quoted {
            last = Some(i);
        }
        q = q.step(c);
    }
    last
}

/// Just past the CSV header of `b` (blank lines before it included), where
/// the parser ends it: at LF, CRLF or a lone CR outside quotes.
pub(crate) fn csv_header_end(b: &[u8]) -> usize {
    let at = b.iter().position(|&c| c != b'\n' && c != b'\r');
    record_end(b, at.unwrap_or(b.len()))
}

fn memchr_newline(b: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(b'\n', &b[from..]).map(|i| from + i)
}

pub(crate) fn count_newlines(b: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', b).count()
}

// ---------------------------------------------------------------------------
// Sink: turns checked fields into points, interning series.

/// Builds one piece's batch.
struct Sink<'k> {
    batch: Batch,
    /// The series the store knows: a series found there is taken with its
    /// id and the store's key, not built again.
    known: Option<&'k KnownSeries>,
    /// Indexes in `seen`, found by their raw metric + labels bytes (each
    /// part followed by 0xFF, a byte UTF-8 never has): the bytes stay in
    /// `raw`, not copied into a map of their own.
    series: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Every raw key met, in the order first met: (start, end) in `raw`
    /// and the index in `batch.series`.
    seen: Vec<(usize, usize, u32)>,
    raw: Vec<u8>,
    /// The entry of `seen` the last reading had. Time-ordered data repeats
    /// the series in one order at every time, so the next reading's series
    /// is most often the next entry: checking it first reads `raw` in
    /// order, where a hash lookup of each reading's key went to a random
    /// place (at 10,000 series, cache misses in key compares were a fifth
    /// of file ingest).
    last: usize,
    key: Vec<u8>,
    times: TimeCache,
    tz: Tz,
}

impl<'k> Sink<'k> {
    fn new(tz: Tz, known: Option<&'k KnownSeries>) -> Self {
        Sink {
            batch: known.map_or_else(Batch::new, |k| Batch::for_known(k.tag())),
            known,
            series: hashbrown::HashTable::new(),
            hasher: Default::default(),
            seen: Vec::new(),
            raw: Vec::new(),
            last: usize::MAX,
            key: Vec::with_capacity(64),
            times: TimeCache::default(),
            tz,
        }
    }

    /// The series of `metric` with `labels` (sorted by name, no duplicates,
    /// no empty values), validating names the first time it is seen.
    fn series<'a>(
        &mut self,
        metric: &str,
        labels: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Result<u32, Vec<Problem>> {
        raw_series_key(&mut self.key, metric, labels.clone());
        let guess = self.last.wrapping_add(1);
        if let Some(&(start, end, i)) = self.seen.get(guess) {
            if self.raw[start..end] == self.key[..] {
                self.last = guess;
                return Ok(i);
            }
        }
        let hash = self.hasher.hash_one(self.key.as_slice());
        let (seen, raw) = (&self.seen, &self.raw);
        let raw_of = |s: u32| {
            let (start, end, _) = seen[s as usize];
            &raw[start..end]
        };
        if let Some(&s) = self.series.find(hash, |&s| raw_of(s) == self.key) {
            self.last = s as usize;
            return Ok(self.seen[s as usize].2);
        }
        let mut problems = name_problems(Some(metric), labels.clone().map(|(name, _)| name));
        problems.extend(label_value_problems(labels.clone()));
        if !problems.is_empty() {
            return Err(problems);
        }
        // New to this piece (its bytes were not in `series`, and equal keys
        // have equal bytes): added without a lookup in the batch.
        let i = match self.known.and_then(|k| k.get(&self.key)) {
            Some((id, key)) => self.batch.push_series(key, Some(id)),
            None => {
                let key = SeriesKey {
                    metric: metric.to_owned(),
                    labels: labels.map(|(n, v)| (n.to_owned(), v.to_owned())).collect(),
                };
                self.batch.push_series(std::sync::Arc::new(key), None)
            }
        };
        let start = self.raw.len();
        self.raw.extend_from_slice(&self.key);
        self.last = self.seen.len();
        self.seen.push((start, self.raw.len(), i));
        let (seen, raw, hasher) = (&self.seen, &self.raw, &self.hasher);
        self.series.insert_unique(hash, self.last as u32, |&s| {
            let (start, end, _) = seen[s as usize];
            hasher.hash_one(&raw[start..end])
        });
        Ok(i)
    }

    fn time(&mut self, text: &str) -> Result<Millis, String> {
        self.times.get(text, self.tz)
    }
}

/// The last few time strings and their instants.
#[derive(Default)]
struct TimeCache {
    slots: Vec<(String, Millis)>,
    last: usize,
    next: usize,
}

impl TimeCache {
    fn get(&mut self, text: &str, tz: Tz) -> Result<Millis, String> {
        if let Some((k, t)) = self.slots.get(self.last) {
            if k == text {
                return Ok(*t);
            }
        }
        if let Some(i) = self.slots.iter().position(|(k, _)| k == text) {
            self.last = i;
            return Ok(self.slots[i].1);
        }
        let t = parse_time(text, tz)?;
        if self.slots.len() < TIME_CACHE {
            self.slots.push((text.to_owned(), t));
            self.last = self.slots.len() - 1;
        } else {
            let slot = &mut self.slots[self.next];
            slot.0.clear();
            slot.0.push_str(text);
            slot.1 = t;
            self.last = self.next;
            self.next = (self.next + 1) % TIME_CACHE;
        }
        Ok(t)
    }
}
