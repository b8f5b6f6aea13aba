//! Domain arithmetic rules call: AQI, the composite index, water class,
//! percentiles, pace and rank.
//!
//! Pure functions over plain Rust values; the engine wraps them for Rhai.
//! Every number comes from `shared/design/standards.md` (2012 editions of the
//! air standards, GB 3838-2002 for water). Points that document marks
//! UNCONFIRMED are called out where they are used.

use std::collections::BTreeMap;

use chrono::Datelike;
use chrono_tz::Tz;

use crate::time::{months_span, to_local, Millis};

// ---------------------------------------------------------------------------
// HJ 633-2012: individual AQI
// ---------------------------------------------------------------------------

/// The IAQI value at each breakpoint of HJ 633-2012 table 1.
pub const IAQI_LEVELS: [f64; 8] = [0.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0, 500.0];

/// What happens to a concentration above a series' last breakpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AboveTop {
    /// The series reaches IAQI 500; anything above it is reported as 500.
    Cap500,
    /// The standard gives no IAQI there; the text says what is used instead.
    NoIaqi(&'static str),
    /// The standard gives this IAQI for anything above the last breakpoint
    /// (HJ 633-2026: SO2 1-hour above 800 → 200, O3 8-hour above 800 → 300).
    Fixed(f64),
}

/// One breakpoint series (one column) of HJ 633-2012 table 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IaqiSeries {
    /// The name rules pass to `iaqi`: `"pm25"`, `"o3_1h"`, …
    pub name: &'static str,
    /// Human description with the unit.
    pub describe: &'static str,
    /// Concentrations at IAQI 0, 50, 100, … ([`IAQI_LEVELS`]), as many as the
    /// standard defines for this series.
    pub breakpoints: &'static [f64],
    pub above_top: AboveTop,
}

/// Note (a) of table 1: an SO2 1-hour value above 800 µg/m³ gets no IAQI.
const SO2_1H_ABOVE_800: &str =
    "SO2 1小时浓度超过 800 µg/m³ 时没有分指数（HJ 633-2012 表1 注a）：请改用24小时 SO2 分指数 `iaqi(\"so2\", …)` / an SO2 1-hour concentration above 800 µg/m³ has no IAQI (HJ 633-2012 table 1 note a): use the 24-hour SO2 IAQI, `iaqi(\"so2\", …)`, instead";

/// Note (b) of table 1: an O3 8-hour value above 800 µg/m³ gets no IAQI.
/// Which IAQI replaces it is UNCONFIRMED in standards.md; the source quoting
/// the standard's text says the 1-hour one.
const O3_8H_ABOVE_800: &str =
    "O3 8小时浓度超过 800 µg/m³ 时没有分指数（HJ 633-2012 表1 注b）：请改用1小时 O3 分指数 `iaqi(\"o3_1h\", …)` / an O3 8-hour concentration above 800 µg/m³ has no IAQI (HJ 633-2012 table 1 note b): use the 1-hour O3 IAQI, `iaqi(\"o3_1h\", …)`, instead";

/// HJ 633-2012 table 1, column by column (µg/m³; CO in mg/m³).
///
/// Beware: the 24-hour SO2 series is 0/50/150/475/800/1600/2100/2620. Some
/// libraries (aqi-hub 0.3.3) put the 1-hour series 0/150/500/650/800 there.
pub const HJ_633_2012: [IaqiSeries; 10] = [
    IaqiSeries {
        name: "so2",
        describe: "SO2 24-hour mean, µg/m³",
        breakpoints: &[0.0, 50.0, 150.0, 475.0, 800.0, 1600.0, 2100.0, 2620.0],
        above_top: AboveTop::Cap500,
    },
    IaqiSeries {
        name: "no2",
        describe: "NO2 24-hour mean, µg/m³",
        breakpoints: &[0.0, 40.0, 80.0, 180.0, 280.0, 565.0, 750.0, 940.0],
        above_top: AboveTop::Cap500,
    },
    IaqiSeries {
        name: "pm10",
        describe: "PM10 24-hour mean, µg/m³",
        breakpoints: &[0.0, 50.0, 150.0, 250.0, 350.0, 420.0, 500.0, 600.0],
        above_top: AboveTop::Cap500,
    },
    IaqiSeries {
        name: "pm25",
        describe: "PM2.5 24-hour mean, µg/m³",
        breakpoints: &[0.0, 35.0, 75.0, 115.0, 150.0, 250.0, 350.0, 500.0],
        above_top: AboveTop::Cap500,
    },
    IaqiSeries {
        name: "co",
        describe: "CO 24-hour mean, mg/m³",
        breakpoints: &[0.0, 2.0, 4.0, 14.0, 24.0, 36.0, 48.0, 60.0],
        above_top: AboveTop::Cap500,
    },
    IaqiSeries {
        name: "o3",
        describe: "O3 8-hour mean, µg/m³",
        breakpoints: &[0.0, 100.0, 160.0, 215.0, 265.0, 800.0],
        above_top: AboveTop::NoIaqi(O3_8H_ABOVE_800),
    },
    IaqiSeries {
        name: "o3_1h",
        describe: "O3 1-hour mean, µg/m³",
        breakpoints: &[0.0, 160.0, 200.0, 300.0, 400.0, 800.0, 1000.0, 1200.0],
        above_top: AboveTop::Cap500,
    },
    IaqiSeries {
        name: "so2_1h",
        describe: "SO2 1-hour mean, µg/m³ (real-time report only)",
        breakpoints: &[0.0, 150.0, 500.0, 650.0, 800.0],
        above_top: AboveTop::NoIaqi(SO2_1H_ABOVE_800),
    },
    IaqiSeries {
        name: "no2_1h",
        describe: "NO2 1-hour mean, µg/m³ (real-time report only)",
        breakpoints: &[0.0, 100.0, 200.0, 700.0, 1200.0, 2340.0, 3090.0, 3840.0],
        above_top: AboveTop::Cap500,
    },
    IaqiSeries {
        name: "co_1h",
        describe: "CO 1-hour mean, mg/m³ (real-time report only)",
        breakpoints: &[0.0, 5.0, 10.0, 35.0, 60.0, 90.0, 120.0, 150.0],
        above_top: AboveTop::Cap500,
    },
];

