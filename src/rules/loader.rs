//! Loading rule files: compile once, read the `const RULE` metadata without
//! running the script, validate it, and report every problem with its place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rhai::{Engine, AST};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::mistakes;
use super::schedule::Schedule;
use super::source::{scan, Kind, Token};
use crate::config::Config;
use crate::diag::{line_col, Diagnostic};
use crate::readings::Labels;
use crate::time::{parse_duration, Millis, Window};

/// How bad a breach is; decides the subject prefix of mails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn parse(text: &str) -> Result<Severity, String> {
        match text {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!(
                "unknown severity `{text}`: use `info`, `warning` or `critical`"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// As shown in mail subjects: `[严重] …` (提示 / 警告 / 严重).
    pub fn label_zh(self) -> &'static str {
        match self {
            Severity::Info => "提示",
            Severity::Warning => "警告",
            Severity::Critical => "严重",
        }
    }
}

/// The `const RULE` map as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaFile {
    id: String,
    title: String,
    #[serde(default)]
    owner: Option<String>,
    severity: String,
    #[serde(default)]
    schedule: Option<String>,
    notify: Vec<String>,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    repeat: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    chart: Option<ChartFile>,
    #[serde(default)]
    year: Option<i64>,
    #[serde(default)]
    grace: Option<String>,
}

/// How long after its year a year's rule still evaluates, by default: the
/// December figures are due by 15 January; late ones and corrections get
/// until the end of February.
pub const DEFAULT_YEAR_GRACE: Millis = 59 * crate::time::DAY;

/// The optional `chart: #{ … }` entry of `RULE`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChartFile {
    metric: String,
    #[serde(default)]
    filter: Option<Labels>,
    #[serde(default)]
    window: Option<String>,
    #[serde(default)]
    year: Option<i64>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    threshold: Option<rhai::Dynamic>,
    #[serde(default)]
    pace: Option<rhai::Dynamic>,
    #[serde(default)]
    tolerance: Option<rhai::Dynamic>,
    #[serde(default)]
    breach: Option<String>,
    #[serde(default)]
    monthly: Option<bool>,
    #[serde(default)]
    year_end: Option<bool>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    rank: Option<String>,
}

/// What the status page and mails chart for a rule: the readings of one
/// metric (the very series the rule reads) with the rule's line drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    pub metric: String,
    /// Labels a series must have (a subject's labels narrow it further).
    pub filter: Labels,
    pub range: ChartRange,
    pub unit: Option<String>,
    pub line: ChartLine,
    /// Which side of the line is a breach (`None`: the rule's target is not
    /// on this scale, e.g. a rank: no line is drawn).
    pub breach: Option<Breach>,
    /// With `pace`: how far behind the pace line (a share of the full-year
    /// target) a month may be before the rule breaches; December's figure is
    /// held to the full target. Only decides which points are marked.
    pub tolerance: f64,
    /// Average by calendar month (for daily readings judged monthly).
    pub monthly: bool,
    /// Only the year's December figure is judged against the line (a
    /// year-end count): earlier points are never marked as breaches.
    pub year_end: bool,
    /// What the plotted values are, e.g. `南宫 PM2.5 月均浓度`.
    pub label: Option<String>,
    /// `rank: "county"`: chart the place (1 = lowest monthly mean) of the
    /// filter's value of this label among all its values, month by month
    /// (complete months only), instead of the readings; the line is the tier.
    pub rank: Option<String>,
}

/// The time span a chart covers, relative to the evaluation it illustrates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChartRange {
    /// A window as rules name them (`365d`, `year`, …), ending at the evaluation.
    Window(Window),
    /// One calendar year (the year a target is for), clipped at the evaluation.
    Year(i32),
}

