//! The functions rules call. Scans, aggregates, percentiles and grouping run
//! here, natively; the script only decides. Reference: `docs/rules.md`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Datelike, Timelike};
use chrono_tz::Tz;
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, INT};

use super::context::current;
use super::domain;
use super::finding::{Finding, FindingKind};
use crate::readings::model::MAX_LABEL_VALUE_BYTES;
use crate::readings::source::ReadingSource;
use crate::readings::store::Series;
use crate::readings::Labels;
use crate::time::{self, Millis, Window};

type Result<T> = std::result::Result<T, Box<EvalAltResult>>;

fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(message.into().into())
}

/// A point in time as rules see it: comparable, with calendar fields in the
/// configured timezone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Time {
    pub millis: Millis,
    pub tz: Tz,
}

impl Time {
    fn local(&self) -> chrono::DateTime<Tz> {
        time::to_local(self.millis, self.tz)
    }
}

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.local().format("%Y-%m-%d %H:%M"))
    }
}

/// Everything the API needs from the current evaluation, copied out so the
/// context is not borrowed while the store is scanned.
struct Query {
    readings: Arc<dyn ReadingSource>,
    now: Millis,
    tz: Tz,
}

fn query() -> Result<Query> {
    current(|c| Query {
        readings: c.readings.clone(),
        now: c.now,
        tz: c.tz,
    })
    .or_else(fail)
}

/// A number from a script value (integer or float).
pub fn number(value: &Dynamic, what: &str) -> Result<f64> {
    if let Ok(f) = value.as_float() {
        return Ok(f);
    }
    if let Ok(i) = value.as_int() {
        return Ok(i as f64);
    }
    fail(format!(
        "{what} 应是数字，这里是 {t} / {what} must be a number, got {t}",
        t = value.type_name()
    ))
}

/// A label map (`#{ county: "南宫" }`): values must be strings or numbers.
fn labels_of(map: &Map, what: &str) -> Result<Labels> {
    let mut labels = Labels::new();
    for (k, v) in map {
        let text = if let Some(s) = v.read_lock::<ImmutableString>() {
            s.as_str().to_owned()
        } else if v.is_int() || v.is_float() {
            v.to_string()
        } else {
            return fail(format!(
                "{what}：标签 `{k}` 的值应是文字（加双引号），这里是 {t} / {what}: label `{k}` must be a string, got {t}",
                t = v.type_name()
            ));
        };
        labels.insert(k.as_str().to_owned(), text);
    }
    Ok(labels)
}

/// Labels as a rule sees them. Ingest refuses label values over
/// [`MAX_LABEL_VALUE_BYTES`]; one stored before that limit is cut to it here,
/// so that no stored reading can push a rule past the sandbox's string limit.
fn labels_map(labels: &Labels) -> Map {
    labels
        .iter()
        .map(|(k, v)| {
            let v = if v.len() > MAX_LABEL_VALUE_BYTES {
                let mut end = MAX_LABEL_VALUE_BYTES;
                while !v.is_char_boundary(end) {
                    end -= 1;
                }
                v[..end].to_string()
            } else {
                v.clone()
            };
            (k.as_str().into(), Dynamic::from(v))
        })
        .collect()
}

fn window(text: &str, q: &Query) -> Result<time::Range> {
    Window::parse(text)
        .map(|w| w.range(q.now, q.tz))
        .or_else(fail)
}

/// The aggregate functions `agg` and `group` accept.
#[derive(Debug, Clone, Copy)]
enum Func {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    First,
    Last,
    Percentile(f64),
}

impl Func {
    fn parse(name: &str) -> Result<Func> {
        Ok(match name {
            "avg" | "mean" => Func::Avg,
            "min" => Func::Min,
            "max" => Func::Max,
            "sum" => Func::Sum,
            "count" => Func::Count,
            "first" => Func::First,
            "last" => Func::Last,
            p if p.starts_with('p') => match p[1..].parse::<u32>() {
                Ok(n) if (1..=99).contains(&n) => Func::Percentile(n as f64 / 100.0),
                _ => {
                    return fail(format!(
                        "没有统计方式 `{name}`：百分位数写 p1 … p99（如 p95） / unknown aggregate `{name}`: percentiles are p1 … p99"
                    ))
                }
            },
            _ => {
                return fail(format!(
                    "没有统计方式 `{name}`：可用 avg（平均）min max sum count first last p50 p90 p95（中位数写 p50） / unknown aggregate `{name}`: use avg min max sum count first last p50 p90 p95"
                ))
            }
        })
    }
}

