//! Problems of one reading and how they are worded: where (line:col,
//! item, field) and what, user input quoted and shortened. Chinese first
//! for the official who sent the file, then ` / ` and English.

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

/// A message in two languages: (Chinese, English).
pub(super) type Words = (String, String);

/// The one-line form of [`Words`]: `中文 / English`.
pub(super) fn both((zh, en): Words) -> String {
    format!("{zh} / {en}")
}

#[derive(Debug)]
pub(super) struct Problem {
    pub(super) at: At,
    pub(super) zh: String,
    pub(super) en: String,
}

impl Problem {
    pub(super) fn new(at: At, (zh, en): Words) -> Self {
        Problem { at, zh, en }
    }
}

/// All problems of one item in one line: the Chinese of each, then the
/// English of each (`缺少 …；数值 … / missing …; value …`).
pub(super) fn join(problems: &[Problem]) -> String {
    let zh: Vec<&str> = problems.iter().map(|p| p.zh.as_str()).collect();
    let en: Vec<&str> = problems.iter().map(|p| p.en.as_str()).collect();
    format!("{} / {}", zh.join("；"), en.join("; "))
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

/// What a name is called, in both languages: `metric` → 指标名.
fn name_kind(kind: &str) -> (&'static str, String) {
    let zh = match kind {
        "metric" => "指标名",
        "label" => "标签名",
        "column" => "列名",
        _ => "名称",
    };
    (zh, kind.to_owned())
}

/// Why `name` is not a valid metric / label / column name, if it is not.
pub(super) fn name_problem(kind: &str, name: &str) -> Option<Words> {
    let (zh, en) = name_kind(kind);
    if name.len() > MAX_NAME_BYTES {
        Some((
            format!(
                "{zh} {} 太长：{} 字节，最多 {MAX_NAME_BYTES} 字节，请改短",
                quote(name),
                name.len()
            ),
            format!(
                "{en} name {} is too long: {} bytes, at most {MAX_NAME_BYTES}",
                quote(name),
                name.len()
            ),
        ))
    } else if is_valid_name(name) {
        None
    } else if name.is_empty() {
        Some((format!("{zh}是空的，请填写"), format!("{en} name is empty")))
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        Some((
            format!("{zh} {} 不能以数字开头，请在前面加字母", quote(name)),
            format!(
                "{en} name {} is invalid: it must not start with a digit",
                quote(name)
            ),
        ))
    } else {
        Some((
            format!(
                "{zh} {} 不合要求：只能用英文字母、数字和 `_`（如 `pm25`、`county`）",
                quote(name)
            ),
            format!(
                "{en} name {} is invalid: use letters, digits and `_`",
                quote(name)
            ),
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
                (
                    format!(
                        "标签 `{name}` 的值 {} 太长：{} 字节，最多 {MAX_LABEL_VALUE_BYTES} 字节，请改短",
                        quote(value),
                        value.len()
                    ),
                    format!(
                        "label `{name}` value {} is too long: {} bytes, at most {MAX_LABEL_VALUE_BYTES}",
                        quote(value),
                        value.len()
                    ),
                ),
            ));
        }
    }
    if count > MAX_LABELS {
        problems.push(Problem::new(
            At::Field("labels"),
            (
                format!("有 {count} 个标签：每条读数最多 {MAX_LABELS} 个，请删去多余的"),
                format!("{count} labels: at most {MAX_LABELS} per reading"),
            ),
        ));
    }
    problems
}

/// The accepted time forms, for messages.
const TIME_FORMS: &str = "`2021-03-01`、`2021-03-01 09:00` 或 `2021-03-01T09:00:00+08:00`";