/// The target drawn on a chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChartLine {
    None,
    /// A flat limit: `threshold: 4.5`.
    Flat(f64),
    /// A year-to-date target reached in twelve equal monthly steps
    /// (`pace: 220.0`): by the end of month m, `pace × m / 12`.
    Pace(f64),
    /// `threshold: "finding"`: the `threshold` each finding reports (targets
    /// that differ by subject, like each water section's class). Drawn in
    /// mails, where the finding is at hand.
    FromFinding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    /// Values above the line breach it (an upper limit).
    Above,
    /// Values below the line breach it (a lower limit, a pace).
    Below,
}

fn number(value: &rhai::Dynamic) -> Option<f64> {
    value
        .as_float()
        .ok()
        .or_else(|| value.as_int().ok().map(|i| i as f64))
}

/// `threshold` and `pace` are two kinds of target line: a chart draws one.
const BOTH_LINES: &str = "`threshold`（限值线）和 `pace`（进度线）只能写一个 / chart: give `threshold` or `pace`, not both";

/// Validates `chart`; errors are messages for the `chart` key.
fn chart_spec(file: ChartFile) -> Result<ChartSpec, String> {
    if !crate::readings::model::is_valid_name(&file.metric) {
        return Err(format!(
            "`metric: \"{m}\"` 不是指标名：指标名只能用字母、数字和 `_`，如 \"pm25\" / chart: `{m}` is not a metric name",
            m = file.metric
        ));
    }
    let range = match (file.window, file.year) {
        (Some(_), Some(_)) => return Err("`window` 和 `year` 只能写一个：画最近一段时间写 window，画一个工作报告年度写 year / chart: give `window` or `year`, not both".into()),
        (Some(w), None) => {
            ChartRange::Window(Window::parse(&w).map_err(|e| {
                format!("`window: \"{w}\"` 写法有误：请写时长如 \"30d\"，或 \"month\"（本月）、\"last_month\"（上月）、\"year\"（今年）、\"2021\"（某一年）等 / chart: {e}")
            })?)
        }
        (None, Some(y)) if (1900..=9999).contains(&y) => ChartRange::Year(y as i32),
        (None, Some(y)) => return Err(format!(
                "`year: {y}` 不是年份：请写四位数年份，如 year: 2021 / chart: `year: {y}` is not a year"
            )),
        (None, None) => ChartRange::Window(Window::Last(365 * crate::time::DAY)),
    };
    let value = |key: &str, v: Option<rhai::Dynamic>| -> Result<Option<f64>, String> {
        match v {
            None => Ok(None),
            Some(v) => number(&v)
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| format!("`{key}` 要写数字（如 35 或 4.5，不加引号和单位） / chart: `{key}` must be a number")),
        }
    };
    let from_finding = file
        .threshold
        .as_ref()
        .and_then(|t| t.clone().into_string().ok())
        .map(|t| {
            if t == "finding" {
                Ok(())
            } else {
                Err(format!("`threshold: \"{t}\"` 无法识别：请写数字（如 35），或写 \"finding\" 表示用每条发现自己报告的限值 / chart: `threshold: \"{t}\"`: give a number, or `\"finding\"` for the threshold each finding reports"))
            }
        })
        .transpose()?
        .is_some();
    let threshold = if from_finding { None } else { file.threshold };
    let line = match (value("threshold", threshold)?, value("pace", file.pace)?) {
        (Some(_), Some(_)) => return Err(BOTH_LINES.into()),
        (None, Some(_)) if from_finding => return Err(BOTH_LINES.into()),
        (Some(t), None) => ChartLine::Flat(t),
        (None, Some(p)) => ChartLine::Pace(p),
        (None, None) if from_finding => ChartLine::FromFinding,
        (None, None) => ChartLine::None,
    };
    let tolerance = value("tolerance", file.tolerance)?.unwrap_or(0.0);
    if tolerance != 0.0 && !matches!(line, ChartLine::Pace(_)) {
        return Err("`tolerance`（容差）只和 `pace`（进度线）一起用：请删去 tolerance 或改用 pace / chart: `tolerance` goes with `pace`".into());
    }
    if !(0.0..1.0).contains(&tolerance) {
        return Err("`tolerance` 是目标的比例，要在 0 到 1 之间（不含 1），如 0.05 表示 5% / chart: `tolerance` is a share of the target, from 0 to below 1".into());
    }
    if let Some(key) = &file.rank {
        if !file.filter.as_ref().is_some_and(|f| f.contains_key(key)) {
            return Err(format!("`rank: \"{key}\"` 要配 `filter: #{{ {key}: \"…\" }}`，说明画谁的名次（如 filter: #{{ {key}: \"南宫\" }}） / chart: `rank: \"{key}\"` needs `filter: #{{ {key}: \"…\" }}` (whose place to chart)"));
        }
        if matches!(line, ChartLine::Pace(_)) {
            return Err("`rank`（名次图）要配 `threshold`（名次线，如前 5 名写 5），不能配 `pace` / chart: `rank` goes with `threshold` (the tier), not `pace`".into());
        }
    }
    let breach = match file.breach.as_deref() {
        None if line == ChartLine::None => None,
        None if file.rank.is_some() => Some(Breach::Above), // a place past the tier
        None if matches!(line, ChartLine::Pace(_)) => Some(Breach::Below),
        None => return Err("写了 `threshold` 就要说明哪一边算超标：上限写 `breach: \"above\"`，下限写 `breach: \"below\"` / chart: with a `threshold`, say which side breaches it: `breach: \"above\"` (an upper limit) or `breach: \"below\"` (a lower limit)".into()),
        Some("above") => Some(Breach::Above),
        Some("below") => Some(Breach::Below),
        Some(other) => return Err(format!("`breach: \"{other}\"` 无法识别：上限写 \"above\"，下限写 \"below\" / chart: `breach: \"{other}\"`: use `above` or `below`")),
    };
    Ok(ChartSpec {
        metric: file.metric,
        filter: file.filter.unwrap_or_default(),
        range,
        unit: file.unit,
        line,
        breach,
        tolerance,
        monthly: file.monthly.unwrap_or(false),
        year_end: {
            let year_end = file.year_end.unwrap_or(false);
            if year_end && !matches!(range, ChartRange::Year(_)) {
                return Err("`year_end` 要配 `year`（画哪一年到年底）：请加上 year: 2021 这样的年份 / chart: `year_end` needs `year`".into());
            }
            year_end
        },
        label: file.label,
        rank: file.rank,
    })
}

