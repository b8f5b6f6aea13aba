//! The arithmetic that keeps the cron jobs honest (pure, over `Millis`):
//!
//! tokio-cron-scheduler is used for its ticking, never for its idea of time:
//! - A tick may arrive up to ~0.5 s late (its loop sleeps 500 ms), so the
//!   evaluation time is the *scheduled instant* the tick stands for, computed
//!   from the rule's [`Schedule`] in the configured zone ([`scheduled_instant`]).
//! - After its first tick a job keeps the UTC offset captured at creation, so
//!   in a zone with daylight saving it drifts by an hour at each change. The
//!   daemon re-creates every job at each offset change ([`next_offset_change`]);
//!   a tick that matches no scheduled instant is skipped, never evaluated at a
//!   wrong time.

use chrono::{Offset, TimeZone};
use chrono_tz::Tz;

use crate::time::schedule::Schedule;
use crate::time::{Millis, DAY, HOUR, SECOND};

/// How far *before* a scheduled instant a tick may come and still stand for
/// it: the scheduler fires at or after the instant, so this only absorbs
/// clock reads a moment apart. It must stay far below the shortest period
/// (one second): a whole second made a 1-second schedule evaluate the *next*
/// instant ~0.9 s early, count the current one as missed at every tick, and
/// hold its mails until that future instant.
pub const EARLY_GRACE: Millis = 50;

/// Missed instants further back than this are not searched one by one (an
/// every-second rule after a suspended laptop would walk the whole gap).
const MAX_LOOKBACK: Millis = DAY;

/// What a tick fired at `fired` (wall clock) stands for, given that every
/// scheduled instant up to `cursor` has been handled already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Evaluate as of this scheduled instant; `missed` earlier instants since
    /// `cursor` were not run (the daemon was busy or asleep).
    Run { at: Millis, missed: usize },
    /// No scheduled instant in `(cursor, fired + grace]`: a stray tick (a job
    /// running on a stale UTC offset). Nothing to do.
    Stray,
}

/// The latest scheduled instant in `(cursor, fired + EARLY_GRACE]`.
pub fn scheduled_instant(schedule: &Schedule, tz: Tz, cursor: Millis, fired: Millis) -> Tick {
    let limit = fired + EARLY_GRACE;
    let mut from = cursor.max(fired - MAX_LOOKBACK);
    let mut found: Option<Millis> = None;
    let mut missed = 0usize;
    while let Some(t) = next_after(schedule, from, tz) {
        if t > limit {
            break;
        }
        if found.is_some() {
            missed += 1;
        }
        found = Some(t);
        from = t;
    }
    match found {
        Some(at) => Tick::Run { at, missed },
        None => Tick::Stray,
    }
}

/// The first scheduled instant strictly after `t`. `Schedule::next_after`
/// keeps the sub-second part of its argument (croner carries it into the
/// result: 09:00:00.480 → 09:00:00.480 the next day), so whole seconds only.
pub fn next_after(schedule: &Schedule, t: Millis, tz: Tz) -> Option<Millis> {
    schedule.next_after(t.div_euclid(SECOND) * SECOND, tz)
}

/// The UTC offset of `tz` at `t`, in seconds east.
pub fn offset_at(tz: Tz, t: Millis) -> i32 {
    tz.offset_from_utc_datetime(&crate::time::to_local(t, tz).naive_utc())
        .fix()
        .local_minus_utc()
}

