//! What the fuzz targets share: a reference reading of each readings format
//! built only on `serde_json` and the `csv` crate, and the checks that compare
//! rulewatch's parser (its hand-written fast paths, its serde visitors and its
//! cutting of the input for threads) against it.
//!
//! The reference is the contract written the simplest way: it decides which
//! inputs are accepted and what readings they hold. Error wording and places
//! are not compared (only checked to be sane), since the reference has none.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use chrono_tz::Tz;
use rulewatch::readings::model::{MAX_LABELS, MAX_LABEL_VALUE_BYTES, MAX_NAME_BYTES};
use rulewatch::readings::parse::{parse_with_threads, MAX_ERRORS};
use rulewatch::readings::{Batch, Format, ParseError};
use rulewatch::time::parse_time;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The zone local times are read in.
pub const TZ: Tz = chrono_tz::Asia::Shanghai;

/// One reading, as both sides see it.
#[derive(Debug, Clone)]
pub struct Reading {
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    pub time: i64,
    pub value: f64,
}

impl PartialEq for Reading {
    fn eq(&self, other: &Self) -> bool {
        self.metric == other.metric
            && self.labels == other.labels
            && self.time == other.time
            && same_number(self.value, other.value)
    }
}

/// Equal, or one unit in the last place apart: the parser's fast path reads
/// numbers with the standard library (always correctly rounded), serde_json
/// without its `float_roundtrip` feature may be one unit off.
fn same_number(a: f64, b: f64) -> bool {
    a == b || (a.signum() == b.signum() && a.to_bits().abs_diff(b.to_bits()) <= 1)
}

/// The readings of a parsed batch, in order.
pub fn readings(batch: &Batch) -> Vec<Reading> {
    batch
        .points
        .iter()
        .map(|p| {
            let key = &batch.series[p.series as usize];
            Reading {
                metric: key.metric.clone(),
                labels: key.labels.clone(),
                time: p.time,
                value: p.value,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The checks each readings target runs.

/// Parses `input` on one thread and cut into three pieces, and checks: both
/// give the same; errors are sane; and the result agrees with the reference.
pub fn check_readings(input: &[u8], format: Format) {
    let one = parse_with_threads(input, format, TZ, 1);
    let three = parse_with_threads(input, format, TZ, 3);
    match (&one, &three) {
        (Ok(a), Ok(b)) => assert_eq!(readings(a), readings(b), "threads changed the readings"),
        (Err(a), Err(b)) => assert_eq!(a, b, "threads changed the errors"),
        _ => panic!("threads changed acceptance: one thread {one:?}, three {three:?}"),
    }
    if let Err(e) = &one {
        check_error(input, e);
    }
    let expected = reference(input, format);
    match (&one, &expected) {
        (Ok(batch), Some(want)) => {
            let got = readings(batch);
            assert_eq!(got.len(), want.len(), "number of readings");
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert_eq!(g, w, "reading {i} differs from the reference");
            }
        }
        (Err(_), None) => {}
        (Ok(batch), None) => panic!(
            "accepted {} readings the reference rejects: {:?}",
            batch.len(),
            readings(batch)
        ),
        (Err(e), Some(want)) => panic!(
            "rejected {} readings the reference accepts: {e}",
            want.len()
        ),
    }
}

/// An error lists at least one problem, at most [`MAX_ERRORS`], counts them
/// all, and points at lines that exist.
fn check_error(input: &[u8], e: &ParseError) {
    assert!(!e.errors.is_empty(), "an error without problems");
    assert!(
        e.errors.len() <= MAX_ERRORS,
        "more problems listed than the cap"
    );
    assert!(e.total >= e.errors.len(), "total below the problems listed");
    let lines = input.iter().filter(|&&c| c == b'\n').count() + 1;
    for item in &e.errors {
        assert!(item.line <= lines, "line {} of {lines}: {item}", item.line);
        assert!(!item.message.is_empty());
        assert!(
            !item.message.contains('\n'),
            "a problem is one line: {item}"
        );
    }
    let _ = e.to_string();
}

// ---------------------------------------------------------------------------
// The reference.

/// What the input holds by the contract, or `None` if it must be rejected.
pub fn reference(input: &[u8], format: Format) -> Option<Vec<Reading>> {
    let text = std::str::from_utf8(input).ok()?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return None;
    }
    let out = match format {
        Format::Json => reference_json(text)?,
        Format::Ndjson => reference_ndjson(text)?,
        Format::Csv => reference_csv(text)?,
    };
    (!out.is_empty()).then_some(out)
}

fn reference_json(text: &str) -> Option<Vec<Reading>> {
    if has_duplicate_keys(text) {
        return None;
    }
    match serde_json::from_str::<Value>(text).ok()? {
        Value::Array(items) => items.iter().map(json_reading).collect(),
        item @ Value::Object(_) => Some(vec![json_reading(&item)?]),
        _ => None,
    }
}

/// One object per line; lines of only whitespace are skipped.
fn reference_ndjson(text: &str) -> Option<Vec<Reading>> {
    text.split('\n')
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            if has_duplicate_keys(line) {
                return None;
            }
            json_reading(&serde_json::from_str::<Value>(line).ok()?)
        })
        .collect()
}