/// A rule's validated metadata.
#[derive(Debug, Clone)]
pub struct RuleMeta {
    pub id: String,
    pub title: String,
    pub owner: Option<String>,
    pub description: Option<String>,
    pub severity: Severity,
    pub schedule: Schedule,
    pub notify: Vec<String>,
    /// Mail addresses `notify` resolves to.
    pub recipients: Vec<String>,
    pub for_: Millis,
    pub repeat: Millis,
    /// What to chart on the status page and in mails (`chart: #{ … }`).
    pub chart: Option<ChartSpec>,
    /// The work-report year the rule judges (`year: 2021`).
    pub year: Option<i32>,
    /// How long after its year the rule still evaluates (`grace: "59d"`).
    pub grace: Millis,
    /// End of `year` plus `grace` in the configured zone: from then on the
    /// rule's alerts are frozen (the year's results stand).
    pub closes_at: Option<Millis>,
}

/// A loaded rule: metadata, source, and the compiled script.
#[derive(Debug, Clone)]
pub struct Rule {
    pub meta: RuleMeta,
    pub path: PathBuf,
    pub source: String,
    /// SHA-256 of the file's content, recorded with every alert transition.
    pub content_hash: String,
    pub ast: AST,
}

/// Every `*.rhai` file under `dir`, sorted, recursively.
pub fn rule_files(dir: &Path) -> Vec<PathBuf> {
    files_ending_in(dir, ".rhai")
}

