//! Ingesting a whole file or stream: parsed in chunks of whole lines so a
//! file of any size is stored with bounded memory, all in one transaction.

use std::io::Read;

use chrono_tz::Tz;

use super::model::{Format, ItemError, ParseError};
use super::parse::{count_newlines, csv_header_end, csv_last_newline, parse, parse_at, Before};
use super::store::{ReadingStoreError, Store, WriteSummary};

/// 8 MiB of input per chunk: ~90k readings, large enough that per-chunk
/// overhead vanishes, small enough to keep memory flat.
const CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// Readings per series a chunk should hold. Some costs are paid once per
/// series per chunk (building and looking up its key, resolving its id,
/// adding to its open day block); with time-ordered data every chunk holds
/// every series, so at a fixed chunk size those costs per reading grew with
/// the number of series (ingest of 10,000 series ran at half the rate of
/// 2,000). Chunks grow with the series count instead, up to
/// [`MAX_CHUNK_BYTES`].
const READINGS_PER_SERIES: usize = 96;

/// The largest chunk: memory stays bounded however many series there are.
const MAX_CHUNK_BYTES: usize = 64 * 1024 * 1024;

/// The size of the next chunk after one of `bytes` holding `readings` of
/// `series` series.
fn next_chunk_bytes(bytes: usize, readings: usize, series: usize) -> usize {
    let per_reading = bytes / readings.max(1);
    per_reading
        .saturating_mul(series)
        .saturating_mul(READINGS_PER_SERIES)
        .clamp(CHUNK_BYTES, MAX_CHUNK_BYTES)
}

/// Caps the errors kept across chunks, as the parser caps them per chunk.
const MAX_ERRORS: usize = 100;
/// The longest record (line; for CSV, with its quoted line breaks) read
/// whole before giving up: no reading is this long, and a stray opening
/// quote in a CSV makes the rest of the file one record.
const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Rejected(ParseError),
    #[error(transparent)]
    Store(#[from] ReadingStoreError),
    #[error("cannot read input: {0}")]
    Io(#[from] std::io::Error),
}

/// Guesses the format of unnamed input (stdin) from its first bytes.
pub fn sniff_format(head: &[u8]) -> Format {
    let first = head.iter().copied().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'[') => Format::Json,
        Some(b'{') => {
            // One object per line, or one object over many lines?
            let line = head.split(|&b| b == b'\n').next().unwrap_or(head);
            if serde_json::from_slice::<serde_json::Value>(line).is_ok() {
                Format::Ndjson
            } else {
                Format::Json
            }
        }
        _ => Format::Csv,
    }
}

