//! The rule test file (`*.test.ron`): what officials write, read strictly.
//!
//! ```ron
//! (
//!     rules: ["unemployment-rate.rhai"],      // beside this file, or rule ids
//!     tests: [
//!         (
//!             name: "4.6% is a breach",
//!             series: [
//!                 (metric: "unemployment_rate", labels: {"county": "南宫"},
//!                  start: "2021-01-31", step: "30d", values: "4.2 4.4 4.6"),
//!             ],
//!             evals: [
//!                 (at: "2021-03-31T09:00", alerts: [
//!                     (subject: {"county": "南宫"}, kind: breach, state: firing, message: "超过 4.5%"),
//!                 ]),
//!             ],
//!         ),
//!     ],
//! )
//! ```
//!
//! Reading happens in two passes: serde (through `ron`) checks the shape,
//! with `deny_unknown_fields` everywhere; then every value is checked
//! (times, durations, series tokens, names) and *all* problems are reported,
//! each at its place in the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;

use super::locate::{self, Node, Step};
use super::series;
use crate::diag::Diagnostic;
use crate::readings::model::is_valid_name;
use crate::readings::Labels;
use crate::time::{parse_duration, parse_time, Millis};

// ------------------------------------------------------------ as written

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "test file")]
struct FileRaw {
    rules: Vec<String>,
    #[serde(default)]
    series: Vec<SeriesRaw>,
    #[serde(default)]
    readings: Vec<ReadingRaw>,
    tests: Vec<CaseRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "series")]
struct SeriesRaw {
    metric: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    start: String,
    step: String,
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "reading")]
struct ReadingRaw {
    metric: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    time: String,
    value: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "test")]
struct CaseRaw {
    name: String,
    #[serde(default)]
    series: Vec<SeriesRaw>,
    #[serde(default)]
    readings: Vec<ReadingRaw>,
    #[serde(default)]
    ticks: Option<String>,
    evals: Vec<EvalRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "eval")]
struct EvalRaw {
    at: String,
    alerts: Vec<ExpectRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "alert")]
struct ExpectRaw {
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    subject: BTreeMap<String, String>,
    kind: Kind,
    #[serde(default)]
    state: Option<ExpectedState>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    mail: Option<Mail>,
}

// ------------------------------------------------------------ checked

/// What a rule reported about a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case", rename = "kind")]
pub enum Kind {
    Breach,
    NoData,
    Error,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Breach => "breach",
            Kind::NoData => "no_data",
            Kind::Error => "error",
        }
    }
}

/// The state an expected alert is in right after the evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case", rename = "state")]
pub enum ExpectedState {
    /// In breach, `for` not yet over.
    Pending,
    /// In breach and notified (also: no data, or the rule failing, once notified).
    Firing,
    /// Ended at this evaluation (a breach gone, data back, the rule recovered).
    Resolved,
    /// A year's final verdict (missed): it stands.
    Final,
}

impl ExpectedState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpectedState::Pending => "pending",
            ExpectedState::Firing => "firing",
            ExpectedState::Resolved => "resolved",
            ExpectedState::Final => "final",
        }
    }
}

/// The mail an alert caused at this evaluation (`none`: it caused none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case", rename = "mail")]
pub enum Mail {
    Firing,
    Reminder,
    Resolved,
    NoData,
    NoDataReminder,
    DataReturned,
    RuleError,
    RuleRecovered,
    FinalVerdict,
    None,
}

impl Mail {
    pub fn as_str(self) -> &'static str {
        match self {
            Mail::Firing => "firing",
            Mail::Reminder => "reminder",
            Mail::Resolved => "resolved",
            Mail::NoData => "no_data",
            Mail::NoDataReminder => "no_data_reminder",
            Mail::DataReturned => "data_returned",
            Mail::RuleError => "rule_error",
            Mail::RuleRecovered => "rule_recovered",
            Mail::FinalVerdict => "final_verdict",
            Mail::None => "none",
        }
    }
}

/// A place in the test file (1-based; for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Place {
    pub line: usize,
    pub col: usize,
}

/// One input reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub metric: String,
    pub labels: Labels,
    pub time: Millis,
    pub value: f64,
}

/// A rule under test, as written (`x.rhai` path or rule id).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRef {
    pub text: String,
    pub place: Place,
}

