//! Times, durations and windows, all in the configured timezone.
//!
//! Internally every instant is [`Millis`]: milliseconds since the Unix epoch.

pub mod schedule;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;
pub const DAY: Millis = 24 * HOUR;

/// Now, in ms since the epoch (the system clock).
pub fn wall_clock() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// Parses TIME: RFC 3339 with an offset (`2021-03-01T09:00:00+08:00`), or a
/// local date / date-time in `tz` (`2021-03-01`, `2021-03-01T09:00`,
/// `2021-03-01 09:00:00`).
pub fn parse_time(text: &str, tz: Tz) -> Result<Millis, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty time".into());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, format) {
            return local_to_millis(naive, tz)
                .ok_or_else(|| format!("`{s}` does not exist in {tz} (a daylight-saving gap)"));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let naive = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        return local_to_millis(naive, tz)
            .ok_or_else(|| format!("`{s}` does not exist in {tz} (a daylight-saving gap)"));
    }
    Err(format!(
        "`{s}` is not a time: expected RFC 3339 like `2021-03-01T09:00:00+08:00` or a local `2021-03-01` / `2021-03-01T09:00`"
    ))
}

/// A local wall-clock time in `tz` as an instant; the earlier one when the
/// clock is turned back, `None` inside a spring-forward gap.
pub fn local_to_millis(naive: NaiveDateTime, tz: Tz) -> Option<Millis> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.timestamp_millis()),
        LocalResult::Ambiguous(a, _) => Some(a.timestamp_millis()),
        LocalResult::None => None,
    }
}

/// The instant as a local date-time in `tz`.
pub fn to_local(t: Millis, tz: Tz) -> DateTime<Tz> {
    tz.timestamp_millis_opt(t).single().unwrap_or_else(|| {
        tz.timestamp_millis_opt(0)
            .single()
            .expect("epoch is representable")
    })
}