/// Running state of one aggregate over readings from one or more series.
struct Acc {
    func: Func,
    n: usize,
    sum: f64,
    min: f64,
    max: f64,
    first: Option<(Millis, f64)>,
    last: Option<(Millis, f64)>,
    values: Vec<f64>,
}

impl Acc {
    fn new(func: Func) -> Acc {
        Acc {
            func,
            n: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            first: None,
            last: None,
            values: Vec::new(),
        }
    }

    /// Adds the readings of `s` inside `range`. Count, sum, min and max come
    /// from the series' per-day summaries; the others need the readings.
    fn add_series(&mut self, s: &Series, range: &time::Range) {
        match self.func {
            Func::Avg | Func::Sum | Func::Count => {
                let day_sums = s.count_and_sum(range.from, range.to);
                self.n += day_sums.count;
                self.sum += day_sums.sum;
            }
            Func::Min | Func::Max => {
                let day_sums = s.summarize(range.from, range.to);
                self.n += day_sums.count;
                self.sum += day_sums.sum;
                self.min = self.min.min(day_sums.min);
                self.max = self.max.max(day_sums.max);
            }
            Func::First | Func::Last | Func::Percentile(_) => {
                let (t, v) = s.range(range.from, range.to);
                self.add(t, v);
            }
        }
    }

    fn add(&mut self, times: &[Millis], values: &[f64]) {
        if values.is_empty() {
            return;
        }
        self.n += values.len();
        match self.func {
            Func::Avg | Func::Sum | Func::Min | Func::Max | Func::Count => {
                unreachable!("summarised by add_series")
            }
            Func::First => {
                let candidate = (times[0], values[0]);
                if self.first.is_none_or(|(t, _)| candidate.0 < t) {
                    self.first = Some(candidate);
                }
            }
            Func::Last => {
                let candidate = (times[times.len() - 1], values[values.len() - 1]);
                if self.last.is_none_or(|(t, _)| candidate.0 > t) {
                    self.last = Some(candidate);
                }
            }
            Func::Percentile(_) => self.values.extend_from_slice(values),
        }
    }

    fn result(mut self) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        Some(match self.func {
            Func::Avg => self.sum / self.n as f64,
            Func::Sum => self.sum,
            Func::Min => self.min,
            Func::Max => self.max,
            Func::Count => self.n as f64,
            Func::First => self.first?.1,
            Func::Last => self.last?.1,
            Func::Percentile(p) => {
                self.values.sort_unstable_by(f64::total_cmp);
                domain::percentile(&self.values, p)?
            }
        })
    }
}

fn float_or_unit(v: Option<f64>) -> Dynamic {
    v.map_or(Dynamic::UNIT, Dynamic::from_float)
}

// ---------------------------------------------------------------- data

fn latest(metric: &str, filter: &Map) -> Result<Dynamic> {
    latest_within(metric, filter, None)
}

/// The latest reading inside a window (`latest_in`), or at all (`latest`).
fn latest_within(metric: &str, filter: &Map, window_text: Option<&str>) -> Result<Dynamic> {
    let q = query()?;
    let filter = labels_of(filter, "latest filter")?;
    let range = match window_text {
        Some(w) => window(w, &q)?,
        None => time::Range {
            from: Millis::MIN,
            to: q.now,
        },
    };
    let found = q
        .readings
        .with_series(metric, &filter, Millis::MIN, |series| {
            let mut best: Option<(Millis, f64, &Series)> = None;
            for s in series {
                if let Some((t, v)) = s
                    .last_at_or_before(range.to)
                    .filter(|(t, _)| *t >= range.from)
                {
                    if best.is_none_or(|(bt, _, _)| t > bt) {
                        best = Some((t, v, s));
                    }
                }
            }
            best.map(|(t, v, s)| (t, v, s.key.labels.clone()))
        })
        .or_else(|e| fail(e.to_string()))?;
    Ok(match found {
        None => Dynamic::UNIT,
        Some((t, v, labels)) => {
            let mut m = Map::new();
            m.insert("value".into(), Dynamic::from_float(v));
            m.insert(
                "time".into(),
                Dynamic::from(Time {
                    millis: t,
                    tz: q.tz,
                }),
            );
            m.insert("labels".into(), labels_map(&labels).into());
            m.into()
        }
    })
}