impl RuleRef {
    /// A path (relative to the test file) rather than a rule id.
    pub fn is_path(&self) -> bool {
        self.text.ends_with(".rhai") || self.text.contains('/')
    }
}

/// How often rules are evaluated between the listed times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticks {
    /// Only at the listed `at` times (the default).
    Listed,
    /// Also at each tick of the rule's own schedule in between, as the daemon would.
    Schedule,
    /// Also every this long after the first listed time.
    Every(Millis),
}

/// An alert a test expects after one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// `None`: the only rule under test.
    pub rule: Option<String>,
    pub subject: Labels,
    pub kind: Kind,
    pub state: Option<ExpectedState>,
    pub message: Option<String>,
    pub value: Option<f64>,
    pub mail: Option<Mail>,
    pub place: Place,
    /// Where `rule:` is written (for "unknown rule" errors).
    pub rule_place: Place,
}

/// One evaluation time and the alerts expected right after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Eval {
    pub at: Millis,
    pub at_text: String,
    pub expected: Vec<Expected>,
    pub place: Place,
}

/// One test case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    /// Shared readings first, then this test's own (a reading with the same
    /// metric, labels and time replaces the shared one).
    pub readings: Vec<Reading>,
    pub ticks: Ticks,
    pub evals: Vec<Eval>,
    pub place: Place,
}

/// A checked test file.
#[derive(Debug, Clone)]
pub struct TestFile {
    pub path: PathBuf,
    pub rules: Vec<RuleRef>,
    pub cases: Vec<Case>,
}

impl TestFile {
    /// The folder rule paths are relative to.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new(""))
    }
}

/// Reads and checks a test file; every problem found, each with its place.
pub fn load(path: &Path, tz: Tz) -> Result<TestFile, Vec<Diagnostic>> {
    let bytes = std::fs::read(path).map_err(|e| {
        vec![Diagnostic::error(
            path,
            0,
            0,
            format!("无法读取测试文件：{e} / cannot read test file: {e}"),
        )]
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let valid = String::from_utf8_lossy(&e.as_bytes()[..offset]).into_owned();
        let (line, col) = crate::diag::line_col(&valid, offset);
        vec![Diagnostic::error(
            path,
            line,
            col,
            "测试文件不是 UTF-8 编码：请用 UTF-8 另存（不要用 GBK）/ test file is not valid UTF-8",
        )]
    })?;
    parse(path, &text, tz)
}

/// Checks test file `text` as if read from `path`.
pub fn parse(path: &Path, text: &str, tz: Tz) -> Result<TestFile, Vec<Diagnostic>> {
    let options =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let raw: FileRaw = options.from_str(text).map_err(|e| {
        let (line, col) = ron_position(text, &e);
        vec![Diagnostic::error(path, line, col, ron_message(&e.code))]
    })?;
    let root = locate::scan(text);
    let mut c = Checker {
        path,
        text,
        root: &root,
        tz,
        errors: Vec::new(),
    };
    let file = c.file(raw);
    if c.errors.is_empty() {
        Ok(file)
    } else {
        c.errors.sort_by_key(|d| (d.line, d.col));
        Err(c.errors)
    }
}

struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
    root: &'a Node,
    tz: Tz,
    errors: Vec<Diagnostic>,
}

type StepPath<'p> = Vec<Step<'p>>;

fn with<'p>(path: &[Step<'p>], step: Step<'p>) -> StepPath<'p> {
    let mut p = path.to_vec();
    p.push(step);
    p
}

