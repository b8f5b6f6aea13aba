//! NDJSON readings: one JSON object per line, each read as [`super::json`]
//! reads an item.

use chrono_tz::Tz;

use crate::readings::model::ItemError;
use crate::readings::store::KnownSeries;

use super::errors::{both, char_col, join};
use super::json::{json_error, json_item, json_offset, Fail, Raw};
use super::{run_parallel, split_records, threads_for, Chunk, Sink};

pub(super) fn parse_ndjson(
    text: &str,
    tz: Tz,
    threads: Option<usize>,
    known: Option<&KnownSeries>,
) -> Vec<Chunk> {
    let pieces = split_records(text, threads_for(text.len(), threads), false);
    run_parallel(&pieces, |piece| ndjson_chunk(piece, tz, known))
}

fn ndjson_chunk(text: &str, tz: Tz, known: Option<&KnownSeries>) -> Chunk {
    let mut sink = Sink::new(tz, known);
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
                    Fail::Syntax(e) => {
                        let (off, words) = json_error(line, &e);
                        (off, both(words))
                    }
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