/// Every file under `dir` (recursively) whose name ends in `suffix`, sorted.
pub fn files_ending_in(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(suffix))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Loads every rule under the config's rules folder. Returns the rules that
/// loaded and every problem (errors and warnings) found on the way; a file
/// with an error is left out. Duplicate ids: the second file is the error.
pub fn load_rules(engine: &Engine, config: &Config) -> (Vec<Rule>, Vec<Diagnostic>) {
    let mut rules: Vec<Rule> = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for path in rule_files(&config.rules_dir) {
        match load_rule(engine, config, &path) {
            Ok((rule, warnings)) => {
                problems.extend(warnings);
                if let Some(first) = seen.get(&rule.meta.id) {
                    let (line, col) = meta_position(&rule.source, "id");
                    problems.push(
                        Diagnostic::error(
                            &path,
                            line,
                            col,
                            format!(
                                "规则编号 `{}` 重复：`{}` 已经用了它",
                                rule.meta.id,
                                first.display()
                            ),
                        )
                        .with_width(2)
                        .with_hint("每条规则的 id 要不同：给本文件换一个编号"),
                    );
                    continue;
                }
                seen.insert(rule.meta.id.clone(), path.clone());
                rules.push(rule);
            }
            Err(errors) => problems.extend(errors),
        }
    }
    (rules, problems)
}

/// Loads one rule file. Ok carries warnings; Err every error.
pub fn load_rule(
    engine: &Engine,
    config: &Config,
    path: &Path,
) -> Result<(Rule, Vec<Diagnostic>), Vec<Diagnostic>> {
    let bytes = std::fs::read(path).map_err(|e| {
        vec![Diagnostic::error(
            path,
            0,
            0,
            format!("读不到规则文件：{e}"),
        )]
    })?;
    let source = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..offset]).into_owned();
        let (line, col) = line_col(&text, offset);
        vec![
            Diagnostic::error(path, line, col, "规则文件不是 UTF-8 编码")
                .with_hint("用 UTF-8 编码保存（记事本“另存为”时选 UTF-8）"),
        ]
    })?;
    parse_rule(engine, config, path, source)
}

