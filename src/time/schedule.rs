//! Rule schedules: six-field cron (seconds first) or `@hourly` `@daily`
//! `@weekly` `@monthly` `@yearly`, in the configured timezone.
//!
//! Parsed with the same `croner` options tokio-cron-scheduler uses, so what
//! `check` accepts is what the daemon runs. Note: day-of-month and day-of-week
//! are ANDed (classic cron ORs them).

use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

use crate::time::{to_local, Millis};

#[derive(Debug, Clone)]
pub struct Schedule {
    /// As written by the user.
    pub text: String,
    /// Six-field form handed to the scheduler.
    pub cron_text: String,
    cron: Cron,
}

/// A duration as officials read it: `每7天`, `每1小时`, `每30分钟` (an
/// interval; words.md: never `7d` or `1w`). `0` is `立即`.
pub fn every_in_words(ms: Millis) -> String {
    const MIN: Millis = 60_000;
    match ms {
        0 => "立即".into(),
        m if m % (24 * 60 * MIN) == 0 => format!("每{}天", m / (24 * 60 * MIN)),
        m if m % (60 * MIN) == 0 => format!("每{}小时", m / (60 * MIN)),
        m if m % MIN == 0 => format!("每{}分钟", m / MIN),
        m => format!("每{}秒", m / 1000),
    }
}

/// A length of time as officials read it: `7天`, `1小时`, `0` → `立即`.
pub fn duration_in_words(ms: Millis) -> String {
    match ms {
        0 => "立即".into(),
        m => every_in_words(m).trim_start_matches('每').to_string(),
    }
}