/// RFC 3339 in `tz`, seconds precision: `2021-03-01T09:00:00+08:00`.
pub fn format_time(t: Millis, tz: Tz) -> String {
    to_local(t, tz).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// Parses a duration such as `0s`, `90m`, `24h`, `1d`, `2w`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Millis, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: Millis = 0;
    let mut digits = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => SECOND,
            'm' => MINUTE,
            'h' => HOUR,
            'd' => DAY,
            'w' => 7 * DAY,
            _ => {
                return Err(format!(
                    "`{s}` is not a duration: unknown unit `{c}` (use ms, s, m, h, d or w, e.g. `90m`, `7d`)"
                ))
            }
        };
        if digits.is_empty() {
            return Err(format!(
                "`{s}` is not a duration: a number must come before `{c}`"
            ));
        }
        let n: Millis = digits
            .parse()
            .map_err(|_| format!("`{s}` is not a duration: number too large"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{s}` is too long a duration"))?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!(
            "`{s}` is not a duration: `{digits}` needs a unit (s, m, h, d or w), e.g. `{digits}d`"
        ));
    }
    Ok(total)
}

/// A duration as users write it: `1d`, `90m`, `0s`.
pub fn format_duration(ms: Millis) -> String {
    if ms == 0 {
        return "0s".into();
    }
    for (unit, name) in [
        (7 * DAY, "w"),
        (DAY, "d"),
        (HOUR, "h"),
        (MINUTE, "m"),
        (SECOND, "s"),
    ] {
        if ms % unit == 0 {
            return format!("{}{name}", ms / unit);
        }
    }
    format!("{ms}ms")
}

/// The readings a rule looks at, relative to the evaluation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `"30d"`: T − d ≤ time ≤ T (both ends, as Prometheus ranges).
    Last(Millis),
    Today,
    Yesterday,
    Month,
    LastMonth,
    Quarter,
    LastQuarter,
    Year,
    LastYear,
    /// `"all"`: every stored reading up to T.
    All,
    /// `"2021"`: one calendar year (a work report's year), up to T.
    CalendarYear(i32),
}

/// Inclusive range of instants `[from, to]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: Millis,
    pub to: Millis,
}

impl Range {
    pub fn contains(&self, t: Millis) -> bool {
        self.from <= t && t <= self.to
    }
}

pub const WINDOW_NAMES: &str =
    "a duration like `30d`, or `today` `yesterday` `month` `last_month` `quarter` `last_quarter` `year` `last_year` `all`, or a calendar year like `2021`";

impl Window {
    pub fn parse(text: &str) -> Result<Window, String> {
        Ok(match text.trim() {
            "today" => Window::Today,
            "yesterday" => Window::Yesterday,
            "month" => Window::Month,
            "last_month" => Window::LastMonth,
            "quarter" => Window::Quarter,
            "last_quarter" => Window::LastQuarter,
            "year" => Window::Year,
            "last_year" => Window::LastYear,
            "all" => Window::All,
            year if year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) => {
                let y: i32 = year.parse().expect("four digits");
                if !(1900..=2999).contains(&y) {
                    return Err(format!(
                        "bad window: year `{y}` is out of range (1900–2999)"
                    ));
                }
                Window::CalendarYear(y)
            }
            other => Window::Last(
                parse_duration(other)
                    .map_err(|e| format!("bad window: {e}; a window is {WINDOW_NAMES}"))?,
            ),
        })
    }

    /// The instants this window covers at evaluation time `now`. Calendar
    /// periods are `[start, end)` in `tz`, clipped at `now`.
    pub fn range(self, now: Millis, tz: Tz) -> Range {
        let period = |(start, end): (Millis, Millis)| Range {
            from: start,
            to: (end - 1).min(now),
        };
        let local = to_local(now, tz);
        match self {
            Window::Last(d) => Range {
                from: now.saturating_sub(d),
                to: now,
            },
            Window::All => Range {
                from: Millis::MIN,
                to: now,
            },
            Window::Today => period(day_bounds(local.date_naive(), tz)),
            Window::Yesterday => period(day_bounds(local.date_naive() - Duration::days(1), tz)),
            Window::Month => period(month_bounds(local.year(), local.month(), 0, tz)),
            Window::LastMonth => period(month_bounds(local.year(), local.month(), -1, tz)),
            Window::Quarter => {
                let first = (local.month() - 1) / 3 * 3 + 1;
                period(months_span(local.year(), first, 3, tz))
            }
            Window::LastQuarter => {
                let first = (local.month() - 1) / 3 * 3 + 1;
                let (y, m) = add_months(local.year(), first, -3);
                period(months_span(y, m, 3, tz))
            }
            Window::Year => period(months_span(local.year(), 1, 12, tz)),
            Window::LastYear => period(months_span(local.year() - 1, 1, 12, tz)),
            // Before the year starts, `to < from`: an empty window.
            Window::CalendarYear(y) => period(months_span(y, 1, 12, tz)),
        }
    }
}

/// `(year, month)` moved by `delta` months.
pub fn add_months(year: i32, month: u32, delta: i32) -> (i32, u32) {
    let index = year * 12 + (month as i32 - 1) + delta;
    (index.div_euclid(12), (index.rem_euclid(12) + 1) as u32)
}

/// Local midnight of `date` in `tz` as an instant (the first instant of the day
/// if midnight falls in a daylight-saving gap).
pub fn start_of_day(date: NaiveDate, tz: Tz) -> Millis {
    let mut naive = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    for _ in 0..4 {
        if let Some(t) = local_to_millis(naive, tz) {
            return t;
        }
        naive += Duration::minutes(30);
    }
    naive.and_utc().timestamp_millis()
}

fn day_bounds(date: NaiveDate, tz: Tz) -> (Millis, Millis) {
    (
        start_of_day(date, tz),
        start_of_day(date + Duration::days(1), tz),
    )
}

fn month_bounds(year: i32, month: u32, delta: i32, tz: Tz) -> (Millis, Millis) {
    let (y, m) = add_months(year, month, delta);
    months_span(y, m, 1, tz)
}

