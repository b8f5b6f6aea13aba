//! Which national air standards are in force on a given day, and their
//! numbers: the IAQI breakpoints (HJ 633), the composite-index divisors
//! (HJ 663) and the concentration limits (GB 3095), edition by edition.
//!
//! Why a module of its own: GB 3095-2026, HJ 633-2026 and HJ 663-2026 replaced
//! the 2012 editions on 2026-03-01, in two phases (the PM2.5 limits tighten
//! again on 2031-01-01). A reading is judged by the edition in force on its
//! day, so `iaqi`, `composite_index` and `air_limit` pick the edition from a
//! time (or take one by name), and 2021 readings keep the 2012 numbers.
//!
//! Sources: `shared/design/standards.md` (2012 tables, the 2026 PM2.5 limits)
//! and, for the rest of the 2026 numbers, public implementations that cite the
//! standards' text (the text itself was not read). Every number that fewer
//! than two independent sources give is marked UNCONFIRMED here and in
//! `docs/rules.md` §8.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map, INT};

use super::api::{number, Time};
use super::domain::{self, AboveTop, IaqiSeries, HJ_633_2012};
use crate::time::{to_local, Millis};

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// A set of air standards in force together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Edition {
    /// GB 3095-2012, HJ 633-2012, HJ 663-2013: in force until 2026-02-28.
    Y2012,
    /// GB 3095-2026 phase one (transition limits), HJ 633-2026, HJ 663-2026:
    /// 2026-03-01 to 2030-12-31.
    Y2026,
    /// GB 3095-2026 phase two, with HJ 633-2026 and HJ 663-2026: from
    /// 2031-01-01.
    Y2031,
}

/// The day the 2026 editions took effect.
pub const EDITION_2026_FROM: (i32, u32, u32) = (2026, 3, 1);
/// The day GB 3095-2026 phase two (the final PM2.5, PM10, SO2, NO2 limits)
/// takes effect.
pub const PHASE_TWO_FROM: (i32, u32, u32) = (2031, 1, 1);

fn day((y, m, d): (i32, u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid constant date")
}

impl Edition {
    pub const ALL: [Edition; 3] = [Edition::Y2012, Edition::Y2026, Edition::Y2031];

    /// The name rules use: `"2012"`, `"2026"`, `"2031"`.
    pub fn name(self) -> &'static str {
        match self {
            Edition::Y2012 => "2012",
            Edition::Y2026 => "2026",
            Edition::Y2031 => "2031",
        }
    }

    /// The standards, in words, for messages and the guide.
    pub fn describe(self) -> &'static str {
        match self {
            Edition::Y2012 => "GB 3095-2012、HJ 633-2012、HJ 663-2013",
            Edition::Y2026 => "GB 3095-2026（第一阶段）、HJ 633-2026、HJ 663-2026",
            Edition::Y2031 => "GB 3095-2026（第二阶段）、HJ 633-2026、HJ 663-2026",
        }
    }

    pub fn parse(text: &str) -> Result<Edition, String> {
        Edition::ALL
            .into_iter()
            .find(|e| e.name() == text)
            .ok_or_else(|| {
                format!(
                    "unknown air-standard edition `{text}`: use \"2012\" (GB 3095-2012 with HJ 633-2012), \"2026\" (GB 3095-2026 phase one, from 2026-03-01) or \"2031\" (GB 3095-2026 phase two, from 2031-01-01)"
                )
            })
    }

    /// The edition in force on a local calendar day.
    pub fn on(date: NaiveDate) -> Edition {
        if date >= day(PHASE_TWO_FROM) {
            Edition::Y2031
        } else if date >= day(EDITION_2026_FROM) {
            Edition::Y2026
        } else {
            Edition::Y2012
        }
    }

    /// The edition in force at `t`, by its local day in `tz`.
    pub fn at(t: Millis, tz: Tz) -> Edition {
        Edition::on(to_local(t, tz).date_naive())
    }

    /// HJ 633 table of IAQI breakpoints of this edition.
    pub fn iaqi_table(self) -> &'static [IaqiSeries] {
        match self {
            Edition::Y2012 => &HJ_633_2012,
            Edition::Y2026 | Edition::Y2031 => &HJ_633_2026,
        }
    }

    /// HJ 663 composite-index divisors of this edition.
    pub fn composite_divisors(self) -> &'static [(&'static str, f64); 6] {
        match self {
            Edition::Y2012 => &domain::COMPOSITE_DIVISORS_2012,
            Edition::Y2026 => &COMPOSITE_DIVISORS_2026,
            Edition::Y2031 => &COMPOSITE_DIVISORS_2031,
        }
    }
}

