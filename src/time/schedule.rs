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

impl Schedule {
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
