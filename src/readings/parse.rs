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

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use chrono_tz::Tz;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::model::{is_valid_name, Batch, BatchPoint, Format, ItemError, ParseError, SeriesKey};
use crate::time::{parse_time, Millis};

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
pub fn parse(input: &[u8], format: Format, tz: Tz) -> Result<Batch, ParseError> {
    parse_on(input, format, tz, None)
}

/// [`parse`] on `threads` threads (`None`: as many as the input is worth).
fn parse_on(
    input: &[u8],
    format: Format,
    tz: Tz,
    threads: Option<usize>,
) -> Result<Batch, ParseError> {
    let text = std::str::from_utf8(input).map_err(|_| utf8_errors(input))?;
    // A byte-order mark (spreadsheets write one) is not part of the data.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(no_readings());
    }
    let (chunks, line_base) = match format {
        Format::Json => (parse_json(text, tz, threads)?, 0),
        Format::Ndjson => (parse_ndjson(text, tz, threads), 0),
        Format::Csv => parse_csv(text, tz, threads)?,
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

fn memchr_newline(b: &[u8], from: usize) -> Option<usize> {
    b[from..].iter().position(|&c| c == b'\n').map(|i| from + i)
}

fn count_newlines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

// ---------------------------------------------------------------------------
// Sink: turns checked fields into points, interning series.

/// Builds one piece's batch.
struct Sink {
    batch: Batch,
    /// Raw metric + labels bytes (each part followed by 0xFF, a byte UTF-8
    /// never has) → index in `batch.series`.
    series: HashMap<Box<[u8]>, u32>,
    key: Vec<u8>,
    times: TimeCache,
    tz: Tz,
}

impl Sink {
    fn new(tz: Tz) -> Self {
        Sink {
            batch: Batch::new(),
            series: HashMap::new(),
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
        self.key.clear();
        self.key.extend_from_slice(metric.as_bytes());
        self.key.push(0xFF);
        for (name, value) in labels.clone() {
            self.key.extend_from_slice(name.as_bytes());
            self.key.push(0xFF);
            self.key.extend_from_slice(value.as_bytes());
            self.key.push(0xFF);
        }
        if let Some(&i) = self.series.get(self.key.as_slice()) {
            return Ok(i);
        }
        let problems = name_problems(Some(metric), labels.clone().map(|(name, _)| name));
        if !problems.is_empty() {
            return Err(problems);
        }
        let key = SeriesKey {
            metric: metric.to_owned(),
            labels: labels.map(|(n, v)| (n.to_owned(), v.to_owned())).collect(),
        };
        let i = self.batch.intern(key);
        self.series.insert(self.key.as_slice().into(), i);
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

// ---------------------------------------------------------------------------
// Problems of one item, and messages.

/// What part of an item a problem is about, to point at it.
#[derive(Debug, Clone, PartialEq)]
enum At {
    /// The item as a whole.
    Start,
    /// A known field (`metric`, `value`, `time`, `labels`): its value.
    Field(&'static str),
    /// An unknown JSON field: its key.
    Key(String),
    /// A label: its name.
    Label(String),
}

#[derive(Debug)]
struct Problem {
    at: At,
    message: String,
}

impl Problem {
    fn new(at: At, message: impl Into<String>) -> Self {
        Problem {
            at,
            message: message.into(),
        }
    }
}

fn join(problems: &[Problem]) -> String {
    let parts: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    parts.join("; ")
}

/// User input in backticks, shortened if long, control characters escaped
/// (an error is one line).
fn quote(s: &str) -> String {
    const MAX: usize = 60;
    let mut out = String::from("`");
    for (i, c) in s.chars().enumerate() {
        if i == MAX - 1 && s.chars().nth(MAX).is_some() {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('`');
    out
}

fn no_readings() -> ParseError {
    ParseError {
        errors: vec![ItemError {
            line: 0,
            col: 0,
            item: None,
            message: "no readings in input".into(),
        }],
        total: 1,
    }
}

fn one_error(line: usize, col: usize, message: String) -> ParseError {
    ParseError {
        errors: vec![ItemError {
            line,
            col,
            item: None,
            message,
        }],
        total: 1,
    }
}

/// Why `name` is not a valid metric / label name, if it is not.
fn name_problem(kind: &str, name: &str) -> Option<String> {
    if is_valid_name(name) {
        None
    } else if name.is_empty() {
        Some(format!("{kind} name is empty"))
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        Some(format!(
            "{kind} name {} is invalid: it must not start with a digit",
            quote(name)
        ))
    } else {
        Some(format!(
            "{kind} name {} is invalid: use letters, digits and `_`",
            quote(name)
        ))
    }
}

fn name_problems<'a>(metric: Option<&str>, labels: impl Iterator<Item = &'a str>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(m) = metric.and_then(|m| name_problem("metric", m)) {
        problems.push(Problem::new(At::Field("metric"), m));
    }
    for name in labels {
        if let Some(m) = name_problem("label", name) {
            problems.push(Problem::new(At::Label(name.to_owned()), m));
        }
    }
    problems
}

/// "bad time `x`: why", without repeating `x`.
fn bad_time(text: &str, err: &str) -> String {
    let s = text.trim();
    let why = err
        .strip_prefix(&format!("`{s}` is not a time: "))
        .or_else(|| err.strip_prefix(&format!("`{s}` ")))
        .unwrap_or(err);
    format!("bad time {}: {why}", quote(text))
}

/// A checked time string, or why not.
fn check_time(sink: &mut Sink, text: &str) -> Result<Millis, String> {
    sink.time(text).map_err(|e| match text.trim().is_empty() {
        true => "`time` is empty".into(),
        false => bad_time(text, &e),
    })
}

/// Why a number that did not make a finite f64 is bad.
fn non_finite(text: &str) -> String {
    let t = text
        .trim()
        .trim_start_matches(['+', '-'])
        .to_ascii_lowercase();
    if t.starts_with("inf") || t.starts_with("nan") {
        format!("value {} is not a finite number", quote(text))
    } else {
        format!("value {} is out of range", quote(text))
    }
}

/// For the fields flagged absent, if any: the first, and "missing `a`",
/// "missing `a` and `b`" or "missing `a`, `b` and `c`".
fn missing(fields: [(&'static str, bool); 3]) -> Option<(&'static str, String)> {
    if !fields.iter().any(|(_, absent)| *absent) {
        return None;
    }
    let names: Vec<&'static str> = fields.iter().filter(|f| f.1).map(|f| f.0).collect();
    let q: Vec<String> = names.iter().map(|f| format!("`{f}`")).collect();
    let message = match q.as_slice() {
        [one] => format!("missing {one}"),
        [init @ .., last] => format!("missing {} and {last}", init.join(", ")),
        [] => unreachable!("some field is absent"),
    };
    Some((names[0], message))
}

/// `s` without surrounding whitespace; cheap when there is none.
fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l))
            if f.is_ascii_whitespace() || l.is_ascii_whitespace() || *f >= 0x80 || *l >= 0x80 =>
        {
            s.trim()
        }
        _ => s,
    }
}

const FIELDS: [&str; 4] = ["metric", "value", "time", "labels"];

fn unknown_field(key: &str) -> String {
    let lower = key.to_ascii_lowercase();
    match FIELDS
        .iter()
        .find(|f| edit_distance(&lower, f) <= 2 || lower.starts_with(*f))
    {
        Some(f) => format!("unknown field {} (did you mean `{f}`?)", quote(key)),
        None => format!(
            "unknown field {} (a reading has `metric`, `value`, `time` and `labels`)",
            quote(key)
        ),
    }
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---------------------------------------------------------------------------
// Positions.

/// 1-based character column of byte `off` on a line starting at byte `line_start`.
fn char_col(text: &str, line_start: usize, off: usize) -> usize {
    // Counting bytes that do not continue a UTF-8 sequence counts characters.
    text.as_bytes()[line_start..off]
        .iter()
        .filter(|&&b| (b as i8) >= -0x40)
        .count()
        + 1
}

/// Turns byte offsets into line:col, moving forward through a text.
struct Locator<'a> {
    text: &'a str,
    off: usize,
    line: usize,
    line_start: usize,
}

impl<'a> Locator<'a> {
    fn new(text: &'a str) -> Self {
        Locator {
            text,
            off: 0,
            line: 1,
            line_start: 0,
        }
    }

    /// 1-based (line, character column) of byte `off`.
    fn at(&mut self, off: usize) -> (usize, usize) {
        let off = off.min(self.text.len());
        if off < self.off {
            *self = Locator::new(self.text);
        }
        let b = self.text.as_bytes();
        for (i, &c) in b[self.off..off].iter().enumerate() {
            if c == b'\n' {
                self.line += 1;
                self.line_start = self.off + i + 1;
            }
        }
        self.off = off;
        (self.line, char_col(self.text, self.line_start, off))
    }
}

/// One error per line that is not UTF-8, naming the first bad byte.
fn utf8_errors(input: &[u8]) -> ParseError {
    let mut chunk = Chunk::default();
    let (mut line, mut line_start, mut chars, mut off) = (1, 0, 0, 0);
    let mut last_bad_line = 0;
    for piece in input.utf8_chunks() {
        for (i, &c) in piece.valid().as_bytes().iter().enumerate() {
            if c == b'\n' {
                line += 1;
                line_start = off + i + 1;
                chars = 0;
            } else if (c as i8) >= -0x40 {
                chars += 1;
            }
        }
        off += piece.valid().len();
        let bad = piece.invalid();
        if !bad.is_empty() {
            if line != last_bad_line {
                last_bad_line = line;
                let byte_col = off - line_start + 1;
                let hex: String = bad.iter().map(|b| format!("\\x{b:02X}")).collect();
                chunk.fail(|| ItemError {
                    line,
                    col: chars + 1,
                    item: None,
                    message: format!(
                        "not UTF-8: byte {byte_col} of the line is `{hex}` (save the file as UTF-8; GBK and other encodings are not read)"
                    ),
                });
            }
            chars += 1;
            off += bad.len();
        }
    }
    ParseError {
        errors: chunk.errors,
        total: chunk.bad,
    }
}

// ---------------------------------------------------------------------------
// JSON values, read by serde visitors that borrow from the input.

/// Any JSON value, kept only as far as a reading needs it.
#[derive(Debug)]
enum Any<'de> {
    Str(Cow<'de, str>),
    Num(f64),
    Bool(bool),
    Null,
    Array,
    Object,
}

impl Any<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Any::Str(_) => "a string",
            Any::Num(_) => "a number",
            Any::Bool(true) => "`true`",
            Any::Bool(false) => "`false`",
            Any::Null => "`null`",
            Any::Array => "an array",
            Any::Object => "an object",
        }
    }
}

/// An object's members, in input order.
type Members<'de> = Vec<(Cow<'de, str>, Any<'de>)>;

/// Reads any value; an object's members go into the given list (else are skipped).
struct AnySeed<'a, 'de>(Option<&'a mut Members<'de>>);

impl<'de> DeserializeSeed<'de> for AnySeed<'_, 'de> {
    type Value = Any<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Any<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AnySeed<'_, 'de> {
    type Value = Any<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Any<'de>, E> {
        Ok(Any::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Any<'de>, E> {
        Ok(Any::Num(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Any<'de>, E> {
        Ok(Any::Num(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Any<'de>, E> {
        Ok(Any::Num(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Any<'de>, E> {
        Ok(Any::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Any<'de>, E> {
        Ok(Any::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Any<'de>, E> {
        Ok(Any::Str(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Any<'de>, E> {
        Ok(Any::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Any<'de>, E> {
        Ok(Any::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Any<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Any::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Any<'de>, A::Error> {
        match self.0 {
            Some(members) => {
                while let Some(key) = map.next_key_seed(KeySeed)? {
                    let value = map.next_value_seed(AnySeed(None))?;
                    members.push((key, value));
                }
            }
            None => while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {},
        }
        Ok(Any::Object)
    }
}

/// Reads an object key, borrowed when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

/// The fields of one JSON reading, as given. Reused from item to item, so
/// that reading one moves and allocates nothing.
#[derive(Debug, Default)]
struct Raw<'de> {
    metric: Option<Any<'de>>,
    value: Option<Any<'de>>,
    time: Option<Any<'de>>,
    /// `Any::Object` when an object: its members are in `members`.
    labels: Option<Any<'de>>,
    members: Members<'de>,
    unknown: Vec<Cow<'de, str>>,
    twice: Vec<&'static str>,
}

impl Raw<'_> {
    fn clear(&mut self) {
        self.metric = None;
        self.value = None;
        self.time = None;
        self.labels = None;
        self.members.clear();
        self.unknown.clear();
        self.twice.clear();
    }
}

/// Reads one item into the given [`Raw`]; gives what it is instead if it is
/// not an object.
struct ItemSeed<'a, 'de>(&'a mut Raw<'de>);

type NotObject = Option<&'static str>;

impl<'de> DeserializeSeed<'de> for ItemSeed<'_, 'de> {
    type Value = NotObject;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<NotObject, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_, 'de> {
    type Value = NotObject;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a reading object")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<NotObject, E> {
        Ok(Some(Any::Bool(v).kind()))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<NotObject, E> {
        Ok(Some("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<NotObject, E> {
        Ok(Some("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<NotObject, E> {
        Ok(Some("a number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<NotObject, E> {
        Ok(Some("a string"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<NotObject, E> {
        Ok(Some("`null`"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<NotObject, A::Error> {
        AnySeed(None).visit_seq(seq).map(|any| Some(any.kind()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NotObject, A::Error> {
        let raw = self.0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let (slot, name) = match key.as_ref() {
                "metric" => (&mut raw.metric, "metric"),
                "value" => (&mut raw.value, "value"),
                "time" => (&mut raw.time, "time"),
                "labels" => (&mut raw.labels, "labels"),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    raw.unknown.push(key);
                    continue;
                }
            };
            let members = (name == "labels").then_some(&mut raw.members);
            let value = map.next_value_seed(AnySeed(members))?;
            if slot.replace(value).is_some() {
                raw.twice.push(name);
            }
        }
        Ok(None)
    }
}

/// Why one JSON item was rejected.
enum Fail {
    /// Not valid JSON (or a number out of range).
    Syntax(serde_json::Error),
    Bad(Vec<Problem>),
}

/// Parses one JSON item (an object, by itself in `text`) into the sink.
fn json_item<'de>(text: &'de str, sink: &mut Sink, raw: &mut Raw<'de>) -> Result<(), Fail> {
    raw.clear();
    if !read_plain(text, raw) {
        raw.clear();
        let mut de = serde_json::Deserializer::from_str(text);
        let not_object = ItemSeed(raw)
            .deserialize(&mut de)
            .and_then(|item| de.end().map(|()| item))
            .map_err(Fail::Syntax)?;
        if let Some(kind) = not_object {
            return Err(Fail::Bad(vec![Problem::new(
                At::Start,
                format!("a reading must be an object, not {kind}"),
            )]));
        }
    }
    let point = check_json(raw, sink).map_err(Fail::Bad)?;
    sink.batch.points.push(point);
    Ok(())
}

/// Reads a reading of the usual plain shape into `raw`, about twice as fast
/// as serde_json: one flat object with `metric`, `value`, `time` and maybe
/// `labels`, each once, strings without escapes or control characters, a
/// finite number, and labels that are all strings. Anything else, every
/// error included, gives `false`, and serde_json reads the item instead.
///
/// For the items it reads, it gives what serde_json would, except that
/// numbers are parsed by the standard library, which always rounds
/// correctly (serde_json may be one unit in the last place off for numbers
/// with more than 15 digits or a large exponent).
fn read_plain<'de>(text: &'de str, raw: &mut Raw<'de>) -> bool {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return false;
    }
    i = skip_ws(b, i + 1);
    loop {
        let Some((key, j)) = plain_string(text, i) else {
            return false;
        };
        i = skip_ws(b, j);
        if b.get(i) != Some(&b':') {
            return false;
        }
        i = skip_ws(b, i + 1);
        let (slot, value, j) = match key {
            "metric" | "time" => {
                let Some((s, j)) = plain_string(text, i) else {
                    return false;
                };
                let slot = match key {
                    "metric" => &mut raw.metric,
                    _ => &mut raw.time,
                };
                (slot, Any::Str(Cow::Borrowed(s)), j)
            }
            "value" => {
                let Some((v, j)) = plain_number(text, i) else {
                    return false;
                };
                (&mut raw.value, Any::Num(v), j)
            }
            "labels" => {
                let Some(j) = plain_labels(text, i, &mut raw.members) else {
                    return false;
                };
                (&mut raw.labels, Any::Object, j)
            }
            _ => return false,
        };
        if slot.replace(value).is_some() {
            return false;
        }
        i = skip_ws(b, j);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return skip_ws(b, i + 1) == b.len(),
            _ => return false,
        }
    }
}

/// A string without escapes or control characters at `i`, and the offset past it.
fn plain_string(text: &str, i: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let n = b[i + 1..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    (b[i + 1 + n] == b'"').then(|| (&text[i + 1..i + 1 + n], i + 2 + n))
}

/// A finite JSON number at `i`, and the offset past it.
fn plain_number(text: &str, i: usize) -> Option<(f64, usize)> {
    let b = text.as_bytes();
    let digits = |mut j: usize| {
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    let int = i + usize::from(b.get(i) == Some(&b'-'));
    let mut j = digits(int);
    if j == int || (b[int] == b'0' && j > int + 1) {
        return None;
    }
    if b.get(j) == Some(&b'.') {
        let k = digits(j + 1);
        if k == j + 1 {
            return None;
        }
        j = k;
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        let sign = j + 1 + usize::from(matches!(b.get(j + 1), Some(b'+' | b'-')));
        let k = digits(sign);
        if k == sign {
            return None;
        }
        j = k;
    }
    let v: f64 = text[i..j].parse().ok()?;
    v.is_finite().then_some((v, j))
}

/// Label members of the plain object at `i` into `members`, and the offset past it.
fn plain_labels<'de>(text: &'de str, i: usize, members: &mut Members<'de>) -> Option<usize> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        let (name, j) = plain_string(text, i)?;
        i = skip_ws(b, j);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let (value, j) = plain_string(text, skip_ws(b, i + 1))?;
        members.push((Cow::Borrowed(name), Any::Str(Cow::Borrowed(value))));
        i = skip_ws(b, j);
        match b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// Checks a JSON reading's fields and interns its series.
fn check_json(raw: &mut Raw<'_>, sink: &mut Sink) -> Result<BatchPoint, Vec<Problem>> {
    let mut problems = Vec::new();
    for key in &raw.unknown {
        problems.push(Problem::new(At::Key(key.to_string()), unknown_field(key)));
    }
    for name in &raw.twice {
        problems.push(Problem::new(
            At::Field(name),
            format!("field `{name}` is given twice"),
        ));
    }
    if let Some((_, message)) = missing([
        ("metric", raw.metric.is_none()),
        ("value", raw.value.is_none()),
        ("time", raw.time.is_none()),
    ]) {
        problems.push(Problem::new(At::Start, message));
    }

    let metric = match &raw.metric {
        Some(Any::Str(s)) => Some(s.as_ref()),
        Some(other) => {
            problems.push(Problem::new(
                At::Field("metric"),
                format!("`metric` must be a string, not {}", other.kind()),
            ));
            None
        }
        None => None,
    };
    let value = match &raw.value {
        Some(Any::Num(v)) if v.is_finite() => Some(*v),
        Some(Any::Num(v)) => {
            problems.push(Problem::new(At::Field("value"), non_finite(&v.to_string())));
            None
        }
        Some(Any::Str(s)) => {
            let message = match s.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => format!(
                    "value {} is a string, not a number: write it without quotes",
                    quote(s)
                ),
                _ => format!("value {} is not a number", quote(s)),
            };
            problems.push(Problem::new(At::Field("value"), message));
            None
        }
        Some(other) => {
            problems.push(Problem::new(
                At::Field("value"),
                format!("value must be a number, not {}", other.kind()),
            ));
            None
        }
        None => None,
    };
    let time = match &raw.time {
        Some(Any::Str(s)) => match check_time(sink, s) {
            Ok(t) => Some(t),
            Err(message) => {
                problems.push(Problem::new(At::Field("time"), message));
                None
            }
        },
        Some(other) => {
            problems.push(Problem::new(
                At::Field("time"),
                format!(
                    "`time` must be a string like `2021-03-01T09:00:00+08:00`, not {}",
                    other.kind()
                ),
            ));
            None
        }
        None => None,
    };
    let labels = &mut raw.members;
    match &raw.labels {
        None | Some(Any::Null) => labels.clear(),
        Some(Any::Object) => {
            for (name, v) in labels.iter() {
                if !matches!(v, Any::Str(_)) {
                    problems.push(Problem::new(
                        At::Label(name.to_string()),
                        format!("label {} must be a string, not {}", quote(name), v.kind()),
                    ));
                }
            }
            if labels.len() > 1 {
                labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                for pair in labels.windows(2) {
                    if pair[0].0 == pair[1].0 {
                        problems.push(Problem::new(
                            At::Label(pair[0].0.to_string()),
                            format!("label {} is given twice", quote(&pair[0].0)),
                        ));
                    }
                }
            }
        }
        Some(other) => {
            labels.clear();
            problems.push(Problem::new(
                At::Field("labels"),
                format!(
                    "`labels` must be an object like `{{\"county\":\"南宫\"}}`, not {}",
                    other.kind()
                ),
            ));
        }
    }

    // An empty label value means the label is absent, as an empty CSV cell does.
    let pairs = labels.iter().filter_map(|(name, v)| match v {
        Any::Str(s) if !s.is_empty() => Some((name.as_ref(), s.as_ref())),
        _ => None,
    });
    if let (true, Some(metric), Some(value), Some(time)) =
        (problems.is_empty(), metric, value, time)
    {
        match sink.series(metric, pairs) {
            Ok(series) => {
                return Ok(BatchPoint {
                    series,
                    time,
                    value,
                })
            }
            Err(p) => problems.extend(p),
        }
    } else {
        problems.extend(name_problems(metric, pairs.map(|(n, _)| n)));
    }
    Err(problems)
}

/// Where (byte offset in `text`) a serde_json error is, and what it says.
fn json_error(text: &str, e: &serde_json::Error) -> (usize, String) {
    let b = text.as_bytes();
    let mut start = 0;
    for _ in 1..e.line() {
        match memchr_newline(b, start) {
            Some(i) => start = i + 1,
            None => break,
        }
    }
    let mut off = (start + e.column().saturating_sub(1)).min(b.len());
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let full = e.to_string();
    let what = full
        .strip_suffix(&format!(" at line {} column {}", e.line(), e.column()))
        .unwrap_or(&full);
    if what == "number out of range" {
        let is_num = |c: &u8| c.is_ascii_digit() || b".eE+-".contains(c);
        let from = off - b[..off].iter().rev().take_while(|c| is_num(c)).count();
        let to = off + b[off..].iter().take_while(|c| is_num(c)).count();
        return (
            from,
            format!("number {} is out of range", quote(&text[from..to])),
        );
    }
    let rest = &text[off..];
    if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let lower = word.to_ascii_lowercase();
        if lower.starts_with("nan") || lower.starts_with("inf") {
            let from = if text[..off].ends_with('-') {
                off - 1
            } else {
                off
            };
            let token = &text[from..off + word.len()];
            return (
                from,
                format!(
                    "{} is not a finite number (JSON has no NaN or Infinity)",
                    quote(token)
                ),
            );
        }
    }
    let message = match what.strip_prefix("EOF while parsing") {
        Some(rest) => format!("malformed JSON: unexpected end of input while parsing{rest}"),
        None => format!("malformed JSON: {what}"),
    };
    (off, message)
}

/// Byte offset in the JSON object `text` of what `at` names (its start if not found).
fn json_offset(text: &str, at: &At) -> usize {
    let b = text.as_bytes();
    let obj = skip_ws(b, 0);
    let found = match at {
        At::Start => None,
        At::Field(name) => find_key(b, obj, name).map(|(_, value)| value),
        At::Key(name) => find_key(b, obj, name).map(|(key, _)| key),
        At::Label(name) => {
            find_key(b, obj, "labels").and_then(|(_, v)| find_key(b, v, name).map(|(key, _)| key))
        }
    };
    found.unwrap_or(obj)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// Just past the JSON string starting at `i`.
fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j += b.get(j..)?.iter().position(|&c| c == b'"' || c == b'\\')?;
        match b[j] {
            b'"' => return Some(j + 1),
            _ => j += 2,
        }
    }
}

/// Just past the JSON value starting at `i` (checking brackets only loosely:
/// serde_json checks the rest).
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let n = b[i..]
                .iter()
                .take_while(|c| !matches!(c, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
                .count();
            (n > 0).then_some(i + n)
        }
    }
}

/// (key offset, value offset) of the first member named `key` of the object at `i`.
fn find_key(b: &[u8], i: usize, key: &str) -> Option<(usize, usize)> {
    if b.get(i) != Some(&b'{') {
        return None;
    }
    let mut i = skip_ws(b, i + 1);
    loop {
        if b.get(i)? != &b'"' {
            return None;
        }
        let key_at = i;
        i = skip_string(b, i)?;
        let raw = &b[key_at + 1..i - 1];
        i = skip_ws(b, i);
        if b.get(i)? != &b':' {
            return None;
        }
        let value_at = skip_ws(b, i + 1);
        if raw == key.as_bytes() {
            return Some((key_at, value_at));
        }
        i = skip_ws(b, skip_value(b, value_at)?);
        if b.get(i)? != &b',' {
            return None;
        }
        i = skip_ws(b, i + 1);
    }
}

// ---------------------------------------------------------------------------
// JSON: one object or an array of them.

fn parse_json(text: &str, tz: Tz, threads: Option<usize>) -> Result<Vec<Chunk>, ParseError> {
    let b = text.as_bytes();
    let start = skip_ws(b, 0);
    match b.get(start) {
        Some(b'[') => {
            let Some(elements) = split_array(b, start) else {
                return Err(malformed_document(text));
            };
            if elements.is_empty() {
                return Err(no_readings());
            }
            let per = elements.len().div_ceil(threads_for(b.len(), threads));
            let parts: Vec<(usize, &[(usize, usize)])> = elements
                .chunks(per)
                .enumerate()
                .map(|(k, part)| (k * per, part))
                .collect();
            let chunks = run_parallel(&parts, |&(first, part)| {
                json_elements(text, first, part, tz)
            });
            if chunks.iter().any(|c| c.malformed) {
                return Err(malformed_document(text));
            }
            Ok(chunks)
        }
        Some(b'{') => {
            let mut sink = Sink::new(tz);
            let mut raw = Raw::default();
            let mut chunk = Chunk::default();
            match json_item(text, &mut sink, &mut raw) {
                Ok(()) => {}
                Err(Fail::Syntax(e)) => {
                    let (off, message) = json_error(text, &e);
                    let (line, col) = Locator::new(text).at(off);
                    return Err(one_error(line, col, with_ndjson_hint(message)));
                }
                Err(Fail::Bad(problems)) => {
                    let (line, col) = Locator::new(text).at(json_offset(text, &problems[0].at));
                    chunk.fail(|| ItemError {
                        line,
                        col,
                        item: None,
                        message: join(&problems),
                    });
                }
            }
            chunk.batch = sink.batch;
            Ok(vec![chunk])
        }
        _ => {
            if let Err(e) = serde_json::from_str::<IgnoredAny>(text) {
                let (off, message) = json_error(text, &e);
                let (line, col) = Locator::new(text).at(off);
                return Err(one_error(line, col, message));
            }
            let kind = serde_json::from_str::<serde_json::Value>(text)
                .map(|v| match v {
                    serde_json::Value::String(_) => "a string",
                    serde_json::Value::Number(_) => "a number",
                    serde_json::Value::Bool(_) => "a boolean",
                    _ => "`null`",
                })
                .unwrap_or("something else");
            let (line, col) = Locator::new(text).at(start);
            Err(one_error(
                line,
                col,
                format!("expected a reading object or an array of them, found {kind}"),
            ))
        }
    }
}

fn with_ndjson_hint(message: String) -> String {
    if message.ends_with("trailing characters") {
        format!("{message} (for one reading per line, send NDJSON: a `.ndjson` file or `Content-Type: application/x-ndjson`)")
    } else {
        message
    }
}

/// The error serde_json finds in a malformed document.
fn malformed_document(text: &str) -> ParseError {
    let (off, message) = match serde_json::from_str::<IgnoredAny>(text) {
        Err(e) => json_error(text, &e),
        Ok(_) => (0, "malformed JSON".to_owned()),
    };
    let (line, col) = Locator::new(text).at(off);
    one_error(line, col, with_ndjson_hint(message))
}

/// (start, end) byte ranges of the elements of the array at `start`, or
/// `None` if the text around them is not a JSON array.
fn split_array(b: &[u8], start: usize) -> Option<Vec<(usize, usize)>> {
    let mut out = Vec::new();
    let mut i = skip_ws(b, start + 1);
    if b.get(i) == Some(&b']') {
        return (skip_ws(b, i + 1) == b.len()).then_some(out);
    }
    loop {
        let from = i;
        i = skip_value(b, i)?;
        out.push((from, i));
        i = skip_ws(b, i);
        match b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b']' => return (skip_ws(b, i + 1) == b.len()).then_some(out),
            _ => return None,
        }
    }
}

/// Parses array elements `first`.. (byte ranges in `text`).
fn json_elements(text: &str, first: usize, elements: &[(usize, usize)], tz: Tz) -> Chunk {
    let mut sink = Sink::new(tz);
    let mut raw = Raw::default();
    let mut chunk = Chunk::default();
    let mut locator = Locator::new(text);
    for (k, &(from, to)) in elements.iter().enumerate() {
        let item = &text[from..to];
        let message = match json_item(item, &mut sink, &mut raw) {
            Ok(()) => continue,
            Err(Fail::Syntax(e)) => {
                let (_, message) = json_error(item, &e);
                if !message.ends_with("is out of range") {
                    chunk.malformed = true;
                    break;
                }
                message
            }
            Err(Fail::Bad(problems)) => join(&problems),
        };
        chunk.fail(|| {
            let (line, col) = locator.at(from);
            ItemError {
                line,
                col,
                item: Some(first + k),
                message,
            }
        });
    }
    chunk.batch = sink.batch;
    chunk
}

// ---------------------------------------------------------------------------
// NDJSON: one object per line.

fn parse_ndjson(text: &str, tz: Tz, threads: Option<usize>) -> Vec<Chunk> {
    let pieces = split_records(text, threads_for(text.len(), threads), false);
    run_parallel(&pieces, |piece| ndjson_chunk(piece, tz))
}

fn ndjson_chunk(text: &str, tz: Tz) -> Chunk {
    let mut sink = Sink::new(tz);
    let mut raw = Raw::default();
    let mut chunk = Chunk::default();
    let mut line_no = 0;
    for line in text.split('\n') {
        line_no += 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if !line.starts_with('{') && line.trim().is_empty() {
            continue;
        }
        let item = chunk.items;
        chunk.items += 1;
        match json_item(line, &mut sink, &mut raw) {
            Ok(()) => {}
            Err(fail) => chunk.fail(|| {
                let (off, message) = match fail {
                    Fail::Syntax(e) => json_error(line, &e),
                    Fail::Bad(problems) => (json_offset(line, &problems[0].at), join(&problems)),
                };
                ItemError {
                    line: line_no,
                    col: char_col(line, 0, off),
                    item: Some(item),
                    message,
                }
            }),
        }
    }
    chunk.lines = line_no - 1;
    chunk.batch = sink.batch;
    chunk
}

// ---------------------------------------------------------------------------
// CSV: a header row naming `metric`, `time`, `value` and label columns.

/// The header: where each column is.
struct Columns {
    metric: usize,
    time: usize,
    value: usize,
    /// (column, label name), in column order.
    labels: Vec<(usize, String)>,
    width: usize,
}

impl Columns {
    fn of(&self, at: &At) -> Option<usize> {
        match at {
            At::Field("metric") => Some(self.metric),
            At::Field("time") => Some(self.time),
            At::Field("value") => Some(self.value),
            At::Label(name) => self.labels.iter().find(|(_, n)| n == name).map(|(i, _)| *i),
            _ => None,
        }
    }
}

/// RFC 4180 quoting, as the csv crate reads it, byte by byte.
#[derive(Clone, Copy, PartialEq)]
enum Quoting {
    /// At the start of a field.
    Start,
    /// In an unquoted field (a quote here is literal).
    Field,
    /// Inside quotes.
    Quoted,
    /// Just after a quote inside quotes: `""` or the closing quote.
    QuoteInQuoted,
}

impl Quoting {
    fn step(self, c: u8) -> Quoting {
        match (self, c) {
            (Quoting::Quoted, b'"') => Quoting::QuoteInQuoted,
            (Quoting::Quoted, _) => Quoting::Quoted,
            (Quoting::QuoteInQuoted, b'"') => Quoting::Quoted,
            (Quoting::Start, b'"') => Quoting::Quoted,
            (_, b',' | b'\n') => Quoting::Start,
            _ => Quoting::Field,
        }
    }
}

/// Just past the line break ending the record that starts at `start` (or the end).
fn record_end(b: &[u8], start: usize) -> usize {
    let mut q = Quoting::Start;
    for (i, &c) in b.iter().enumerate().skip(start) {
        if c == b'\n' && q != Quoting::Quoted {
            return i + 1;
        }
        q = q.step(c);
    }
    b.len()
}

/// A cut at or after `target` that ends a record, for a piece starting at
/// record start `start`.
fn csv_cut(b: &[u8], start: usize, target: usize) -> Option<usize> {
    let nl = memchr_newline(b, target)?;
    if !b[start..nl].contains(&b'"') {
        return Some(nl + 1);
    }
    let mut q = Quoting::Start;
    for (i, &c) in b.iter().enumerate().skip(start) {
        if c == b'\n' && q != Quoting::Quoted && i >= target {
            return Some(i + 1);
        }
        q = q.step(c);
    }
    None
}

/// Byte offset of field `k` of the record starting at `start`.
fn field_start(b: &[u8], start: usize, k: usize) -> usize {
    if k == 0 {
        return start;
    }
    let mut q = Quoting::Start;
    let mut field = 0;
    for (i, &c) in b.iter().enumerate().skip(start) {
        if q != Quoting::Quoted {
            if c == b'\n' {
                return i;
            }
            if c == b',' {
                field += 1;
                if field == k {
                    return i + 1;
                }
            }
        }
        q = q.step(c);
    }
    b.len()
}

fn csv_reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
}

fn parse_csv(
    text: &str,
    tz: Tz,
    threads: Option<usize>,
) -> Result<(Vec<Chunk>, usize), ParseError> {
    let b = text.as_bytes();
    // Blank lines before the header are skipped, as the csv crate does.
    let header_at = b
        .iter()
        .position(|&c| c != b'\n' && c != b'\r')
        .unwrap_or(b.len());
    let header_end = record_end(b, header_at);
    let columns = csv_header(text, header_at, header_end)?;
    let body = &text[header_end..];
    let pieces = split_records(body, threads_for(body.len(), threads), true);
    let chunks = run_parallel(&pieces, |piece| csv_chunk(piece, &columns, tz));
    Ok((chunks, count_newlines(&b[..header_end])))
}

fn csv_header(text: &str, from: usize, to: usize) -> Result<Columns, ParseError> {
    let b = text.as_bytes();
    let mut record = csv::StringRecord::new();
    let mut locator = Locator::new(text);
    let (line, _) = locator.at(from);
    if let Err(e) = csv_reader(&text[from..to]).read_record(&mut record) {
        return Err(one_error(line, 0, format!("malformed CSV header: {e}")));
    }
    let mut errors = Vec::new();
    let mut fail = |k: usize, message: String| {
        let (line, col) = locator.at(field_start(b, from, k));
        errors.push(ItemError {
            line,
            col,
            item: None,
            message,
        });
    };
    let (mut metric, mut time, mut value) = (None, None, None);
    let mut labels: Vec<(usize, String)> = Vec::new();
    for (k, name) in record.iter().enumerate() {
        let name = name.trim();
        let slot = match name {
            "metric" => &mut metric,
            "time" => &mut time,
            "value" => &mut value,
            _ => {
                if name.is_empty() {
                    fail(k, format!("column {} has no name", k + 1));
                } else if labels.iter().any(|(_, n)| n == name) {
                    fail(k, format!("column {} appears twice", quote(name)));
                } else if let Some(m) = name_problem("column", name) {
                    fail(
                        k,
                        format!("{m} (columns other than `metric`, `time` and `value` are labels)"),
                    );
                } else {
                    labels.push((k, name.to_owned()));
                }
                continue;
            }
        };
        if slot.replace(k).is_some() {
            fail(k, format!("column `{name}` appears twice"));
        }
    }
    for (name, slot) in [("metric", metric), ("time", time), ("value", value)] {
        if slot.is_none() {
            let hint = match record.iter().find(|n| n.trim().eq_ignore_ascii_case(name)) {
                Some(found) => format!(
                    " (column names are case-sensitive: found {})",
                    quote(found.trim())
                ),
                None => String::new(),
            };
            errors.push(ItemError {
                line,
                col: 0,
                item: None,
                message: format!(
                    "missing column `{name}`: the header row must name `metric`, `time` and `value` (and any labels), e.g. `metric,time,value,county`{hint}"
                ),
            });
        }
    }
    match (metric, time, value, errors.is_empty()) {
        (Some(metric), Some(time), Some(value), true) => Ok(Columns {
            metric,
            time,
            value,
            labels,
            width: record.len(),
        }),
        _ => {
            let total = errors.len();
            errors.truncate(MAX_ERRORS);
            Err(ParseError { errors, total })
        }
    }
}

fn csv_chunk(text: &str, columns: &Columns, tz: Tz) -> Chunk {
    let b = text.as_bytes();
    let mut sink = Sink::new(tz);
    let mut chunk = Chunk::default();
    let mut locator = Locator::new(text);
    let mut reader = csv_reader(text);
    // Whole records are checked to be UTF-8 at once: faster than field by field.
    let mut record = csv::StringRecord::new();
    loop {
        let (at, message) = match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                chunk.items += 1;
                let at = || {
                    let mut off = record.position().map_or(0, |p| p.byte() as usize);
                    // The position may be that of blank lines before the record.
                    while matches!(b.get(off), Some(b'\n' | b'\r')) {
                        off += 1;
                    }
                    off
                };
                if record.len() != columns.width {
                    (
                        at(),
                        format!(
                            "row has {} fields but the header has {}",
                            record.len(),
                            columns.width
                        ),
                    )
                } else {
                    match csv_row(&record, columns, &mut sink) {
                        Ok(()) => continue,
                        Err(problems) => {
                            let k = columns.of(&problems[0].at);
                            (k.map_or(at(), |k| field_start(b, at(), k)), join(&problems))
                        }
                    }
                }
            }
            Err(e) => {
                // Cannot happen (the input is in memory and UTF-8); stop
                // rather than risk reading the same error forever.
                let (line, col) = locator.at(e.position().map_or(0, |p| p.byte() as usize));
                chunk.fail(|| ItemError {
                    line,
                    col,
                    item: None,
                    message: format!("malformed CSV: {e}"),
                });
                break;
            }
        };
        let item = chunk.items - 1;
        chunk.fail(|| {
            let (line, col) = locator.at(at);
            ItemError {
                line,
                col,
                item: Some(item),
                message,
            }
        });
    }
    chunk.lines = count_newlines(b);
    chunk.batch = sink.batch;
    chunk
}

fn cell(record: &csv::StringRecord, i: usize) -> &str {
    record.get(i).unwrap_or("")
}

fn csv_row(
    record: &csv::StringRecord,
    columns: &Columns,
    sink: &mut Sink,
) -> Result<(), Vec<Problem>> {
    let metric = trim(cell(record, columns.metric));
    let time_text = cell(record, columns.time);
    let value_text = trim(cell(record, columns.value));
    let mut problems = Vec::new();
    if let Some((first, message)) = missing([
        ("metric", metric.is_empty()),
        ("value", value_text.is_empty()),
        ("time", trim(time_text).is_empty()),
    ]) {
        problems.push(Problem::new(At::Field(first), message));
    }
    let value = match value_text.parse::<f64>() {
        _ if value_text.is_empty() => None,
        Ok(v) if v.is_finite() => Some(v),
        Ok(_) => {
            problems.push(Problem::new(At::Field("value"), non_finite(value_text)));
            None
        }
        Err(_) => {
            problems.push(Problem::new(
                At::Field("value"),
                format!("value {} is not a number", quote(value_text)),
            ));
            None
        }
    };
    let time = match trim(time_text).is_empty() {
        true => None,
        false => match check_time(sink, time_text) {
            Ok(t) => Some(t),
            Err(message) => {
                problems.push(Problem::new(At::Field("time"), message));
                None
            }
        },
    };
    let (Some(value), Some(time), true) = (value, time, problems.is_empty()) else {
        if !metric.is_empty() {
            problems.extend(name_problems(Some(metric), std::iter::empty()));
        }
        return Err(problems);
    };
    let labels = columns.labels.iter().filter_map(|(i, name)| {
        let v = cell(record, *i);
        (!v.is_empty()).then_some((name.as_str(), v))
    });
    let series = sink.series(metric, labels)?;
    sink.batch.points.push(BatchPoint {
        series,
        time,
        value,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SH: Tz = chrono_tz::Asia::Shanghai;

    fn ok(input: &str, format: Format) -> Batch {
        parse(input.as_bytes(), format, SH).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(input: &[u8], format: Format) -> ParseError {
        match parse(input, format, SH) {
            Ok(b) => panic!("accepted {} readings", b.len()),
            Err(e) => e,
        }
    }

    /// The only error of a rejected input.
    fn only(input: &str, format: Format) -> ItemError {
        let e = err(input.as_bytes(), format);
        assert_eq!((e.total, e.errors.len()), (1, 1), "{e}");
        e.errors[0].clone()
    }

    fn t(s: &str) -> Millis {
        parse_time(s, SH).unwrap()
    }

    fn labels(b: &Batch, i: usize) -> Vec<(&str, &str)> {
        let key = &b.series[b.points[i].series as usize];
        key.labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn metric(b: &Batch, i: usize) -> &str {
        &b.series[b.points[i].series as usize].metric
    }

    // ---- good input ----

    #[test]
    fn json_object() {
        let b = ok(
            r#"{"metric":"pm25","value":48.2,"time":"2021-03-01T10:00:00+08:00","labels":{"county":"南宫"}}"#,
            Format::Json,
        );
        assert_eq!(b.len(), 1);
        assert_eq!(metric(&b, 0), "pm25");
        assert_eq!(b.points[0].value, 48.2);
        assert_eq!(b.points[0].time, t("2021-03-01T10:00:00+08:00"));
        assert_eq!(labels(&b, 0), [("county", "南宫")]);
    }

    #[test]
    fn json_array_with_local_times_and_integers() {
        let b = ok(
            r#"[
              {"metric":"pm25","value":48,"time":"2021-03-01T10:00","labels":{"county":"南宫","station":"s1"}},
              {"labels":{"station":"s1","county":"南宫"},"time":"2021-03-01","value":-1.5e2,"metric":"pm25"},
              {"metric":"gdp_growth","value":6.5,"time":"2021-03-01 09:00:00"},
              {"metric":"x","value":1,"time":"2021-03-01T00:00:00Z","labels":{}}
            ]"#,
            Format::Json,
        );
        assert_eq!(b.len(), 4);
        assert_eq!(b.points[0].time, t("2021-03-01T10:00:00+08:00"));
        assert_eq!(b.points[1].time, t("2021-03-01T00:00:00+08:00"));
        assert_eq!(b.points[2].time, t("2021-03-01T09:00:00+08:00"));
        assert_eq!(b.points[0].value, 48.0);
        assert_eq!(b.points[1].value, -150.0);
        assert_eq!(
            b.points[0].series, b.points[1].series,
            "label order does not matter"
        );
        assert_eq!(labels(&b, 0), [("county", "南宫"), ("station", "s1")]);
        assert!(labels(&b, 2).is_empty());
        assert_eq!(b.series.len(), 3);
    }

    #[test]
    fn json_escapes_and_empty_label_values() {
        let b = ok(
            r#"{"metric":"p\u006d25","value":1,"time":"2021-03-01","labels":{"county":"南\"宫","station":""}}"#,
            Format::Json,
        );
        assert_eq!(metric(&b, 0), "pm25");
        assert_eq!(
            labels(&b, 0),
            [("county", "南\"宫")],
            "an empty value is no label"
        );
    }

    #[test]
    fn ndjson_with_blank_lines_and_crlf() {
        let b = ok(
            "{\"metric\":\"pm25\",\"value\":57.3,\"time\":\"2026-09-28T04:00:00+08:00\",\"labels\":{\"county\":\"c0001\"}}\r\n\
             \r\n   \n\
             {\"metric\":\"pm25\",\"value\":50,\"time\":\"2026-09-28T05:00\",\"labels\":{\"county\":\"c0001\"}}\n",
            Format::Ndjson,
        );
        assert_eq!(b.len(), 2);
        assert_eq!(b.series.len(), 1);
        assert_eq!(b.points[1].time - b.points[0].time, crate::time::HOUR);
    }

    #[test]
    fn csv_with_labels_quotes_and_local_times() {
        let b = ok(
            "\u{feff}value,metric,time,county,section\r\n\
             57.3,pm25,2026-09-28T04:00:00+08:00,c0001,\r\n\
             1e2,pm25,2026-09-28,\"c,0\"\"2\",\r\n\
             3,water_class,2026-09-28 08:00,,\"r\n1\"\r\n",
            Format::Csv,
        );
        assert_eq!(b.len(), 3);
        assert_eq!(labels(&b, 0), [("county", "c0001")]);
        assert_eq!(labels(&b, 1), [("county", "c,0\"2")]);
        assert_eq!(labels(&b, 2), [("section", "r\n1")]);
        assert_eq!(b.points[1].value, 100.0);
        assert_eq!(b.points[1].time, t("2026-09-28T00:00:00+08:00"));
        assert_eq!(b.points[2].time, t("2026-09-28T08:00:00+08:00"));
        assert_eq!(metric(&b, 2), "water_class");
    }

    #[test]
    fn formats_agree_on_series() {
        let json = ok(
            r#"[{"metric":"pm25","value":1,"time":"2021-03-01","labels":{"county":"a","section":""}}]"#,
            Format::Json,
        );
        let csv = ok(
            "metric,time,value,county,section\npm25,2021-03-01,1,a,\n",
            Format::Csv,
        );
        assert_eq!(json.series, csv.series);
        assert_eq!(json.points, csv.points);
    }

    // ---- bad input: one test per case ----

    #[test]
    fn malformed_json_has_serde_position() {
        let e = only("[\n  {\"metric\":\"pm25\" \"value\":1}\n]", Format::Json);
        assert_eq!((e.line, e.col, e.item), (2, 20, None), "{e}");
        assert!(
            e.message.contains("malformed JSON: expected `,` or `}`"),
            "{e}"
        );

        let e = only("{\"metric\":\"南宫\" x}", Format::Json);
        assert_eq!((e.line, e.col), (1, 16), "columns count characters: {e}");

        let e = only(
            "[{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"}",
            Format::Json,
        );
        assert!(e.message.contains("unexpected end of input"), "{e}");

        let e = only(
            "{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"}\n{}",
            Format::Json,
        );
        assert_eq!((e.line, e.col), (2, 1), "{e}");
        assert!(e.message.contains("NDJSON"), "hints at NDJSON: {e}");
    }

    #[test]
    fn malformed_ndjson_line() {
        let input =
            "{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"}\n{\"metric\":\"a\",,}\n";
        let e = only(input, Format::Ndjson);
        assert_eq!((e.line, e.col, e.item), (2, 15, Some(1)), "{e}");
        assert!(e.message.starts_with("malformed JSON"), "{e}");
    }

    #[test]
    fn value_not_a_number() {
        let e = only(
            r#"{"metric":"a","value":"abc","time":"2021-03-01"}"#,
            Format::Json,
        );
        assert_eq!(e.message, "value `abc` is not a number");
        assert_eq!((e.line, e.col), (1, 23), "points at the value: {e}");
        let e = only(
            r#"{"metric":"a","value":"57.3","time":"2021-03-01"}"#,
            Format::Json,
        );
        assert!(
            e.message
                .contains("is a string, not a number: write it without quotes"),
            "{e}"
        );
        let e = only(
            r#"{"metric":"a","value":null,"time":"2021-03-01"}"#,
            Format::Ndjson,
        );
        assert_eq!(e.message, "value must be a number, not `null`");
    }

    #[test]
    fn value_not_finite() {
        let e = only(
            r#"{"metric":"a","value":NaN,"time":"2021-03-01"}"#,
            Format::Ndjson,
        );
        assert_eq!((e.line, e.col, e.item), (1, 23, Some(0)));
        assert!(e.message.starts_with("`NaN` is not a finite number"), "{e}");
        let e = only(
            r#"{"metric":"a","value":-Infinity,"time":"2021-03-01"}"#,
            Format::Ndjson,
        );
        assert!(
            e.message.starts_with("`-Infinity` is not a finite number"),
            "{e}"
        );
        assert_eq!(e.col, 23);
        let e = only(
            r#"[{"metric":"a","value":1e400,"time":"2021-03-01"}]"#,
            Format::Json,
        );
        assert_eq!(e.message, "number `1e400` is out of range");
        assert_eq!(
            (e.line, e.col, e.item),
            (1, 2, Some(0)),
            "element start: {e}"
        );
        let e = only("metric,time,value\na,2021-03-01,inf\n", Format::Csv);
        assert_eq!(e.message, "value `inf` is not a finite number");
        let e = only("metric,time,value\na,2021-03-01,-1e999\n", Format::Csv);
        assert_eq!(e.message, "value `-1e999` is out of range");
    }

    #[test]
    fn missing_time() {
        let e = only(r#"{"metric":"a","value":1}"#, Format::Json);
        assert_eq!(e.message, "missing `time`");
        let e = only(r#"{"value":1}"#, Format::Json);
        assert_eq!(e.message, "missing `metric` and `time`");
        let e = only("metric,time,value\na,,1\n", Format::Csv);
        assert_eq!((e.line, e.col, e.item), (2, 3, Some(0)), "{e}");
        assert_eq!(e.message, "missing `time`");
    }

    #[test]
    fn bad_time() {
        let e = only(
            r#"{"metric":"a","value":1,"time":"2021-13-01"}"#,
            Format::Ndjson,
        );
        assert!(
            e.message
                .starts_with("bad time `2021-13-01`: expected RFC 3339"),
            "{e}"
        );
        assert_eq!(e.col, 32);
        let e = only(
            r#"{"metric":"a","value":1,"time":1614560400}"#,
            Format::Json,
        );
        assert!(e.message.starts_with("`time` must be a string"), "{e}");
        let e = parse(
            br#"{"metric":"a","value":1,"time":"2021-03-14T02:30"}"#,
            Format::Json,
            chrono_tz::America::New_York,
        )
        .unwrap_err();
        assert!(e.errors[0].message.contains("daylight-saving"), "{e}");
    }

    #[test]
    fn missing_metric() {
        let e = only(
            "[{\"metric\":\"a\",\"value\":1,\"time\":\"2021-03-01\"},\n {\"value\":1,\"time\":\"2021-03-01\"}]",
            Format::Json,
        );
        assert_eq!((e.line, e.col, e.item), (2, 2, Some(1)), "{e}");
        assert_eq!(e.message, "missing `metric`");
        let e = only(
            r#"{"metric":"","value":1,"time":"2021-03-01"}"#,
            Format::Json,
        );
        assert_eq!(e.message, "metric name is empty");
    }

    #[test]
    fn bad_metric_name() {
        let e = only(
            r#"{"metric":"pm-25","value":1,"time":"2021-03-01"}"#,
            Format::Ndjson,
        );
        assert_eq!(
            e.message,
            "metric name `pm-25` is invalid: use letters, digits and `_`"
        );
        assert_eq!(e.col, 11);
        let e = only("metric,time,value\n2x,2021-03-01,1\n", Format::Csv);
        assert_eq!(
            e.message,
            "metric name `2x` is invalid: it must not start with a digit"
        );
        assert_eq!((e.line, e.col), (2, 1));
    }

    #[test]
    fn unknown_field() {
        let e = only(
            r#"{"metric":"a","valu":1,"time":"2021-03-01"}"#,
            Format::Ndjson,
        );
        assert_eq!(
            e.message,
            "unknown field `valu` (did you mean `value`?); missing `value`"
        );
        assert_eq!(e.col, 15, "points at the key");
        let e = only(
            r#"{"metric":"a","value":1,"time":"2021-03-01","unit":"%"}"#,
            Format::Json,
        );
        assert!(
            e.message.starts_with("unknown field `unit` (a reading has"),
            "{e}"
        );
        let e = only(
            r#"{"metric":"a","value":1,"value":2,"time":"2021-03-01"}"#,
            Format::Json,
        );
        assert_eq!(e.message, "field `value` is given twice");
    }

    #[test]
    fn label_value_not_a_string() {
        let e = only(
            r#"{"metric":"a","value":1,"time":"2021-03-01","labels":{"county":"x","year":2021}}"#,
            Format::Ndjson,
        );
        assert_eq!(e.message, "label `year` must be a string, not a number");
        assert_eq!(e.col, 68);
        let e = only(
            r#"{"metric":"a","value":1,"time":"2021-03-01","labels":["x"]}"#,
            Format::Json,
        );
        assert!(e.message.starts_with("`labels` must be an object"), "{e}");
    }

    #[test]
    fn bad_label_name() {
        let e = only(
            r#"{"metric":"a","value":1,"time":"2021-03-01","labels":{"county name":"x"}}"#,
            Format::Ndjson,
        );
        assert_eq!(
            e.message,
            "label name `county name` is invalid: use letters, digits and `_`"
        );
        assert_eq!(e.col, 55);
        let e = only(
            r#"{"metric":"a","value":1,"time":"2021-03-01","labels":{"a":"x","a":"y"}}"#,
            Format::Json,
        );
        assert_eq!(e.message, "label `a` is given twice");
        let e = only(
            "metric,time,value,county-name\na,2021-03-01,1,x\n",
            Format::Csv,
        );
        assert_eq!((e.line, e.col, e.item), (1, 19, None));
        assert!(
            e.message
                .starts_with("column name `county-name` is invalid"),
            "{e}"
        );
    }

    #[test]
    fn not_utf8() {
        let mut input = b"metric,time,value,county\n".to_vec();
        input.extend_from_slice(b"pm25,2021-03-01,1,\xc4\xcf\xb9\xac\n"); // 南宫 in GBK
        let e = err(&input, Format::Csv);
        assert_eq!(e.total, 1, "one error per line: {e}");
        assert_eq!((e.errors[0].line, e.errors[0].col), (2, 19));
        assert!(e.errors[0].message.contains("byte 19 of the line"), "{e}");
        let e = err(b"\n\xe5\x8d\x97\xff\n", Format::Ndjson);
        assert_eq!((e.errors[0].line, e.errors[0].col), (2, 2));
        assert!(
            e.errors[0]
                .message
                .contains("byte 4 of the line is `\\xFF`"),
            "{e}"
        );
    }

    #[test]
    fn no_readings() {
        for (input, format) in [
            ("", Format::Json),
            ("  \n\t", Format::Ndjson),
            ("\n\n", Format::Ndjson),
            ("[]", Format::Json),
            (" [ ] ", Format::Json),
            ("metric,time,value,county\n", Format::Csv),
            ("metric,time,value\n\n", Format::Csv),
            ("", Format::Csv),
        ] {
            let e = only(input, format);
            assert_eq!(e.message, "no readings in input", "{input:?}");
        }
    }

    #[test]
    fn csv_missing_value_column() {
        let e = only("metric,time,county\na,2021-03-01,x\n", Format::Csv);
        assert_eq!(e.line, 1);
        assert!(e.message.starts_with("missing column `value`"), "{e}");
        let e = only("metric,time,Value\na,2021-03-01,1\n", Format::Csv);
        assert!(e.message.contains("case-sensitive: found `Value`"), "{e}");
        let e = only("metric,time,value,time\n", Format::Csv);
        assert_eq!((e.line, e.col), (1, 19));
        assert_eq!(e.message, "column `time` appears twice");
    }

    #[test]
    fn csv_wrong_field_count() {
        let e = only(
            "metric,time,value,county\na,2021-03-01,1,x\na,2021-03-02,1\n",
            Format::Csv,
        );
        assert_eq!((e.line, e.col, e.item), (3, 1, Some(1)), "{e}");
        assert_eq!(e.message, "row has 3 fields but the header has 4");
        let e = only(
            "metric,time,value,note\nm,2021-03-01,x,\"a\nb\"\n",
            Format::Csv,
        );
        assert_eq!(e.message, "value `x` is not a number");
        assert_eq!(quote("a\nb"), "`a\\nb`", "an error stays on one line");
        assert_eq!(quote(&"x".repeat(61)).chars().count(), 62);
    }

    #[test]
    fn csv_value_not_a_number() {
        let e = only(
            "metric,time,value\n\na,2021-03-01,1\na,2021-03-02,\"1,5\"\n",
            Format::Csv,
        );
        assert_eq!((e.line, e.col, e.item), (4, 14, Some(1)), "{e}");
        assert_eq!(e.message, "value `1,5` is not a number");
    }

    #[test]
    fn csv_quoted_newline_keeps_lines_right() {
        let e = only(
            "metric,time,value,note\na,2021-03-01,1,\"two\nlines\"\nb-1,2021-03-01,1,x\n",
            Format::Csv,
        );
        assert_eq!((e.line, e.col, e.item), (4, 1, Some(1)), "{e}");
    }

    #[test]
    fn not_an_object() {
        let e = only("[1]", Format::Json);
        assert_eq!(e.message, "a reading must be an object, not a number");
        let e = only("\"x\"", Format::Json);
        assert!(e.message.starts_with("expected a reading object"), "{e}");
    }

    #[test]
    fn every_bad_item_is_reported_and_nothing_returned() {
        let input = [
            r#"{"metric":"a","value":1,"time":"2021-03-01"}"#,
            r#"{"metric":"a","value":"x","time":"2021-03-01"}"#,
            r#"{"metric":"a","value":1,"time":"2021-03-01"}"#,
            r#"{"metric":"a b","value":1,"time":"nope"}"#,
            r#"{"metric":"a","value":1"#,
        ]
        .join("\n");
        let e = err(input.as_bytes(), Format::Ndjson);
        assert_eq!(e.total, 3);
        let at: Vec<_> = e.errors.iter().map(|e| (e.line, e.item)).collect();
        assert_eq!(at, [(2, Some(1)), (4, Some(3)), (5, Some(4))]);
        assert!(
            e.errors[1].message.contains("bad time `nope`")
                && e.errors[1].message.contains("metric name `a b` is invalid"),
            "all problems of an item: {e}"
        );
        assert_eq!(
            e.to_string().lines().next().unwrap(),
            "2:23: item 1: value `x` is not a number"
        );
    }

    #[test]
    fn errors_are_capped_and_counted() {
        let mut input = String::from("metric,time,value\n");
        for _ in 0..250 {
            input.push_str("a,2021-03-01,x\n");
        }
        let e = err(input.as_bytes(), Format::Csv);
        assert_eq!((e.errors.len(), e.total), (MAX_ERRORS, 250));
        assert_eq!(e.errors[99].line, 101);
        assert!(e.to_string().ends_with("… and 150 more"));
    }

    /// NDJSON of `n` readings, with bad ones at the given indices.
    fn ndjson(n: usize, bad: &[usize]) -> String {
        let mut s = String::new();
        for i in 0..n {
            let value = if bad.contains(&i) { "\"bad\"" } else { "1.5" };
            s.push_str(&format!(
                "{{\"metric\":\"pm25\",\"value\":{value},\"time\":\"2026-09-28T{:02}:00:00+08:00\",\"labels\":{{\"county\":\"c{:04}\"}}}}\n",
                i / 100 % 24,
                i % 100
            ));
            if i % 7 == 0 {
                s.push('\n');
            }
        }
        s
    }

    #[test]
    fn threads_keep_order_lines_and_items() {
        let input = ndjson(3000, &[]);
        let one = parse_on(input.as_bytes(), Format::Ndjson, SH, Some(1)).unwrap();
        let three = parse_on(input.as_bytes(), Format::Ndjson, SH, Some(3)).unwrap();
        assert_eq!(one.len(), 3000);
        assert_eq!(one.series.len(), 100);
        let flat = |b: &Batch| -> Vec<_> {
            b.points
                .iter()
                .map(|p| (b.series[p.series as usize].clone(), p.time, p.value))
                .collect()
        };
        assert_eq!(flat(&one), flat(&three));

        let input = ndjson(3000, &[5, 2999]);
        let one = parse_on(input.as_bytes(), Format::Ndjson, SH, Some(1)).unwrap_err();
        let three = parse_on(input.as_bytes(), Format::Ndjson, SH, Some(3)).unwrap_err();
        assert_eq!(one, three);
        assert_eq!(one.errors[1].item, Some(2999));
        assert_eq!(one.errors[1].line, 2999 + 1 + 2999_usize.div_ceil(7));
    }

    #[test]
    fn threads_for_csv_and_json_arrays() {
        let mut csv = String::from("metric,time,value,note\n");
        for i in 0..2000 {
            let note = if i % 3 == 0 { "\"a\nb\"" } else { "x" };
            let value = if i == 1500 { "y" } else { "2" };
            csv.push_str(&format!("m,2021-03-01,{value},{note}\n"));
        }
        let one = parse_on(csv.as_bytes(), Format::Csv, SH, Some(1)).unwrap_err();
        let four = parse_on(csv.as_bytes(), Format::Csv, SH, Some(4)).unwrap_err();
        assert_eq!(one, four);
        assert_eq!(one.errors[0].item, Some(1500));
        assert_eq!(one.errors[0].line, 2 + 1500 + 500);

        let items: Vec<String> = (0..1000)
            .map(|i| {
                let metric = if i == 700 { "7x" } else { "m" };
                format!("{{\"metric\":\"{metric}\",\n\"value\":{i},\"time\":\"2021-03-01\"}}")
            })
            .collect();
        let json = format!("[{}]", items.join(",\n"));
        let one = parse_on(json.as_bytes(), Format::Json, SH, Some(1)).unwrap_err();
        let three = parse_on(json.as_bytes(), Format::Json, SH, Some(3)).unwrap_err();
        assert_eq!(one, three);
        assert_eq!((one.errors[0].item, one.errors[0].line), (Some(700), 1401));
        let json = json.replace("7x", "m7");
        let three = parse_on(json.as_bytes(), Format::Json, SH, Some(3)).unwrap();
        assert!(three
            .points
            .iter()
            .enumerate()
            .all(|(i, p)| p.value == i as f64));
    }

    #[test]
    fn plain_reader_agrees_with_serde() {
        let serde = |text: &str| {
            let mut raw = Raw::default();
            let mut de = serde_json::Deserializer::from_str(text);
            let not_object = ItemSeed(&mut raw).deserialize(&mut de).unwrap();
            de.end().unwrap();
            assert!(not_object.is_none());
            format!("{raw:?}")
        };
        let plain = |text: &str| {
            let mut raw = Raw::default();
            read_plain(text, &mut raw).then(|| format!("{raw:?}"))
        };
        let line = r#"{"metric":"pm25","value":57.3,"time":"2026-09-28T04:00:00+08:00","labels":{"county":"c0001"}}"#;
        assert_eq!(plain(line).as_deref(), Some(serde(line).as_str()));
        let spaced = " {\t\"labels\" : { \"a\" : \"南宫\" , \"b\":\"\" } ,\r\n \"time\":\"t\", \"value\" : -0 , \"metric\":\"m\" } ";
        assert_eq!(plain(spaced), Some(serde(spaced)));
        for number in [
            "0",
            "-0",
            "-0.0",
            "1e5",
            "1E+5",
            "-2.5e-3",
            "0.1",
            "57.3",
            "3.141592653589793",
            "1e-7",
            "9007199254740993",
            "18446744073709551615",
            "-9223372036854775808",
            "1.7976931348623157e308",
            "5e-324",
        ] {
            let text = format!(r#"{{"value":{number},"labels":{{}}}}"#);
            assert_eq!(plain(&text), Some(serde(&text)), "{number}");
        }
        for not_plain in [
            r#"{"metric":"a\"b"}"#,
            r#"{"metric":"a","valu":1}"#,
            r#"{"metric":"a","metric":"b"}"#,
            r#"{"labels":null}"#,
            r#"{"labels":{"a":1}}"#,
            r#"{"value":"1"}"#,
            r#"{"value":NaN}"#,
            r#"{"value":01}"#,
            r#"{"value":1.}"#,
            r#"{"value":.5}"#,
            r#"{"value":+1}"#,
            r#"{"value":1e}"#,
            r#"{"value":1e400}"#,
            r#"{"value":1,}"#,
            r#"{"value":1} x"#,
            r#"{}"#,
            r#"[]"#,
            "{\"metric\":\"a\tb\"}",
        ] {
            assert_eq!(plain(not_plain), None, "{not_plain}");
        }
    }

    #[test]
    fn quoting_cuts() {
        let b = b"a,\"x\ny\",c\nd,e\"f,g\n";
        assert_eq!(csv_cut(b, 0, 3), Some(10), "not inside the quotes");
        assert_eq!(
            csv_cut(b, 0, 12),
            Some(18),
            "a quote inside a field is literal"
        );
        assert_eq!(record_end(b, 0), 10);
        assert_eq!(field_start(b, 0, 2), 8);
        assert_eq!(field_start(b, 10, 2), 16);
    }
}