// ---------------------------------------------------------------------------
// HJ 633-2026: IAQI breakpoints
// ---------------------------------------------------------------------------

/// HJ 633-2026 PM2.5 24-hour breakpoints: the IAQI 100 point moves from 75 to
/// 60 µg/m³ (the new 24-hour limit), the rest as in 2012. Confirmed by five
/// independent public implementations (aqi-hub 0.3.x, and four others citing
/// table 3 of the text); the standard's text itself was not read.
pub const PM25_24H_2026: [f64; 8] = [0.0, 35.0, 60.0, 115.0, 150.0, 250.0, 350.0, 500.0];

/// HJ 633-2026 PM10 24-hour breakpoints: the IAQI 100 point moves from 150 to
/// 120 µg/m³. Same sources as [`PM25_24H_2026`].
pub const PM10_24H_2026: [f64; 8] = [0.0, 50.0, 120.0, 250.0, 350.0, 420.0, 500.0, 600.0];

/// HJ 633-2026: an SO2 1-hour value above 800 µg/m³ gets IAQI 200 (it had none
/// in 2012). Given by three implementations (aqi-hub README, two test suites).
pub const SO2_1H_ABOVE_800_2026: f64 = 200.0;

/// HJ 633-2026: an O3 8-hour value above 800 µg/m³ gets IAQI 300 (it had none
/// in 2012). Same sources as [`SO2_1H_ABOVE_800_2026`].
pub const O3_8H_ABOVE_800_2026: f64 = 300.0;

/// HJ 633-2026 table 3: the 2012 columns with PM2.5 and PM10 moved and the two
/// series that ended at 800 µg/m³ capped instead of undefined.
///
/// Whether the PM2.5 IAQI 100 point follows the phase-two 24-hour limit (50)
/// from 2031 is UNCONFIRMED; the sources give one table, used for both phases.
pub const HJ_633_2026: [IaqiSeries; 10] = {
    let t = HJ_633_2012;
    [
        t[0],
        t[1],
        IaqiSeries {
            breakpoints: &PM10_24H_2026,
            ..t[2]
        },
        IaqiSeries {
            breakpoints: &PM25_24H_2026,
            ..t[3]
        },
        t[4],
        IaqiSeries {
            above_top: AboveTop::Fixed(O3_8H_ABOVE_800_2026),
            ..t[5]
        },
        t[6],
        IaqiSeries {
            above_top: AboveTop::Fixed(SO2_1H_ABOVE_800_2026),
            ..t[7]
        },
        t[8],
        t[9],
    ]
};

// ---------------------------------------------------------------------------
// HJ 663: composite-index divisors
// ---------------------------------------------------------------------------

/// Composite-index divisors from 2026-03-01: the 2012 formula with the
/// GB 3095-2026 phase-one class II limits (PM2.5 annual 30, PM10 annual 60).
/// UNCONFIRMED: whether HJ 663-2026 and the Hebei/Xingtai county rankings
/// switched their divisors on that day (standards.md), and one source says
/// the new ranking weights PM2.5 ×3, O3 and NO2 ×2 (not implemented).
pub const COMPOSITE_DIVISORS_2026: [(&str, f64); 6] = [
    ("so2", 60.0),
    ("no2", 40.0),
    ("pm10", 60.0),
    ("pm25", 30.0),
    ("co", 4.0),
    ("o3", 160.0),
];

/// Composite-index divisors from 2031-01-01, with the phase-two class II
/// limits. UNCONFIRMED: the PM10, SO2 and NO2 annual limits of phase two
/// (sources disagree; see [`GB_3095`]), and the same doubts as 2026.
pub const COMPOSITE_DIVISORS_2031: [(&str, f64); 6] = [
    ("so2", 20.0),
    ("no2", 30.0),
    ("pm10", 50.0),
    ("pm25", 25.0),
    ("co", 4.0),
    ("o3", 160.0),
];