fn agg(metric: &str, filter: &Map, window_text: &str, func: &str) -> Result<Dynamic> {
    let q = query()?;
    let filter = labels_of(filter, "agg filter")?;
    let range = window(window_text, &q)?;
    let mut acc = Acc::new(Func::parse(func)?);
    q.readings
        .with_series(metric, &filter, range.from, |series| {
            for s in series {
                acc.add_series(s, &range);
            }
        })
        .or_else(|e| fail(e.to_string()))?;
    Ok(float_or_unit(acc.result()))
}

fn group(metric: &str, filter: &Map, by: &str, window_text: &str, func: &str) -> Result<Array> {
    let q = query()?;
    let filter = labels_of(filter, "group filter")?;
    let range = window(window_text, &q)?;
    let func = Func::parse(func)?;
    q.readings
        .with_groups(metric, &filter, by, range.from, |grouped| {
            // Groups come in key order, with their keys made: no hashing,
            // sorting or copying of keys here.
            let mut out = Array::with_capacity(grouped.len());
            for g in grouped.groups() {
                let mut acc = Acc::new(func);
                // The first series with readings in the window, and once
                // a series with other labels joins, the labels all share.
                let mut first: Option<&Series> = None;
                let mut common: Option<Labels> = None;
                for s in g.series() {
                    let before = acc.n;
                    acc.add_series(s, &range);
                    if acc.n == before {
                        continue; // nothing in the window
                    }
                    match (first, &mut common) {
                        (None, _) => first = Some(s),
                        (Some(f), None) if f.labels.as_ref() != s.labels.as_ref() => {
                            let mut shared = f.key.labels.clone();
                            shared.retain(|k, v| s.key.labels.get(k) == Some(v));
                            common = Some(shared);
                        }
                        (Some(_), Some(common)) => {
                            common.retain(|k, v| s.key.labels.get(k) == Some(v));
                        }
                        (Some(_), None) => {}
                    }
                }
                let Some(value) = acc.result() else {
                    continue; // no readings in the window
                };
                let labels = match (common, first) {
                    (Some(common), _) => Arc::new(common),
                    (None, Some(first)) => first.labels.clone(),
                    (None, None) => Arc::default(),
                };
                out.push(Dynamic::from(Group {
                    key: g.key.clone(),
                    labels,
                    value,
                }));
            }
            out
        })
        .or_else(|e| fail(e.to_string()))
}

/// One entry of a `group()` result: `key`, `labels`, `value`. A native type
/// rather than a map, so that thousands of groups cost no map building; the
/// `labels` map is made only when a rule reads it.
#[derive(Debug, Clone)]
pub struct Group {
    pub key: ImmutableString,
    /// Shared: scripts copy groups freely (`for g in groups` copies the array).
    pub labels: Arc<Labels>,
    pub value: f64,
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "#{{key: {:?}, value: {}}}",
            self.key.as_str(),
            self.value
        )
    }
}

/// `(key, value)` of a group entry: a [`Group`], or a map `#{ key, value }`
/// that a rule built itself.
fn key_value(item: &Dynamic, i: usize) -> Result<(String, f64)> {
    if let Some(g) = item.read_lock::<Group>() {
        return Ok((g.key.to_string(), g.value));
    }
    let m = item
        .read_lock::<Map>()
        .ok_or_else(|| {
            format!("数组下标 {i} 的一项不是分组，应写成 #{{ key: …, value: … }} / item {i} is not a group (#{{ key, value }})")
        })?;
    let key = m
        .get("key")
        .ok_or_else(|| format!("数组下标 {i} 的一项缺少 `key` / item {i} has no `key`"))?
        .to_string();
    let value = number(
        m.get("value")
            .ok_or_else(|| format!("数组下标 {i} 的一项缺少 `value` / item {i} has no `value`"))?,
        "value",
    )?;
    Ok((key, value))
}

