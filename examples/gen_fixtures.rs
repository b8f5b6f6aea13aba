//! Writes the SYNTHETIC fixture readings under `fixtures/2021/`.
//!
//! ```text
//! cargo run --example gen_fixtures
//! ```
//!
//! Every number is invented (a fixed-seed splitmix64 PRNG plus hand-designed
//! monthly series), shaped to look like a county's 2021 statistics so that the
//! shipped rules breach and pass on known dates. The designed events are listed
//! in `fixtures/README.md` and asserted by `tests/it/eval_fixtures.rs`; the
//! generator checks the air-quality ranks and the pace series it designs before
//! writing anything, so a change that breaks a designed event fails here first.
//!
//! Std only, deterministic: the same source writes the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// Fixed seed: the fixtures are committed, regenerate to the same bytes.
const SEED: u64 = 0x5EED_2021_0000_0001;

/// First tier (第一方阵) size the designed ranks are checked against: the
/// rules' `TIER` default (UNCONFIRMED, see standards.md §5).
const TIER: usize = 5;

/// The evaluated county and its 15 peers in Xingtai (邢台市).
const COUNTIES: [&str; 16] = [
    "南宫", "清河", "巨鹿", "威县", "临西", "广宗", "平乡", "新河", "宁晋", "隆尧", "柏乡", "临城",
    "内丘", "任泽", "南和", "沙河",
];

// ---------------------------------------------------------------- the PRNG

/// splitmix64: tiny, fast, good enough for plausible noise.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

// ---------------------------------------------------------------- calendar

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

fn month_end(y: i32, m: u32) -> String {
    format!("{y}-{m:02}-{:02}", days_in_month(y, m))
}

/// The months the air and water data cover: December 2020 (a lead-in, so a
/// rule evaluated in early January has a "last month") and all of 2021.
fn air_months() -> Vec<(i32, u32)> {
    let mut v = vec![(2020, 12)];
    v.extend((1..=12).map(|m| (2021, m)));
    v
}

