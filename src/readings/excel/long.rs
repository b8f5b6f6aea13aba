//! The long form on a sheet: the same table as the CSV format (a header row
//! naming `metric`, `time`, `value` and label columns, one reading per row),
//! with the same header rules (names trimmed and case-sensitive, other
//! columns are labels, an empty label cell means the label is absent).

use chrono_tz::Tz;

use super::cells;
use super::errors::{column_name, Collector, Problem};
use super::grid::{Cell, Sheet};
use super::{stamp, Reading};
use crate::readings::model::{is_valid_name, Labels};
use crate::time::Millis;

/// Whether the first non-empty row of `sheet` names `metric`, `time` and `value`.
pub fn looks_long(sheet: &Sheet) -> bool {
    let Some(h) = header_row(sheet) else {
        return false;
    };
    let names: Vec<String> = (0..sheet.end().1)
        .filter_map(|c| match sheet.get(h, c) {
            Cell::Text(t) => Some(t.trim().to_owned()),
            _ => None,
        })
        .collect();
    ["metric", "time", "value"]
        .iter()
        .all(|n| names.iter().any(|x| x == n))
}

fn header_row(sheet: &Sheet) -> Option<u32> {
    let (rows, cols) = sheet.end();
    (0..rows).find(|&r| (0..cols).any(|c| *sheet.get(r, c) != Cell::Empty))
}

fn row_is_empty(sheet: &Sheet, r: u32) -> bool {
    (0..sheet.end().1).all(|c| match sheet.get(r, c) {
        Cell::Empty => true,
        Cell::Text(t) => t.trim().is_empty(),
        _ => false,
    })
}