/// (key, value) pairs of a `group()` result.
fn group_values(groups: &Array) -> Result<Vec<(String, f64)>> {
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| key_value(g, i))
        .collect()
}

/// Numbers from an array of numbers or of groups.
fn numbers(items: &Array) -> Result<Vec<f64>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            if let Some(g) = item.read_lock::<Group>() {
                Ok(g.value) // the usual case: no copy of the key
            } else if let Ok(f) = item.as_float() {
                Ok(f)
            } else if let Ok(n) = item.as_int() {
                Ok(n as f64)
            } else {
                key_value(item, i).map(|(_, v)| v)
            }
        })
        .collect()
}

/// Period boundaries for `overdue`: the most recent `cadence` period whose
/// due date (its end + `lag`) is at or before `now`.
fn due_period(cadence: &str, lag: &str, q: &Query) -> Result<time::Range> {
    let lag = time::parse_duration(lag).or_else(fail)?;
    let months = match cadence {
        "month" => 1,
        "quarter" => 3,
        "year" => 12,
        _ => {
            return fail(format!(
                "没有报送周期 `{cadence}`：请写 \"month\"（月）、\"quarter\"（季）或 \"year\"（年） / unknown cadence `{cadence}`: use month, quarter or year"
            ))
        }
    };
    let local = time::to_local(q.now - lag, q.tz);
    // The period containing now − lag has not ended by its due date; the one before has.
    let first_month = (local.month0() as i32 / months) * months + 1;
    let (y, m) = time::add_months(local.year(), first_month as u32, -months);
    let (start, end) = time::months_span(y, m, months, q.tz);
    Ok(time::Range {
        from: start,
        to: end - 1,
    })
}

fn overdue_values(
    metric: &str,
    by: &str,
    cadence: &str,
    lag: &str,
    expected: Option<Vec<String>>,
) -> Result<Array> {
    let q = query()?;
    let period = due_period(cadence, lag, &q)?;
    let (seen, reported) = q
        .readings
        .with_series(metric, &Labels::new(), period.from, |series| {
            let mut seen = std::collections::BTreeSet::new();
            let mut reported = std::collections::BTreeSet::new();
            for s in series {
                let Some(value) = s.key.labels.get(by) else {
                    continue;
                };
                // Only label values known by now count as expected.
                if s.last_at_or_before(q.now).is_some() {
                    seen.insert(value.clone());
                }
                if !s.range(period.from, period.to).0.is_empty() {
                    reported.insert(value.clone());
                }
            }
            (seen, reported)
        })
        .or_else(|e| fail(e.to_string()))?;
    let expected = expected.unwrap_or_else(|| seen.into_iter().collect());
    let mut missing: Vec<String> = expected
        .into_iter()
        .filter(|v| !reported.contains(v))
        .collect();
    missing.sort();
    missing.dedup();
    Ok(missing.into_iter().map(Dynamic::from).collect())
}

fn is_overdue(metric: &str, filter: &Map, cadence: &str, lag: &str) -> Result<bool> {
    let q = query()?;
    let filter = labels_of(filter, "is_overdue filter")?;
    let period = due_period(cadence, lag, &q)?;
    let reported = q
        .readings
        .with_series(metric, &filter, period.from, |series| {
            let mut any = false;
            for s in series {
                any |= !s.range(period.from, period.to).0.is_empty();
            }
            any
        })
        .or_else(|e| fail(e.to_string()))?;
    Ok(!reported)
}

// ---------------------------------------------------------------- reporting

fn report(kind: FindingKind, subject: &Map, message: &str, details: Option<&Map>) -> Result<()> {
    let subject = labels_of(subject, "subject")?;
    let mut detail_map = serde_json::Map::new();
    if let Some(details) = details {
        for (k, v) in details {
            detail_map.insert(k.as_str().to_owned(), detail_json(k, v)?);
        }
    }
    let hash = {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        subject.hash(&mut h);
        h.finish()
    };
    current(|ctx| {
        if !ctx.subjects.insert(hash) && ctx.findings.iter().any(|f| f.subject == subject) {
            let s = super::finding::subject_text(&subject);
            return Err(format!(
                "同一次评估对同一对象 {s} 报了两次：一条规则对一个对象只报一次，请合并 / subject {s} reported twice in one evaluation: an alert is one (rule, subject)"
            ));
        }
        ctx.findings.push(Finding {
            rule: ctx.rule_id.clone(),
            kind,
            subject,
            message: message.to_string(),
            details: detail_map,
        });
        Ok(())
    })
    .or_else(fail)?
    .or_else(fail)
}