/// Compiles and validates rule `source` as if read from `path`.
pub fn parse_rule(
    engine: &Engine,
    config: &Config,
    path: &Path,
    source: String,
) -> Result<(Rule, Vec<Diagnostic>), Vec<Diagnostic>> {
    let tokens = scan(&source);
    let ast = match engine.compile(&source) {
        Ok(ast) => ast,
        Err(e) => {
            let mut errors = mistakes::compile_error(path, &source, &e);
            // Full-width marks: read on as if the author had typed them in
            // ASCII, so one `check` shows the file's other mistakes too.
            let fixed = mistakes::with_ascii_punctuation(&source, &tokens);
            if fixed != source {
                if let Err(more) = parse_rule(engine, config, path, fixed) {
                    errors.extend(more);
                }
            }
            errors.sort_by_key(|d| (d.line, d.col));
            errors.dedup();
            return Err(errors);
        }
    };
    let misspelled = mistakes::unknown_names(path, engine, &tokens);
    let err_at = |key: &str, message: String| {
        let (line, col) = meta_position(&source, key);
        Diagnostic::error(path, line, col, message)
    };
    let Some(value) = ast
        .iter_literal_variables(true, false)
        .find(|(name, _, _)| *name == "RULE")
        .map(|(_, _, v)| v)
    else {
        let problem = if source.contains("const RULE") {
            err_at("", "`const RULE` 只能是直接写出的映射，不能有计算".into()).with_hint(
                "每一项都写成字面值，如 title: \"城镇登记失业率 ≤ 4.5%\"，不要引用变量或调用函数",
            )
        } else {
            err_at("", "缺少规则说明 `const RULE = #{ … };`".into()).with_hint(
                "在文件开头写上 const RULE = #{ id: \"…\", title: \"…\", severity: \"warning\", notify: [\"组名\"] };",
            )
        };
        return Err(vec![problem]);
    };
    let meta: MetaFile = rhai::serde::from_dynamic(&value)
        .map_err(|e| vec![metadata_error(path, &source, &e.to_string())])?;

    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let at_value = |key: &str, value: &str, message: String| {
        let (line, col) = value_position(&source, &tokens, key, value);
        Diagnostic::error(path, line, col, message).with_width(value.chars().count() + 2)
    };
    if !super::is_valid_id(&meta.id) {
        let suggested: String = meta
            .id
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let suggested = suggested.trim_matches('-');
        let mut d = at_value(
            "id",
            &meta.id,
            format!("规则编号 `{}` 只能含小写字母 a-z、数字 0-9 和 -", meta.id),
        );
        d = if suggested.is_empty() {
            d.with_hint("用拼音或英文缩写，如 id: \"unemployment-rate\"")
        } else {
            d.with_hint(format!("如 id: \"{suggested}\""))
        };
        errors.push(d);
    }
    if meta.title.trim().is_empty() {
        errors.push(
            at_value("title", &meta.title, "title 是空的".into())
                .with_hint("写一句说明目标的标题，如 title: \"城镇登记失业率 ≤ 4.5%\""),
        );
    }
    let severity = Severity::parse(&meta.severity).unwrap_or_else(|_| {
        let d = at_value(
            "severity",
            &meta.severity,
            format!("没有严重程度 `{}`", meta.severity),
        );
        let hint = "用 info、warning 或 critical（提示 / 警告 / 严重）";
        errors.push(
            match mistakes::nearest(&meta.severity, ["info", "warning", "critical"]) {
                Some(n) => d.with_hint(format!("是否想用 \"{n}\"？{hint}")),
                None => d.with_hint(hint),
            },
        );
        Severity::Warning
    });
    let schedule_text = meta
        .schedule
        .clone()
        .unwrap_or_else(|| config.defaults.schedule.clone());
    let schedule = match Schedule::parse(&schedule_text) {
        Ok(s) => {
            if s.restricts_both_days() {
                let (line, col) = value_position(&source, &tokens, "schedule", &schedule_text);
                warnings.push(
                    Diagnostic::warning(
                        path,
                        line,
                        col,
                        format!("执行时间 `{schedule_text}` 同时限定了日期和星期：这里两者都满足才执行（传统 cron 是满足其一）"),
                    )
                    .with_width(schedule_text.chars().count() + 2)
                    .with_hint("只保留其中一个，另一个写 *"),
                );
            }
            Some(s)
        }
        Err(e) => {
            errors.push(schedule_error(
                at_value("schedule", &schedule_text, String::new()),
                &schedule_text,
                &e,
            ));
            None
        }
    };
    let mut duration = |key: &str, text: &Option<String>, default: Millis| {
        match text {
        None => default,
        Some(t) => parse_duration(t).unwrap_or_else(|_| {
            errors.push(
                at_value(key, t, format!("时长 `{t}` 写得不对"))
                    .with_hint(format!("写成数字加单位：\"{key}\": \"30m\"、\"1h\"、\"7d\"（s 秒、m 分、h 小时、d 天、w 周）")),
            );
            default
        }),
    }
    };
    let for_ = duration("for", &meta.for_, config.defaults.for_);
    let repeat = duration("repeat", &meta.repeat, config.defaults.repeat);
    let grace = duration("grace", &meta.grace, DEFAULT_YEAR_GRACE);
    if meta.notify.is_empty() {
        errors.push(
            err_at("notify", "notify 是空的：没有收件人".into()).with_hint(format!(
                "至少写一个收件组，如 notify: [\"{}\"]；组名见 {} 的 recipients",
                config
                    .recipients
                    .keys()
                    .next()
                    .map_or("组名", String::as_str),
                config_name(config)
            )),
        );
    }
    let mut groups_ok = true;
    for group in meta.notify.iter().filter(|g| !g.contains('@')) {
        if config.recipients.contains_key(group) {
            continue;
        }
        groups_ok = false;
        let known: Vec<&str> = config.recipients.keys().map(String::as_str).collect();
        let d = at_value(
            "notify",
            group,
            format!("收件组 `{group}` 在 {} 里没有定义", config_name(config)),
        );
        let add = format!(
            "在 {} 的 recipients 里加上 \"{group}\": [\"地址@example.cn\"]",
            config_name(config)
        );
        errors.push(match mistakes::nearest(group, known.iter().copied()) {
            Some(n) => d.with_hint(format!("是否想用 \"{n}\"？或{add}")),
            None if known.is_empty() => d.with_hint(add),
            None => d.with_hint(format!("已定义的收件组：{}；或{add}", known.join("、"))),
        });
    }
    let recipients = if groups_ok {
        config.resolve_recipients(&meta.notify).unwrap_or_else(|e| {
            errors.push(err_at("notify", format!("收件地址有误：{e}")));
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let year = match meta.year {
        None => None,
        Some(y) if (2000..=2100).contains(&y) => Some(y as i32),
        Some(y) => {
            errors.push(err_at(
                "year",
                format!("`year: {y}` 不是工作报告的年份（应为 2000–2100 之间的四位数年份，如 year: 2021）"),
            ));
            None
        }
    };
    if meta.year.is_none() && meta.grace.is_some() {
        errors.push(err_at(
            "grace",
            "`grace` 要和 `year` 一起写：它是年度结束后仍接受迟报数据的宽限期（如 year: 2021, grace: \"59d\"）"
                .into(),
        ));
    }
    let closes_at = year.map(|y| crate::time::months_span(y + 1, 1, 1, config.timezone).0 + grace);
    let chart = meta.chart.and_then(|c| {
        chart_spec(c)
            .map_err(|e| errors.push(err_at("chart", format!("图表设置（chart）有误：{e}"))))
            .ok()
    });
    errors.extend(misspelled);
    if !errors.is_empty() {
        errors.sort_by_key(|d| (d.line, d.col));
        return Err(errors);
    }
    let content_hash = hex::encode(Sha256::digest(source.as_bytes()));
    Ok((
        Rule {
            meta: RuleMeta {
                id: meta.id,
                title: meta.title,
                owner: meta.owner,
                description: meta.description,
                severity,
                schedule: schedule.expect("errors checked above"),
                notify: meta.notify,
                recipients,
                for_,
                repeat,
                chart,
                year,
                grace,
                closes_at,
            },
            path: path.to_path_buf(),
            source,
            content_hash,
            ast,
        },
        warnings,
    ))
}

/// The config file's name as the author knows it (`rulewatch.ron`).
fn config_name(config: &Config) -> String {
    config.path.file_name().map_or_else(
        || "rulewatch.ron".into(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Where the string `value` of `key:` is written inside `const RULE` (the
/// opening quote); the key's position when the value is not found there.
fn value_position(source: &str, tokens: &[Token], key: &str, value: &str) -> (usize, usize) {
    let (key_line, key_col) = meta_position(source, key);
    let start = tokens
        .iter()
        .position(|t| (t.line, t.col) >= (key_line, key_col));
    let found = start.and_then(|s| {
        tokens[s..]
            .iter()
            .take_while(|t| !t.is(';'))
            // Stop at the next key of the map.
            .enumerate()
            .take_while(|(i, t)| *i < 2 || !t.is(':'))
            .find(|(_, t)| t.kind == Kind::Str(value.to_string()))
            .map(|(_, t)| (t.line, t.col))
    });
    found.unwrap_or((key_line, key_col))
}

/// Why `RULE` does not read as rule metadata, in the author's words.
fn metadata_error(path: &Path, source: &str, message: &str) -> Diagnostic {
    let message = message.strip_prefix("Syntax error: ").unwrap_or(message);
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let at = |key: &str| {
        let (line, col) = meta_position(source, key);
        (line, col)
    };
    if let (Some(field), true) = (quoted.first(), message.starts_with("unknown field")) {
        let (line, col) = at(field);
        let allowed: Vec<&str> = quoted[1..].to_vec();
        let d = Diagnostic::error(path, line, col, format!("RULE 里没有 `{field}` 这一项"))
            .with_width(field.chars().count());
        let list = allowed.join("、");
        return match mistakes::nearest(field, allowed.iter().copied()) {
            Some(n) => d.with_hint(format!("是否想写 {n}？可写的项：{list}")),
            None => d.with_hint(format!("可写的项：{list}")),
        };
    }
    if let (Some(field), true) = (quoted.first(), message.starts_with("missing field")) {
        let (line, col) = at("");
        let example = match *field {
            "id" => "id: \"unemployment-rate\"（小写字母、数字和 -）",
            "title" => "title: \"城镇登记失业率 ≤ 4.5%\"",
            "severity" => "severity: \"warning\"（info / warning / critical）",
            "notify" => "notify: [\"组名\"]（组名见配置文件的 recipients）",
            "metric" => "metric: \"unemployment_rate\"",
            _ => "",
        };
        let d = Diagnostic::error(path, line, col, format!("RULE 缺少 `{field}`"))
            .with_width("const RULE".len());
        return if example.is_empty() {
            d
        } else {
            d.with_hint(format!("在 RULE 里加上 {example}"))
        };
    }
    if message.contains("expected a sequence") {
        let (line, col) = at("notify");
        return Diagnostic::error(path, line, col, "notify 要写成列表")
            .with_width("notify".len())
            .with_hint("即使只有一个收件组，也写在方括号里：notify: [\"hr\"]");
    }
    let (line, col) = at(quoted.first().copied().unwrap_or(""));
    Diagnostic::error(path, line, col, format!("RULE 的写法有误：{message}"))
        .with_hint("每一项写成 键: 值，文字加双引号，数字直接写，如 severity: \"warning\"")
}

/// A schedule that does not parse; a five-field (classic) cron gets the
/// six-field form of the same meaning.
fn schedule_error(at: Diagnostic, text: &str, detail: &str) -> Diagnostic {
    let fields = text.split_whitespace().count();
    let six = format!("0 {}", text.trim());
    if fields == 5 && Schedule::parse(&six).is_ok() {
        return Diagnostic {
            message: format!("执行时间 `{text}` 只有 5 段：这里要 6 段，第一段是秒"),
            ..at
        }
        .with_hint(format!("写成 \"{six}\"（意思不变，在最前面加上秒 0）"));
    }
    Diagnostic {
        message: format!("执行时间 `{text}` 写得不对（{detail}）"),
        ..at
    }
    .with_hint(
        "6 段：秒 分 时 日 月 星期，如 \"0 0 9 16 * *\" 是每月16日 09:00；或 @daily、@monthly",
    )
}

/// Position of `key:` inside the `const RULE` map (or of `const RULE` itself
/// when `key` is empty or not found); (1, 1) when there is no RULE at all.
pub fn meta_position(source: &str, key: &str) -> (usize, usize) {
    let Some(start) = source.find("const RULE") else {
        return (1, 1);
    };
    if !key.is_empty() {
        let body = &source[start..];
        let end = body.find("};").map_or(body.len(), |e| e + 2);
        let mut from = 0;
        while let Some(i) = body[from..end].find(key) {
            let at = from + i;
            let before = body[..at].chars().next_back();
            // The key may be quoted (`"for": …`, as it must be for keywords).
            let rest = &body[at + key.len()..];
            let after = rest.strip_prefix('"').unwrap_or(rest).trim_start();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && after.starts_with(':') {
                let at = if before == Some('"') { at - 1 } else { at };
                return line_col(source, start + at);
            }
            from = at + key.len();
        }
    }
    line_col(source, start)
}