/// Reads `input` to the end and stores every reading in one transaction;
/// on any bad reading nothing is stored and every error found is returned.
/// `progress` is called with the number of bytes consumed so far.
pub fn ingest(
    store: &Store,
    mut input: impl Read,
    format: Format,
    tz: Tz,
    mut progress: impl FnMut(u64),
) -> Result<WriteSummary, IngestError> {
    if format == Format::Json {
        // A JSON document cannot be cut at line ends: parse it whole.
        let mut all = Vec::new();
        input.read_to_end(&mut all)?;
        let batch = parse(&all, format, tz).map_err(IngestError::Rejected)?;
        progress(all.len() as u64);
        return Ok(store.write(&batch)?);
    }

    let mut tx = store.begin()?;
    let mut errors: Vec<ItemError> = Vec::new();
    let mut total_errors = 0;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_BYTES + 64 * 1024);
    let mut header: Option<Vec<u8>> = None; // CSV header, repeated before each later chunk
    let mut lines_before = 0usize; // input lines before the current chunk
    let mut items_before = 0usize; // readings before the current chunk
    let mut consumed = 0u64;
    let mut eof = false;
    let mut any_input = false;
    let mut chunk_bytes = CHUNK_BYTES;
    while !eof {
        // Fill the buffer up to the chunk size, allocated once (growing it
        // by doubling copied the chunk over and over).
        buf.reserve((chunk_bytes + 256 * 1024).saturating_sub(buf.len()));
        while buf.len() < chunk_bytes {
            let start = buf.len();
            buf.resize(start + 256 * 1024, 0);
            let n = input.read(&mut buf[start..])?;
            buf.truncate(start + n);
            if n == 0 {
                eof = true;
                break;
            }
        }
        let cut = if eof {
            buf.len()
        } else {
            match safe_cut(&buf, format) {
                Some(i) => i + 1,
                // One record longer than the chunk: read more (the chunk
                // doubles to hold it, so the search for a cut reads each
                // byte a few times, not once per 256 KiB read), up to a bound.
                None if buf.len() < MAX_RECORD_BYTES => {
                    chunk_bytes = (buf.len() * 2)
                        .clamp(buf.len() + 256 * 1024, MAX_RECORD_BYTES + 256 * 1024);
                    continue;
                }
                None => {
                    drop(tx); // rolls back
                    let line = lines_before + 1;
                    let quote = if format == Format::Csv {
                        "，或 CSV 里有一个引号 \" 没有配对（其后的内容都被当成了同一格）"
                    } else {
                        ""
                    };
                    return Err(IngestError::Rejected(ParseError {
                        errors: vec![ItemError {
                            line,
                            col: 0,
                            item: None,
                            message: format!(
                                "从第 {line} 行起的一条记录超过 {} MiB，没有换行{quote}：请检查文件是否完整 / the record starting on line {line} is over {} MiB long without a line break (an unclosed quote in a CSV?)",
                                MAX_RECORD_BYTES >> 20,
                                MAX_RECORD_BYTES >> 20
                            ),
                        }],
                        total: 1,
                    }));
                }
            }
        };
        let rest = buf.split_off(cut);
        let mut chunk = std::mem::replace(&mut buf, rest);
        consumed += chunk.len() as u64;
        let chunk_lines =
            count_newlines(&chunk) + usize::from(!chunk.ends_with(b"\n") && !chunk.is_empty());
        if chunk.iter().any(|b| !b.is_ascii_whitespace()) {
            any_input = true;
        }

        // CSV: the first chunk holds the header; later chunks get it prepended.
        let mut line_offset = lines_before;
        if format == Format::Csv {
            match &header {
                None => {
                    // Where the parser ends it: a lone CR ends it too.
                    header = Some(chunk[..csv_header_end(&chunk)].to_vec());
                }
                Some(h) => {
                    let mut with_header = Vec::with_capacity(h.len() + 1 + chunk.len());
                    with_header.extend_from_slice(h);
                    if !with_header.ends_with(b"\n") {
                        with_header.push(b'\n');
                    }
                    // The repeated header (and any blank lines before it)
                    // are the chunk's first lines.
                    line_offset -= count_newlines(&with_header);
                    with_header.extend_from_slice(&chunk);
                    chunk = with_header;
                }
            }
        }
        // A blank chunk (an empty file, or blank lines at the end) holds no
        // readings and no errors; an input with nothing at all in it gets
        // one error below, not one per empty chunk.
        let is_blank = chunk.iter().all(|b| b.is_ascii_whitespace());
        let chunk_is_header_only = format == Format::Csv
            && lines_before > 0
            && chunk
                .split(|&b| b == b'\n')
                .skip(1)
                .all(|l| l.iter().all(|b| b.is_ascii_whitespace()));
        if !is_blank && !chunk_is_header_only {
            let before = Before {
                lines: line_offset,
                items: items_before,
            };
            match parse_at(&chunk, format, tz, before) {
                Ok((batch, items)) => {
                    chunk_bytes = next_chunk_bytes(chunk.len(), items, batch.series.len());
                    if total_errors == 0 {
                        tx.add(&batch)?;
                    }
                    items_before += items;
                }
                Err(e) => {
                    total_errors += e.total;
                    let room = MAX_ERRORS.saturating_sub(errors.len());
                    errors.extend(e.errors.into_iter().take(room));
                    // Keep counting items so later indices stay right.
                    items_before += count_items(&chunk, format);
                }
            }
        }
        lines_before += chunk_lines;
        progress(consumed);
    }
    if !any_input {
        total_errors += 1;
        errors.push(ItemError {
            line: 0,
            col: 0,
            item: None,
            message: super::parse::NO_READINGS.into(),
        });
    }
    if total_errors > 0 {
        drop(tx); // rolls back
        return Err(IngestError::Rejected(ParseError {
            errors,
            total: total_errors,
        }));
    }
    Ok(tx.commit()?)
}

