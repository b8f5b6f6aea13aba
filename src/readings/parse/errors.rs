//! Problems of one reading and how they are worded: where (line:col,
//! item, field) and what, user input quoted and shortened.

use crate::readings::model::{
    is_valid_name, ItemError, ParseError, MAX_LABELS, MAX_LABEL_VALUE_BYTES, MAX_NAME_BYTES,
};
use crate::time::Millis;

use super::{Chunk, Sink};

/// What part of an item a problem is about, to point at it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum At {
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
pub(super) struct Problem {
    pub(super) at: At,
    pub(super) message: String,
}

impl Problem {
    pub(super) fn new(at: At, message: impl Into<String>) -> Self {
        Problem {
            at,
            message: message.into(),
        }
    }
}

pub(super) fn join(problems: &[Problem]) -> String {
    let parts: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    parts.join("; ")
}

/// User input in backticks, shortened if long, control characters escaped
/// (an error is one line).
pub(super) fn quote(s: &str) -> String {
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

/// An input with nothing to store: empty, blank, `[]` or only a CSV header.
pub const NO_READINGS: &str =
    "没有读数：输入为空（或只有表头），请检查是否选错了文件 / no readings in input (it is empty or only a header)";

pub(super) fn no_readings() -> ParseError {
    ParseError {
        errors: vec![ItemError {
            line: 0,
            col: 0,
            item: None,
            message: NO_READINGS.into(),
        }],
        total: 1,
    }
}

pub(super) fn one_error(line: usize, col: usize, message: String) -> ParseError {
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
pub(super) fn name_problem(kind: &str, name: &str) -> Option<String> {
    if name.len() > MAX_NAME_BYTES {
        Some(format!(
            "{kind} name {} is too long: {} bytes, at most {MAX_NAME_BYTES}",
            quote(name),
            name.len()
        ))
    } else if is_valid_name(name) {
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

pub(super) fn name_problems<'a>(
    metric: Option<&str>,
    labels: impl Iterator<Item = &'a str>,
) -> Vec<Problem> {
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

/// Label values too long to store, and too many labels.
pub(super) fn label_value_problems<'a>(
    labels: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut count = 0;
    for (name, value) in labels {
        count += 1;
        if value.len() > MAX_LABEL_VALUE_BYTES {
            problems.push(Problem::new(
                At::Label(name.to_owned()),
                format!(
                    "label `{name}` value {} is too long: {} bytes, at most {MAX_LABEL_VALUE_BYTES}",
                    quote(value),
                    value.len()
                ),
            ));
        }
    }
    if count > MAX_LABELS {
        problems.push(Problem::new(
            At::Field("labels"),
            format!("{count} labels: at most {MAX_LABELS} per reading"),
        ));
    }
    problems
}

/// "bad time `x`: why", without repeating `x`.
pub(super) fn bad_time(text: &str, err: &str) -> String {
    let s = text.trim();
    let why = err
        .strip_prefix(&format!("`{s}` is not a time: "))
        .or_else(|| err.strip_prefix(&format!("`{s}` ")))
        .unwrap_or(err);
    format!("bad time {}: {why}", quote(text))
}

/// A checked time string, or why not.
pub(super) fn check_time(sink: &mut Sink, text: &str) -> Result<Millis, String> {
    sink.time(text).map_err(|e| match text.trim().is_empty() {
        true => "`time` is empty".into(),
        false => bad_time(text, &e),
    })
}

/// Why a number that did not make a finite f64 is bad.
pub(super) fn non_finite(text: &str) -> String {
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
pub(super) fn missing(fields: [(&'static str, bool); 3]) -> Option<(&'static str, String)> {
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
pub(super) fn trim(s: &str) -> &str {
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

pub(super) fn unknown_field(key: &str) -> String {
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

/// 1-based character column of byte `off` on a line starting at byte `line_start`.
pub(super) fn char_col(text: &str, line_start: usize, off: usize) -> usize {
    // Counting bytes that do not continue a UTF-8 sequence counts characters.
    text.as_bytes()[line_start..off]
        .iter()
        .filter(|&&b| (b as i8) >= -0x40)
        .count()
        + 1
}

/// Turns byte offsets into line:col, moving forward through a text.
pub(super) struct Locator<'a> {
    pub(super) text: &'a str,
    pub(super) off: usize,
    pub(super) line: usize,
    pub(super) line_start: usize,
}

impl<'a> Locator<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Locator {
            text,
            off: 0,
            line: 1,
            line_start: 0,
        }
    }

    /// 1-based (line, character column) of byte `off`.
    pub(super) fn at(&mut self, off: usize) -> (usize, usize) {
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
pub(super) fn utf8_errors(input: &[u8]) -> ParseError {
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