impl Checker<'_> {
    fn node(&self, path: &[Step]) -> &Node {
        locate::find(self.root, path)
    }

    fn place(&self, path: &[Step]) -> Place {
        let (line, col) = locate::line_col(self.text, self.node(path).start);
        Place { line, col }
    }

    fn error(&mut self, path: &[Step], message: impl Into<String>) {
        let p = self.place(path);
        self.errors
            .push(Diagnostic::error(self.path, p.line, p.col, message));
    }

    fn file(&mut self, raw: FileRaw) -> TestFile {
        use Step::*;
        if raw.rules.is_empty() {
            self.error(&[Field("rules")], "`rules` 是空的：请写上要测试的规则文件（本文件旁的 `x.rhai`）或规则编号 / `rules` is empty: name the rule file (`x.rhai`, beside this file) or rule id under test");
        }
        let mut rules = Vec::new();
        for (i, r) in raw.rules.iter().enumerate() {
            let path = [Field("rules"), Item(i)];
            if r.trim().is_empty() {
                self.error(
                    &path,
                    "规则名是空的：请写规则文件名（如 `x.rhai`）或规则编号 / empty rule name",
                );
            } else if rules.iter().any(|x: &RuleRef| x.text == *r) {
                self.error(
                    &path,
                    format!("规则 `{r}` 写了两次：请删去其中一个 / rule `{r}` is listed twice"),
                );
            }
            rules.push(RuleRef {
                text: r.clone(),
                place: self.place(&path),
            });
        }
        let shared = self.inputs(&[], &raw.series, &raw.readings);
        if raw.tests.is_empty() {
            self.error(
                &[Field("tests")],
                "`tests` 是空的：测试文件至少要有一个测试 / `tests` is empty: a test file needs at least one test",
            );
        }
        let mut cases: Vec<Case> = Vec::new();
        for (i, case) in raw.tests.into_iter().enumerate() {
            let base = [Field("tests"), Item(i)];
            let name = case.name.trim().to_string();
            if name.is_empty() {
                self.error(
                    &with(&base, Field("name")),
                    "测试名是空的：请给这个测试起个名字，如 name: \"6月失业率超标\" / test name is empty",
                );
            } else if let Some(first) = cases.iter().find(|c| c.name == name) {
                let line = first.place.line;
                self.error(
                    &with(&base, Field("name")),
                    format!("有两个测试都叫 `{name}`（另一个在第{line}行）：同一文件里测试名不能重复，请改名 / two tests are named `{name}` (the other is on line {line}): names must be unique in a file"),
                );
            }
            let mut readings = shared.clone();
            readings.extend(self.inputs(&base, &case.series, &case.readings));
            let ticks = match case.ticks.as_deref() {
                None | Some("listed") => Ticks::Listed,
                Some("schedule") => Ticks::Schedule,
                Some(d) => match parse_duration(d) {
                    Ok(ms) if ms > 0 => Ticks::Every(ms),
                    Ok(_) => {
                        self.error(
                            &with(&base, Field("ticks")),
                            "`ticks` 的时长要大于 0，如 `12h` / `ticks` must be longer than 0s",
                        );
                        Ticks::Listed
                    }
                    Err(e) => {
                        self.error(
                            &with(&base, Field("ticks")),
                            format!("`ticks` 只能写 `listed`、`schedule` 或时长（如 `12h`）/ `ticks` is `listed`, `schedule` or a duration: {e}"),
                        );
                        Ticks::Listed
                    }
                },
            };
            if case.evals.is_empty() {
                self.error(
                    &with(&base, Field("evals")),
                    "`evals` 是空的：请至少写一个评估时间，如 (at: \"2021-03-16T09:00\", alerts: []) / `evals` is empty: give at least one evaluation time",
                );
            }
            let mut evals: Vec<Eval> = Vec::new();
            for (j, e) in case.evals.into_iter().enumerate() {
                let ep = with(&with(&base, Field("evals")), Item(j));
                let at = self.time(&with(&ep, Field("at")), &e.at);
                if let (Some(at), Some(prev)) = (at, evals.last()) {
                    if at <= prev.at {
                        self.error(
                            &with(&ep, Field("at")),
                            format!(
                                "评估时间要从早到晚排列：`{}` 不晚于第{}行的 `{}`，请调整顺序 / evaluation times must go forward: `{}` is not after `{}` (line {})",
                                e.at, prev.place.line, prev.at_text, e.at, prev.at_text, prev.place.line
                            ),
                        );
                    }
                }
                let mut expected = Vec::new();
                for (k, x) in e.alerts.into_iter().enumerate() {
                    let xp = with(&with(&ep, Field("alerts")), Item(k));
                    expected.push(self.expected(&xp, x));
                }
                evals.push(Eval {
                    at: at.unwrap_or(Millis::MIN),
                    at_text: e.at,
                    expected,
                    place: self.place(&ep),
                });
            }
            cases.push(Case {
                name,
                readings,
                ticks,
                evals,
                place: self.place(&base),
            });
        }
        TestFile {
            path: self.path.to_path_buf(),
            rules,
            cases,
        }
    }

    fn expected(&mut self, path: &[Step], x: ExpectRaw) -> Expected {
        let subject = self.labels(&with(path, Step::Field("subject")), x.subject);
        if let Some(state) = x.state {
            if x.kind != Kind::Breach && state == ExpectedState::Pending {
                self.error(
                    &with(path, Step::Field("state")),
                    format!(
                        "只有 breach（超标）才会有 pending（待定）状态（`for` 只推迟超标告警）：`{}` 的状态请写 `firing` 或 `resolved` / only a breach can be pending (`for` delays breaches); a `{}` alert is `firing` or `resolved`",
                        x.kind.as_str(),
                        x.kind.as_str()
                    ),
                );
            }
        }
        if x.kind == Kind::Error && !subject.is_empty() {
            self.error(
                &with(path, Step::Field("subject")),
                "规则错误针对整条规则，不针对某个对象：subject 请写 `{}` 或删去 / a rule error is about the rule as a whole: its subject is `{}`",
            );
        }
        if let Some(m) = &x.message {
            if m.is_empty() {
                self.error(
                    &with(path, Step::Field("message")),
                    "`message` 是空的：请写预期消息中的一段文字，或删去这一项 / `message` is empty: give a part of the expected message, or leave it out",
                );
            }
        }
        Expected {
            rule: x.rule,
            subject,
            kind: x.kind,
            state: x.state,
            message: x.message,
            value: x.value,
            mail: x.mail,
            place: self.place(path),
            rule_place: self.place(&with(path, Step::Field("rule"))),
        }
    }

    fn labels(&mut self, path: &[Step], labels: BTreeMap<String, String>) -> Labels {
        for name in labels.keys() {
            if !is_valid_name(name) {
                self.error(
                    &with(path, Step::Field(name)),
                    format!("标签名 `{name}` 只能用英文字母、数字和 `_`，且不能以数字开头（如 `county`） / label name `{name}` may hold only letters, digits and `_`, and not start with a digit"),
                );
            }
        }
        labels
    }

    fn time(&mut self, path: &[Step], text: &str) -> Option<Millis> {
        match parse_time(text, self.tz) {
            Ok(t) => Some(t),
            Err(e) => {
                self.error(
                    path,
                    format!(
                        "时间 `{text}` 无法识别：请写成 `2021-03-16`、`2021-03-16T09:00` 或 `2021-03-16T09:00:00+08:00` / {e}"
                    ),
                );
                None
            }
        }
    }

    fn metric(&mut self, path: &[Step], metric: &str) {
        if !is_valid_name(metric) {
            self.error(
                path,
                format!("指标名 `{metric}` 只能用英文字母、数字和 `_`，且不能以数字开头（如 `pm25`） / metric name `{metric}` may hold only letters, digits and `_`, and not start with a digit"),
            );
        }
    }

    /// The readings of `series` and `readings` under `base`.
    fn inputs(
        &mut self,
        base: &[Step],
        series: &[SeriesRaw],
        readings: &[ReadingRaw],
    ) -> Vec<Reading> {
        use Step::*;
        let mut out = Vec::new();
        for (i, s) in series.iter().enumerate() {
            let sp = with(&with(base, Field("series")), Item(i));
            self.metric(&with(&sp, Field("metric")), &s.metric);
            let labels = self.labels(&with(&sp, Field("labels")), s.labels.clone());
            let start = self.time(&with(&sp, Field("start")), &s.start);
            let step = match parse_duration(&s.step) {
                Ok(ms) if ms > 0 => Some(ms),
                Ok(_) => {
                    self.error(
                        &with(&sp, Field("step")),
                        "`step`（间隔）要大于 0，如 `1d`、`1h` / `step` must be longer than 0s",
                    );
                    None
                }
                Err(e) => {
                    self.error(
                        &with(&sp, Field("step")),
                        format!(
                            "`step`（间隔）`{}` 无法识别：请写数字加单位，如 `1h`、`1d`、`7d`（s 秒、m 分、h 时、d 天、w 周） / {e}",
                            s.step
                        ),
                    );
                    None
                }
            };
            let values = match series::parse_values(&s.values) {
                Ok(v) => Some(v),
                Err(e) => {
                    let node = self.node(&with(&sp, Field("values")));
                    let (line, col) = match node.string_start {
                        Some(q) => locate::string_char_position(self.text, q, e.offset),
                        None => locate::line_col(self.text, node.start),
                    };
                    self.errors
                        .push(Diagnostic::error(self.path, line, col, e.message));
                    None
                }
            };
            if let (Some(start), Some(step), Some(values)) = (start, step, values) {
                for (k, v) in values.into_iter().enumerate() {
                    if let Some(value) = v {
                        out.push(Reading {
                            metric: s.metric.clone(),
                            labels: labels.clone(),
                            time: start + step * k as Millis,
                            value,
                        });
                    }
                }
            }
        }
        for (i, r) in readings.iter().enumerate() {
            let rp = with(&with(base, Field("readings")), Item(i));
            self.metric(&with(&rp, Field("metric")), &r.metric);
            let labels = self.labels(&with(&rp, Field("labels")), r.labels.clone());
            if !r.value.is_finite() {
                self.error(
                    &with(&rp, Field("value")),
                    "`value`（数值）要是有限的数，请填写实际数值 / `value` must be a finite number",
                );
            }
            if let Some(time) = self.time(&with(&rp, Field("time")), &r.time) {
                out.push(Reading {
                    metric: r.metric.clone(),
                    labels,
                    time,
                    value: r.value,
                });
            }
        }
        out
    }
}