/// "bad time `x`: why", without repeating `x`.
pub(super) fn bad_time(text: &str, err: &str) -> Words {
    let s = text.trim();
    let why = err
        .strip_prefix(&format!("`{s}` is not a time: "))
        .or_else(|| err.strip_prefix(&format!("`{s}` ")))
        .unwrap_or(err);
    let zh = if why.contains("daylight-saving gap") {
        format!(
            "时间 {} 在所配置的时区里不存在（夏令时拨快时跳过的时刻），请改写带时差的时间，如 `2021-03-14T03:30:00-04:00`",
            quote(text)
        )
    } else {
        format!("时间 {} 无法识别，请写成 {TIME_FORMS}", quote(text))
    };
    (zh, format!("bad time {}: {why}", quote(text)))
}

/// A checked time string, or why not.
pub(super) fn check_time(sink: &mut Sink, text: &str) -> Result<Millis, Words> {
    sink.time(text).map_err(|e| match text.trim().is_empty() {
        true => (
            format!("`time`（时间）是空的，请填写，如 {TIME_FORMS}"),
            "`time` is empty".into(),
        ),
        false => bad_time(text, &e),
    })
}

/// Why a number that did not make a finite f64 is bad.
pub(super) fn non_finite(text: &str) -> Words {
    let t = text
        .trim()
        .trim_start_matches(['+', '-'])
        .to_ascii_lowercase();
    if t.starts_with("inf") || t.starts_with("nan") {
        (
            format!("数值 {} 不是有限的数，请填写实际数值", quote(text)),
            format!("value {} is not a finite number", quote(text)),
        )
    } else {
        (
            format!("数值 {} 超出范围，请检查是否多写了位数", quote(text)),
            format!("value {} is out of range", quote(text)),
        )
    }
}

/// For the fields flagged absent, if any: the first, and "missing `a`",
/// "missing `a` and `b`" or "missing `a`, `b` and `c`".
pub(super) fn missing(fields: [(&'static str, bool); 3]) -> Option<(&'static str, Words)> {
    if !fields.iter().any(|(_, absent)| *absent) {
        return None;
    }
    let names: Vec<&'static str> = fields.iter().filter(|f| f.1).map(|f| f.0).collect();
    let q: Vec<String> = names.iter().map(|f| format!("`{f}`")).collect();
    let zh_names: Vec<String> = names
        .iter()
        .map(|f| format!("`{f}`（{}）", field_zh(f)))
        .collect();
    let en = match q.as_slice() {
        [one] => format!("missing {one}"),
        [init @ .., last] => format!("missing {} and {last}", init.join(", ")),
        [] => unreachable!("some field is absent"),
    };
    let zh = format!("缺少 {}，请补上", zh_names.join("、"));
    Some((names[0], (zh, en)))
}

/// What a reading's field is, in Chinese.
pub(super) fn field_zh(field: &str) -> &'static str {
    match field {
        "metric" => "指标",
        "value" => "数值",
        "time" => "时间",
        "labels" => "标签",
        _ => "字段",
    }
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

pub(super) fn unknown_field(key: &str) -> Words {
    let lower = key.to_ascii_lowercase();
    match FIELDS
        .iter()
        .find(|f| edit_distance(&lower, f) <= 2 || lower.starts_with(*f))
    {
        Some(f) => (
            format!("没有字段 {}，是否想写 `{f}`？", quote(key)),
            format!("unknown field {} (did you mean `{f}`?)", quote(key)),
        ),
        None => (
            format!(
                "没有字段 {}：一条读数只有 `metric`（指标）、`value`（数值）、`time`（时间）和 `labels`（标签），请删去或改正",
                quote(key)
            ),
            format!(
                "unknown field {} (a reading has `metric`, `value`, `time` and `labels`)",
                quote(key)
            ),
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
                        "不是 UTF-8 编码：本行第 {byte_col} 个字节是 `{hex}`，请把文件另存为 UTF-8（如 Excel 的“CSV UTF-8”），GBK 等编码读不了 / \
                         not UTF-8: byte {byte_col} of the line is `{hex}` (save the file as UTF-8; GBK and other encodings are not read)"
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
