//! What a chart shows, as numbers: the readings of the rule's metric over
//! its chart range, the rule's line, and the periods it was in breach. Used
//! by the status page (SVG), the mails (PNG) and the monthly digest.
//!
//! Source of truth: the **readings store**, through the rule's `chart`
//! metadata (the series the rule itself reads). The alert history only holds
//! a value when a rule breached, so a chart built from it would be blank for
//! every target on track and would hide how close to the line it runs.

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;

use crate::alerts::{HistoryEntry, HistoryEvent, State};
use crate::readings::store::Store;
use crate::readings::Labels;
use crate::rules::finding::subject_text;
use crate::rules::loader::{Breach, ChartLine, ChartRange, ChartSpec};
use crate::time::{add_months, months_span, start_of_day, to_local, Millis, DAY};

/// Most series drawn in one chart (per-subject rules: one line per subject).
pub const MAX_SERIES: usize = 8;

/// One plotted series.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The labels that tell it apart from the other series (empty when alone).
    pub name: String,
    /// Those labels as keys and values, for display names
    /// ([`crate::status::Words::subject`]); empty when alone.
    pub labels: Labels,
    pub points: Vec<(Millis, f64)>,
}

/// Everything a chart draws.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    pub from: Millis,
    pub to: Millis,
    pub lines: Vec<Line>,
    /// The target line (empty: none), as a polyline.
    pub target: Vec<(Millis, f64)>,
    pub breach: Option<Breach>,
    pub unit: String,
    pub label: String,
    /// Below the pace line by this much is still on track (0: any point past
    /// the line is marked); not applied at the line's end (the full target).
    pub slack: f64,
    /// From here on the line is the full target, held without slack.
    pub full_from: Option<Millis>,
    /// Points before this are not judged (year-end targets).
    pub judged_from: Option<Millis>,
    /// Periods the rule was firing (from the alert history), `[start, end]`.
    pub firing: Vec<(Millis, Millis)>,
    /// Series left out because there were more than [`MAX_SERIES`].
    pub omitted: usize,
    /// A rank chart (`rank:`): the values are places among this many, and
    /// 1st is drawn on top.
    pub rank_of: Option<usize>,
}