/// One `details` value as stored: numbers, strings and booleans directly
/// (most details are a value and a threshold), times as text, anything else
/// through serde.
fn detail_json(k: &str, v: &Dynamic) -> Result<serde_json::Value> {
    if let Ok(f) = v.as_float() {
        // NaN and infinities have no JSON number: null, as serde makes them.
        return Ok(serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into));
    }
    if let Ok(i) = v.as_int() {
        return Ok(i.into());
    }
    if let Ok(b) = v.as_bool() {
        return Ok(b.into());
    }
    if let Some(s) = v.read_lock::<ImmutableString>() {
        return Ok(serde_json::Value::String(s.as_str().to_owned()));
    }
    if let Some(t) = v.read_lock::<Time>() {
        return Ok(serde_json::Value::String(time::format_time(t.millis, t.tz)));
    }
    rhai::serde::from_dynamic(v).map_err(|e| {
        format!("details 的 `{k}` 存不下（只能是数字、文字、真假、时间或它们的列表）：{e} / details `{k}` cannot be stored: {e}").into()
    })
}

/// `verdict(subject, met, message, details)`: the final result of the rule's
/// work-report year. Missed: a breach with `details.final = true` and
/// `details.year`, which the alert machine mails once and never resolves.
/// Met: nothing to tell (no finding).
fn verdict(subject: &Map, met: bool, message: &str, details: Option<&Map>) -> Result<()> {
    let year = current(|c| c.year).or_else(fail)?.ok_or_else(|| {
        "verdict() 判定工作报告年度的结果：请在 RULE 里写 `year: 2021`（报告的年度） / verdict() judges the rule's work-report year: put `year: 2021` (the report's year) in RULE"
            .to_string()
    })?;
    if met {
        return Ok(());
    }
    let mut details = details.cloned().unwrap_or_default();
    details.insert("final".into(), Dynamic::TRUE);
    details.insert("year".into(), Dynamic::from_int(year as INT));
    // words.md: a year's final verdict reads `2021年度结果：未完成`.
    let message = format!("{year}年度结果：未完成。{message}");
    report(FindingKind::Breach, subject, &message, Some(&details))
}

// ---------------------------------------------------------------- registration

