//! JSON readings: one object or an array of them. A plain reading is read
//! by a small scanner; anything else by serde visitors that borrow from the
//! input and report every problem of an item.

use std::borrow::Cow;
use std::fmt;

use chrono_tz::Tz;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::readings::model::{BatchPoint, ItemError, ParseError};
use crate::readings::store::KnownSeries;

use super::errors::{
    both, check_time, join, missing, name_problems, no_readings, non_finite, one_error, quote,
    unknown_field, At, Locator, Problem, Words,
};
use super::{memchr_newline, run_parallel, threads_for, Chunk, Sink};

/// Any JSON value, kept only as far as a reading needs it.
#[derive(Debug)]
pub(super) enum Any<'de> {
    Str(Cow<'de, str>),
    Num(f64),
    Bool(bool),
    Null,
    Array,
    Object,
}

impl Any<'_> {
    pub(super) fn kind(&self) -> &'static str {
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

/// [`Any::kind`] (or another English kind name) in Chinese.
pub(super) fn kind_zh(en: &str) -> &'static str {
    match en {
        "a string" => "文字",
        "a number" => "数",
        "a boolean" => "真假值",
        "`true`" => "`true`",
        "`false`" => "`false`",
        "`null`" => "`null`（空）",
        "an array" => "数组 `[…]`",
        "an object" => "对象 `{…}`",
        _ => "别的内容",
    }
}

/// An object's members, in input order.
pub(super) type Members<'de> = Vec<(Cow<'de, str>, Any<'de>)>;

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
pub(super) struct Raw<'de> {
    pub(super) metric: Option<Any<'de>>,
    pub(super) value: Option<Any<'de>>,
    pub(super) time: Option<Any<'de>>,
    /// `Any::Object` when an object: its members are in `members`.
    pub(super) labels: Option<Any<'de>>,
    pub(super) members: Members<'de>,
    pub(super) unknown: Vec<Cow<'de, str>>,
    pub(super) twice: Vec<&'static str>,
}