/// The pollutant names `iaqi` knows, for error messages and the guide.
pub fn iaqi_names() -> Vec<&'static str> {
    HJ_633_2012.iter().map(|s| s.name).collect()
}

/// The HJ 633-2012 individual AQI of one pollutant, **unrounded**, by the
/// standard's linear formula
/// `IAQI = (IAQI_hi − IAQI_lo) / (BP_hi − BP_lo) × (C − BP_lo) + IAQI_lo`.
///
/// `pollutant`: `"so2" "no2" "pm10" "pm25" "co"` (24-hour means; CO in mg/m³),
/// `"o3"` (8-hour mean), and the 1-hour series `"o3_1h" "so2_1h" "no2_1h"
/// "co_1h"` (the 1-hour SO2/NO2/CO series serve the real-time report only).
///
/// - A concentration above the last breakpoint of a series that reaches
///   IAQI 500 gives **500** (the scale ends there).
/// - O3 8-hour above 800 µg/m³ and SO2 1-hour above 800 µg/m³ have no IAQI
///   (table notes b and a): an error saying which IAQI to use instead.
/// - Negative or non-finite concentrations and unknown names are errors.
///
/// How the result is rounded for publication is UNCONFIRMED (the standard
/// states no convention; implementations use ceil or half-even), so it is
/// left to the rule.
pub fn iaqi(pollutant: &str, concentration: f64) -> Result<f64, String> {
    iaqi_by_table(&HJ_633_2012, pollutant, concentration)
}

/// [`iaqi`] over a given breakpoint table (one edition of HJ 633: see
/// `air_standard`).
pub fn iaqi_by_table(
    table: &[IaqiSeries],
    pollutant: &str,
    concentration: f64,
) -> Result<f64, String> {
    let series = table.iter().find(|s| s.name == pollutant).ok_or_else(|| {
        let names = iaqi_names()
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "没有污染物 `{pollutant}`：请写 {names} 之一 / unknown pollutant `{pollutant}`: expected one of {names}"
        )
    })?;
    if !concentration.is_finite() {
        return Err(format!(
            "{name} 浓度 `{concentration}` 不是有效数字：请检查数据 / {name} concentration `{concentration}` is not a finite number",
            name = series.name
        ));
    }
    if concentration < 0.0 {
        return Err(format!(
            "{name} 浓度 `{concentration}` 是负数：浓度不能小于 0，请检查数据 / {name} concentration `{concentration}` is negative",
            name = series.name
        ));
    }
    let bps = series.breakpoints;
    let top = bps[bps.len() - 1];
    if concentration > top {
        return match series.above_top {
            AboveTop::Cap500 => Ok(500.0),
            AboveTop::NoIaqi(why) => Err(format!(
                "{why}（这里是 `{concentration}` / got `{concentration}`）"
            )),
            AboveTop::Fixed(value) => Ok(value),
        };
    }
    // The formula is continuous, so a value on a breakpoint gives the same
    // IAQI from either neighbouring segment; take the lower one.
    let hi = bps
        .iter()
        .position(|&bp| concentration <= bp)
        .expect("concentration is at most the top breakpoint");
    if hi == 0 {
        return Ok(0.0);
    }
    let lo = hi - 1;
    let (bp_lo, bp_hi) = (bps[lo], bps[hi]);
    let (i_lo, i_hi) = (IAQI_LEVELS[lo], IAQI_LEVELS[hi]);
    Ok((i_hi - i_lo) / (bp_hi - bp_lo) * (concentration - bp_lo) + i_lo)
}

/// The HJ 633-2012 category of an AQI value: `优` (≤ 50), `良` (≤ 100),
/// `轻度污染` (≤ 150), `中度污染` (≤ 200), `重度污染` (≤ 300), `严重污染` (> 300).
///
/// The standard's table lists integer ranges (0–50, 51–100, …); an unrounded
/// value such as 50.4 falls in the higher category. Round first if a rule
/// needs the published category. A negative or NaN value is no AQI at all and
/// gives the empty string.
pub fn aqi_category(aqi: f64) -> &'static str {
    if aqi.is_nan() || aqi < 0.0 {
        ""
    } else if aqi <= 50.0 {
        "优"
    } else if aqi <= 100.0 {
        "良"
    } else if aqi <= 150.0 {
        "轻度污染"
    } else if aqi <= 200.0 {
        "中度污染"
    } else if aqi <= 300.0 {
        "重度污染"
    } else {
        "严重污染"
    }
}