// ---------------------------------------------------------------------------
// GB 3095: concentration limits
// ---------------------------------------------------------------------------

/// One row of a GB 3095 limits table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub pollutant: &'static str,
    /// `annual`, `24h`, `8h` (O3 daily maximum 8-hour mean), `1h`.
    pub period: &'static str,
    /// [grade 1, grade 2] (一级, 二级); µg/m³, CO mg/m³.
    pub grades: [f64; 2],
    /// Per grade: `false` where fewer than two independent sources agree
    /// (UNCONFIRMED).
    pub confirmed: [bool; 2],
}

/// Both grades confirmed or not.
const fn row(
    pollutant: &'static str,
    period: &'static str,
    g1: f64,
    g2: f64,
    confirmed: bool,
) -> Limit {
    Limit {
        pollutant,
        period,
        grades: [g1, g2],
        confirmed: [confirmed, confirmed],
    }
}

/// Grade 2 confirmed, grade 1 not.
const fn row2(pollutant: &'static str, period: &'static str, g1: f64, g2: f64) -> Limit {
    Limit {
        pollutant,
        period,
        grades: [g1, g2],
        confirmed: [false, true],
    }
}

/// GB 3095-2012 table 1 (confirmed: standards.md §2).
pub const GB_3095_2012: [Limit; 13] = [
    row("so2", "annual", 20.0, 60.0, true),
    row("so2", "24h", 50.0, 150.0, true),
    row("so2", "1h", 150.0, 500.0, true),
    row("no2", "annual", 40.0, 40.0, true),
    row("no2", "24h", 80.0, 80.0, true),
    row("no2", "1h", 200.0, 200.0, true),
    row("pm10", "annual", 40.0, 70.0, true),
    row("pm10", "24h", 50.0, 150.0, true),
    row("pm25", "annual", 15.0, 35.0, true),
    row("pm25", "24h", 35.0, 75.0, true),
    row("co", "24h", 4.0, 4.0, true),
    row("co", "1h", 10.0, 10.0, true),
    row("o3", "8h", 100.0, 160.0, true),
];

/// O3 1-hour (not part of the 13 rows above to keep the shared shape simple).
const O3_1H: Limit = row("o3", "1h", 160.0, 200.0, true);

/// GB 3095-2026 phase one (2026-03-01 … 2030-12-31).
///
/// - PM2.5 class II 30 / 60: confirmed (the MEE press release, standards.md).
/// - PM10 class II 60 / 120: two implementations agree (and the HJ 633-2026
///   IAQI 100 point is 120); the press release names only PM2.5 for phase one.
/// - Class I PM2.5 15 / 35 and PM10 40 / 50 (unchanged from 2012): one source,
///   UNCONFIRMED.
/// - SO2, NO2, CO, O3 unchanged from 2012: the press release says PM10, SO2
///   and NO2 tighten in phase two.
pub const GB_3095_2026: [Limit; 13] = [
    row("so2", "annual", 20.0, 60.0, true),
    row("so2", "24h", 50.0, 150.0, true),
    row("so2", "1h", 150.0, 500.0, true),
    row("no2", "annual", 40.0, 40.0, true),
    row("no2", "24h", 80.0, 80.0, true),
    row("no2", "1h", 200.0, 200.0, true),
    row2("pm10", "annual", 40.0, 60.0),
    row2("pm10", "24h", 50.0, 120.0),
    row2("pm25", "annual", 15.0, 30.0),
    row2("pm25", "24h", 35.0, 60.0),
    row("co", "24h", 4.0, 4.0, true),
    row("co", "1h", 10.0, 10.0, true),
    row("o3", "8h", 100.0, 160.0, true),
];