/// The first instant after `after` (within a year) at which the UTC offset of
/// `tz` changes, to the second; `None` for zones without changes (Asia/Shanghai).
pub fn next_offset_change(tz: Tz, after: Millis) -> Option<Millis> {
    // Offsets change at most a few times a year and never twice within six
    // hours: step six hours, then bisect the step where it changed.
    const STEP: Millis = 6 * HOUR;
    let start = offset_at(tz, after);
    let mut lo = after;
    let mut hi = after;
    loop {
        hi += STEP;
        if hi - after > 366 * DAY {
            return None;
        }
        if offset_at(tz, hi) != start {
            break;
        }
        lo = hi;
    }
    while hi - lo > SECOND {
        let mid = lo + (hi - lo) / 2;
        if offset_at(tz, mid) == start {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    // Offsets change on whole seconds, and (lo, hi] holds exactly one.
    Some(lo.div_euclid(SECOND) * SECOND + SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{format_time, parse_time};
    use chrono::FixedOffset;
    use croner::parser::{CronParser, Seconds};

    const SH: Tz = chrono_tz::Asia::Shanghai;
    const NY: Tz = chrono_tz::America::New_York;
    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    fn t(text: &str, tz: Tz) -> Millis {
        parse_time(text, tz).unwrap()
    }

    #[test]
    fn late_ticks_evaluate_at_the_scheduled_instant() {
        let s = Schedule::parse("0 0 9 * * *").unwrap();
        let nine = t("2021-03-01T09:00", SH);
        let cursor = nine - DAY;
        assert_eq!(
            scheduled_instant(&s, SH, cursor, nine + 480),
            Tick::Run {
                at: nine,
                missed: 0
            }
        );
        assert_eq!(
            scheduled_instant(&s, SH, cursor, nine),
            Tick::Run {
                at: nine,
                missed: 0
            }
        );
        // Already handled: nothing to do.
        assert_eq!(scheduled_instant(&s, SH, nine, nine + 480), Tick::Stray);
        // Three hours asleep: the latest instant, with the two missed counted.
        let hourly = Schedule::parse("@hourly").unwrap();
        assert_eq!(
            scheduled_instant(&hourly, SH, nine - 3 * HOUR, nine + 3_000),
            Tick::Run {
                at: nine,
                missed: 2
            }
        );
        // A tick an hour early (a stale offset) stands for nothing.
        assert_eq!(scheduled_instant(&s, SH, cursor, nine - HOUR), Tick::Stray);
    }

    #[test]
    fn every_second_ticks_stand_for_their_own_instant() {
        // A 1-second schedule, ticks up to half a second late: each stands
        // for the instant it was fired for, never the next one, and none is
        // counted as missed (the first tick after start included).
        let s = Schedule::parse("* * * * * *").unwrap();
        let start = t("2021-03-01T09:00", SH) + 300;
        let mut cursor = start;
        for k in 1..=20 {
            let instant = t("2021-03-01T09:00", SH) + k * SECOND;
            let fired = instant + (k * 37) % 500;
            assert_eq!(
                scheduled_instant(&s, SH, cursor, fired),
                Tick::Run {
                    at: instant,
                    missed: 0
                },
                "tick {k}"
            );
            cursor = instant;
        }
    }

    #[test]
    fn offset_changes() {
        assert_eq!(next_offset_change(SH, t("2021-01-01", SH)), None);
        // US: second Sunday of March at 02:00 EST = 07:00 UTC; first Sunday of November 06:00 UTC.
        let spring = next_offset_change(NY, t("2021-01-01", NY)).unwrap();
        assert_eq!(spring, t("2021-03-14T07:00:00Z", NY));
        let fall = next_offset_change(NY, spring).unwrap();
        assert_eq!(fall, t("2021-11-07T06:00:00Z", NY));
        // EU: last Sunday of March, 01:00 UTC.
        assert_eq!(
            next_offset_change(BERLIN, t("2021-02-01", BERLIN)).unwrap(),
            t("2021-03-28T01:00:00Z", BERLIN)
        );
        assert_eq!(offset_at(NY, spring - 1), -5 * 3600);
        assert_eq!(offset_at(NY, spring), -4 * 3600);
    }

    /// The scheduler as tokio-cron-scheduler runs a job: the first tick from
    /// the zone, later ticks from the UTC offset captured at creation, each
    /// computed from the moment the previous tick ran.
    struct FakeJob {
        cron: croner::Cron,
        offset: FixedOffset,
        next: Millis,
    }

    impl FakeJob {
        fn create(cron_text: &str, tz: Tz, now: Millis) -> FakeJob {
            let cron = CronParser::builder()
                .seconds(Seconds::Required)
                .dom_and_dow(true)
                .build()
                .parse(cron_text)
                .unwrap();
            let offset = FixedOffset::east_opt(offset_at(tz, now)).unwrap();
            let next = cron
                .find_next_occurrence(&crate::time::to_local(now, tz), false)
                .unwrap()
                .timestamp_millis();
            FakeJob { cron, offset, next }
        }

        /// The job fires at `next` (+ lateness); its next tick is computed as the library does.
        fn fire(&mut self, lateness: Millis) -> Millis {
            let fired = self.next + lateness;
            let now = chrono::Utc
                .timestamp_millis_opt(fired)
                .unwrap()
                .with_timezone(&self.offset);
            // Stored as whole seconds, as the library does.
            self.next = self.cron.iter_after(now).next().unwrap().timestamp() * SECOND;
            fired
        }
    }

    /// Drives a rule's job for `days` from `start` the way the daemon does:
    /// re-create at each offset change, and evaluate each tick at the
    /// instant [`scheduled_instant`] gives. Returns the evaluation instants.
    fn simulate(
        schedule: &str,
        tz: Tz,
        start: Millis,
        days: i64,
        recreate: bool,
        lateness: Millis,
    ) -> Vec<Millis> {
        let s = Schedule::parse(schedule).unwrap();
        let end = start + days * DAY;
        let mut job = FakeJob::create(&s.cron_text, tz, start);
        let mut cursor = start;
        let mut change = next_offset_change(tz, start);
        let mut out = Vec::new();
        let mut run = |fired: Millis, cursor: &mut Millis| {
            if let Tick::Run { at, .. } = scheduled_instant(&s, tz, *cursor, fired) {
                out.push(at);
                *cursor = at;
            }
        };
        loop {
            // The daemon re-creates the job a second after an offset change,
            // then catches up an instant the old job did not fire.
            if let Some(c) = change.filter(|&c| recreate && c + SECOND <= job.next + lateness) {
                job = FakeJob::create(&s.cron_text, tz, c + SECOND);
                change = next_offset_change(tz, c + SECOND);
                run(c + SECOND - EARLY_GRACE, &mut cursor);
                continue;
            }
            if job.next > end {
                break;
            }
            let fired = job.fire(lateness);
            run(fired, &mut cursor);
        }
        out
    }

    fn expected(schedule: &str, tz: Tz, start: Millis, days: i64) -> Vec<Millis> {
        Schedule::parse(schedule)
            .unwrap()
            .between(start + SECOND, start + days * DAY, tz)
    }

    fn show(v: &[Millis], tz: Tz) -> Vec<String> {
        v.iter().map(|&x| format_time(x, tz)).collect()
    }

    #[test]
    fn daily_rule_across_daylight_saving_changes() {
        for (tz, from) in [
            (NY, "2021-03-10"),
            (NY, "2021-11-03"),
            (BERLIN, "2021-03-25"),
            (BERLIN, "2021-10-28"),
            (SH, "2021-03-10"),
        ] {
            let start = t(from, tz);
            for lateness in [0, 400, 1_500] {
                let got = simulate("0 0 9 * * *", tz, start, 8, true, lateness);
                let want = expected("0 0 9 * * *", tz, start, 8);
                assert_eq!(show(&got, tz), show(&want, tz), "{tz} from {from}");
                // Every evaluation is at 09:00 local, whatever the offset.
                for at in &got {
                    assert!(
                        format_time(*at, tz).contains("T09:00:00"),
                        "{}",
                        format_time(*at, tz)
                    );
                }
            }
        }
    }

    #[test]
    fn without_re_creation_the_library_drifts_and_stray_ticks_are_skipped() {
        // The trap itself: after the spring change the job ticks at 10:00 local
        // (09:00 in the old offset). Our arithmetic refuses to call those 09:00.
        let start = t("2021-03-10", NY);
        let s = Schedule::parse("0 0 9 * * *").unwrap();
        let mut job = FakeJob::create(&s.cron_text, NY, start);
        let mut fired_local = Vec::new();
        for _ in 0..8 {
            fired_local.push(format_time(job.fire(0), NY));
        }
        assert!(
            fired_local.iter().any(|f| f.contains("T10:00:00")),
            "{fired_local:?}"
        );
        // Ticked late, those are still evaluated as of 09:00 (the scheduled instant).
        let got = simulate("0 0 9 * * *", NY, start, 8, false, 400);
        assert_eq!(
            show(&got, NY),
            show(&expected("0 0 9 * * *", NY, start, 8), NY)
        );
        // In the fall the drifted job ticks at 08:00, before the instant: those
        // ticks stand for nothing, and each day's 09:00 waits for the next
        // day's tick. Hence the re-creation at each change.
        let fall = t("2021-11-03", NY);
        let got = simulate("0 0 9 * * *", NY, fall, 8, false, 400);
        assert!(got.len() < expected("0 0 9 * * *", NY, fall, 8).len());
        for at in &got {
            assert!(format_time(*at, NY).contains("T09:00:00"));
        }
    }

    #[test]
    fn hourly_and_nightly_rules_across_the_change_night() {
        // Hourly: no hour lost or doubled in absolute time; 02:30 local does
        // not exist on the spring night and happens twice on the fall night.
        for (tz, from) in [
            (NY, "2021-03-13"),
            (NY, "2021-11-06"),
            (BERLIN, "2021-03-27"),
            (BERLIN, "2021-10-30"),
        ] {
            let start = t(from, tz);
            for schedule in [
                "0 0 * * * *",
                "0 30 2 * * *",
                "0 15 */3 * * *",
                "0 0 3 * * *",
                "0 */20 * * * *",
            ] {
                for lateness in [0, 400, 1_500] {
                    let got = simulate(schedule, tz, start, 3, true, lateness);
                    let want = expected(schedule, tz, start, 3);
                    let (got, want) = (show(&got, tz), show(&want, tz));
                    let extra: Vec<_> = got.iter().filter(|g| !want.contains(g)).collect();
                    let lost: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
                    assert_eq!(got, want, "{tz} {schedule} from {from}, {lateness} ms late: extra {extra:?}, lost {lost:?}");
                }
            }
        }
    }
}