// ---------------------------------------------------------------------------
// HJ 663-2013: composite index
// ---------------------------------------------------------------------------

/// The divisors Sᵢ of the HJ 663-2013 composite index, 2012 limits (GB 3095
/// class II): the annual limits for SO2, NO2, PM10, PM2.5 (µg/m³), the 24-hour
/// limit for CO (mg/m³) and the 8-hour limit for O3 (µg/m³).
///
/// The statistic Cᵢ for each: the period mean for the first four; the 95th
/// percentile of daily means for `co`; the 90th percentile of daily maximum
/// 8-hour means for `o3`.
///
/// Whether Hebei/Xingtai switched divisors (e.g. PM2.5 35 → 30) with the 2026
/// editions on 2026-03-01 is UNCONFIRMED; this table is the 2012 one.
pub const COMPOSITE_DIVISORS_2012: [(&str, f64); 6] = [
    ("so2", 60.0),
    ("no2", 40.0),
    ("pm10", 70.0),
    ("pm25", 35.0),
    ("co", 4.0),
    ("o3", 160.0),
];

/// HJ 663-2013 composite index Σ Cᵢ/Sᵢ over the six pollutants, with the
/// divisors in [`COMPOSITE_DIVISORS_2012`]. All six keys are required; a
/// missing or unknown key, or a negative / non-finite value, is an error.
/// Smaller is better.
pub fn composite_index(stats: &BTreeMap<String, f64>) -> Result<f64, String> {
    composite_index_by(&COMPOSITE_DIVISORS_2012, stats)
}

/// [`composite_index`] with given divisors (one edition: see `air_standard`).
pub fn composite_index_by(
    divisors: &[(&str, f64); 6],
    stats: &BTreeMap<String, f64>,
) -> Result<f64, String> {
    let known = |k: &str| divisors.iter().any(|(n, _)| *n == k);
    let names = || {
        divisors
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(unknown) = stats.keys().find(|k| !known(k)) {
        return Err(format!(
            "综合指数没有 `{unknown}` 这一项：只能写 {n} / unknown key `{unknown}` for the composite index: expected exactly {n}",
            n = names()
        ));
    }
    let missing: Vec<&str> = divisors
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !stats.contains_key(*n))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "综合指数需要全部六项污染物（{n}），缺少：{m} / the composite index needs all six pollutants ({n}); missing: {m}",
            n = names(),
            m = missing.join(", ")
        ));
    }
    let mut sum = 0.0;
    for &(name, divisor) in divisors {
        let c = stats[name];
        if !c.is_finite() || c < 0.0 {
            return Err(format!(
                "综合指数的 `{name}` = `{c}`：应是不小于 0 的数字 / `{name}` = `{c}` for the composite index: expected a finite number ≥ 0"
            ));
        }
        sum += c / divisor;
    }
    Ok(sum)
}

// ---------------------------------------------------------------------------
// GB 3838-2002: surface water class
// ---------------------------------------------------------------------------

/// Class 6 stands for 劣Ⅴ类 (worse than class V on some parameter).
pub const WORSE_THAN_V: i64 = 6;

/// Limits of one parameter of GB 3838-2002 table 1 for classes I..V (mg/L).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaterLimits {
    /// The key rules use: `oxygen`, `codmn`, `cod`, `bod5`, `nh3n`, `tp`, `tn`.
    pub key: &'static str,
    pub describe: &'static str,
    /// `true` when the value must be at least the limit (dissolved oxygen);
    /// otherwise at most.
    pub at_least: bool,
    /// Limits for rivers; `None` when the parameter is not assessed there.
    pub river: Option<[f64; 5]>,
    /// Limits for lakes and reservoirs.
    pub lake: Option<[f64; 5]>,
}