/// Readings in a chunk that failed to parse, for the item numbers of later
/// chunks: non-blank lines (NDJSON), records after the header (CSV).
fn count_items(chunk: &[u8], format: Format) -> usize {
    match format {
        Format::Ndjson => chunk
            .split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()))
            .count(),
        _ => {
            let mut in_quotes = false;
            let mut records = 0;
            let mut blank = true;
            for &b in chunk {
                match b {
                    b'"' => in_quotes = !in_quotes,
                    b'\n' if !in_quotes => {
                        records += usize::from(!blank);
                        blank = true;
                        continue;
                    }
                    _ => {}
                }
                blank &= b.is_ascii_whitespace();
            }
            records += usize::from(!blank);
            records.saturating_sub(1) // the header
        }
    }
}

/// Index of the last newline in `buf` that ends a whole record: for CSV, one
/// outside a quoted field as the parser reads quotes (toggling at every `"`
/// took a literal quote in an unquoted field, `5"`, for an opening one, and a
/// valid file over one chunk was then cut inside a quoted field and refused).
fn safe_cut(buf: &[u8], format: Format) -> Option<usize> {
    if format != Format::Csv {
        return memchr::memrchr(b'\n', buf);
    }
    csv_last_newline(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_grow_with_the_series_count() {
        // 2,000 series of 43-byte lines: the base size holds ~95 each.
        assert_eq!(
            next_chunk_bytes(CHUNK_BYTES, CHUNK_BYTES / 43, 2_000),
            CHUNK_BYTES
        );
        let at_10k = next_chunk_bytes(CHUNK_BYTES, CHUNK_BYTES / 43, 10_000);
        assert!(
            at_10k > 4 * CHUNK_BYTES && at_10k <= MAX_CHUNK_BYTES,
            "{at_10k}"
        );
        assert_eq!(
            next_chunk_bytes(CHUNK_BYTES, 10, 1_000_000),
            MAX_CHUNK_BYTES
        );
        assert_eq!(next_chunk_bytes(0, 0, 0), CHUNK_BYTES);
    }

    #[test]
    fn sniffs_formats() {
        assert_eq!(sniff_format(b"  [{\"a\":1}]"), Format::Json);
        assert_eq!(sniff_format(b"{\"a\":1}\n{\"a\":2}"), Format::Ndjson);
        assert_eq!(sniff_format(b"{\n \"a\": 1\n}"), Format::Json);
        assert_eq!(sniff_format(b"metric,time,value\n"), Format::Csv);
    }

    #[test]
    fn csv_cuts_outside_quotes() {
        let b = b"a,\"x\ny\"\nb,c\n\"open\n";
        assert_eq!(safe_cut(b, Format::Csv), Some(11));
        // Without any quote: the last LF (the fast path).
        assert_eq!(safe_cut(b"a,b\nc,d\ne", Format::Csv), Some(7));
        assert_eq!(safe_cut(b"a,b,c", Format::Csv), None);
        assert_eq!(safe_cut(b, Format::Ndjson), Some(17));
        // A quote inside an unquoted field is a literal, not an opening one.
        assert_eq!(safe_cut(b"a,5\"\nb,\"x\ny\"\nc\n", Format::Csv), Some(14));
        assert_eq!(safe_cut(b"a,5\"\nb,\"x\n", Format::Csv), Some(4));
    }

    /// A record longer than a chunk (found hanging `ingest` for good: the
    /// buffer was full, so nothing more was read) is read whole and judged
    /// by the parser; a stray quote with no end is an error, not a hang.
    #[test]
    fn a_record_longer_than_a_chunk_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let rejected = |input: &str, format: Format| match ingest(
            &store,
            input.as_bytes(),
            format,
            chrono_tz::UTC,
            |_| {},
        ) {
            Err(IngestError::Rejected(e)) => e,
            other => panic!("refused, not {other:?}"),
        };
        let long = "x".repeat(CHUNK_BYTES + (1 << 20));
        // A long (too long) label value on line 3, then a good row.
        let e = rejected(
            &format!("metric,time,value,note\npm25,2021-01-01,1,a\npm25,2021-01-02,2,{long}\npm25,2021-01-03,3,b\n"),
            Format::Csv,
        );
        assert_eq!(e.errors[0].line, 3, "{e}");
        // A stray opening quote: the rest of the file is one field that
        // never ends; the parser says so.
        let e = rejected(
            &format!("metric,time,value,note\npm25,2021-01-01,1,\"a\n{long}\n"),
            Format::Csv,
        );
        assert!(e.total >= 1, "{e}");
        // Nothing of either file was stored.
        assert_eq!(store.count_readings().unwrap(), 0);
        // NDJSON: the same, a line longer than a chunk.
        let e = rejected(
            &format!("{{\"metric\":\"pm25\",\"time\":\"2021-01-01\",\"value\":1,\"labels\":{{\"note\":\"{long}\"}}}}\n{{\"metric\":\"pm25\",\"time\":\"2021-01-02\",\"value\":2}}\n"),
            Format::Ndjson,
        );
        assert_eq!(e.errors[0].line, 1, "{e}");
    }

    /// A stray quote followed by more than [`MAX_RECORD_BYTES`] of rows:
    /// refused with the line the record starts on and the likely cause,
    /// Chinese first, without reading the rest, and nothing stored (the rows
    /// before it were parsed and written in the same transaction).
    #[test]
    fn a_record_past_the_bound_names_its_line_and_the_open_quote() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let mut input = String::from("metric,time,value,note\n");
        for day in 1..=20 {
            input.push_str(&format!("pm25,2021-01-{day:02},{day},ok\n"));
        }
        input.push_str("pm25,2021-02-01,1,\"open\n"); // line 22
        let row = "pm25,2021-02-02,2,x\n";
        input.push_str(&row.repeat((MAX_RECORD_BYTES + (1 << 20)) / row.len()));
        let e = match ingest(
            &store,
            input.as_bytes(),
            Format::Csv,
            chrono_tz::UTC,
            |_| {},
        ) {
            Err(IngestError::Rejected(e)) => e,
            other => panic!("refused, not {other:?}"),
        };
        assert_eq!((e.total, e.errors[0].line), (1, 22), "{e}");
        let m = &e.errors[0].message;
        assert!(m.starts_with("从第 22 行起的一条记录超过 64 MiB"), "{m}");
        assert!(m.contains("引号 \" 没有配对"), "{m}");
        assert!(m.contains("请检查文件是否完整"), "{m}");
        assert_eq!(store.count_readings().unwrap(), 0);
    }

    /// Found while fuzzing the parsers (issue 11): the chunker's quotes and
    /// header end differed from the parser's, so a valid CSV over one chunk
    /// was refused (a literal `5"` before a quoted field holding a line
    /// break) or had the rows after a header ending in a lone CR repeated.
    #[test]
    fn csv_over_one_chunk_is_cut_as_the_parser_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let pad = "x".repeat(900);
        let mut input = String::from("metric,time,value,note\rpm25,2021-01-01,1,a\n");
        input.push_str("pm25,2021-01-02,2,5\"\n");
        let mut rows = 2;
        while input.len() < CHUNK_BYTES + (1 << 20) {
            input.push_str(&format!("pm25,2021-01-03,{rows},\"{pad}\n{rows}\"\n"));
            rows += 1;
        }
        let summary = ingest(
            &store,
            input.as_bytes(),
            Format::Csv,
            chrono_tz::UTC,
            |_| {},
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(summary.readings, rows);
        assert_eq!(summary.new_series, rows);

        // Line numbers of errors in later chunks still count the header once.
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let mut input = String::from("\nmetric,time,value\n");
        let mut line = 2;
        while input.len() < CHUNK_BYTES + (1 << 20) {
            input.push_str("pm25,2021-01-03,1\n");
            line += 1;
        }
        input.push_str("pm25,2021-01-03,x\n");
        let Err(IngestError::Rejected(e)) = ingest(
            &store,
            input.as_bytes(),
            Format::Csv,
            chrono_tz::UTC,
            |_| {},
        ) else {
            panic!("accepted");
        };
        assert_eq!(e.errors[0].line, line + 1, "{e}");
    }
}
