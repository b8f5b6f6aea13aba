//! CSV readings: a header row naming `metric`, `time`, `value` and label
//! columns; RFC 4180 quoting as the csv crate reads it.

use std::io::{Chain, Read};

use chrono_tz::Tz;

use crate::readings::model::{BatchPoint, ItemError, ParseError};
use crate::readings::store::KnownSeries;

use super::errors::{
    check_time, field_zh, join, missing, name_problem, name_problems, non_finite, one_error, quote,
    trim, At, Locator, Problem,
};
use super::{
    count_newlines, memchr_newline, run_parallel, split_records, threads_for, Chunk, Sink,
    MAX_ERRORS,
};

/// The header: where each column is.
struct Columns {
    pub(super) metric: usize,
    pub(super) time: usize,
    pub(super) value: usize,
    /// (column, label name), in column order.
    pub(super) labels: Vec<(usize, String)>,
    pub(super) width: usize,
}

impl Columns {
    pub(super) fn of(&self, at: &At) -> Option<usize> {
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
pub(super) enum Quoting {
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
    pub(super) fn step(self, c: u8) -> Quoting {
        match (self, c) {
            (Quoting::Quoted, b'"') => Quoting::QuoteInQuoted,
            (Quoting::Quoted, _) => Quoting::Quoted,
            (Quoting::QuoteInQuoted, b'"') => Quoting::Quoted,
            (Quoting::Start, b'"') => Quoting::Quoted,
            // The csv crate ends a record at LF, CRLF or a lone CR.
            (_, b',' | b'\n' | b'\r') => Quoting::Start,
            _ => Quoting::Field,
        }
    }
}

/// Just past the line break ending the record that starts at `start` (or
/// the end). A break is LF, CRLF or a lone CR, as the csv crate reads them:
/// taking only LF would join a header ending in a lone CR with the rows after
/// it, and those rows were then silently dropped.
pub(super) fn record_end(b: &[u8], start: usize) -> usize {
    let mut q = Quoting::Start;
    for (i, &c) in b.iter().enumerate().skip(start) {
        if q != Quoting::Quoted {
            match c {
                b'\n' => return i + 1,
                b'\r' if b.get(i + 1) == Some(&b'\n') => return i + 2,
                b'\r' => return i + 1,
                _ => {}
            }
        }
        q = q.step(c);
    }
    b.len()
}

/// A cut at or after `target` that ends a record, for a piece starting at
/// record start `start`.
pub(super) fn csv_cut(b: &[u8], start: usize, target: usize) -> Option<usize> {
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
pub(super) fn field_start(b: &[u8], start: usize, k: usize) -> usize {
    if k == 0 {
        return start;
    }
    let mut q = Quoting::Start;
    let mut field = 0;
    for (i, &c) in b.iter().enumerate().skip(start) {
        if q != Quoting::Quoted {
            if c == b'\n' || c == b'\r' {
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

type CsvReader<'a> = ::csv::Reader<Chain<&'a [u8], &'a [u8]>>;

/// A reader of `text`, a part of the input starting at a record, and how many
/// bytes its positions are ahead of `text`'s. The csv crate skips a
/// byte-order mark at the start of what it reads; at the start of the input
/// (`input_start`) that is what the whole input read at once gives, but
/// elsewhere (the rows after the header, pieces cut for threads) it silently
/// dropped a mark that is data there: a row was then read one way on one
/// thread and another way on several. So elsewhere the reader starts at a
/// blank line (skipped) before a mark.
fn csv_reader(text: &str, input_start: bool) -> (CsvReader<'_>, usize) {
    let shift = usize::from(!input_start && text.starts_with('\u{feff}'));
    let reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(b"\n"[..shift].chain(text.as_bytes()));
    (reader, shift)
}

pub(super) fn parse_csv(
    text: &str,
    tz: Tz,
    threads: Option<usize>,
    known: Option<&KnownSeries>,
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
    let chunks = run_parallel(&pieces, |piece| csv_chunk(piece, &columns, tz, known));
    Ok((chunks, count_newlines(&b[..header_end])))
}

fn csv_header(text: &str, from: usize, to: usize) -> Result<Columns, ParseError> {
    let b = text.as_bytes();
    let mut record = ::csv::StringRecord::new();
    let mut locator = Locator::new(text);
    let (line, _) = locator.at(from);
    if let Err(e) = csv_reader(&text[from..to], from == 0)
        .0
        .read_record(&mut record)
    {
        return Err(one_error(
            line,
            0,
            format!("CSV 表头格式有误，请检查引号是否成对 / malformed CSV header: {e}"),
        ));
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
                    fail(
                        k,
                        format!(
                            "表头第 {} 列没有列名，请填写列名或删去这一列 / column {} has no name",
                            k + 1,
                            k + 1
                        ),
                    );
                } else if labels.iter().any(|(_, n)| n == name) {
                    fail(
                        k,
                        format!(
                            "列名 {} 出现了两次，请删去或改名其中一列 / column {} appears twice",
                            quote(name),
                            quote(name)
                        ),
                    );
                } else if let Some((zh, en)) = name_problem("column", name) {
                    fail(
                        k,
                        format!(
                            "{zh}；`metric`、`time`、`value` 以外的列都是标签，列名就是标签名 / {en} (columns other than `metric`, `time` and `value` are labels)"
                        ),
                    );
                } else {
                    labels.push((k, name.to_owned()));
                }
                continue;
            }
        };
        if slot.replace(k).is_some() {
            fail(
                k,
                format!("列名 `{name}` 出现了两次，请删去其中一列 / column `{name}` appears twice"),
            );
        }
    }
    for (name, slot) in [("metric", metric), ("time", time), ("value", value)] {
        if slot.is_none() {
            let (hint_zh, hint) = match record.iter().find(|n| n.trim().eq_ignore_ascii_case(name))
            {
                Some(found) => (
                    format!(
                        "；列名区分大小写，表头里写的是 {}，请改为小写 `{name}`",
                        quote(found.trim())
                    ),
                    format!(
                        " (column names are case-sensitive: found {})",
                        quote(found.trim())
                    ),
                ),
                None => (String::new(), String::new()),
            };
            errors.push(ItemError {
                line,
                col: 0,
                item: None,
                message: format!(
                    "表头缺少 `{name}` 列（{}）：第一行须写明 `metric`、`time`、`value` 三列（其余列是标签），如 `metric,time,value,county`{hint_zh} / \
                     missing column `{name}`: the header row must name `metric`, `time` and `value` (and any labels), e.g. `metric,time,value,county`{hint}",
                    field_zh(name)
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

fn csv_chunk(text: &str, columns: &Columns, tz: Tz, known: Option<&KnownSeries>) -> Chunk {
    let b = text.as_bytes();
    // Labels come in column order: a series is found among the known ones
    // only when the columns are in name order (else it is built, as ever).
    let mut sink = Sink::new(tz, known);
    let mut chunk = Chunk::default();
    let mut locator = Locator::new(text);
    let (mut reader, shift) = csv_reader(text, false);
    // Whole records are checked to be UTF-8 at once: faster than field by field.
    let mut record = ::csv::StringRecord::new();
    loop {
        let (at, message) = match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                chunk.items += 1;
                let at = || {
                    let mut off = record
                        .position()
                        .map_or(0, |p| p.byte() as usize)
                        .saturating_sub(shift);
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
                            "这一行有 {} 格，表头有 {} 列，请补齐或删去多余的格（含逗号的内容要用双引号括起） / row has {} fields but the header has {}",
                            record.len(),
                            columns.width,
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
                let off = e.position().map_or(0, |p| p.byte() as usize);
                let (line, col) = locator.at(off.saturating_sub(shift));
                chunk.fail(|| ItemError {
                    line,
                    col,
                    item: None,
                    message: format!("CSV 格式有误 / malformed CSV: {e}"),
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

pub(super) fn cell(record: &::csv::StringRecord, i: usize) -> &str {
    record.get(i).unwrap_or("")
}

fn csv_row(
    record: &::csv::StringRecord,
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
                (
                    format!(
                        "数值 {} 不是数，请填写数字（如 `48`、`4.5`）",
                        quote(value_text)
                    ),
                    format!("value {} is not a number", quote(value_text)),
                ),
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