/// Registers the whole rule API on `engine`.
pub fn register(engine: &mut Engine) {
    register_time(engine);
    register_group(engine);

    engine.register_fn("latest", |metric: &str| latest(metric, &Map::new()));
    engine.register_fn("latest", |metric: &str, filter: Map| {
        latest(metric, &filter)
    });
    engine.register_fn(
        "agg",
        |metric: &str, filter: Map, window: &str, func: &str| agg(metric, &filter, window, func),
    );
    engine.register_fn(
        "group",
        |metric: &str, filter: Map, by: &str, window: &str, func: &str| {
            group(metric, &filter, by, window, func)
        },
    );
    engine.register_fn(
        "overdue",
        |metric: &str, by: &str, cadence: &str, lag: &str| {
            overdue_values(metric, by, cadence, lag, None)
        },
    );
    engine.register_fn(
        "overdue",
        |metric: &str, by: &str, cadence: &str, lag: &str, expected: Array| {
            let expected = expected.iter().map(|v| v.to_string()).collect();
            overdue_values(metric, by, cadence, lag, Some(expected))
        },
    );
    engine.register_fn(
        "is_overdue",
        |metric: &str, filter: Map, cadence: &str, lag: &str| {
            is_overdue(metric, &filter, cadence, lag)
        },
    );

    engine.register_fn("breach", |subject: Map, message: &str| {
        report(FindingKind::Breach, &subject, message, None)
    });
    engine.register_fn("breach", |subject: Map, message: &str, details: Map| {
        report(FindingKind::Breach, &subject, message, Some(&details))
    });
    engine.register_fn("latest_in", |metric: &str, filter: Map, window: &str| {
        latest_within(metric, &filter, Some(window))
    });
    engine.register_fn(
        "verdict",
        |subject: Map, met: bool, message: &str, details: Map| {
            verdict(&subject, met, message, Some(&details))
        },
    );
    engine.register_fn("verdict", |subject: Map, met: bool, message: &str| {
        verdict(&subject, met, message, None)
    });
    engine.register_fn("report_year", || -> Result<INT> {
        current(|c| c.year)
            .or_else(fail)?
            .map(|y| y as INT)
            .ok_or_else(|| {
                "report_year()：RULE 里没有写 `year`，请加上如 `year: 2021` / report_year(): this rule has no `year` in RULE"
                    .into()
            })
    });
    engine.register_fn("no_data", |subject: Map, message: &str| {
        report(FindingKind::NoData, &subject, message, None)
    });

    // Domain helpers. (`iaqi`, `composite_index`, `air_limit` and
    // `air_edition` are registered by `air_standard.rs`, beside this.)
    engine.register_fn("aqi_category", |aqi: Dynamic| -> Result<ImmutableString> {
        Ok(domain::aqi_category(number(&aqi, "aqi")?).into())
    });
    engine.register_fn("water_class", |params: Map, body: &str| -> Result<INT> {
        domain::water_class(&number_map(&params)?, body).or_else(fail)
    });
    engine.register_fn("class_name", |class: INT| -> Result<ImmutableString> {
        domain::class_name(class).map(Into::into).or_else(fail)
    });
    engine.register_fn("meets_class", |class: INT, target: INT| -> Result<bool> {
        domain::meets_class(class, target).or_else(fail)
    });
    // Arrays are taken by reference (`&mut`): by value, Rhai would copy a
    // rule's variable holding thousands of groups at every call.
    engine.register_fn("rank", |groups: &mut Array, key: &str| {
        rank(groups, key, "asc")
    });
    engine.register_fn("rank", |groups: &mut Array, key: &str, order: &str| {
        rank(groups, key, order)
    });
    engine.register_fn("pace", |done: Dynamic, target: Dynamic| -> Result<f64> {
        let q = query()?;
        domain::pace(
            number(&done, "done")?,
            number(&target, "target")?,
            domain::year_fraction(q.now, q.tz),
        )
        .or_else(fail)
    });
    engine.register_fn("expected_by_now", |target: Dynamic| -> Result<f64> {
        let q = query()?;
        Ok(domain::expected_by_now(
            number(&target, "target")?,
            domain::year_fraction(q.now, q.tz),
        ))
    });
    engine.register_fn("year_fraction", || -> Result<f64> {
        let q = query()?;
        Ok(domain::year_fraction(q.now, q.tz))
    });
    engine.register_fn(
        "percentile",
        |items: &mut Array, p: Dynamic| -> Result<Dynamic> {
            let p = number(&p, "p")?;
            if !(0.0..=1.0).contains(&p) {
                return fail(format!(
                    "百分位 {p} 应在 0 到 1 之间（第95百分位写 0.95） / percentile rank {p} must be between 0 and 1 (0.95 for p95)"
                ));
            }
            let mut values = numbers(items)?;
            values.sort_unstable_by(f64::total_cmp);
            Ok(float_or_unit(domain::percentile(&values, p)))
        },
    );
    // `above(groups, 75)`: PromQL's `… > 75`. The loop then visits only the
    // groups that breach; with thousands of counties, testing each one in
    // the script was a third of an evaluation.
    engine.register_fn("above", |groups: &mut Array, limit: Dynamic| {
        beyond(groups, &limit, |v, l| v > l)
    });
    engine.register_fn("below", |groups: &mut Array, limit: Dynamic| {
        beyond(groups, &limit, |v, l| v < l)
    });
    engine.register_fn("top", |groups: &mut Array, n: INT| {
        sorted_groups(groups, n, true)
    });
    engine.register_fn("bottom", |groups: &mut Array, n: INT| {
        sorted_groups(groups, n, false)
    });
    engine.register_fn(
        "fmt",
        |x: Dynamic, digits: INT| -> Result<ImmutableString> {
            let x = number(&x, "number")?;
            Ok(format!("{:.*}", digits.clamp(0, 12) as usize, x).into())
        },
    );
    engine.register_fn("pct", |x: Dynamic| -> Result<ImmutableString> {
        let x = number(&x, "number")?;
        Ok(format!("{}%", trim_number(format!("{:.1}", x * 100.0))).into())
    });
}