/// GB 3095-2026 phase two (from 2031-01-01).
///
/// - PM2.5 10 / 25 annual, 25 / 50 24-hour: confirmed (press release).
/// - PM10, SO2, NO2: UNCONFIRMED. One implementation gives PM10 20/50 annual,
///   50/100 24-hour; SO2 20/20, 50/50, 150/150; NO2 30/30, 50/50; another
///   gives class II PM10 50/70, SO2 40/100, NO2 30/60. The first is used.
/// - CO and O3 unchanged.
pub const GB_3095_2031: [Limit; 13] = [
    row("so2", "annual", 20.0, 20.0, false),
    row("so2", "24h", 50.0, 50.0, false),
    row("so2", "1h", 150.0, 150.0, false),
    row("no2", "annual", 30.0, 30.0, false),
    row("no2", "24h", 50.0, 50.0, false),
    row("no2", "1h", 200.0, 200.0, false),
    row("pm10", "annual", 20.0, 50.0, false),
    row("pm10", "24h", 50.0, 100.0, false),
    row("pm25", "annual", 10.0, 25.0, true),
    row("pm25", "24h", 25.0, 50.0, true),
    row("co", "24h", 4.0, 4.0, true),
    row("co", "1h", 10.0, 10.0, true),
    row("o3", "8h", 100.0, 160.0, true),
];

impl Edition {
    /// The GB 3095 limits table of this edition.
    pub fn limits(self) -> &'static [Limit; 13] {
        match self {
            Edition::Y2012 => &GB_3095_2012,
            Edition::Y2026 => &GB_3095_2026,
            Edition::Y2031 => &GB_3095_2031,
        }
    }
}

/// The GB 3095 row for `pollutant` and `period` in `edition`.
pub fn limit_row(pollutant: &str, period: &str, edition: Edition) -> Result<Limit, String> {
    if pollutant == "o3" && period == "1h" {
        return Ok(O3_1H);
    }
    if let Some(found) = edition
        .limits()
        .iter()
        .find(|l| l.pollutant == pollutant && l.period == period)
    {
        return Ok(*found);
    }
    let pollutants = ["so2", "no2", "pm10", "pm25", "co", "o3"];
    if !pollutants.contains(&pollutant) {
        return Err(format!(
            "air_limit 没有污染物 `{pollutant}`：请写 so2、no2、pm10、pm25、co、o3 之一 / unknown pollutant `{pollutant}` for air_limit: expected one of so2, no2, pm10, pm25, co, o3"
        ));
    }
    let periods: Vec<&str> = edition
        .limits()
        .iter()
        .chain(std::iter::once(&O3_1H))
        .filter(|l| l.pollutant == pollutant)
        .map(|l| l.period)
        .collect();
    let quoted = |sep: &str| {
        periods
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(sep)
    };
    Err(format!(
        "GB 3095 没有 {pollutant} 的 `{period}` 限值：请写 {} / GB 3095 sets no `{period}` limit for {pollutant}: use {}",
        quoted(" 或 "),
        quoted(" or ")
    ))
}

/// The GB 3095 concentration limit (µg/m³; CO mg/m³) of `pollutant` over
/// `period` for `grade` 1 (一级, class I areas) or 2 (二级) in `edition`.
pub fn air_limit(
    pollutant: &str,
    period: &str,
    grade: i64,
    edition: Edition,
) -> Result<f64, String> {
    let row = limit_row(pollutant, period, edition)?;
    match grade {
        1 | 2 => Ok(row.grades[grade as usize - 1]),
        other => Err(format!(
            "air_limit 没有 `{other}` 级：GB 3095 只有一级（1，一类区）和二级（2） / air_limit grade `{other}`: GB 3095 has grade 1 (一级, class I areas) and 2 (二级)"
        )),
    }
}

/// IAQI of one pollutant by the HJ 633 edition `edition` (see [`domain::iaqi`]).
pub fn iaqi(pollutant: &str, concentration: f64, edition: Edition) -> Result<f64, String> {
    domain::iaqi_by_table(edition.iaqi_table(), pollutant, concentration)
}

/// Composite index by the divisors of `edition` (see [`domain::composite_index`]).
pub fn composite_index(stats: &BTreeMap<String, f64>, edition: Edition) -> Result<f64, String> {
    domain::composite_index_by(edition.composite_divisors(), stats)
}