impl ChartData {
    pub fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| l.points.is_empty())
    }

    /// The latest reading of the (first) series, if any.
    pub fn latest(&self) -> Option<(Millis, f64)> {
        self.lines
            .iter()
            .filter_map(|l| l.points.last().copied())
            .max_by_key(|(t, _)| *t)
    }

    /// The target at `t` (on the drawn line), if there is a line.
    pub fn target_at(&self, t: Millis) -> Option<f64> {
        interpolate(&self.target, t)
    }

    /// Whether a point is on the breach side of the line (flat or pace).
    pub fn is_breach(&self, t: Millis, v: f64) -> bool {
        if self.judged_from.is_some_and(|f| t < f) {
            return false;
        }
        let slack = if self.full_from.is_some_and(|f| t >= f) {
            0.0
        } else {
            self.slack
        };
        match (self.breach, self.target_at(t)) {
            (Some(Breach::Above), Some(x)) => v > x + slack,
            (Some(Breach::Below), Some(x)) => v < x - slack,
            _ => false,
        }
    }

    /// The stretches of time whose readings breach the line: each run of
    /// consecutive breaching points of a series, widened halfway to the
    /// neighbouring points (a lone point: a band around it), clipped to the
    /// chart. Not the alert's episode: that is [`ChartData::firing`].
    pub fn breach_spans(&self) -> Vec<(Millis, Millis)> {
        let mut spans: Vec<(Millis, Millis)> = Vec::new();
        for line in &self.lines {
            let p = &line.points;
            // Half the typical spacing, for the outer edge of end points.
            let half = p
                .windows(2)
                .map(|w| (w[1].0 - w[0].0) / 2)
                .filter(|d| *d > 0)
                .min()
                .unwrap_or(DAY / 2)
                .max(1);
            for (i, &(t, v)) in p.iter().enumerate() {
                if !self.is_breach(t, v) {
                    continue;
                }
                let a = if i > 0 {
                    t - (t - p[i - 1].0) / 2
                } else {
                    t - half
                };
                let b = if i + 1 < p.len() {
                    t + (p[i + 1].0 - t) / 2
                } else {
                    t + half
                };
                match spans.last_mut() {
                    Some(last) if a <= last.1 => last.1 = last.1.max(b),
                    _ => spans.push((a, b)),
                }
            }
        }
        spans.sort();
        let mut merged: Vec<(Millis, Millis)> = Vec::new();
        for (a, b) in spans {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let (lo, hi) = self.x_bounds();
        merged
            .into_iter()
            .map(|(a, b)| (a.max(lo), b.min(hi)))
            .filter(|(a, b)| a < b)
            .collect()
    }

    /// The time axis: `[from, to]` and a little room, widened around the
    /// readings when they span (almost) no time, so a single reading sits
    /// inside the plot.
    pub fn x_bounds(&self) -> (Millis, Millis) {
        let times = self.lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
        let (lo, hi) = times.fold((self.from, self.to), |(a, b), t| (a.min(t), b.max(t)));
        if hi - lo < 2 * DAY {
            let mid = lo + (hi - lo) / 2;
            return (mid - 3 * DAY, mid + 3 * DAY);
        }
        // A little room, so the first and last points are whole.
        let pad = ((hi - lo) / 30).max(DAY / 2);
        (lo - pad, hi + pad)
    }

    /// (min, max) of every plotted value and the line, padded; never empty.
    pub fn y_bounds(&self) -> (f64, f64) {
        if let Some(n) = self.rank_of {
            // Places 1..=n, half a place of room at both ends.
            let worst = self
                .lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.1))
                .fold(n.max(1) as f64, f64::max);
            return (0.5, worst + 0.5);
        }
        let values = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .chain(self.target.iter().map(|p| p.1));
        let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        if !lo.is_finite() || !hi.is_finite() {
            return (0.0, 1.0);
        }
        if lo >= 0.0 && lo < (hi - lo) * 0.5 {
            lo = 0.0; // totals and shares read best from zero
        }
        if hi - lo < 1e-9 {
            let pad = if hi.abs() > 1e-9 { hi.abs() * 0.1 } else { 1.0 };
            return (lo - pad, hi + pad);
        }
        let pad = (hi - lo) * 0.12;
        hi += pad;
        if lo != 0.0 {
            lo -= pad;
        }
        (lo, hi)
    }
}

/// The instants a chart covers when illustrating an evaluation at `at`.
pub fn chart_range(spec: &ChartSpec, at: Millis, tz: Tz) -> (Millis, Millis) {
    match spec.range {
        ChartRange::Window(w) => {
            let r = w.range(at, tz);
            (r.from, r.to)
        }
        ChartRange::Year(y) => {
            let (from, end) = months_span(y, 1, 12, tz);
            // A year-end verdict is given in January of the next year: show
            // the whole year then, and the part up to `at` before.
            (from, (end - 1).min(at.max(from)))
        }
    }
}