/// Where ron's error is. ron puts an unknown key or variant somewhat
/// before the name at times: point at the name itself when it follows.
fn ron_position(text: &str, e: &ron::error::SpannedError) -> (usize, usize) {
    use ron::Error as E;
    let start = (e.span.start.line, e.span.start.col);
    let found = match &e.code {
        E::NoSuchStructField { found, .. } | E::NoSuchEnumVariant { found, .. } => found,
        _ => return start,
    };
    // Byte offset of the span's start.
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == start.0 {
            offset += l
                .chars()
                .take(start.1.saturating_sub(1))
                .map(char::len_utf8)
                .sum::<usize>();
            break;
        }
        offset += l.len();
    }
    let window = &text[offset.min(text.len())..];
    let window = match window.char_indices().nth(200) {
        Some((i, _)) => &window[..i],
        None => window,
    };
    match window.find(found.as_str()) {
        Some(i) => crate::diag::line_col(text, offset + i),
        None => start,
    }
}

/// ron's error, worded like the rest of rulewatch's messages.
fn ron_message(code: &ron::Error) -> String {
    use ron::Error as E;
    let list = |xs: &[&str]| {
        xs.iter()
            .map(|x| format!("`{x}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let what = |outer: &Option<String>| outer.clone().unwrap_or_else(|| "this value".into());
    match code {
        E::NoSuchStructField {
            expected,
            found,
            outer,
        } => {
            let guess = crate::rules::mistakes::nearest(found, expected.iter().copied())
                .map(|n| format!("是否想写 `{n}`？"))
                .unwrap_or_default();
            format!(
                "没有 `{found}` 这一项：{guess}这里可写 {}，拼错的请改正，多余的请删去 / unknown key `{found}` in {}: expected one of {}",
                list(expected).replace(", ", "、"),
                what(outer),
                list(expected)
            )
        }
        E::MissingStructField { field, outer } => {
            format!(
                "缺少 `{field}`：请补上 `{field}: …` / missing `{field}` in {}",
                what(outer)
            )
        }
        E::DuplicateStructField { field, outer } => {
            format!(
                "`{field}` 写了两次：请删去一处 / `{field}` is given twice in {}",
                what(outer)
            )
        }
        E::NoSuchEnumVariant {
            expected,
            found,
            outer,
        } => format!(
            "`{found}` 不是可选的写法：可选 {} / `{found}` is not a {}: use one of {}",
            list(expected).replace(", ", "、"),
            what(outer),
            list(expected)
        ),
        other => {
            let s = other.to_string();
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => s,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SH: Tz = chrono_tz::Asia::Shanghai;

    fn errors(text: &str) -> Vec<String> {
        parse(Path::new("t.test.ron"), text, SH)
            .unwrap_err()
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    const GOOD: &str = r#"(
    rules: ["unemployment-rate.rhai"],
    series: [(metric: "unemployment_rate", labels: {"county": "南宫"}, start: "2021-01-01", step: "1d", values: "4 _ 5x2")],
    tests: [
        (
            name: "breach",
            readings: [(metric: "unemployment_rate", labels: {"county": "南宫"}, time: "2021-01-02", value: 4.6)],
            evals: [
                (at: "2021-01-03T09:00", alerts: [
                    (subject: {"county": "南宫"}, kind: breach, state: firing, message: "超过", mail: firing, value: 5),
                ]),
                (at: "2021-01-05", alerts: []),
            ],
        ),
        (name: "other", ticks: "schedule", evals: [(at: "2021-01-03", alerts: [(kind: no_data, mail: none)])]),
    ],
)"#;

    #[test]
    fn reads_a_good_file() {
        let f = parse(Path::new("rules/hr/u.test.ron"), GOOD, SH).unwrap();
        assert_eq!(f.rules[0].text, "unemployment-rate.rhai");
        assert!(f.rules[0].is_path());
        assert_eq!(f.dir(), Path::new("rules/hr"));
        assert_eq!(f.cases.len(), 2);
        let c = &f.cases[0];
        assert_eq!(c.name, "breach");
        assert_eq!(c.place.line, 5);
        // Shared series (3 readings: 4, gap, 5, 5) then the test's own.
        let values: Vec<f64> = c.readings.iter().map(|r| r.value).collect();
        assert_eq!(values, [4.0, 5.0, 5.0, 4.6]);
        let day = crate::time::DAY;
        let t0 = parse_time("2021-01-01", SH).unwrap();
        assert_eq!(c.readings[1].time, t0 + 2 * day);
        assert_eq!(c.evals.len(), 2);
        assert_eq!(c.evals[0].place.line, 9);
        let x = &c.evals[0].expected[0];
        assert_eq!(x.place.line, 10);
        assert_eq!(
            (x.kind, x.state, x.mail),
            (
                Kind::Breach,
                Some(ExpectedState::Firing),
                Some(Mail::Firing)
            )
        );
        assert_eq!(x.value, Some(5.0));
        assert_eq!(x.subject.get("county").map(String::as_str), Some("南宫"));
        assert_eq!(f.cases[1].ticks, Ticks::Schedule);
        assert_eq!(f.cases[1].evals[0].expected[0].mail, Some(Mail::None));
        assert_eq!(f.cases[1].readings.len(), 3);
    }

    #[test]
    fn unknown_keys_and_variants_are_errors_with_positions() {
        let e = errors("(rules: [\"a\"], tests: [(name: \"x\", evals: [], colour: 1)])");
        assert_eq!(e, ["t.test.ron:1:47: error: 没有 `colour` 这一项：这里可写 `name`、`series`、`readings`、`ticks`、`evals`，拼错的请改正，多余的请删去 / unknown key `colour` in test: expected one of `name`, `series`, `readings`, `ticks`, `evals`"]);
        let e = errors("(rules: [\"a\"], tests: [(name: \"x\", evals: [], tiks: \"12h\")])");
        assert!(
            e[0].contains("没有 `tiks` 这一项：是否想写 `ticks`？"),
            "{e:?}"
        );
        let e = errors("(rules: [\"a\"],\n tests: [(name: \"x\", evals: [(at: \"2021-01-01\", alerts: [(kind: braech)])])])");
        assert_eq!(e, ["t.test.ron:2:65: error: `braech` 不是可选的写法：可选 `breach`、`no_data`、`error` / `braech` is not a kind: use one of `breach`, `no_data`, `error`"]);
    }

    #[test]
    fn every_value_problem_is_reported_at_its_place() {
        let text = r#"(
    rules: [],
    tests: [
        (name: "a", series: [(metric: "pm-25", start: "2021-13-01", step: "0s", values: "1 2 oops")], evals: []),
        (name: "a", evals: [(at: "2021-01-02", alerts: []), (at: "2021-01-01", alerts: [(kind: no_data, state: pending)])]),
    ],
)"#;
        let e = errors(text);
        let at: Vec<&str> = e
            .iter()
            .map(|s| s.split(": error").next().unwrap())
            .collect();
        assert_eq!(
            at,
            [
                "t.test.ron:2:12",
                "t.test.ron:4:39",
                "t.test.ron:4:55",
                "t.test.ron:4:75",
                "t.test.ron:4:94",
                "t.test.ron:4:110",
                "t.test.ron:5:16",
                "t.test.ron:5:66",
                "t.test.ron:5:112",
            ],
            "{e:#?}"
        );
        assert!(e[0].contains("`rules` is empty"));
        assert!(e[5].contains("`evals` 是空的") && e[5].contains("`evals` is empty"));
        assert!(e[6].contains("有两个测试都叫 `a`") && e[6].contains("two tests are named `a`"));
        assert!(e[7].contains("must go forward"));
        assert!(e[8].contains("only a breach can be pending"));
    }
}