/// `[first day of (year, month), first day of the month `count` later)`.
pub fn months_span(year: i32, month: u32, count: i32, tz: Tz) -> (Millis, Millis) {
    let (ey, em) = add_months(year, month, count);
    let start = NaiveDate::from_ymd_opt(year, month, 1).expect("valid month");
    let end = NaiveDate::from_ymd_opt(ey, em, 1).expect("valid month");
    (start_of_day(start, tz), start_of_day(end, tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SH: Tz = chrono_tz::Asia::Shanghai;

    #[test]
    fn parses_rfc3339_and_local_times() {
        let a = parse_time("2021-03-01T09:00:00+08:00", SH).unwrap();
        assert_eq!(parse_time("2021-03-01T09:00", SH).unwrap(), a);
        assert_eq!(parse_time("2021-03-01 09:00:00", SH).unwrap(), a);
        assert_eq!(parse_time("2021-03-01", SH).unwrap(), a - 9 * HOUR);
        assert!(parse_time("2021-13-01", SH).is_err());
        assert!(parse_time("yesterday", SH).is_err());
    }

    #[test]
    fn local_time_in_a_dst_gap_is_an_error() {
        let ny = chrono_tz::America::New_York;
        let err = parse_time("2021-03-14T02:30", ny).unwrap_err();
        assert!(err.contains("daylight-saving"), "{err}");
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("0s").unwrap(), 0);
        assert_eq!(parse_duration("90m").unwrap(), 90 * MINUTE);
        assert_eq!(parse_duration("1h30m").unwrap(), 90 * MINUTE);
        assert_eq!(parse_duration("7d").unwrap(), 7 * DAY);
        assert_eq!(parse_duration("250ms").unwrap(), 250);
        assert!(parse_duration("7").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("3y").unwrap_err().contains("unknown unit"));
        assert_eq!(format_duration(7 * DAY), "1w");
        assert_eq!(format_duration(90 * MINUTE), "90m");
    }

    #[test]
    fn duration_windows_include_both_ends() {
        let now = parse_time("2021-03-31T00:00:00+08:00", SH).unwrap();
        let r = Window::parse("30d").unwrap().range(now, SH);
        assert_eq!(r.from, now - 30 * DAY);
        assert_eq!(r.to, now);
    }

    #[test]
    fn calendar_windows_follow_the_zone() {
        let now = parse_time("2021-03-15T12:00", SH).unwrap();
        let last = Window::LastMonth.range(now, SH);
        assert_eq!(last.from, parse_time("2021-02-01", SH).unwrap());
        assert_eq!(last.to, parse_time("2021-03-01", SH).unwrap() - 1);
        let month = Window::Month.range(now, SH);
        assert_eq!(month.from, parse_time("2021-03-01", SH).unwrap());
        assert_eq!(month.to, now, "clipped at now");
        let q = Window::LastQuarter.range(now, SH);
        assert_eq!(q.from, parse_time("2020-10-01", SH).unwrap());
        let y = Window::Year.range(now, SH);
        assert_eq!(y.from, parse_time("2021-01-01", SH).unwrap());
    }

    /// A work report's year as a window: the whole year seen from the next
    /// one, clipped at now inside it, empty before it.
    #[test]
    fn a_calendar_year_window() {
        let w = Window::parse("2021").unwrap();
        assert_eq!(w, Window::CalendarYear(2021));
        let after = Window::CalendarYear(2021).range(parse_time("2022-02-16", SH).unwrap(), SH);
        assert_eq!(after.from, parse_time("2021-01-01", SH).unwrap());
        assert_eq!(after.to, parse_time("2022-01-01", SH).unwrap() - 1);
        let inside = parse_time("2021-06-16", SH).unwrap();
        assert_eq!(Window::CalendarYear(2021).range(inside, SH).to, inside);
        let before = Window::CalendarYear(2021).range(parse_time("2020-12-31", SH).unwrap(), SH);
        assert!(before.to < before.from, "empty");
        assert!(Window::parse("0999").unwrap_err().contains("out of range"));
        assert!(Window::parse("20210").is_err());
    }
}