/// GB 3838-2002 table 1, the parameters `water_class` assesses.
///
/// - DO class I is "7.5 (or 90 % saturation)"; only the 7.5 mg/L figure is used.
/// - COD (15/15) and BOD5 (3/3) share one limit for classes I and II; a value
///   at or under it is given the **better** class, I. That reading follows one
///   implementation (Journey.EQSFSW) and is UNCONFIRMED.
/// - TN is assessed for lakes and reservoirs only (UNCONFIRMED, see
///   standards.md §4); for rivers it is ignored.
pub const GB_3838_2002: [WaterLimits; 7] = [
    WaterLimits {
        key: "oxygen",
        describe: "溶解氧 DO ≥",
        at_least: true,
        river: Some([7.5, 6.0, 5.0, 3.0, 2.0]),
        lake: Some([7.5, 6.0, 5.0, 3.0, 2.0]),
    },
    WaterLimits {
        key: "codmn",
        describe: "高锰酸盐指数 CODMn ≤",
        at_least: false,
        river: Some([2.0, 4.0, 6.0, 10.0, 15.0]),
        lake: Some([2.0, 4.0, 6.0, 10.0, 15.0]),
    },
    WaterLimits {
        key: "cod",
        describe: "化学需氧量 COD ≤",
        at_least: false,
        river: Some([15.0, 15.0, 20.0, 30.0, 40.0]),
        lake: Some([15.0, 15.0, 20.0, 30.0, 40.0]),
    },
    WaterLimits {
        key: "bod5",
        describe: "五日生化需氧量 BOD5 ≤",
        at_least: false,
        river: Some([3.0, 3.0, 4.0, 6.0, 10.0]),
        lake: Some([3.0, 3.0, 4.0, 6.0, 10.0]),
    },
    WaterLimits {
        key: "nh3n",
        describe: "氨氮 NH3-N ≤",
        at_least: false,
        river: Some([0.15, 0.5, 1.0, 1.5, 2.0]),
        lake: Some([0.15, 0.5, 1.0, 1.5, 2.0]),
    },
    WaterLimits {
        key: "tp",
        describe: "总磷 TP ≤",
        at_least: false,
        river: Some([0.02, 0.1, 0.2, 0.3, 0.4]),
        lake: Some([0.01, 0.025, 0.05, 0.1, 0.2]),
    },
    WaterLimits {
        key: "tn",
        describe: "总氮 TN ≤ (湖、库)",
        at_least: false,
        river: None,
        lake: Some([0.2, 0.5, 1.0, 1.5, 2.0]),
    },
];

/// The class (1–6) each assessed parameter gives on its own. Same inputs and
/// errors as [`water_class`]; parameters not assessed for `body` (TN in a
/// river) are left out.
pub fn water_class_by_parameter(
    params: &BTreeMap<String, f64>,
    body: &str,
) -> Result<BTreeMap<String, i64>, String> {
    let lake = match body {
        "river" => false,
        "lake" => true,
        other => {
            return Err(format!(
                "没有水体类型 `{other}`：河流写 `river`，湖泊、水库写 `lake` / unknown water body `{other}`: expected `river` or `lake` (lakes and reservoirs)"
            ))
        }
    };
    let keys = || {
        GB_3838_2002
            .iter()
            .map(|l| l.key)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = BTreeMap::new();
    for (key, &value) in params {
        let limits = GB_3838_2002.iter().find(|l| l.key == key).ok_or_else(|| {
            let (hint_zh, hint) = if key == "do" {
                (
                    "（溶解氧写 `oxygen`：`do` 是 Rhai 的关键字）",
                    " (dissolved oxygen is `oxygen`: `do` is a Rhai keyword)",
                )
            } else {
                ("", "")
            };
            format!(
                "没有水质项目 `{key}`{hint_zh}：可写 {k} / unknown water parameter `{key}`{hint}: expected some of {k}",
                k = keys()
            )
        })?;
        if !value.is_finite() || value < 0.0 {
            return Err(format!(
                "水质项目 `{key}` = `{value}`：应是不小于 0 的数字 / water parameter `{key}` = `{value}`: expected a finite number ≥ 0"
            ));
        }
        let Some(table) = (if lake { limits.lake } else { limits.river }) else {
            continue;
        };
        let meets = |limit: f64| {
            if limits.at_least {
                value >= limit
            } else {
                value <= limit
            }
        };
        // The first (best) class whose limit the value meets: where two
        // classes share a limit the better one wins (UNCONFIRMED, see
        // GB_3838_2002).
        let class = table
            .iter()
            .position(|&limit| meets(limit))
            .map_or(WORSE_THAN_V, |i| i as i64 + 1);
        out.insert(key.clone(), class);
    }
    if out.is_empty() {
        let (tn_zh, tn_note) = if !lake && params.contains_key("tn") {
            (
                "（总氮 `tn` 只用于湖泊、水库）",
                " (`tn` counts for lakes only)",
            )
        } else {
            ("", "")
        };
        let body_zh = if lake { "湖泊、水库" } else { "河流" };
        return Err(format!(
            "没有可评价的{body_zh}水质项目{tn_zh}：请给出 {k} 中的一项或几项 / no water parameter to assess for a {body}{tn_note}: give some of {k}",
            k = keys()
        ));
    }
    Ok(out)
}

/// GB 3838-2002 class of a water sample: 1–5 for classes Ⅰ–Ⅴ, 6 for 劣Ⅴ.
/// Each parameter is classed on its own and the worst decides (单因子评价法).
///
/// `params` keys: `oxygen` (dissolved oxygen, at least the limit), `codmn`,
/// `cod`, `bod5`, `nh3n`, `tp` (river and lake limits differ), `tn` (lakes
/// only; ignored for `"river"`), all mg/L. Missing keys are skipped. An
/// unknown key, no key to assess, a negative or non-finite value, or a `body`
/// other than `"river"` / `"lake"` is an error.
///
/// Where two classes share a limit (COD 15, BOD5 3 for Ⅰ/Ⅱ) the better class
/// is given: UNCONFIRMED, see [`GB_3838_2002`].
pub fn water_class(params: &BTreeMap<String, f64>, body: &str) -> Result<i64, String> {
    let by_parameter = water_class_by_parameter(params, body)?;
    Ok(by_parameter
        .values()
        .copied()
        .max()
        .expect("water_class_by_parameter never returns an empty map"))
}

/// `"Ⅰ类"` … `"Ⅴ类"`, `"劣Ⅴ类"` for classes 1–6.
pub fn class_name(class: i64) -> Result<&'static str, String> {
    match class {
        1 => Ok("Ⅰ类"),
        2 => Ok("Ⅱ类"),
        3 => Ok("Ⅲ类"),
        4 => Ok("Ⅳ类"),
        5 => Ok("Ⅴ类"),
        6 => Ok("劣Ⅴ类"),
        other => Err(format!(
            "没有第 `{other}` 类水质：应是 1–6（6 = 劣Ⅴ类） / water class `{other}` does not exist: expected 1–6 (6 = 劣Ⅴ类)"
        )),
    }
}