/// The chart of `spec` for an evaluation at `at`; `subject` narrows the
/// series to one subject's (a mail about one water section shows that one).
pub fn chart_data(
    store: &Store,
    spec: &ChartSpec,
    subject: Option<&Labels>,
    at: Millis,
    tz: Tz,
) -> ChartData {
    let (from, to) = chart_range(spec, at, tz);
    if let Some(key) = &spec.rank {
        return rank_chart_data(store, spec, key, subject, from, to, tz);
    }
    let mut filter = spec.filter.clone();
    if let Some(s) = subject {
        for (k, v) in s {
            filter.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let mut lines: Vec<(Labels, Vec<(Millis, f64)>)> = store
        .with_series(&spec.metric, &filter, from, |iter| {
            iter.map(|s| {
                let (t, v) = s.range(from, to);
                (
                    s.key.labels.clone(),
                    t.iter().copied().zip(v.iter().copied()).collect(),
                )
            })
            .collect()
        })
        .unwrap_or_default();
    lines.retain(|(_, p)| !p.is_empty());
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    // A window starts where its data does (`all`, or a long window over a
    // young store): no empty stretch on the left, and no span overflow.
    let from = if let ChartRange::Window(_) = spec.range {
        let first = lines
            .iter()
            .filter_map(|(_, p)| p.first().map(|x| x.0))
            .min();
        match first {
            Some(t) => from.max(t),
            None => from.max(to.saturating_sub(365 * DAY)),
        }
    } else {
        from
    };
    let omitted = lines.len().saturating_sub(MAX_SERIES);
    lines.truncate(MAX_SERIES);
    let single = lines.len() == 1;
    let lines = lines
        .into_iter()
        .map(|(labels, points)| {
            let mut labels = labels;
            labels.retain(|k, _| !spec.filter.contains_key(k));
            Line {
                name: if single || labels.is_empty() {
                    String::new()
                } else {
                    labels.values().cloned().collect::<Vec<_>>().join(", ")
                },
                labels: if single { Labels::new() } else { labels },
                points: if spec.monthly {
                    monthly_means(&points, tz)
                } else {
                    points
                },
            }
        })
        .collect();
    ChartData {
        from,
        to,
        lines,
        target: target_line(spec, from, to, tz),
        breach: spec.breach,
        slack: match spec.line {
            ChartLine::Pace(total) => total * spec.tolerance,
            _ => 0.0,
        },
        full_from: match (spec.line, spec.range) {
            (ChartLine::Pace(_), ChartRange::Year(y)) => Some(last_day_of(y, tz)),
            _ => None,
        },
        judged_from: match spec.range {
            ChartRange::Year(y) if spec.year_end => Some(last_day_of(y, tz)),
            _ => None,
        },
        unit: spec.unit.clone().unwrap_or_default(),
        label: spec.label.clone().unwrap_or_default(),
        firing: Vec::new(),
        omitted,
        rank_of: None,
    }
}

/// The chart `metric` of a rank chart of the air quality composite index
/// (HJ 663): not a stored metric, but computed month by month from the six
/// pollutants' daily readings as the composite-rank rule does (SO2, NO2,
/// PM10, PM2.5 monthly means; CO the 95th and O3 (`o3_8h`) the 90th
/// percentile of the daily values), with the divisors of the edition in
/// force that month. A county lacking one of the six in a month is not ranked.
pub const COMPOSITE_INDEX: &str = "air_composite_index";

/// Per `key` value, per (year, month): a figure.
type MonthFigures = std::collections::BTreeMap<String, std::collections::BTreeMap<(i32, u32), f64>>;

/// Per `key` value and month, the composite index (see [`COMPOSITE_INDEX`]).
fn composite_figures(
    store: &Store,
    filter: &Labels,
    key: &str,
    from: Millis,
    to: Millis,
    tz: Tz,
) -> MonthFigures {
    use std::collections::BTreeMap;
    // (stat key of the index, stored metric, percentile or mean)
    const PARTS: [(&str, &str, Option<f64>); 6] = [
        ("so2", "so2", None),
        ("no2", "no2", None),
        ("pm10", "pm10", None),
        ("pm25", "pm25", None),
        ("co", "co", Some(0.95)),
        ("o3", "o3_8h", Some(0.90)),
    ];
    // part -> the month's daily values
    type Parts = BTreeMap<&'static str, Vec<f64>>;
    // who -> month -> parts
    let mut values: BTreeMap<String, BTreeMap<(i32, u32), Parts>> = BTreeMap::new();
    for (part, metric, _) in PARTS {
        let _ = store.with_series(metric, filter, from, |iter| {
            for s in iter {
                let Some(who) = s.key.labels.get(key) else {
                    continue;
                };
                let (t, v) = s.range(from, to);
                let months = values.entry(who.clone()).or_default();
                for (&t, &v) in t.iter().zip(v.iter()) {
                    let local = to_local(t, tz);
                    months
                        .entry((local.year(), local.month()))
                        .or_default()
                        .entry(part)
                        .or_default()
                        .push(v);
                }
            }
        });
    }
    values
        .into_iter()
        .map(|(who, months)| {
            let index = months
                .into_iter()
                .filter_map(|((y, m), parts)| {
                    let mut stats = BTreeMap::new();
                    for (part, _, p) in PARTS {
                        let mut v = parts.get(part)?.clone();
                        let stat = match p {
                            None => v.iter().sum::<f64>() / v.len() as f64,
                            Some(p) => {
                                v.sort_by(f64::total_cmp);
                                crate::rules::domain::percentile(&v, p)?
                            }
                        };
                        stats.insert(part.to_string(), stat);
                    }
                    let first = chrono::NaiveDate::from_ymd_opt(y, m, 1)?;
                    let edition = crate::rules::air_standard::Edition::on(first);
                    crate::rules::air_standard::composite_index(&stats, edition)
                        .ok()
                        .map(|i| ((y, m), i))
                })
                .collect();
            (who, index)
        })
        .collect()
}

/// (year, month) → (sum, count) of one series' readings.
type MonthSums = std::collections::BTreeMap<(i32, u32), (f64, usize)>;

/// A rank chart: for each complete calendar month in `[from, to]`, the mean
/// of every series by its `key` label, and the place (1 = lowest mean; ties
/// share the better place) of the filter's (or the subject's) value of it.
fn rank_chart_data(
    store: &Store,
    spec: &ChartSpec,
    key: &str,
    subject: Option<&Labels>,
    from: Millis,
    to: Millis,
    tz: Tz,
) -> ChartData {
    // Whole months only: start at the first day of `from`'s month.
    let first = to_local(from, tz);
    let from = months_span(first.year(), first.month(), 1, tz).0;
    let mut filter = spec.filter.clone();
    let own = subject
        .and_then(|s| s.get(key))
        .or_else(|| spec.filter.get(key))
        .cloned()
        .unwrap_or_default();
    filter.remove(key);
    use std::collections::BTreeMap;
    // key value -> month -> the month's figure (its mean, or its composite index)
    let figures: MonthFigures = if spec.metric == COMPOSITE_INDEX {
        composite_figures(store, &filter, key, from, to, tz)
    } else {
        // key value -> month -> (sum, count)
        let mut sums: BTreeMap<String, MonthSums> = BTreeMap::new();
        let _ = store.with_series(&spec.metric, &filter, from, |iter| {
            for s in iter {
                let Some(who) = s.key.labels.get(key) else {
                    continue;
                };
                let (t, v) = s.range(from, to);
                let months = sums.entry(who.clone()).or_default();
                for (&t, &v) in t.iter().zip(v.iter()) {
                    let local = to_local(t, tz);
                    let e = months.entry((local.year(), local.month())).or_default();
                    e.0 += v;
                    e.1 += 1;
                }
            }
        });
        sums.into_iter()
            .map(|(who, ms)| {
                let means = ms
                    .into_iter()
                    .map(|(m, (s, n))| (m, s / n as f64))
                    .collect();
                (who, means)
            })
            .collect()
    };
    let mut all_months: Vec<(i32, u32)> =
        figures.values().flat_map(|m| m.keys().copied()).collect();
    all_months.sort();
    all_months.dedup();
    let mut points = Vec::new();
    let mut rank_of = 0;
    for (y, m) in all_months {
        let (start, end) = months_span(y, m, 1, tz);
        if end > to.saturating_add(1) {
            continue; // the month is not over: its place is not known yet
        }
        let means: Vec<(&String, f64)> = figures
            .iter()
            .filter_map(|(who, ms)| ms.get(&(y, m)).map(|v| (who, *v)))
            .collect();
        let Some(mine) = means.iter().find(|(w, _)| **w == own).map(|p| p.1) else {
            continue;
        };
        let place = 1 + means.iter().filter(|(_, v)| *v < mine).count();
        rank_of = rank_of.max(means.len());
        points.push((start + (end - start) / 2, place as f64));
    }
    let from = points.first().map_or(from, |p| from.max(p.0 - 20 * DAY));
    ChartData {
        from,
        to,
        lines: vec![Line {
            name: String::new(),
            labels: Labels::new(),
            points,
        }],
        target: target_line(spec, from, to, tz),
        breach: spec.breach,
        slack: 0.0,
        full_from: None,
        judged_from: None,
        unit: "名".into(),
        label: spec.label.clone().unwrap_or_default(),
        firing: Vec::new(),
        omitted: 0,
        rank_of: Some(rank_of.max(1)),
    }
}

/// Local midnight of December 31 (when December's figure is stamped).
fn last_day_of(year: i32, tz: Tz) -> Millis {
    start_of_day(
        NaiveDate::from_ymd_opt(year, 12, 31).expect("valid date"),
        tz,
    )
}

/// Daily readings → one point per calendar month: the mean, placed mid-month.
fn monthly_means(points: &[(Millis, f64)], tz: Tz) -> Vec<(Millis, f64)> {
    let mut out: Vec<(Millis, f64)> = Vec::new();
    let mut current: Option<((i32, u32), f64, usize)> = None;
    let flush = |out: &mut Vec<(Millis, f64)>, ((y, m), sum, n): ((i32, u32), f64, usize)| {
        let (start, end) = months_span(y, m, 1, tz);
        out.push((start + (end - start) / 2, sum / n as f64));
    };
    for &(t, v) in points {
        let local = to_local(t, tz);
        let key = (local.year(), local.month());
        match &mut current {
            Some((k, sum, n)) if *k == key => {
                *sum += v;
                *n += 1;
            }
            _ => {
                if let Some(c) = current.take() {
                    flush(&mut out, c);
                }
                current = Some((key, v, 1));
            }
        }
    }
    if let Some(c) = current {
        flush(&mut out, c);
    }
    out
}

/// The target as a polyline over `[from, to]`.
fn target_line(spec: &ChartSpec, from: Millis, to: Millis, tz: Tz) -> Vec<(Millis, f64)> {
    match spec.line {
        ChartLine::None | ChartLine::FromFinding => Vec::new(),
        ChartLine::Flat(x) => vec![(from, x), (to, x)],
        ChartLine::Pace(total) => {
            // Month m's YTD figure is stamped on the month's last day and is
            // due at total × m / 12 (what the pace rules compare against).
            let year = match spec.range {
                ChartRange::Year(y) => y,
                ChartRange::Window(_) => to_local(to, tz).year(),
            };
            let mut line = vec![(months_span(year, 1, 12, tz).0, 0.0)];
            for m in 1..=12u32 {
                let (ny, nm) = add_months(year, m, 1);
                let last_day = NaiveDate::from_ymd_opt(ny, nm, 1).expect("valid month")
                    - chrono::Duration::days(1);
                line.push((start_of_day(last_day, tz), total * m as f64 / 12.0));
            }
            clip(&line, from, to)
        }
    }
}

/// The value of a polyline at `t` (flat beyond its ends).
pub fn interpolate(line: &[(Millis, f64)], t: Millis) -> Option<f64> {
    let first = line.first()?;
    if t <= first.0 {
        return Some(first.1);
    }
    for w in line.windows(2) {
        let ((t0, v0), (t1, v1)) = (w[0], w[1]);
        if t <= t1 {
            if t1 == t0 {
                return Some(v1);
            }
            return Some(v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0) as f64);
        }
    }
    line.last().map(|p| p.1)
}

/// The part of a polyline inside `[from, to]`, interpolated at the ends.
fn clip(line: &[(Millis, f64)], from: Millis, to: Millis) -> Vec<(Millis, f64)> {
    let at = |t| interpolate(line, t).unwrap_or(0.0);
    let mut out = vec![(from, at(from))];
    out.extend(line.iter().copied().filter(|(t, _)| *t > from && *t < to));
    out.push((to, at(to)));
    out
}

/// A horizontal line at a finding's own threshold (`threshold: "finding"`).
pub fn with_finding_threshold(mut data: ChartData, threshold: Option<f64>) -> ChartData {
    if data.target.is_empty() {
        if let Some(x) = threshold {
            data.target = vec![(data.from, x), (data.to, x)];
        }
    }
    data
}

/// The periods a rule (or one subject of it) was firing, from its history
/// (oldest first), clipped to `[from, to]`; still firing: up to `to`.
pub fn firing_periods(
    history: &[HistoryEntry],
    subject: Option<&Labels>,
    from: Millis,
    to: Millis,
) -> Vec<(Millis, Millis)> {
    let mut open: std::collections::BTreeMap<String, Millis> = Default::default();
    let mut out = Vec::new();
    for h in history {
        if h.event != HistoryEvent::Transition || subject.is_some_and(|s| *s != h.subject) {
            continue;
        }
        let key = subject_text(&h.subject);
        if h.to == Some(State::Firing) {
            open.entry(key).or_insert(h.time);
        } else if h.from == Some(State::Firing) {
            if let Some(start) = open.remove(&key) {
                out.push((start, h.time));
            }
        }
    }
    out.extend(open.into_values().map(|start| (start, Millis::MAX)));
    let mut clipped: Vec<(Millis, Millis)> = out
        .into_iter()
        .map(|(a, b)| (a.max(from), b.min(to)))
        .filter(|(a, b)| a < b)
        .collect();
    clipped.sort();
    clipped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;

    const SH: Tz = chrono_tz::Asia::Shanghai;

    #[test]
    fn pace_line_reaches_the_target_at_year_end() {
        let spec = ChartSpec {
            metric: "m".into(),
            filter: Labels::new(),
            range: ChartRange::Year(2021),
            unit: None,
            line: ChartLine::Pace(120.0),
            breach: Some(Breach::Below),
            tolerance: 0.0,
            monthly: false,
            year_end: false,
            label: None,
            rank: None,
        };
        let at = parse_time("2022-01-16T09:00", SH).unwrap();
        let (from, to) = chart_range(&spec, at, SH);
        assert_eq!(from, parse_time("2021-01-01", SH).unwrap());
        assert_eq!(to, parse_time("2022-01-01", SH).unwrap() - 1);
        let line = target_line(&spec, from, to, SH);
        let data = ChartData {
            from,
            to,
            lines: vec![],
            target: line,
            breach: Some(Breach::Below),
            slack: 0.0,
            full_from: None,
            judged_from: None,
            unit: String::new(),
            label: String::new(),
            firing: vec![],
            omitted: 0,
            rank_of: None,
        };
        let june = parse_time("2021-06-30", SH).unwrap();
        assert!((data.target_at(june).unwrap() - 60.0).abs() < 1e-9);
        assert!(data.is_breach(june, 50.0));
        assert!(!data.is_breach(june, 60.0));
        let dec = parse_time("2021-12-31", SH).unwrap();
        assert!((data.target_at(dec).unwrap() - 120.0).abs() < 1e-9);
    }

    #[test]
    fn monthly_means_put_one_point_mid_month() {
        let d = |s: &str| parse_time(s, SH).unwrap();
        let pts = vec![
            (d("2021-01-01"), 10.0),
            (d("2021-01-31"), 20.0),
            (d("2021-02-01"), 4.0),
        ];
        let m = monthly_means(&pts, SH);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].1, 15.0);
        assert!(m[0].0 > d("2021-01-15") && m[0].0 < d("2021-01-17"));
        assert_eq!(m[1].1, 4.0);
    }

    #[test]
    fn a_rank_chart_shows_each_complete_months_place() {
        use crate::readings::Batch;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let d = |s: &str| parse_time(s, SH).unwrap();
        let mut b = Batch::new();
        let counties = ["南宫", "清河", "威县", "临西"];
        // January: 南宫 is 3rd of 4 (30 > 10, 20); February: 1st;
        // March is not over at the evaluation: left out.
        for (i, c) in counties.iter().enumerate() {
            let jan = [20.0, 10.0, 15.0, 40.0][i];
            let feb = [5.0, 10.0, 15.0, 40.0][i];
            let labels: Labels = [("county".to_string(), c.to_string())].into();
            b.push("pm25", labels.clone(), d("2021-01-10"), jan);
            b.push("pm25", labels.clone(), d("2021-02-10"), feb);
            b.push("pm25", labels, d("2021-03-02"), 99.0 - i as f64);
        }
        store.write_many(&[&b], true).unwrap();
        let spec = ChartSpec {
            metric: "pm25".into(),
            filter: [("county".to_string(), "南宫".to_string())].into(),
            range: ChartRange::Window(crate::time::Window::Last(365 * DAY)),
            unit: Some("名".into()),
            line: ChartLine::Flat(2.0),
            breach: Some(Breach::Above),
            tolerance: 0.0,
            monthly: false,
            year_end: false,
            label: None,
            rank: Some("county".into()),
        };
        let data = chart_data(&store, &spec, None, d("2021-03-05T09:00"), SH);
        assert_eq!(data.rank_of, Some(4));
        let places: Vec<f64> = data.lines[0].points.iter().map(|p| p.1).collect();
        assert_eq!(
            places,
            vec![3.0, 1.0],
            "January 3rd, February 1st, March not yet"
        );
        assert!(data.is_breach(data.lines[0].points[0].0, 3.0));
        assert_eq!(data.target.first().map(|p| p.1), Some(2.0));
    }
}