impl Raw<'_> {
    pub(super) fn clear(&mut self) {
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
pub(super) struct ItemSeed<'a, 'de>(pub(super) &'a mut Raw<'de>);

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
pub(super) enum Fail {
    /// Not valid JSON (or a number out of range).
    Syntax(serde_json::Error),
    Bad(Vec<Problem>),
}

/// Parses one JSON item (an object, by itself in `text`) into the sink.
pub(super) fn json_item<'de>(
    text: &'de str,
    sink: &mut Sink,
    raw: &mut Raw<'de>,
) -> Result<(), Fail> {
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
                (
                    format!(
                        "一条读数应是一个对象 `{{\"metric\": …, \"value\": …, \"time\": …}}`，这里是{}",
                        kind_zh(kind)
                    ),
                    format!("a reading must be an object, not {kind}"),
                ),
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
pub(super) fn read_plain<'de>(text: &'de str, raw: &mut Raw<'de>) -> bool {
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
            (
                format!("字段 `{name}` 写了两次，请只保留一个"),
                format!("field `{name}` is given twice"),
            ),
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
                (
                    format!(
                        "`metric`（指标）应是带引号的文字，如 `\"pm25\"`，这里是{}",
                        kind_zh(other.kind())
                    ),
                    format!("`metric` must be a string, not {}", other.kind()),
                ),
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
                Ok(v) if v.is_finite() => (
                    format!(
                        "数值 {} 加了引号，成了文字：请去掉引号，写成 `\"value\": {}`",
                        quote(s),
                        s.trim()
                    ),
                    format!(
                        "value {} is a string, not a number: write it without quotes",
                        quote(s)
                    ),
                ),
                _ => (
                    format!("数值 {} 不是数，请填写数字（如 `48`、`4.5`）", quote(s)),
                    format!("value {} is not a number", quote(s)),
                ),
            };
            problems.push(Problem::new(At::Field("value"), message));
            None
        }
        Some(other) => {
            problems.push(Problem::new(
                At::Field("value"),
                (
                    format!(
                        "`value`（数值）应是数字，如 `48`，这里是{}",
                        kind_zh(other.kind())
                    ),
                    format!("value must be a number, not {}", other.kind()),
                ),
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
                (
                    format!(
                        "`time`（时间）应是带引号的文字，如 `\"2021-03-01T09:00:00+08:00\"`，这里是{}（不接受数字时间戳）",
                        kind_zh(other.kind())
                    ),
                    format!(
                        "`time` must be a string like `2021-03-01T09:00:00+08:00`, not {}",
                        other.kind()
                    ),
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
                        (
                            format!(
                                "标签 {} 的值应是带引号的文字（如 `\"5\"`），这里是{}",
                                quote(name),
                                kind_zh(v.kind())
                            ),
                            format!("label {} must be a string, not {}", quote(name), v.kind()),
                        ),
                    ));
                }
            }
            if labels.len() > 1 {
                labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                for pair in labels.windows(2) {
                    if pair[0].0 == pair[1].0 {
                        problems.push(Problem::new(
                            At::Label(pair[0].0.to_string()),
                            (
                                format!("标签 {} 写了两次，请只保留一个", quote(&pair[0].0)),
                                format!("label {} is given twice", quote(&pair[0].0)),
                            ),
                        ));
                    }
                }
            }
        }
        Some(other) => {
            labels.clear();
            problems.push(Problem::new(
                At::Field("labels"),
                (
                    format!(
                        "`labels`（标签）应是对象，如 `{{\"county\":\"南宫\"}}`，这里是{}",
                        kind_zh(other.kind())
                    ),
                    format!(
                        "`labels` must be an object like `{{\"county\":\"南宫\"}}`, not {}",
                        other.kind()
                    ),
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
pub(super) fn json_error(text: &str, e: &serde_json::Error) -> (usize, Words) {
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
        let number = quote(&text[from..to]);
        return (
            from,
            (
                format!("数 {number} 超出范围，请检查是否多写了位数"),
                format!("number {number} is out of range"),
            ),
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
                (
                    format!(
                        "{} 不是有限的数（JSON 里没有 NaN、Infinity），请填写实际数值，或删去这条读数",
                        quote(token)
                    ),
                    format!(
                        "{} is not a finite number (JSON has no NaN or Infinity)",
                        quote(token)
                    ),
                ),
            );
        }
    }
    let en = match what.strip_prefix("EOF while parsing") {
        Some(rest) => format!("malformed JSON: unexpected end of input while parsing{rest}"),
        None => format!("malformed JSON: {what}"),
    };
    (off, (format!("JSON 格式有误：{}", syntax_zh(what)), en))
}

/// What serde_json says is wrong, in Chinese, with the fix.
fn syntax_zh(what: &str) -> String {
    let inside = |rest: &str| match rest.trim() {
        "a list" => "数组 `[…]`",
        "an object" => "对象 `{…}`",
        "a string" => "文字",
        _ => "内容",
    };
    if let Some(rest) = what.strip_prefix("EOF while parsing") {
        return format!(
            "{}没写完就结束了，请检查是否少了 `\"`、`}}` 或 `]`",
            inside(rest)
        );
    }
    match what {
        "expected value" => {
            "这里应是一个值（数字、带引号的文字、对象或数组），请检查是否多了逗号或少了引号".into()
        }
        "expected `,` or `]`" => "这里应是 `,` 或 `]`，请检查是否少了逗号".into(),
        "expected `,` or `}`" => "这里应是 `,` 或 `}`，请检查是否少了逗号".into(),
        "expected `:`" => "这里应是冒号 `:`（半角）".into(),
        "expected ident" => {
            "无法识别的词：文字要加双引号，真假值写 `true`/`false`，空值写 `null`".into()
        }
        "key must be a string" => "字段名要用半角双引号括起，如 `\"metric\"`".into(),
        "trailing comma" => "最后一项后面多了逗号，请删去".into(),
        "trailing characters" => "一个 JSON 值结束后还有内容".into(),
        "invalid escape" => "文字里的 `\\` 转义无效：反斜杠要写成 `\\\\`".into(),
        "invalid number" => "数字写法无效".into(),
        w if w.starts_with("control character") => {
            "文字里有控制字符（如换行、制表符），请删去或写成 `\\n`、`\\t`".into()
        }
        w if w.starts_with("recursion limit") => "嵌套太深".into(),
        _ => "请按 JSON 写法改正（字段名、文字用半角双引号，项之间用半角逗号）".into(),
    }
}

/// Byte offset in the JSON object `text` of what `at` names (its start if not found).
pub(super) fn json_offset(text: &str, at: &At) -> usize {
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

pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
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
pub(super) fn skip_value(b: &[u8], i: usize) -> Option<usize> {
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

pub(super) fn parse_json(
    text: &str,
    tz: Tz,
    threads: Option<usize>,
    known: Option<&KnownSeries>,
) -> Result<Vec<Chunk>, ParseError> {
    let b = text.as_bytes();
    let start = skip_ws(b, 0);
    match b.get(start) {
        Some(b'[') => {
            let parts = threads_for(b.len(), threads);
            let Some((count, cuts)) = split_array(b, start, parts) else {
                return Err(malformed_document(text));
            };
            if count == 0 {
                return Err(no_readings());
            }
            // Part k: the elements from cut k up to the next cut (or the end).
            let parts: Vec<(usize, usize, usize)> = cuts
                .iter()
                .enumerate()
                .map(|(k, &(offset, first))| {
                    let next = cuts.get(k + 1).map_or(count, |c| c.1);
                    (offset, first, next - first)
                })
                .collect();
            let chunks = run_parallel(&parts, |&(offset, first, n)| {
                json_elements(text, offset, first, n, tz, known)
            });
            if chunks.iter().any(|c| c.malformed) {
                return Err(malformed_document(text));
            }
            Ok(chunks)
        }
        Some(b'{') => {
            let mut sink = Sink::new(tz, known);
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
                return Err(one_error(line, col, both(message)));
            }
            let kind: &str = serde_json::from_str::<serde_json::Value>(text)
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
                format!(
                    "应是一条读数（对象 `{{…}}`）或由读数组成的数组 `[…]`，这里是{} / expected a reading object or an array of them, found {kind}",
                    kind_zh(kind)
                ),
            ))
        }
    }
}

fn with_ndjson_hint((zh, en): Words) -> String {
    if en.ends_with("trailing characters") {
        format!("{zh}：若是每行一条读数，请把文件存为 `.ndjson`（HTTP 请用 `Content-Type: application/x-ndjson`） / {en} (for one reading per line, send NDJSON: a `.ndjson` file or `Content-Type: application/x-ndjson`)")
    } else {
        both((zh, en))
    }
}

/// The error serde_json finds in a malformed document.
fn malformed_document(text: &str) -> ParseError {
    let (off, message) = match serde_json::from_str::<IgnoredAny>(text) {
        Err(e) => json_error(text, &e),
        Ok(_) => (0, ("JSON 格式有误".to_owned(), "malformed JSON".to_owned())),
    };
    let (line, col) = Locator::new(text).at(off);
    one_error(line, col, with_ndjson_hint(message))
}

/// Checks the array at `start` and counts its elements, noting where to cut
/// it into about `parts` pieces of similar size: (count, [(byte offset of a
/// piece's first element, its index)]). `None` if the text around the
/// elements is not a JSON array. Only the cuts are kept, not every element's
/// place: a large array of tiny elements (`[1,2,3,…]`) otherwise took 16
/// bytes of memory per 2 bytes of input while parsed.
pub(super) fn split_array(
    b: &[u8],
    start: usize,
    parts: usize,
) -> Option<(usize, Vec<(usize, usize)>)> {
    let parts = parts.max(1);
    let mut cuts = Vec::with_capacity(parts);
    let mut i = skip_ws(b, start + 1);
    if b.get(i) == Some(&b']') {
        return (skip_ws(b, i + 1) == b.len()).then_some((0, cuts));
    }
    let mut count = 0;
    loop {
        if cuts.len() < parts && i >= b.len() / parts * cuts.len() {
            cuts.push((i, count));
        }
        i = skip_value(b, i)?;
        count += 1;
        i = skip_ws(b, i);
        match b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b']' => return (skip_ws(b, i + 1) == b.len()).then_some((count, cuts)),
            _ => return None,
        }
    }
}

/// Parses `n` array elements, the first at byte `offset` of `text` and
/// numbered `first` (the array was checked by [`split_array`]).
fn json_elements(
    text: &str,
    offset: usize,
    first: usize,
    n: usize,
    tz: Tz,
    known: Option<&KnownSeries>,
) -> Chunk {
    let b = text.as_bytes();
    let mut sink = Sink::new(tz, known);
    let mut raw = Raw::default();
    let mut chunk = Chunk::default();
    let mut locator = Locator::new(text);
    let mut next = offset;
    for k in 0..n {
        let from = next;
        let Some(to) = skip_value(b, from) else {
            chunk.malformed = true;
            break;
        };
        // Past the comma to the next element (checked by `split_array`).
        next = skip_ws(b, to);
        if b.get(next) == Some(&b',') {
            next = skip_ws(b, next + 1);
        }
        let item = &text[from..to];
        let message = match json_item(item, &mut sink, &mut raw) {
            Ok(()) => continue,
            Err(Fail::Syntax(e)) => {
                let (_, message) = json_error(item, &e);
                if !message.1.ends_with("is out of range") {
                    chunk.malformed = true;
                    break;
                }
                both(message)
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