/// `{"metric": name, "value": number, "time": time, "labels": {name: string}}`,
/// `labels` optional (or null); an empty label value is no label.
fn json_reading(v: &Value) -> Option<Reading> {
    let obj = v.as_object()?;
    if obj
        .keys()
        .any(|k| !matches!(k.as_str(), "metric" | "value" | "time" | "labels"))
    {
        return None;
    }
    let metric = obj.get("metric")?.as_str()?;
    let value = obj.get("value")?.as_f64()?;
    let time = parse_time(obj.get("time")?.as_str()?, TZ).ok()?;
    let mut labels = Vec::new();
    match obj.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, v) in map {
                labels.push((name.as_str(), v.as_str()?));
            }
        }
        Some(_) => return None,
    }
    reading(metric, labels, time, value)
}

/// Checks names and sizes; empty label values dropped.
fn reading(metric: &str, labels: Vec<(&str, &str)>, time: i64, value: f64) -> Option<Reading> {
    if !valid_name(metric) || !value.is_finite() {
        return None;
    }
    let mut out = BTreeMap::new();
    for (name, v) in labels.into_iter().filter(|(_, v)| !v.is_empty()) {
        if !valid_name(name) || v.len() > MAX_LABEL_VALUE_BYTES {
            return None;
        }
        out.insert(name.to_owned(), v.to_owned());
    }
    if out.len() > MAX_LABELS {
        return None;
    }
    Some(Reading {
        metric: metric.to_owned(),
        labels: out,
        time,
        value,
    })
}

/// `[A-Za-z_][A-Za-z0-9_]*`, at most [`MAX_NAME_BYTES`].
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_BYTES
        && !b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// A header naming `metric`, `time`, `value` once each and labels; every row
/// as wide as the header; cells of `metric`, `time` and `value` trimmed.
fn reference_csv(text: &str) -> Option<Vec<Reading>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = records.next()?.ok()?;
    let names: Vec<&str> = header.iter().map(str::trim).collect();
    let column = |want: &str| {
        let found: Vec<usize> = (0..names.len()).filter(|&i| names[i] == want).collect();
        (found.len() == 1).then(|| found[0])
    };
    let (metric, time, value) = (column("metric")?, column("time")?, column("value")?);
    let mut labels = Vec::new();
    let mut seen = HashSet::new();
    for (i, name) in names.iter().enumerate() {
        if matches!(*name, "metric" | "time" | "value") {
            continue;
        }
        if !valid_name(name) || !seen.insert(*name) {
            return None;
        }
        labels.push((i, *name));
    }
    let mut out = Vec::new();
    for record in records {
        let record = record.ok()?;
        if record.len() != names.len() {
            return None;
        }
        let m = record[metric].trim();
        let v: f64 = record[value].trim().parse().ok()?;
        let t = parse_time(&record[time], TZ).ok()?;
        let l = labels.iter().map(|&(i, name)| (name, &record[i])).collect();
        out.push(reading(m, l, t, v)?);
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// serde_json keeps the last of duplicate keys; the contract rejects them.

/// Whether some object in the JSON `text` has a key twice (false if not JSON).
fn has_duplicate_keys(text: &str) -> bool {
    let mut de = serde_json::Deserializer::from_str(text);
    matches!(NoDuplicates::deserialize(&mut de), Err(e) if e.to_string().starts_with(DUPLICATE))
}

const DUPLICATE: &str = "duplicate key";

struct NoDuplicates;

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicates)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = NoDuplicates;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key) {
                return Err(de::Error::custom(DUPLICATE));
            }
            map.next_value::<NoDuplicates>()?;
        }
        Ok(self)
    }
}

// ---------------------------------------------------------------------------
// The other targets: problems must render against their source.

/// Renders every diagnostic with its source text (places must exist in it).
pub fn render_all(problems: &[rulewatch::diag::Diagnostic], source: &str) {
    for d in problems {
        let _ = d.render_with(Some(source));
        let _ = d.to_string();
    }
}