/// 达标: `class` is at or better than `target` ("达到或优于"), i.e.
/// `class <= target`. Both must be 1–6.
pub fn meets_class(class: i64, target: i64) -> Result<bool, String> {
    class_name(class)?;
    class_name(target).map_err(|e| format!("目标：{e} / (the target)"))?;
    Ok(class <= target)
}

// ---------------------------------------------------------------------------
// Statistics, calendar pace and rank
// ---------------------------------------------------------------------------

/// The `p`-quantile (`p` in 0..=1) of already **sorted** values by linear
/// interpolation at rank `p·(n−1)` (0-based): the bench README's definition,
/// and numpy's default. `None` for no values or `p` outside 0..=1.
///
/// (HJ 663-2013 annex A is believed to use the same rank, k = 1 + (n−1)p
/// 1-based; UNCONFIRMED.)
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let rank = p * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    if lo == hi {
        return Some(sorted[lo]);
    }
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// The fraction of the local calendar year in `tz` elapsed at `now`, in
/// [0, 1): 0 at local midnight on 1 January. Leap years have 366 days.
pub fn year_fraction(now: Millis, tz: Tz) -> f64 {
    let year = to_local(now, tz).year();
    let (start, end) = months_span(year, 1, 12, tz);
    ((now - start) as f64 / (end - start) as f64).clamp(0.0, 1.0)
}

/// How far year-to-date `done` is ahead (+) or behind (−) of `target` ×
/// `year_fraction`, as a fraction of `target`:
/// `(done − target·year_fraction) / target`. `-0.1` = 10 % of the annual
/// target behind the even pace. A zero or non-finite target is an error.
pub fn pace(done: f64, target: f64, year_fraction: f64) -> Result<f64, String> {
    if target == 0.0 || !target.is_finite() {
        return Err(format!(
            "序时进度需要不为 0 的全年目标，这里是 `{target}` / pace needs a non-zero annual target, got `{target}`"
        ));
    }
    if !done.is_finite() || !year_fraction.is_finite() {
        return Err(format!(
            "序时进度的参数应是有效数字，这里完成数是 `{done}`、年度进度是 `{year_fraction}` / pace needs finite numbers, got done `{done}` and year fraction `{year_fraction}`"
        ));
    }
    Ok((done - target * year_fraction) / target)
}

/// `target × year_fraction`: what an even pace would have reached by now.
pub fn expected_by_now(target: f64, year_fraction: f64) -> f64 {
    target * year_fraction
}

