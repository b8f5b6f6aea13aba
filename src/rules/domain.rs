//! Domain arithmetic rules call (placeholder signatures until the domain branch lands).
use std::collections::BTreeMap;

use chrono_tz::Tz;

use crate::time::Millis;

pub fn iaqi(_pollutant: &str, _c: f64) -> Result<f64, String> {
    Err("iaqi not yet available".into())
}
pub fn aqi_category(_aqi: f64) -> &'static str {
    ""
}
pub fn composite_index(_stats: &BTreeMap<String, f64>) -> Result<f64, String> {
    Err("composite_index not yet available".into())
}
pub fn water_class(_params: &BTreeMap<String, f64>, _body: &str) -> Result<i64, String> {
    Err("water_class not yet available".into())
}
pub fn class_name(_class: i64) -> Result<&'static str, String> {
    Err("class_name not yet available".into())
}
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = p * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
}
pub fn year_fraction(_now: Millis, _tz: Tz) -> f64 {
    0.0
}
pub fn pace(done: f64, target: f64, fraction: f64) -> Result<f64, String> {
    Ok((done - target * fraction) / target)
}
pub fn rank(values: &[(String, f64)], key: &str, descending: bool) -> Option<i64> {
    let v = values.iter().find(|(k, _)| k == key)?.1;
    Some(1 + values.iter().filter(|(_, x)| if descending { *x > v } else { *x < v }).count() as i64)
}