impl Schedule {
    /// The schedule in words: `每天 09:00`, `每月16日 09:00`, `每周一 09:00`,
    /// `每年1月16日 09:00`; a schedule these cannot say keeps its own text.
    pub fn in_words(&self) -> String {
        let f: Vec<&str> = self.cron_text.split_whitespace().collect();
        if f.len() != 6 {
            return self.text.clone();
        }
        let num = |x: &str| x.parse::<u32>().ok();
        let (Some(_), Some(min), Some(hour)) = (num(f[0]), num(f[1]), num(f[2])) else {
            return self.text.clone();
        };
        let time = format!("{hour:02}:{min:02}");
        let week = |d: &str| -> Option<&'static str> {
            Some(match d.to_ascii_uppercase().as_str() {
                "1" | "MON" => "一",
                "2" | "TUE" => "二",
                "3" | "WED" => "三",
                "4" | "THU" => "四",
                "5" | "FRI" => "五",
                "6" | "SAT" => "六",
                "0" | "7" | "SUN" => "日",
                _ => return None,
            })
        };
        match (f[3], f[4], f[5]) {
            ("*", "*", "*" | "?") => format!("每天 {time}"),
            (d, "*", "*" | "?") if num(d).is_some() => format!("每月{d}日 {time}"),
            (d, m, "*" | "?") if num(d).is_some() && num(m).is_some() => {
                format!("每年{m}月{d}日 {time}")
            }
            ("*" | "?", "*", w) => match week(w) {
                Some(w) => format!("每周{w} {time}"),
                None => self.text.clone(),
            },
            _ => self.text.clone(),
        }
    }

    pub fn parse(text: &str) -> Result<Schedule, String> {
        let trimmed = text.trim();
        let cron_text = match trimmed {
            "@yearly" | "@annually" => "0 0 0 1 1 *",
            "@monthly" => "0 0 0 1 * *",
            "@weekly" => "0 0 0 * * SUN",
            "@daily" | "@midnight" => "0 0 0 * * *",
            "@hourly" => "0 0 * * * *",
            other if other.starts_with('@') => {
                return Err(format!(
                    "unknown schedule `{other}`: use @hourly @daily @weekly @monthly @yearly or six-field cron"
                ))
            }
            other => other,
        }
        .to_string();
        let fields = cron_text.split_whitespace().count();
        if fields != 6 {
            return Err(format!(
                "schedule `{trimmed}` has {fields} fields; cron here has six, seconds first: `0 0 9 * * *` is 09:00:00 every day"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&cron_text)
            .map_err(|e| format!("bad schedule `{trimmed}`: {e}"))?;
        Ok(Schedule {
            text: trimmed.to_string(),
            cron_text,
            cron,
        })
    }

    /// True when both day-of-month and day-of-week are restricted: they are
    /// ANDed here, unlike classic cron. `check` warns about it.
    pub fn restricts_both_days(&self) -> bool {
        let f: Vec<&str> = self.cron_text.split_whitespace().collect();
        let restricted = |s: &str| s != "*" && s != "?";
        restricted(f[3]) && restricted(f[5])
    }

    /// The first scheduled instant strictly after `after`, in `tz`.
    pub fn next_after(&self, after: Millis, tz: Tz) -> Option<Millis> {
        // croner carries the sub-second part of its start into the result;
        // ticks are whole seconds.
        self.cron
            .find_next_occurrence(&to_local(after, tz), false)
            .ok()
            .map(|t| t.timestamp() * 1000)
    }

    /// Every scheduled instant in `[from, to]`.
    pub fn between(&self, from: Millis, to: Millis, tz: Tz) -> Vec<Millis> {
        let mut out = Vec::new();
        let mut t = match self.cron.find_next_occurrence(&to_local(from, tz), true) {
            Ok(t) => t.timestamp() * 1000,
            Err(_) => return out,
        };
        if t < from {
            // `from` was inside a matching second, past its start.
            match self.next_after(t, tz) {
                Some(n) => t = n,
                None => return out,
            }
        }
        while t <= to {
            out.push(t);
            match self.next_after(t, tz) {
                Some(n) => t = n,
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_and_intervals_in_words() {
        let w = |t: &str| Schedule::parse(t).unwrap().in_words();
        assert_eq!(w("0 0 9 16 * *"), "每月16日 09:00");
        assert_eq!(w("0 0 9 * * *"), "每天 09:00");
        assert_eq!(w("0 0 9 * * MON"), "每周一 09:00");
        assert_eq!(w("0 30 8 16 1 *"), "每年1月16日 08:30");
        assert_eq!(every_in_words(7 * 24 * 3_600_000), "每7天");
        assert_eq!(every_in_words(3_600_000), "每1小时");
        assert_eq!(duration_in_words(0), "立即");
    }
    use crate::time::parse_time;

    const SH: Tz = chrono_tz::Asia::Shanghai;

    #[test]
    fn six_fields_and_nicknames() {
        let s = Schedule::parse("0 0 9 * * *").unwrap();
        let t = parse_time("2021-03-01T08:00", SH).unwrap();
        assert_eq!(
            s.next_after(t, SH),
            Some(parse_time("2021-03-01T09:00", SH).unwrap())
        );
        let d = Schedule::parse("@daily").unwrap();
        assert_eq!(
            d.next_after(t, SH),
            Some(parse_time("2021-03-02", SH).unwrap())
        );
        assert!(Schedule::parse("0 9 * * *").unwrap_err().contains("six"));
        assert!(Schedule::parse("@sometimes").is_err());
        assert!(Schedule::parse("0 0 25 * * *").is_err());
    }

    #[test]
    fn ticks_are_whole_seconds() {
        let s = Schedule::parse("0 0 9 * * *").unwrap();
        let t = parse_time("2021-03-01T09:00", SH).unwrap();
        assert_eq!(s.next_after(t + 480, SH), Some(t + crate::time::DAY));
        assert_eq!(
            s.between(t + 480, t + crate::time::DAY, SH),
            vec![t + crate::time::DAY]
        );
        assert_eq!(s.between(t, t, SH), vec![t]);
    }

    #[test]
    fn between_lists_each_tick() {
        let s = Schedule::parse("0 0 9 1 * *").unwrap();
        let from = parse_time("2021-01-01", SH).unwrap();
        let to = parse_time("2021-12-31", SH).unwrap();
        assert_eq!(s.between(from, to, SH).len(), 12);
        assert!(!s.restricts_both_days());
        assert!(Schedule::parse("0 0 9 1 * MON")
            .unwrap()
            .restricts_both_days());
    }
}