/// Competition rank ("1224") of `key` among `(key, value)` pairs: 1 + the
/// number of entries strictly better (smaller when ascending, larger when
/// `descending`). Equal values share a rank (并列). `None` when `key` is
/// absent. A NaN value is never better than anything.
pub fn rank(values: &[(String, f64)], key: &str, descending: bool) -> Option<i64> {
    let mine = values.iter().find(|(k, _)| k == key)?.1;
    let better = values
        .iter()
        .filter(|(_, v)| if descending { *v > mine } else { *v < mine })
        .count();
    Some(1 + better as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;

    const SH: Tz = chrono_tz::Asia::Shanghai;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn map(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    // -- iaqi ---------------------------------------------------------------

    /// Each column of standards.md §1.1, written out again by hand so a typo
    /// in the table above cannot test itself.
    #[test]
    fn iaqi_on_every_breakpoint() {
        let columns: [(&str, &[f64]); 10] = [
            ("so2", &[0., 50., 150., 475., 800., 1600., 2100., 2620.]),
            ("so2_1h", &[0., 150., 500., 650., 800.]),
            ("no2", &[0., 40., 80., 180., 280., 565., 750., 940.]),
            (
                "no2_1h",
                &[0., 100., 200., 700., 1200., 2340., 3090., 3840.],
            ),
            ("pm10", &[0., 50., 150., 250., 350., 420., 500., 600.]),
            ("co", &[0., 2., 4., 14., 24., 36., 48., 60.]),
            ("co_1h", &[0., 5., 10., 35., 60., 90., 120., 150.]),
            ("o3_1h", &[0., 160., 200., 300., 400., 800., 1000., 1200.]),
            ("o3", &[0., 100., 160., 215., 265., 800.]),
            ("pm25", &[0., 35., 75., 115., 150., 250., 350., 500.]),
        ];
        let levels = [0., 50., 100., 150., 200., 300., 400., 500.];
        for (name, bps) in columns {
            for (bp, level) in bps.iter().zip(levels) {
                let got = iaqi(name, *bp).unwrap();
                assert!(close(got, level), "{name} at {bp}: {got}, want {level}");
            }
        }
    }

    #[test]
    fn iaqi_interpolates_within_a_segment() {
        assert!(close(iaqi("pm25", 55.0).unwrap(), 75.0));
        assert!(close(iaqi("pm25", 17.5).unwrap(), 25.0));
        assert!(close(iaqi("pm10", 100.0).unwrap(), 75.0));
        assert!(close(iaqi("co", 9.0).unwrap(), 125.0));
        assert!(close(iaqi("o3", 130.0).unwrap(), 75.0));
        // 600 µg/m³ O3 8-h: 200 + 100 × (600 − 265) / 535
        assert!(close(
            iaqi("o3", 600.0).unwrap(),
            200.0 + 100.0 * 335.0 / 535.0
        ));
        assert!(close(iaqi("no2_1h", 450.0).unwrap(), 125.0));
    }

    /// The trap in standards.md: the 24-hour SO2 series is not the 1-hour one.
    #[test]
    fn so2_24h_is_not_the_1h_series() {
        assert!(close(iaqi("so2", 150.0).unwrap(), 100.0));
        assert!(close(iaqi("so2_1h", 150.0).unwrap(), 50.0));
        // 500 µg/m³ (24 h): 150 + 50 × 25 / 325, not the 1-hour 100
        let got = iaqi("so2", 500.0).unwrap();
        assert!(close(got, 150.0 + 50.0 * 25.0 / 325.0), "{got}");
        assert!(close(iaqi("so2", 100.0).unwrap(), 75.0));
    }

    #[test]
    fn iaqi_above_the_top_is_500_or_an_error() {
        assert_eq!(iaqi("pm25", 500.1).unwrap(), 500.0);
        assert_eq!(iaqi("pm25", 9999.0).unwrap(), 500.0);
        assert_eq!(iaqi("so2", 3000.0).unwrap(), 500.0);
        assert_eq!(iaqi("co", 61.0).unwrap(), 500.0);
        assert_eq!(iaqi("o3_1h", 1500.0).unwrap(), 500.0);

        assert!(close(iaqi("o3", 800.0).unwrap(), 300.0));
        let e = iaqi("o3", 800.5).unwrap_err();
        assert!(e.contains("1-hour") && e.contains("o3_1h"), "{e}");

        assert!(close(iaqi("so2_1h", 800.0).unwrap(), 200.0));
        let e = iaqi("so2_1h", 801.0).unwrap_err();
        assert!(e.contains("24-hour") && e.contains("\"so2\""), "{e}");
    }

    #[test]
    fn iaqi_rejects_bad_input() {
        assert!(iaqi("pm25", -1.0).unwrap_err().contains("negative"));
        assert!(iaqi("pm25", f64::NAN).unwrap_err().contains("finite"));
        assert!(iaqi("pm25", f64::INFINITY).unwrap_err().contains("finite"));
        let e = iaqi("pm2.5", 10.0).unwrap_err();
        assert!(
            e.contains("`pm2.5`") && e.contains("`pm25`") && e.contains("`o3_1h`"),
            "{e}"
        );
        assert_eq!(iaqi("pm25", 0.0).unwrap(), 0.0);
        assert_eq!(iaqi("pm25", -0.0).unwrap(), 0.0);
    }

    #[test]
    fn aqi_categories() {
        let cases = [
            (0.0, "优"),
            (50.0, "优"),
            (50.4, "良"),
            (51.0, "良"),
            (100.0, "良"),
            (101.0, "轻度污染"),
            (150.0, "轻度污染"),
            (151.0, "中度污染"),
            (200.0, "中度污染"),
            (201.0, "重度污染"),
            (300.0, "重度污染"),
            (301.0, "严重污染"),
            (500.0, "严重污染"),
        ];
        for (aqi, want) in cases {
            assert_eq!(aqi_category(aqi), want, "{aqi}");
        }
        assert_eq!(aqi_category(f64::NAN), "");
        assert_eq!(aqi_category(-1.0), "");
        // pm25 55 → 75 → 良
        assert_eq!(aqi_category(iaqi("pm25", 55.0).unwrap()), "良");
    }

    // -- composite index ----------------------------------------------------

    #[test]
    fn composite_index_by_hand() {
        let stats = map(&[
            ("so2", 12.0),  // 12/60   = 0.2
            ("no2", 35.0),  // 35/40   = 0.875
            ("pm10", 98.0), // 98/70   = 1.4
            ("pm25", 52.5), // 52.5/35 = 1.5
            ("co", 2.1),    // 2.1/4   = 0.525
            ("o3", 176.0),  // 176/160 = 1.1
        ]);
        let got = composite_index(&stats).unwrap();
        assert!(close(got, 5.6), "{got}");
        assert_eq!(
            COMPOSITE_DIVISORS_2012,
            [
                ("so2", 60.0),
                ("no2", 40.0),
                ("pm10", 70.0),
                ("pm25", 35.0),
                ("co", 4.0),
                ("o3", 160.0)
            ]
        );
    }

    #[test]
    fn composite_index_names_missing_and_unknown_keys() {
        let mut stats = map(&[
            ("so2", 1.0),
            ("no2", 1.0),
            ("pm10", 1.0),
            ("pm25", 1.0),
            ("co", 1.0),
        ]);
        let e = composite_index(&stats).unwrap_err();
        assert!(e.contains("missing: o3"), "{e}");
        stats.insert("o3".into(), 1.0);
        assert!(composite_index(&stats).is_ok());
        stats.insert("pm2_5".into(), 1.0);
        let e = composite_index(&stats).unwrap_err();
        assert!(e.contains("`pm2_5`"), "{e}");
        stats.remove("pm2_5");
        stats.insert("co".into(), f64::NAN);
        assert!(composite_index(&stats).unwrap_err().contains("`co`"));
    }

    // -- water --------------------------------------------------------------

    #[test]
    fn water_class_per_parameter() {
        let one = |k: &str, v: f64, body: &str| water_class(&map(&[(k, v)]), body).unwrap();
        // DO: at least the limit
        assert_eq!(one("oxygen", 8.0, "river"), 1);
        assert_eq!(one("oxygen", 7.5, "river"), 1);
        assert_eq!(one("oxygen", 7.4, "river"), 2);
        assert_eq!(one("oxygen", 5.0, "river"), 3);
        assert_eq!(one("oxygen", 3.0, "river"), 4);
        assert_eq!(one("oxygen", 2.0, "river"), 5);
        assert_eq!(one("oxygen", 1.9, "river"), 6);
        // CODMn
        assert_eq!(one("codmn", 2.0, "river"), 1);
        assert_eq!(one("codmn", 4.0, "river"), 2);
        assert_eq!(one("codmn", 6.0, "river"), 3);
        assert_eq!(one("codmn", 10.0, "river"), 4);
        assert_eq!(one("codmn", 15.0, "river"), 5);
        assert_eq!(one("codmn", 15.1, "river"), 6);
        // COD and BOD5: I and II share a limit; the better class is given
        assert_eq!(one("cod", 15.0, "river"), 1);
        assert_eq!(one("cod", 20.0, "river"), 3);
        assert_eq!(one("cod", 30.0, "river"), 4);
        assert_eq!(one("cod", 40.0, "river"), 5);
        assert_eq!(one("cod", 41.0, "river"), 6);
        assert_eq!(one("bod5", 3.0, "lake"), 1);
        assert_eq!(one("bod5", 4.0, "lake"), 3);
        assert_eq!(one("bod5", 6.0, "lake"), 4);
        assert_eq!(one("bod5", 10.0, "lake"), 5);
        // NH3-N
        assert_eq!(one("nh3n", 0.15, "river"), 1);
        assert_eq!(one("nh3n", 0.5, "river"), 2);
        assert_eq!(one("nh3n", 1.0, "river"), 3);
        assert_eq!(one("nh3n", 1.5, "river"), 4);
        assert_eq!(one("nh3n", 2.0, "river"), 5);
        assert_eq!(one("nh3n", 2.01, "river"), 6);
    }

    #[test]
    fn water_tp_river_vs_lake() {
        let tp = |v: f64, body: &str| water_class(&map(&[("tp", v)]), body).unwrap();
        assert_eq!(tp(0.02, "river"), 1);
        assert_eq!(tp(0.02, "lake"), 2);
        assert_eq!(tp(0.1, "river"), 2);
        assert_eq!(tp(0.1, "lake"), 4);
        assert_eq!(tp(0.2, "river"), 3);
        assert_eq!(tp(0.2, "lake"), 5);
        assert_eq!(tp(0.3, "river"), 4);
        assert_eq!(tp(0.4, "river"), 5);
        assert_eq!(tp(0.3, "lake"), 6);
        assert_eq!(tp(0.41, "river"), 6);
        assert_eq!(tp(0.01, "lake"), 1);
        assert_eq!(tp(0.025, "lake"), 2);
        assert_eq!(tp(0.05, "lake"), 3);
    }

    #[test]
    fn water_tn_counts_for_lakes_only() {
        let sample = map(&[("codmn", 3.0), ("tn", 1.2)]);
        assert_eq!(water_class(&sample, "river").unwrap(), 2);
        assert_eq!(water_class(&sample, "lake").unwrap(), 4);
        assert_eq!(water_class(&map(&[("tn", 0.2)]), "lake").unwrap(), 1);
        assert_eq!(water_class(&map(&[("tn", 2.5)]), "lake").unwrap(), 6);
        let e = water_class(&map(&[("tn", 1.2)]), "river").unwrap_err();
        assert!(e.contains("lakes only"), "{e}");
    }

    #[test]
    fn water_worst_parameter_decides() {
        let sample = map(&[
            ("oxygen", 6.5), // II
            ("codmn", 5.0),  // III
            ("cod", 18.0),   // III
            ("bod5", 2.0),   // I
            ("nh3n", 2.3),   // 劣V
            ("tp", 0.15),    // III (river)
        ]);
        assert_eq!(water_class(&sample, "river").unwrap(), WORSE_THAN_V);
        let by = water_class_by_parameter(&sample, "river").unwrap();
        assert_eq!(by["nh3n"], 6);
        assert_eq!(by["oxygen"], 2);
        let mut better = sample.clone();
        better.insert("nh3n".into(), 0.8); // III
        assert_eq!(water_class(&better, "river").unwrap(), 3);
        assert_eq!(
            class_name(water_class(&sample, "river").unwrap()).unwrap(),
            "劣Ⅴ类"
        );
    }

    #[test]
    fn water_class_errors() {
        assert!(water_class(&map(&[]), "river")
            .unwrap_err()
            .contains("no water parameter"));
        let e = water_class(&map(&[("do", 6.0)]), "river").unwrap_err();
        assert!(e.contains("`do`") && e.contains("oxygen"), "{e}");
        let e = water_class(&map(&[("ph", 7.0), ("cod", 10.0)]), "river").unwrap_err();
        assert!(e.contains("`ph`"), "{e}");
        let e = water_class(&map(&[("cod", 10.0)]), "reservoir").unwrap_err();
        assert!(e.contains("`reservoir`") && e.contains("`lake`"), "{e}");
        assert!(water_class(&map(&[("cod", -1.0)]), "river").is_err());
        assert!(water_class(&map(&[("cod", f64::NAN)]), "river").is_err());
    }

    #[test]
    fn class_names_and_targets() {
        let names: Vec<_> = (1..=6).map(|c| class_name(c).unwrap()).collect();
        assert_eq!(names, ["Ⅰ类", "Ⅱ类", "Ⅲ类", "Ⅳ类", "Ⅴ类", "劣Ⅴ类"]);
        assert!(class_name(0).is_err());
        assert!(class_name(7).is_err());
        assert!(meets_class(2, 3).unwrap());
        assert!(meets_class(3, 3).unwrap());
        assert!(!meets_class(4, 3).unwrap());
        assert!(meets_class(3, 9).unwrap_err().contains("target"));
    }

    // -- percentile, pace, rank ----------------------------------------------

    #[test]
    fn percentiles_interpolate_at_rank_p_times_n_minus_1() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        // rank 0.95 × 19 = 18.05 → 19 + 0.05 × (20 − 19)
        assert!(close(percentile(&v, 0.95).unwrap(), 19.05));
        // rank 0.5 × 19 = 9.5 → between 10 and 11
        assert!(close(percentile(&v, 0.5).unwrap(), 10.5));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 1.0), Some(20.0));
        let w = [10.0, 20.0, 40.0, 80.0];
        // rank 0.9 × 3 = 2.7 → 40 + 0.7 × 40
        assert!(close(percentile(&w, 0.9).unwrap(), 68.0));
        assert_eq!(percentile(&[7.0], 0.95), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&w, 1.5), None);
        assert_eq!(percentile(&w, f64::NAN), None);
    }

    #[test]
    fn year_fraction_follows_the_local_calendar() {
        let at = |s: &str| year_fraction(parse_time(s, SH).unwrap(), SH);
        assert_eq!(at("2021-01-01"), 0.0);
        // 2021 has 365 days; 2 July 12:00 is 182.5 days in
        assert!(close(at("2021-07-02T12:00"), 0.5));
        assert!(close(at("2021-12-31T12:00"), 364.5 / 365.0));
        // leap year: 1 March is 60 days in
        assert!(close(at("2020-03-01"), 60.0 / 366.0));
        // midnight in Shanghai is still the previous year in UTC
        assert_eq!(at("2022-01-01T00:00:00+08:00"), 0.0);
    }

    #[test]
    fn pace_at_mid_year() {
        let half = year_fraction(parse_time("2021-07-02T12:00", SH).unwrap(), SH);
        // 6000 trainings a year, 2400 done by mid-year: 600 behind = −10 %
        assert!(close(pace(2400.0, 6000.0, half).unwrap(), -0.1));
        assert!(close(pace(3000.0, 6000.0, half).unwrap(), 0.0));
        assert!(close(pace(121.0, 220.0, half).unwrap(), 0.05));
        assert!(close(expected_by_now(220.0, half), 110.0));
        assert!(pace(1.0, 0.0, half).unwrap_err().contains("non-zero"));
        assert!(pace(f64::NAN, 10.0, half).is_err());
    }

    #[test]
    fn rank_with_ties() {
        let v: Vec<(String, f64)> = [("a", 5.0), ("b", 3.0), ("c", 5.0), ("d", 7.0)]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        assert_eq!(rank(&v, "b", false), Some(1));
        assert_eq!(rank(&v, "a", false), Some(2));
        assert_eq!(rank(&v, "c", false), Some(2));
        assert_eq!(rank(&v, "d", false), Some(4));
        assert_eq!(rank(&v, "d", true), Some(1));
        assert_eq!(rank(&v, "a", true), Some(2));
        assert_eq!(rank(&v, "c", true), Some(2));
        assert_eq!(rank(&v, "b", true), Some(4));
        assert_eq!(rank(&v, "z", false), None);
        assert_eq!(rank(&[], "a", false), None);
    }
}