// ---------------------------------------------------------------------------
// The rule API
// ---------------------------------------------------------------------------

fn fail<T>(message: impl Into<String>) -> RhaiResult<T> {
    Err(message.into().into())
}

/// The evaluation's `now` and timezone.
fn now_tz() -> RhaiResult<(Millis, Tz)> {
    super::context::current(|c| (c.now, c.tz)).or_else(fail)
}

/// The edition an explicit argument names: a `Time` (the edition in force
/// then), or an edition name.
fn edition_of(at: &Dynamic) -> RhaiResult<Edition> {
    if let Some(t) = at.clone().try_cast::<Time>() {
        return Ok(Edition::at(t.millis, t.tz));
    }
    if let Ok(name) = at.clone().into_immutable_string() {
        return Edition::parse(&name).or_else(fail);
    }
    fail(format!(
        "the air-standard edition must be a time (e.g. `r.time`, `time(\"2026-03-01\")`) or a name (\"2012\", \"2026\", \"2031\"), got {}",
        at.type_name()
    ))
}

/// The edition in force at evaluation time.
fn edition_now() -> RhaiResult<Edition> {
    let (now, tz) = now_tz()?;
    Ok(Edition::at(now, tz))
}

/// A concentration and the edition to judge it by, from what `iaqi` got: a
/// number (the edition in force at evaluation time) or a reading from
/// `latest` (`#{ value, time }`: the edition in force at the reading's time).
fn concentration(c: &Dynamic) -> RhaiResult<(f64, Edition)> {
    if let Some(reading) = c.read_lock::<Map>() {
        let value = reading
            .get("value")
            .ok_or("iaqi: the reading has no `value` (pass a number or what `latest` returned)")?;
        let value = number(value, "concentration")?;
        let edition = match reading.get("time") {
            Some(t) => edition_of(t)?,
            None => edition_now()?,
        };
        return Ok((value, edition));
    }
    Ok((number(c, "concentration")?, edition_now()?))
}

fn number_map(map: &Map) -> RhaiResult<BTreeMap<String, f64>> {
    map.iter()
        .map(|(k, v)| Ok((k.to_string(), number(v, &format!("`{k}`"))?)))
        .collect()
}

