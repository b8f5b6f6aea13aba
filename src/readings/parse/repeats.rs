//! Readings repeated within one batch: the same series and time twice.
//!
//! The same value twice is harmless (a file concatenated with itself, a
//! re-sent line): it is kept once. Two *different* values for one series and
//! time are a mistake the sender must resolve (which one is right?), so the
//! batch is rejected naming both places, as any bad reading rejects it.
//!
//! Cheap in the usual case: data arrives time by time, so each series'
//! times only grow and one pass proves there is no repeat. Only otherwise
//! are the readings sorted, and only on a conflict is the input scanned
//! again for line numbers.

use crate::readings::model::{Batch, Format, ItemError, ParseError};

use super::csv::record_end;
use super::errors::{quote, Locator};
use super::json::{skip_value, skip_ws};
use super::MAX_ERRORS;

/// Where a piece of a larger input starts (a file read in chunks): the
/// lines and readings before it, so the places named are the file's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Before {
    pub lines: usize,
    pub items: usize,
}

/// `batch` with readings repeated with the same value kept once, or the
/// conflicts (two values for one series and time), every one named.
pub(super) fn check(
    mut batch: Batch,
    text: &str,
    format: Format,
    before: Before,
) -> Result<Batch, ParseError> {
    if times_only_grow(&batch) {
        return Ok(batch);
    }
    let points = &batch.points;
    let mut order: Vec<u32> = (0..points.len() as u32).collect();
    order.sort_unstable_by_key(|&i| {
        let p = &points[i as usize];
        (p.series, p.time, i)
    });
    let mut repeated = vec![false; points.len()];
    let mut conflicts: Vec<(usize, usize)> = Vec::new();
    // Each reading is compared with the first of its series and time.
    let mut first = 0usize;
    for (k, &i) in order.iter().enumerate() {
        let (a, b) = (&points[order[first] as usize], &points[i as usize]);
        if k == 0 || a.series != b.series || a.time != b.time {
            first = k;
            continue;
        }
        repeated[i as usize] = true;
        if a.value.to_bits() != b.value.to_bits() && a.value != b.value {
            conflicts.push((order[first] as usize, i as usize));
        }
    }
    if conflicts.is_empty() {
        let mut k = 0;
        batch.points.retain(|_| {
            k += 1;
            !repeated[k - 1]
        });
        return Ok(batch);
    }
    // Named in the order they appear in the input.
    conflicts.sort_unstable_by_key(|&(_, second)| second);
    let lines = item_lines(text, format);
    let line = |i: usize| lines.get(i).map_or(0, |l| l + before.lines);
    let total = conflicts.len();
    let errors = conflicts
        .into_iter()
        .take(MAX_ERRORS)
        .map(|(first, second)| {
            let (l1, l2) = (line(first), line(second));
            let i1 = first + before.items + 1;
            let (v1, v2) = (points[first].value, points[second].value);
            let key = &batch.series[points[first].series as usize];
            let what = quote(&key.metric);
            ItemError {
                line: l2,
                col: 0,
                item: Some(second + before.items),
                message: format!(
                    "与第{l1}行（第{i1}项）重复：同一指标 {what}、同一对象、同一时间报了两个不同的值 {v1} 和 {v2}，请只保留正确的一条 / \
                     repeats line {l1} (item {i1}): two different values ({v1} and {v2}) for one metric {what}, labels and time; keep only the right one"
                ),
            }
        })
        .collect();
    Err(ParseError { errors, total })
}

/// Whether every series' readings come in strictly increasing time: then no
/// series and time is repeated.
fn times_only_grow(batch: &Batch) -> bool {
    let mut last = vec![i64::MIN; batch.series.len()];
    batch.points.iter().all(|p| {
        let l = &mut last[p.series as usize];
        let grows = p.time > *l;
        *l = p.time;
        grows
    })
}

/// The 1-based line each reading of a good input starts on.
fn item_lines(text: &str, format: Format) -> Vec<usize> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let b = text.as_bytes();
    let mut locator = Locator::new(text);
    match format {
        Format::Json => {
            let start = skip_ws(b, 0);
            if b.get(start) != Some(&b'[') {
                return vec![locator.at(start).0];
            }
            // The array was checked when parsed: walk its elements.
            let mut lines = Vec::new();
            let mut i = skip_ws(b, start + 1);
            while let Some(end) = skip_value(b, i) {
                lines.push(locator.at(i).0);
                i = skip_ws(b, end);
                if b.get(i) != Some(&b',') {
                    break;
                }
                i = skip_ws(b, i + 1);
            }
            lines
        }
        Format::Ndjson => text
            .split('\n')
            .enumerate()
            .filter(|(_, l)| l.starts_with('{') || !l.trim().is_empty())
            .map(|(n, _)| n + 1)
            .collect(),
        Format::Csv => {
            let mut lines = Vec::new();
            let mut at = b
                .iter()
                .position(|&c| c != b'\n' && c != b'\r')
                .unwrap_or(b.len());
            at = record_end(b, at); // past the header
            while at < b.len() {
                let end = record_end(b, at);
                let blank = b[at..end].iter().all(|&c| c == b'\n' || c == b'\r');
                if !blank {
                    lines.push(locator.at(at).0);
                }
                at = end;
            }
            lines
        }
    }
}