fn trim_number(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn number_map(map: &Map) -> Result<BTreeMap<String, f64>> {
    map.iter()
        .map(|(k, v)| Ok((k.to_string(), number(v, &format!("`{k}`"))?)))
        .collect()
}

fn rank(groups: &Array, key: &str, order: &str) -> Result<Dynamic> {
    let descending = match order {
        "asc" => false,
        "desc" => true,
        _ => {
            return fail(format!(
                "排名顺序 `{order}` 无法识别：请写 \"asc\"（由小到大）或 \"desc\"（由大到小） / rank order `{order}`: use \"asc\" or \"desc\""
            ))
        }
    };
    let values = group_values(groups)?;
    Ok(domain::rank(&values, key, descending).map_or(Dynamic::UNIT, Dynamic::from_int))
}

/// The items of `groups` whose value passes `test` against `limit`, in their order.
fn beyond(groups: &Array, limit: &Dynamic, test: fn(f64, f64) -> bool) -> Result<Array> {
    let limit = number(limit, "limit")?;
    let values = numbers(groups)?;
    Ok(groups
        .iter()
        .zip(values)
        .filter(|(_, v)| test(*v, limit))
        .map(|(g, _)| g.clone())
        .collect())
}

fn sorted_groups(groups: &Array, n: INT, largest_first: bool) -> Result<Array> {
    let values = numbers(groups)?;
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| {
        let c = values[a].total_cmp(&values[b]);
        if largest_first {
            c.reverse()
        } else {
            c
        }
    });
    Ok(order
        .into_iter()
        .take(n.max(0) as usize)
        .map(|i| groups[i].clone())
        .collect())
}

fn register_group(engine: &mut Engine) {
    engine.register_type_with_name::<Group>("Group");
    engine.register_get("key", |g: &mut Group| g.key.clone());
    engine.register_get("value", |g: &mut Group| g.value);
    engine.register_get("labels", |g: &mut Group| labels_map(&g.labels));
    engine.register_fn("to_string", |g: &mut Group| g.to_string());
    engine.register_fn("to_debug", |g: &mut Group| g.to_string());
}

fn register_time(engine: &mut Engine) {
    engine.register_type_with_name::<Time>("Time");
    engine.register_fn("now", || -> Result<Time> {
        let q = query()?;
        Ok(Time {
            millis: q.now,
            tz: q.tz,
        })
    });
    engine.register_fn("time", |text: &str| -> Result<Time> {
        let q = query()?;
        time::parse_time(text, q.tz)
            .map(|millis| Time { millis, tz: q.tz })
            .or_else(fail)
    });
    engine.register_get("year", |t: &mut Time| t.local().year() as INT);
    engine.register_get("month", |t: &mut Time| t.local().month() as INT);
    engine.register_get("day", |t: &mut Time| t.local().day() as INT);
    engine.register_get("hour", |t: &mut Time| t.local().hour() as INT);
    engine.register_get("minute", |t: &mut Time| t.local().minute() as INT);
    engine.register_get("weekday", |t: &mut Time| {
        t.local().weekday().number_from_monday() as INT
    });
    engine.register_get("day_of_year", |t: &mut Time| t.local().ordinal() as INT);
    engine.register_get("date", |t: &mut Time| {
        t.local().format("%Y-%m-%d").to_string()
    });
    engine.register_fn("to_string", |t: &mut Time| t.to_string());
    engine.register_fn("to_debug", |t: &mut Time| t.to_string());
    engine.register_fn("<", |a: Time, b: Time| a.millis < b.millis);
    engine.register_fn("<=", |a: Time, b: Time| a.millis <= b.millis);
    engine.register_fn(">", |a: Time, b: Time| a.millis > b.millis);
    engine.register_fn(">=", |a: Time, b: Time| a.millis >= b.millis);
    engine.register_fn("==", |a: Time, b: Time| a.millis == b.millis);
    engine.register_fn("!=", |a: Time, b: Time| a.millis != b.millis);
    engine.register_fn("days_between", |a: Time, b: Time| {
        (b.millis - a.millis) as f64 / time::DAY as f64
    });
}