/// Reads a long-form sheet into `out`; problems go to `errors`.
pub fn read_sheet(
    sheet: &Sheet,
    tz: Tz,
    has_mapping_hint: &str,
    errors: &mut Collector,
    out: &mut Vec<Reading>,
) {
    let Some(h) = header_row(sheet) else {
        return; // an empty sheet holds no readings and no problems
    };
    let name = &sheet.name;
    let (rows, cols) = sheet.end();
    let (mut metric, mut time, mut value) = (None, None, None);
    let mut labels: Vec<(u32, String)> = Vec::new();
    let mut header_ok = true;
    for c in 0..cols {
        let text = match sheet.get(h, c) {
            Cell::Empty => String::new(),
            Cell::Text(t) => t.trim().to_owned(),
            _ => {
                header_ok = false;
                errors.cell(
                    name,
                    h,
                    c,
                    Problem::new(
                        "表头这一格应是列名（metric、time、value 或分类名），而不是数字或日期",
                        "请在表头行写列名",
                        format!("header cell of column {} is not a name", column_name(c)),
                    ),
                );
                continue;
            }
        };
        let slot = match text.as_str() {
            "metric" => &mut metric,
            "time" => &mut time,
            "value" => &mut value,
            "" => {
                // A column without a name is fine while it is empty below.
                if let Some(r) = (h + 1..rows).find(|&r| *sheet.get(r, c) != Cell::Empty) {
                    header_ok = false;
                    errors.cell(
                        name,
                        h,
                        c,
                        Problem::new(
                            format!(
                                "第{}列有数据（如 {}），但表头是空的",
                                column_name(c),
                                super::errors::cell_name(r, c)
                            ),
                            "请在表头写上列名（分类名，如 county），或删除这一列",
                            format!("column {} has data but no name", column_name(c)),
                        ),
                    );
                }
                continue;
            }
            other => {
                if labels.iter().any(|(_, n)| n == other) {
                    header_ok = false;
                    errors.cell(
                        name,
                        h,
                        c,
                        Problem::new(
                            format!("列名“{other}”出现了两次"),
                            "每个列名只写一次",
                            format!("column `{other}` appears twice"),
                        ),
                    );
                } else if !is_valid_name(other) {
                    header_ok = false;
                    errors.cell(name, h, c, Problem::new(
                        format!("列名“{other}”不合规：分类列名只能用英文字母、数字和下划线，且不以数字开头"),
                        format!("metric、time、value 以外的列是分类，如 county、section{has_mapping_hint}"),
                        format!("column name `{other}` is not valid (columns other than `metric`, `time` and `value` are labels)"),
                    ));
                } else {
                    labels.push((c, other.to_owned()));
                }
                continue;
            }
        };
        if slot.replace(c).is_some() {
            header_ok = false;
            errors.cell(
                name,
                h,
                c,
                Problem::new(
                    format!("列名“{text}”出现了两次"),
                    "每个列名只写一次",
                    format!("column `{text}` appears twice"),
                ),
            );
        }
    }
    for (field, slot) in [("metric", metric), ("time", time), ("value", value)] {
        if slot.is_none() {
            header_ok = false;
            let case = (0..cols)
                .filter_map(|c| match sheet.get(h, c) {
                    Cell::Text(t) if t.trim().eq_ignore_ascii_case(field) => {
                        Some(t.trim().to_owned())
                    }
                    _ => None,
                })
                .next()
                .map(|found| format!("（列名区分大小写：表中是“{found}”，应为“{field}”）"))
                .unwrap_or_default();
            errors.cell(
                name,
                h,
                0,
                Problem::new(
                    format!("表头（第{}行）缺少“{field}”列", h + 1),
                    format!(
                        "长表的表头须有 metric、time、value 三列，其余列为分类{case}{has_mapping_hint}"
                    ),
                    format!("missing column `{field}` in the header row"),
                ),
            );
        }
    }
    let (Some(metric), Some(time), Some(value), true) = (metric, time, value, header_ok) else {
        return;
    };
    for r in h + 1..rows {
        if row_is_empty(sheet, r) {
            continue;
        }
        let mut ok = true;
        let m = match sheet.get(r, metric) {
            Cell::Text(t) if is_valid_name(t.trim()) => Some(t.trim().to_owned()),
            Cell::Empty => {
                ok = false;
                errors.cell(name, r, metric, missing("metric"));
                None
            }
            Cell::Text(t) if t.trim().is_empty() => {
                ok = false;
                errors.cell(name, r, metric, missing("metric"));
                None
            }
            other => {
                ok = false;
                let shown = cells::label(other).ok().flatten().unwrap_or_default();
                errors.cell(
                    name,
                    r,
                    metric,
                    Problem::new(
                        format!(
                            "指标名“{shown}”不合规：只能用英文字母、数字和下划线，且不以数字开头"
                        ),
                        "请用规则中使用的指标名，如 unemployment_rate",
                        format!("metric `{shown}` is not a valid name"),
                    ),
                );
                None
            }
        };
        let t = match time_of(sheet.get(r, time), tz) {
            Ok(Some(ms)) => Some(ms),
            Ok(None) => {
                ok = false;
                errors.cell(name, r, time, missing("time"));
                None
            }
            Err(p) => {
                ok = false;
                errors.cell(name, r, time, p);
                None
            }
        };
        let v = match cells::value(sheet.get(r, value)) {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                ok = false;
                errors.cell(name, r, value, missing("value"));
                None
            }
            Err(p) => {
                ok = false;
                errors.cell(name, r, value, p);
                None
            }
        };
        let mut row_labels = Labels::new();
        for (c, label) in &labels {
            match cells::label(sheet.get(r, *c)) {
                Ok(Some(text)) => {
                    row_labels.insert(label.clone(), text);
                }
                Ok(None) => {}
                Err(p) => {
                    ok = false;
                    errors.cell(name, r, *c, p);
                }
            }
        }
        if let (Some(m), Some(t), Some(v), true) = (m, t, v, ok) {
            out.push(Reading {
                metric: m,
                labels: row_labels,
                time: t,
                value: v,
                sheet: name.clone(),
                row: r,
                col: value,
            });
        }
    }
}

fn missing(field: &str) -> Problem {
    let hint = match field {
        "metric" => "请填写指标名，如 unemployment_rate",
        "time" => "请填写时间，如 2021-06-30 或 2021年6月",
        _ => "请填写数字；这一行若无数据，请整行删除",
    };
    Problem::new(
        format!("缺少 {field}（这一格是空的）"),
        hint,
        format!("missing `{field}`"),
    )
}

/// A long-form time: what the CSV accepts (RFC 3339, local `2021-03-01` /
/// `2021-03-01T09:00`), else any period or date (`2021年6月`, `2021/6/30`, a
/// date cell, an Excel serial number).
fn time_of(cell: &Cell, tz: Tz) -> Result<Option<Millis>, Problem> {
    if let Cell::Text(t) = cell {
        if let Ok(ms) = crate::time::parse_time(t, tz) {
            return Ok(Some(ms));
        }
    }
    match cells::period(cell)? {
        Some(p) => stamp(p, tz).map(Some),
        None => Ok(None),
    }
}