/// Registers `iaqi`, `composite_index`, `air_limit` and `air_edition`.
pub fn register(engine: &mut Engine) {
    engine.register_fn("iaqi", |pollutant: &str, c: Dynamic| -> RhaiResult<f64> {
        let (value, edition) = concentration(&c)?;
        iaqi(pollutant, value, edition).or_else(fail)
    });
    engine.register_fn(
        "iaqi",
        |pollutant: &str, c: Dynamic, at: Dynamic| -> RhaiResult<f64> {
            let (value, _) = concentration(&c)?;
            iaqi(pollutant, value, edition_of(&at)?).or_else(fail)
        },
    );
    engine.register_fn("composite_index", |stats: Map| -> RhaiResult<f64> {
        composite_index(&number_map(&stats)?, edition_now()?).or_else(fail)
    });
    engine.register_fn(
        "composite_index",
        |stats: Map, at: Dynamic| -> RhaiResult<f64> {
            composite_index(&number_map(&stats)?, edition_of(&at)?).or_else(fail)
        },
    );
    engine.register_fn(
        "air_limit",
        |pollutant: &str, period: &str, grade: INT| -> RhaiResult<f64> {
            air_limit(pollutant, period, grade, edition_now()?).or_else(fail)
        },
    );
    engine.register_fn(
        "air_limit",
        |pollutant: &str, period: &str, grade: INT, at: Dynamic| -> RhaiResult<f64> {
            air_limit(pollutant, period, grade, edition_of(&at)?).or_else(fail)
        },
    );
    engine.register_fn("air_edition", || -> RhaiResult<ImmutableString> {
        Ok(edition_now()?.name().into())
    });
    engine.register_fn(
        "air_edition",
        |at: Dynamic| -> RhaiResult<ImmutableString> { Ok(edition_of(&at)?.name().into()) },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;

    const SH: Tz = chrono_tz::Asia::Shanghai;

    fn at(s: &str) -> Edition {
        Edition::at(parse_time(s, SH).unwrap(), SH)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn editions_change_at_local_midnight() {
        assert_eq!(at("2021-06-16"), Edition::Y2012);
        assert_eq!(at("2026-02-28T23:59"), Edition::Y2012);
        assert_eq!(at("2026-03-01T00:00"), Edition::Y2026);
        // 2026-03-01 00:30 Shanghai is still 28 February in UTC
        assert_eq!(at("2026-03-01T00:30:00+08:00"), Edition::Y2026);
        assert_eq!(at("2026-02-28T16:30:00Z"), Edition::Y2026);
        assert_eq!(at("2030-12-31T23:59"), Edition::Y2026);
        assert_eq!(at("2031-01-01T00:00"), Edition::Y2031);
        for e in Edition::ALL {
            assert_eq!(Edition::parse(e.name()).unwrap(), e);
        }
        let e = Edition::parse("2013").unwrap_err();
        assert!(e.contains("`2013`") && e.contains("\"2031\""), "{e}");
    }

    /// Written out again by hand so the table above cannot test itself.
    #[test]
    fn iaqi_2026_moves_the_particle_breakpoints() {
        let pm25 = [0., 35., 60., 115., 150., 250., 350., 500.];
        let pm10 = [0., 50., 120., 250., 350., 420., 500., 600.];
        let levels = [0., 50., 100., 150., 200., 300., 400., 500.];
        for e in [Edition::Y2026, Edition::Y2031] {
            for ((c25, c10), level) in pm25.iter().zip(pm10).zip(levels) {
                assert!(
                    close(iaqi("pm25", *c25, e).unwrap(), level),
                    "{e:?} pm25 {c25}"
                );
                assert!(
                    close(iaqi("pm10", c10, e).unwrap(), level),
                    "{e:?} pm10 {c10}"
                );
            }
        }
        // 75 µg/m³ PM2.5: IAQI 100 in 2012, 100 + 50 × 15/55 from 2026
        assert!(close(iaqi("pm25", 75.0, Edition::Y2012).unwrap(), 100.0));
        assert!(close(
            iaqi("pm25", 75.0, Edition::Y2026).unwrap(),
            100.0 + 50.0 * 15.0 / 55.0
        ));
        assert!(close(
            iaqi("pm10", 150.0, Edition::Y2026).unwrap(),
            100.0 + 50.0 * 30.0 / 130.0
        ));
        // The 2012 edition is the table `domain::iaqi` has always used.
        for c in [0.0, 17.5, 55.0, 75.0, 116.0, 499.0] {
            assert_eq!(
                iaqi("pm25", c, Edition::Y2012).unwrap(),
                domain::iaqi("pm25", c).unwrap()
            );
        }
        // Other pollutants are unchanged.
        for (p, c) in [
            ("so2", 500.0),
            ("no2", 100.0),
            ("co", 9.0),
            ("o3", 130.0),
            ("o3_1h", 250.0),
        ] {
            assert_eq!(
                iaqi(p, c, Edition::Y2026).unwrap(),
                iaqi(p, c, Edition::Y2012).unwrap()
            );
        }
    }

    #[test]
    fn iaqi_2026_caps_what_2012_left_undefined() {
        assert!(iaqi("o3", 900.0, Edition::Y2012).is_err());
        assert_eq!(iaqi("o3", 900.0, Edition::Y2026).unwrap(), 300.0);
        assert!(iaqi("so2_1h", 900.0, Edition::Y2012).is_err());
        assert_eq!(iaqi("so2_1h", 900.0, Edition::Y2031).unwrap(), 200.0);
        assert!(close(iaqi("o3", 800.0, Edition::Y2026).unwrap(), 300.0));
    }

    #[test]
    fn limits_by_edition() {
        let l = |p: &str, per: &str, g: i64, e: Edition| air_limit(p, per, g, e).unwrap();
        // PM2.5, grade 2: 35/75 → 30/60 → 25/50
        assert_eq!(l("pm25", "annual", 2, Edition::Y2012), 35.0);
        assert_eq!(l("pm25", "24h", 2, Edition::Y2012), 75.0);
        assert_eq!(l("pm25", "annual", 2, Edition::Y2026), 30.0);
        assert_eq!(l("pm25", "24h", 2, Edition::Y2026), 60.0);
        assert_eq!(l("pm25", "annual", 2, Edition::Y2031), 25.0);
        assert_eq!(l("pm25", "24h", 2, Edition::Y2031), 50.0);
        // grade 1 from 2031: 10 / 25
        assert_eq!(l("pm25", "annual", 1, Edition::Y2031), 10.0);
        assert_eq!(l("pm25", "24h", 1, Edition::Y2031), 25.0);
        assert_eq!(l("pm25", "24h", 1, Edition::Y2012), 35.0);
        // PM10 tightens, CO and O3 do not
        assert_eq!(l("pm10", "24h", 2, Edition::Y2012), 150.0);
        assert_eq!(l("pm10", "24h", 2, Edition::Y2026), 120.0);
        assert_eq!(l("pm10", "24h", 2, Edition::Y2031), 100.0);
        for e in Edition::ALL {
            assert_eq!(l("co", "24h", 2, e), 4.0);
            assert_eq!(l("o3", "8h", 2, e), 160.0);
            assert_eq!(l("o3", "1h", 1, e), 160.0);
        }
        // SO2 and NO2 change only in phase two
        assert_eq!(l("so2", "24h", 2, Edition::Y2026), 150.0);
        assert!(l("so2", "24h", 2, Edition::Y2031) < 150.0);
        assert!(l("no2", "annual", 2, Edition::Y2031) < 40.0);
        // the 24-hour limit is the IAQI 100 breakpoint in every edition
        // (phase one; phase two keeps the same IAQI table, UNCONFIRMED)
        for e in [Edition::Y2012, Edition::Y2026] {
            for p in ["pm25", "pm10"] {
                assert!(
                    close(iaqi(p, l(p, "24h", 2, e), e).unwrap(), 100.0),
                    "{p} {e:?}"
                );
            }
        }
        // what is and is not confirmed
        let row = |p, per, e| limit_row(p, per, e).unwrap().confirmed;
        assert_eq!(row("pm25", "24h", Edition::Y2031), [true, true]);
        assert_eq!(row("pm25", "24h", Edition::Y2026), [false, true]);
        assert_eq!(row("so2", "24h", Edition::Y2031), [false, false]);
        assert!(GB_3095_2012.iter().all(|r| r.confirmed == [true, true]));
    }

    #[test]
    fn limit_errors_name_the_choices() {
        let e = air_limit("pm25", "1h", 2, Edition::Y2026).unwrap_err();
        assert!(e.contains("\"annual\" or \"24h\""), "{e}");
        let e = air_limit("pm2.5", "24h", 2, Edition::Y2026).unwrap_err();
        assert!(e.contains("`pm2.5`") && e.contains("pm25"), "{e}");
        let e = air_limit("pm25", "24h", 3, Edition::Y2026).unwrap_err();
        assert!(e.contains("grade `3`"), "{e}");
    }

    #[test]
    fn composite_divisors_follow_the_edition() {
        let stats: BTreeMap<String, f64> = [
            ("so2", 12.0),
            ("no2", 35.0),
            ("pm10", 98.0),
            ("pm25", 52.5),
            ("co", 2.1),
            ("o3", 176.0),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
        // 2012: 0.2 + 0.875 + 1.4 + 1.5 + 0.525 + 1.1
        assert!(close(composite_index(&stats, Edition::Y2012).unwrap(), 5.6));
        assert_eq!(
            composite_index(&stats, Edition::Y2012).unwrap(),
            domain::composite_index(&stats).unwrap()
        );
        // 2026: PM10 98/60, PM2.5 52.5/30
        let want = 0.2 + 0.875 + 98.0 / 60.0 + 1.75 + 0.525 + 1.1;
        assert!(close(
            composite_index(&stats, Edition::Y2026).unwrap(),
            want
        ));
        let want = 12.0 / 20.0 + 35.0 / 30.0 + 98.0 / 50.0 + 52.5 / 25.0 + 0.525 + 1.1;
        assert!(close(
            composite_index(&stats, Edition::Y2031).unwrap(),
            want
        ));
    }
}