// ---------------------------------------------------------------- statistics

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Percentile by linear interpolation at rank p·(n−1) of the sorted values,
/// as the engine's `agg(.., "p95")` computes it.
fn percentile(xs: &[f64], p: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = p * (v.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (rank - lo as f64)
}

/// Competition rank, ascending: 1 + the number of strictly smaller values.
fn rank_of(values: &[f64], index: usize) -> usize {
    1 + values.iter().filter(|v| **v < values[index]).count()
}

/// HJ 663-2013 composite index with the 2012 divisors.
fn composite(so2: f64, no2: f64, pm10: f64, pm25: f64, co95: f64, o3_90: f64) -> f64 {
    so2 / 60.0 + no2 / 40.0 + pm10 / 70.0 + pm25 / 35.0 + co95 / 4.0 + o3_90 / 160.0
}

// ---------------------------------------------------------------- air

const POLLUTANTS: [&str; 6] = ["pm25", "pm10", "so2", "no2", "co", "o3_8h"];

/// Regional monthly level (Jan..Dec) of each pollutant: heating season
/// (Nov–Mar) is worst for particles and SO2/NO2/CO; ozone peaks in summer.
fn seasonal_base(pollutant: &str, month: u32) -> f64 {
    let i = (month - 1) as usize;
    let table: [f64; 12] = match pollutant {
        "pm25" => [95., 80., 60., 48., 40., 35., 32., 30., 35., 48., 65., 85.],
        "pm10" => [
            140., 125., 120., 105., 90., 70., 60., 58., 65., 85., 110., 130.,
        ],
        "so2" => [22., 19., 15., 11., 9., 8., 7., 7., 8., 11., 16., 21.],
        "no2" => [46., 40., 35., 30., 26., 24., 22., 23., 28., 35., 42., 46.],
        "co" => [1.9, 1.6, 1.2, 0.9, 0.8, 0.8, 0.8, 0.8, 0.9, 1.1, 1.5, 1.8],
        "o3_8h" => [
            58., 78., 100., 130., 168., 196., 186., 170., 150., 110., 72., 55.,
        ],
        _ => unreachable!("unknown pollutant {pollutant}"),
    };
    table[i]
}

/// How a county compares with the regional level, per pollutant. Fixed
/// orderings (invented): 南宫 is normally 3rd for PM2.5 and 4th for PM10.
fn county_factor(pollutant: &str, county: &str) -> f64 {
    let table: [(&str, f64, f64); 16] = [
        // county, pm25, pm10
        ("清河", 0.86, 0.88),
        ("巨鹿", 0.89, 0.97),
        ("南宫", 0.92, 0.95),
        ("威县", 0.95, 0.90),
        ("临西", 0.97, 0.93),
        ("广宗", 1.00, 1.01),
        ("新河", 1.02, 0.99),
        ("平乡", 1.04, 1.03),
        ("柏乡", 1.06, 1.05),
        ("临城", 1.07, 1.06),
        ("内丘", 1.09, 1.08),
        ("宁晋", 1.11, 1.10),
        ("隆尧", 1.12, 1.12),
        ("任泽", 1.14, 1.14),
        ("南和", 1.17, 1.16),
        ("沙河", 1.22, 1.25),
    ];
    let (_, pm25, pm10) = table
        .iter()
        .find(|(c, _, _)| *c == county)
        .copied()
        .expect("county in table");
    if county == "南宫" && pollutant != "pm25" && pollutant != "pm10" {
        // Cleaner heating (清洁取暖) than most: gases a little better.
        return if pollutant == "o3_8h" { 0.97 } else { 0.9 };
    }
    match pollutant {
        "pm25" => pm25,
        "pm10" => pm10,
        // Gases follow the particle ordering loosely (same sources), ozone is
        // flatter across the prefecture.
        "so2" | "co" => 0.5 + 0.5 * pm25,
        "no2" => 0.6 + 0.4 * pm10,
        "o3_8h" => 0.9 + 0.1 * pm25,
        _ => unreachable!(),
    }
}

/// The designed air events: 南宫's monthly-mean factor overridden for one
/// pollutant in one month. See fixtures/README.md.
fn nangong_override(pollutant: &str, year: i32, month: u32) -> Option<f64> {
    match (pollutant, year, month) {
        // PM2.5 out of the first tier in January (rank 7) and December (rank 6);
        // November sits exactly on the tier boundary (rank 5, passes).
        ("pm25", 2021, 1) => Some(1.03),
        ("pm25", 2021, 11) => Some(0.985),
        ("pm25", 2021, 12) => Some(1.01),
        // Spring dust: PM10 out of the tier in March (rank 8).
        ("pm10", 2021, 3) => Some(1.04),
        // Heating-season coal burning in January and December pushes the
        // composite index out of the tier too (with the PM2.5 above).
        ("so2" | "no2" | "co", 2021, 1) => Some(1.2),
        ("so2" | "no2" | "co", 2021, 12) => Some(1.15),
        _ => None,
    }
}

/// Designed 南宫 ranks: which (pollutant-or-index, month) must fall outside
/// the first tier. Every other month must be inside it.
fn designed_out_of_tier(what: &str, year: i32, month: u32) -> bool {
    matches!(
        (what, year, month),
        ("pm25", 2021, 1)
            | ("pm25", 2021, 12)
            | ("pm10", 2021, 3)
            | ("composite", 2021, 1)
            | ("composite", 2021, 12)
    )
}

/// One value per (pollutant, county, day).
type AirData = BTreeMap<(&'static str, &'static str), Vec<(String, u32, i32, f64)>>;

fn generate_air(rng: &mut Rng) -> AirData {
    let months = air_months();
    // Regional weather: AR(1) in log space, shared by every county (pollution
    // episodes are regional), one process for particles/primary gases and one
    // for ozone.
    let mut days: Vec<(i32, u32, u32, f64, f64)> = Vec::new();
    let (mut w_pm, mut w_o3) = (0.0f64, 0.0f64);
    for &(y, m) in &months {
        // Winter inversions make episodes deeper.
        let spread = if matches!(m, 11 | 12 | 1 | 2) {
            0.34
        } else {
            0.22
        };
        for d in 1..=days_in_month(y, m) {
            w_pm = 0.72 * w_pm + spread * rng.normal();
            w_o3 = 0.6 * w_o3 + 0.12 * rng.normal();
            days.push((y, m, d, w_pm, w_o3));
        }
    }

    let mut out: AirData = BTreeMap::new();
    for pollutant in POLLUTANTS {
        for county in COUNTIES {
            let mut series = Vec::with_capacity(days.len());
            for &(y, m) in &months {
                let base = seasonal_base(pollutant, m);
                let factor = match county {
                    "南宫" => nangong_override(pollutant, y, m)
                        .unwrap_or_else(|| county_factor(pollutant, county)),
                    _ => county_factor(pollutant, county),
                };
                let mut month_vals: Vec<(String, f64)> = Vec::new();
                for &(dy, dm, dd, w_pm, w_o3) in days.iter().filter(|d| d.0 == y && d.1 == m) {
                    let weather = match pollutant {
                        "o3_8h" => w_o3 - 0.3 * w_pm,
                        "pm25" | "pm10" => w_pm,
                        _ => 0.6 * w_pm,
                    };
                    let local = 0.08 * rng.normal();
                    let v = base * factor * (weather + local).exp();
                    month_vals.push((format!("{dy}-{dm:02}-{dd:02}"), v));
                }
                // Particles: rescale so the monthly mean is exactly the
                // designed level (that is what the rank rules see).
                if pollutant == "pm25" || pollutant == "pm10" {
                    let raw: Vec<f64> = month_vals.iter().map(|(_, v)| *v).collect();
                    let k = base * factor / mean(&raw);
                    for (_, v) in &mut month_vals {
                        *v *= k;
                    }
                }
                for (date, v) in month_vals {
                    let v = match pollutant {
                        "co" => (v * 10.0).round().max(1.0) / 10.0,
                        _ => v.round().max(2.0),
                    };
                    series.push((date, m, y, v));
                }
            }
            out.insert((pollutant, county), series);
        }
    }
    out
}

/// 南宫's monthly ranks among the 16 (PM2.5, PM10, composite), computed the
/// way the rules do; panics if a designed event does not hold.
fn check_air(air: &AirData) -> Vec<(i32, u32, [usize; 3], [f64; 3])> {
    let mut rows = Vec::new();
    let mut broken = Vec::new();
    for (y, m) in air_months() {
        let stat = |pollutant: &str, county: &str, f: &dyn Fn(&[f64]) -> f64| -> f64 {
            let vals: Vec<f64> = air[&(
                POLLUTANTS
                    .iter()
                    .find(|p| **p == pollutant)
                    .copied()
                    .unwrap(),
                COUNTIES.iter().find(|c| **c == county).copied().unwrap(),
            )]
                .iter()
                .filter(|(_, mm, yy, _)| *mm == m && *yy == y)
                .map(|(_, _, _, v)| *v)
                .collect();
            f(&vals)
        };
        let avg = |xs: &[f64]| mean(xs);
        let p95 = |xs: &[f64]| percentile(xs, 0.95);
        let p90 = |xs: &[f64]| percentile(xs, 0.90);
        let pm25: Vec<f64> = COUNTIES.iter().map(|c| stat("pm25", c, &avg)).collect();
        let pm10: Vec<f64> = COUNTIES.iter().map(|c| stat("pm10", c, &avg)).collect();
        let index: Vec<f64> = COUNTIES
            .iter()
            .map(|c| {
                composite(
                    stat("so2", c, &avg),
                    stat("no2", c, &avg),
                    stat("pm10", c, &avg),
                    stat("pm25", c, &avg),
                    stat("co", c, &p95),
                    stat("o3_8h", c, &p90),
                )
            })
            .collect();
        let ranks = [rank_of(&pm25, 0), rank_of(&pm10, 0), rank_of(&index, 0)];
        for (what, r) in ["pm25", "pm10", "composite"].iter().zip(ranks) {
            if (r > TIER) != designed_out_of_tier(what, y, m) {
                broken.push(format!("南宫 {what} {y}-{m:02} rank {r}"));
            }
        }
        rows.push((y, m, ranks, [pm25[0], pm10[0], index[0]]));
    }
    print_ranks(&rows);
    assert!(broken.is_empty(), "designed air events broken: {broken:?}");
    rows
}

fn print_ranks(rows: &[(i32, u32, [usize; 3], [f64; 3])]) {
    println!("南宫 monthly ranks among 16 counties (first tier = top {TIER}, UNCONFIRMED):");
    println!("month    PM2.5        PM10         composite");
    for (y, m, r, v) in rows {
        println!(
            "{y}-{m:02}  {:>2} ({:>5.1})  {:>2} ({:>5.1})  {:>2} ({:.3})",
            r[0], v[0], r[1], v[1], r[2], v[2]
        );
    }
}

// ---------------------------------------------------------------- water

/// Synthetic assessment sections (invented names, marked 合成) with their
/// monthly class, December 2020 then January..December 2021; `0` = not
/// reported that month. The target classes live in the water rule.
const WATER: [(&str, [u8; 13]); 6] = [
    (
        "清凉江出境断面(合成)",
        [4, 4, 4, 3, 4, 4, 4, 4, 3, 3, 4, 4, 4],
    ),
    // Target Ⅳ: Ⅴ in April–May, 劣Ⅴ in June, Ⅴ in July, back to Ⅳ in August.
    (
        "索泸河城区下游断面(合成)",
        [4, 4, 4, 4, 5, 5, 6, 5, 4, 4, 4, 4, 4],
    ),
    (
        "老沙河大高村断面(合成)",
        [5, 5, 5, 4, 4, 5, 5, 4, 4, 4, 4, 5, 5],
    ),
    // Target Ⅴ: the October 2021 class was never reported.
    (
        "西沙河段芦头断面(合成)",
        [5, 5, 4, 4, 4, 5, 5, 5, 4, 4, 0, 4, 5],
    ),
    (
        "南宫湖湖心断面(合成)",
        [3, 3, 3, 3, 3, 3, 3, 2, 2, 3, 3, 3, 3],
    ),
    (
        "南衡灌渠渠首断面(合成)",
        [3, 3, 3, 2, 2, 3, 3, 3, 3, 3, 2, 2, 3],
    ),
];

// ---------------------------------------------------------------- socio-economic

/// A year-to-date (or status) series: the 2020 full-year figure timestamped
/// 2020-12-31, then January..December 2021 (`None` = not reported).
struct Monthly {
    metric: &'static str,
    y2020: f64,
    y2021: [Option<f64>; 12],
    /// Pace check in the generator: (annual target, tolerance as a share of it,
    /// months designed to be behind). `None` for non-pace series.
    pace: Option<(f64, f64, &'static [u32])>,
}

macro_rules! months {
    ($($v:tt),* $(,)?) => { [$(months!(@one $v)),*] };
    (@one _) => { None };
    (@one $v:tt) => { Some($v as f64) };
}

fn monthly_series() -> Vec<Monthly> {
    vec![
        // 园区营业收入 (亿元) — behind pace in June and July, recovers in August.
        Monthly {
            metric: "park_revenue",
            y2020: 201.5,
            y2021: months![14, 28, 48, 66, 84, 98, 114, 138, 160, 182, 203, 226],
            pace: Some((220.0, 0.05, &[6, 7])),
        },
        Monthly {
            metric: "new_urban_complexes",
            y2020: 4.0,
            y2021: months![0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 6],
            pace: Some((5.0, 0.2, &[])),
        },
        // Year-end count: 4 buildings, target met.
        Monthly {
            metric: "buildings_tax_over_5m",
            y2020: 3.0,
            y2021: months![0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4],
            pace: None,
        },
        Monthly {
            metric: "new_maker_spaces",
            y2020: 4.0,
            y2021: months![0, 0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 5],
            pace: Some((5.0, 0.2, &[])),
        },
        // 电商零售额 (亿元) — on pace all year, ends the year short (67.5 < 70).
        Monthly {
            metric: "ecommerce_retail",
            y2020: 61.2,
            y2021: months![5.2, 10.3, 16.0, 21.5, 27.0, 32.6, 38.0, 43.5, 49.6, 55.0, 61.0, 67.5],
            pace: Some((70.0, 0.05, &[12])),
        },
        // Year-end count: only 1 of 2 "万元钱" bases.
        Monthly {
            metric: "high_value_bases",
            y2020: 0.0,
            y2021: months![0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
            pace: None,
        },
        Monthly {
            metric: "agri_projects_20m",
            y2020: 10.0,
            y2021: months![1, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 13],
            pace: Some((12.0, 0.15, &[])),
        },
        Monthly {
            metric: "new_family_farms",
            y2020: 26.0,
            y2021: months![2, 4, 7, 10, 12, 15, 17, 20, 23, 26, 28, 32],
            pace: Some((30.0, 0.1, &[])),
        },
        Monthly {
            metric: "rural_road_km",
            y2020: 9.6,
            y2021: months![0, 0, 1.2, 2.5, 3.8, 5.0, 6.1, 7.0, 8.3, 9.6, 10.9, 10.9],
            pace: Some((10.9, 0.2, &[])),
        },
        // Roads finished (条), year-to-date: the count of "5条、10.9公里",
        // judged at the year end. Met.
        Monthly {
            metric: "rural_road_count",
            y2020: 4.0,
            y2021: months![0, 0, 0, 1, 1, 2, 2, 2, 3, 4, 5, 5],
            pace: None,
        },
        Monthly {
            metric: "beautiful_villages",
            y2020: 18.0,
            y2021: months![0, 0, 2, 4, 6, 8, 10, 12, 15, 17, 19, 21],
            pace: Some((21.0, 0.2, &[])),
        },
        Monthly {
            metric: "beautiful_courtyards",
            y2020: 3800.0,
            y2021: months![150, 300, 650, 1000, 1400, 1800, 2200, 2600, 3000, 3400, 3800, 4260],
            pace: Some((4200.0, 0.1, &[])),
        },
        Monthly {
            metric: "farm_service_stations",
            y2020: 20.0,
            y2021: months![1, 3, 5, 8, 10, 13, 15, 18, 21, 24, 27, 31],
            pace: Some((30.0, 0.1, &[])),
        },
        // 河渠清淤 (km): dredged in the dry season, ahead early, flat in the
        // flood season.
        Monthly {
            metric: "canal_dredged_km",
            y2020: 60.3,
            y2021: months![8.5, 17.0, 28.0, 38.5, 46.0, 49.0, 49.0, 49.0, 52.0, 58.5, 67.0, 76.2],
            pace: Some((75.7, 0.1, &[])),
        },
        // Canals dredged (条), year-to-date: the count of "9条、75.7公里".
        // The length is met (76.2 km) but only 8 of the 9 canals are done: a
        // missed 2021 target judged at the year end.
        Monthly {
            metric: "canal_dredged_count",
            y2020: 7.0,
            y2021: months![1, 2, 3, 4, 5, 5, 5, 5, 5, 6, 7, 8],
            pace: None,
        },
        // Year-end count: 4 schools, target met.
        Monthly {
            metric: "schools_built",
            y2020: 3.0,
            y2021: months![0, 0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4],
            pace: None,
        },
        Monthly {
            metric: "vocational_training",
            y2020: 5600.0,
            y2021: months![300, 720, 1200, 1750, 2300, 2900, 3400, 3950, 4500, 5050, 5600, 6180],
            pace: Some((6000.0, 0.05, &[])),
        },
        // 新增城镇就业: the May figure was never reported (a no-data case).
        Monthly {
            metric: "new_urban_jobs",
            y2020: 3800.0,
            y2021: months![250, 560, 900, 1250, _, 1950, 2300, 2650, 3000, 3350, 3700, 4080],
            pace: Some((4000.0, 0.05, &[])),
        },
        Monthly {
            metric: "rural_labor_transfer",
            y2020: 4900.0,
            y2021: months![500, 900, 1400, 1850, 2250, 2700, 3100, 3500, 3900, 4300, 4700, 5120],
            pace: Some((5000.0, 0.05, &[])),
        },
        // 城镇登记失业率 (%): above 4.5 in March and April, back in May.
        Monthly {
            metric: "unemployment_rate",
            y2020: 4.3,
            y2021: months![4.2, 4.4, 4.7, 4.6, 4.4, 4.3, 4.3, 4.2, 4.2, 4.1, 4.1, 4.0],
            pace: None,
        },
    ]
}

/// Figures known only at some times of the year: (metric, [(date, value)]).
fn sparse_series() -> Vec<(&'static str, Vec<(&'static str, f64)>)> {
    vec![
        // Quarterly.
        (
            "medical_insurance_rate",
            vec![
                ("2020-12-31", 95.8),
                ("2021-03-31", 96.1),
                ("2021-06-30", 96.3),
                ("2021-09-30", 96.4),
                ("2021-12-31", 96.8),
            ],
        ),
        // 3/16 towns at the end of 2020 (the baseline), still 3/16 in Q1
        // (behind the even path from 18.8% to 30%), then 5/16, 5/16, 6/16.
        (
            "waste_sorting_town_share",
            vec![
                ("2020-12-31", 18.8),
                ("2021-03-31", 18.8),
                ("2021-06-30", 31.3),
                ("2021-09-30", 31.3),
                ("2021-12-31", 37.5),
            ],
        ),
        // 万m³, recharge − extraction over the last 12 months: in deficit after
        // the dry 2020/21 winter, in surplus after the wet summer of 2021.
        (
            "groundwater_balance",
            vec![
                ("2020-12-31", -210.0),
                ("2021-03-31", -150.0),
                ("2021-06-30", -60.0),
                ("2021-09-30", 420.0),
                ("2021-12-31", 510.0),
            ],
        ),
        // Per semester (autumn 2020 known at 2020-12-31, spring 2021, autumn 2021).
        (
            "private_school_share",
            vec![
                ("2020-12-31", 5.9),
                ("2021-03-31", 5.6),
                ("2021-09-30", 4.8),
            ],
        ),
        (
            "public_kindergarten_share",
            vec![
                ("2020-12-31", 51.2),
                ("2021-03-31", 51.4),
                ("2021-09-30", 53.0),
            ],
        ),
        // Half-yearly forestry survey.
        (
            "village_green_coverage",
            vec![
                ("2020-12-31", 30.4),
                ("2021-06-30", 31.2),
                ("2021-12-31", 32.5),
            ],
        ),
        (
            "shelterbelt_control_rate",
            vec![
                ("2020-12-31", 79.6),
                ("2021-06-30", 80.4),
                ("2021-12-31", 81.5),
            ],
        ),
        // After the autumn harvest: area met, output short (2021 autumn floods).
        (
            "grain_area",
            vec![("2020-10-31", 72.3), ("2021-10-31", 72.6)],
        ),
        (
            "grain_output",
            vec![("2020-10-31", 25.4), ("2021-10-31", 24.3)],
        ),
    ]
}

/// Status series 0/1 reported at each month end, December 2020 to December
/// 2021: the month-end from which each item is done (`None` = never in 2021).
const MILESTONES: [(&str, Option<u32>); 4] = [
    ("第三污水处理厂", Some(10)),
    ("西区消防站", Some(12)),
    // Due by the autumn term (2021-09-01); finished in September: late.
    ("南宫中学新校区", Some(9)),
    ("养老服务指导中心", Some(6)),
];

/// The 5 signed 亿元 projects (invented names): the month-end from which each
/// has started.
const PROJECTS: [(&str, Option<u32>); 5] = [
    ("亿元项目A(合成)", Some(3)),
    ("亿元项目B(合成)", Some(4)),
    ("亿元项目C(合成)", Some(6)),
    ("亿元项目D(合成)", Some(8)),
    ("亿元项目E(合成)", None),
];

/// Behind-pace months of a series, by the rules' formula: the figure for
/// month m covers m/12 of the year; behind when done < target·m/12 − tolerance·target
/// (months 1–11), short when the December figure is under the target.
fn behind_months(s: &Monthly, target: f64, tolerance: f64) -> Vec<u32> {
    let mut out = Vec::new();
    for (i, v) in s.y2021.iter().enumerate() {
        let m = i as u32 + 1;
        let Some(done) = v else { continue };
        let behind = if m == 12 {
            *done < target
        } else {
            *done < target * m as f64 / 12.0 - tolerance * target
        };
        if behind {
            out.push(m);
        }
    }
    out
}

// ---------------------------------------------------------------- output

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    println!("wrote {} ({} lines)", path.display(), text.lines().count());
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/2021");
    fs::create_dir_all(&dir).expect("create fixtures/2021");
    let mut rng = Rng(SEED);

    // Air: daily means per county.
    let air = generate_air(&mut rng);
    check_air(&air);
    let mut csv = String::from("metric,time,value,county\n");
    for pollutant in POLLUTANTS {
        for county in COUNTIES {
            for (date, _, _, v) in &air[&(pollutant, county)] {
                writeln!(csv, "{pollutant},{date},{},{county}", fmt_value(*v)).unwrap();
            }
        }
    }
    write(&dir, "air.csv", &csv);

    // Water: monthly class per section at each month end.
    let mut csv = String::from("metric,time,value,section\n");
    for (section, classes) in WATER {
        for ((y, m), class) in air_months().into_iter().zip(classes) {
            if class != 0 {
                writeln!(csv, "water_class,{},{class},{section}", month_end(y, m)).unwrap();
            }
        }
    }
    write(&dir, "water.csv", &csv);

    // Socio-economic figures without labels.
    let mut csv = String::from("metric,time,value\n");
    for s in monthly_series() {
        if let Some((target, tolerance, designed)) = s.pace {
            let behind = behind_months(&s, target, tolerance);
            assert_eq!(
                behind, designed,
                "designed pace events broken for {}",
                s.metric
            );
        }
        writeln!(csv, "{},2020-12-31,{}", s.metric, fmt_value(s.y2020)).unwrap();
        for (i, v) in s.y2021.iter().enumerate() {
            if let Some(v) = v {
                writeln!(
                    csv,
                    "{},{},{}",
                    s.metric,
                    month_end(2021, i as u32 + 1),
                    fmt_value(*v)
                )
                .unwrap();
            }
        }
    }
    for (metric, points) in sparse_series() {
        for (date, v) in points {
            writeln!(csv, "{metric},{date},{}", fmt_value(v)).unwrap();
        }
    }
    write(&dir, "socioeconomic.csv", &csv);

    // Status series.
    let status = |label: &str, metric: &str, items: &[(&str, Option<u32>)]| {
        let mut csv = format!("metric,time,value,{label}\n");
        for (item, done_from) in items {
            for (y, m) in air_months() {
                let done = y == 2021 && done_from.is_some_and(|d| m >= d);
                writeln!(
                    csv,
                    "{metric},{},{},{item}",
                    month_end(y, m),
                    u8::from(done)
                )
                .unwrap();
            }
        }
        csv
    };
    write(
        &dir,
        "milestones.csv",
        &status("item", "milestone_done", &MILESTONES),
    );
    write(
        &dir,
        "projects.csv",
        &status("project", "project_started", &PROJECTS),
    );
}
