//! The wide form a statistics office keeps: one row (or column) per period,
//! one column (or row) per indicator under its Chinese name, turned into
//! readings by the workbook's mapping file.

use std::collections::BTreeSet;

use chrono::{Datelike, Timelike};
use chrono_tz::Tz;

use super::cells::{self, Period};
use super::errors::{column_name, Collector, Problem};
use super::grid::{Cell, Sheet};
use super::mapping::{Checked, CheckedSheet, DateCells, Indicator};
use super::{stamp, Reading};
use crate::readings::model::Labels;
use crate::time::Millis;

/// What reading a sheet's wide layout found, for the checks across sheets.
#[derive(Debug, Default)]
pub struct Seen {
    /// Normalized indicator names found on some sheet.
    pub found: BTreeSet<String>,
    /// Every header text met (to suggest a name for one not found).
    pub headers: BTreeSet<String>,
}

/// One figure axis entry: a column (periods in rows) or row (periods in
/// columns) holding one indicator.
struct Figure<'m> {
    at: u32,
    indicator: &'m Indicator,
}

/// Reads one sheet laid out as `layout` into `out`. `named`: the mapping
/// names this sheet (so a sheet without any indicator is a mistake).
#[allow(clippy::too_many_arguments)]
pub fn read_sheet(
    sheet: &Sheet,
    layout: &CheckedSheet,
    mapping: &Checked,
    named: bool,
    tz: Tz,
    seen: &mut Seen,
    errors: &mut Collector,
    out: &mut Vec<Reading>,
) {
    let found = if layout.periods_in_rows {
        read_period_rows(sheet, layout, mapping, tz, seen, errors, out)
    } else {
        read_period_columns(sheet, layout, mapping, tz, seen, errors, out)
    };
    if !found && named {
        no_indicators(errors, &sheet.name, layout.header_row, mapping);
    }
}

/// A period cell; text without a year (`6月`) takes the layout's `year`.
fn period(layout: &CheckedSheet, cell: &Cell) -> Result<Option<Period>, Problem> {
    let result = cells::period(cell);
    match (result, cell, layout.year) {
        (Err(p), Cell::Text(t), Some(year)) => cells::period_text(&format!("{year}年{}", t.trim()))
            .map(Some)
            .ok_or(p),
        (Err(_), Cell::Text(t), None) if yearless(t) => Err(Problem::new(
            format!("时期“{}”没有写年份", t.trim()),
            "请写成如 2021年6月；若整张表是同一年，可在映射文件这张表的设置中写 year: 2021",
            format!(
                "period `{}` has no year (write 2021年6月, or set `year` in the mapping)",
                t.trim()
            ),
        )),
        (result, _, _) => result,
    }
}

/// A period written without its year: `6月`, `1-6月`, `二季度`, `上半年`.
fn yearless(text: &str) -> bool {
    cells::period_text(&format!("2000年{}", text.trim())).is_some()
}

/// Whether a cell starts with one of the layout's `skip` texts.
fn skipped(layout: &CheckedSheet, c: &Cell) -> bool {
    cells::header(c).is_some_and(|t| layout.skip.iter().any(|s| t.starts_with(s.as_str())))
}

/// One row per period: indicators across the header row, periods down the
/// period column. Returns whether any indicator was found.
fn read_period_rows(
    sheet: &Sheet,
    layout: &CheckedSheet,
    mapping: &Checked,
    tz: Tz,
    seen: &mut Seen,
    errors: &mut Collector,
    out: &mut Vec<Reading>,
) -> bool {
    let name = &sheet.name;
    let (rows, cols) = sheet.end();
    let (h, key) = (layout.header_row, layout.key_column);
    let label_cols: Vec<u32> = layout.label_columns.iter().map(|(_, c)| *c).collect();
    let mut figures: Vec<Figure> = Vec::new();
    for c in 0..cols {
        if c == key || label_cols.contains(&c) {
            continue;
        }
        let Some(text) = cells::header(sheet.get(h, c)) else {
            continue;
        };
        seen.headers.insert(text.clone());
        let Some((written, ind)) = mapping.indicators.get(&text) else {
            continue;
        };
        if let Some(first) = figures.iter().find(|f| std::ptr::eq(f.indicator, ind)) {
            errors.cell(
                name,
                h,
                c,
                Problem::new(
                    format!(
                        "指标“{written}”在这张表中出现了两次（另见{}列）",
                        column_name(first.at)
                    ),
                    "请删除重复的一列，或在映射文件中用不同的名称区分",
                    format!("indicator `{written}` appears twice on the sheet"),
                ),
            );
            continue;
        }
        seen.found.insert(text);
        figures.push(Figure {
            at: c,
            indicator: ind,
        });
    }
    if figures.is_empty() {
        return false;
    }
    let month = month_dates(layout.dates, (h + 1..rows).map(|r| sheet.get(r, key)));
    for r in h + 1..rows {
        let period_cell = sheet.get(r, key);
        if skipped(layout, period_cell) {
            continue;
        }
        // A row without any figure (a note, a blank line, a sub-heading) is not data.
        let has_figure = figures
            .iter()
            .any(|f| !matches!(cells::value(sheet.get(r, f.at)), Ok(None)));
        if !has_figure {
            continue;
        }
        let time = match period(layout, period_cell) {
            Ok(Some(p)) => stamp(monthly(p, period_cell, month), tz),
            Ok(None) => Err(Problem::new(
                "这一行有数字，但时期这一格是空的",
                "请填写时期，如 2021年6月；若这一行不是数据（如合计行），请在映射文件的 skip 中列出时期一格的文字",
                "the row has figures but no period",
            )),
            Err(mut p) => {
                p.hint.push_str("；若这一行不是数据（如合计行），请在映射文件的 skip 中列出这一格开头的文字");
                Err(p)
            }
        };
        let time = match time {
            Ok(t) => t,
            Err(p) => {
                errors.cell(name, r, key, p);
                continue;
            }
        };
        for f in &figures {
            let labels = match labels_of(mapping, f.indicator, layout, |c| sheet.get(r, c)) {
                Ok(l) => l,
                Err(problems) => {
                    for (c, p) in problems {
                        errors.cell(name, r, c, p);
                    }
                    break;
                }
            };
            match cells::value(sheet.get(r, f.at)) {
                Ok(Some(v)) => out.push(Reading {
                    metric: f.indicator.metric.clone(),
                    labels,
                    time,
                    value: v,
                    sheet: name.clone(),
                    row: r,
                    col: f.at,
                }),
                Ok(None) => {}
                Err(p) => errors.cell(name, r, f.at, p),
            }
        }
    }
    true
}

/// One column per period: periods across the header row, indicators down
/// the indicator column. Returns whether any indicator was found.
fn read_period_columns(
    sheet: &Sheet,
    layout: &CheckedSheet,
    mapping: &Checked,
    tz: Tz,
    seen: &mut Seen,
    errors: &mut Collector,
    out: &mut Vec<Reading>,
) -> bool {
    let name = &sheet.name;
    let (rows, cols) = sheet.end();
    let (h, key) = (layout.header_row, layout.key_column);
    let label_cols: Vec<u32> = layout.label_columns.iter().map(|(_, c)| *c).collect();
    let header_cells: Vec<(u32, &Cell)> = (0..cols)
        .filter(|c| *c != key && !label_cols.contains(c))
        .map(|c| (c, sheet.get(h, c)))
        .collect();
    let month = month_dates(layout.dates, header_cells.iter().map(|(_, c)| *c));
    let mut periods: Vec<(u32, Result<Millis, Problem>)> = Vec::new();
    for (c, head) in header_cells {
        if *head == Cell::Empty || skipped(layout, head) {
            continue;
        }
        match period(layout, head) {
            Ok(Some(p)) => periods.push((c, stamp(monthly(p, head, month), tz))),
            Ok(None) => {}
            // `单位`, `备注` and the like are not periods; a header that tries
            // to be one (it has a year in it) is a mistake.
            Err(p) if looks_like_period(head) => errors.cell(name, h, c, p),
            Err(_) => {}
        }
    }
    let mut found = false;
    for r in h + 1..rows {
        let key_cell = sheet.get(r, key);
        if skipped(layout, key_cell) {
            continue;
        }
        let Some(text) = cells::header(key_cell) else {
            continue;
        };
        seen.headers.insert(text.clone());
        let Some((_, ind)) = mapping.indicators.get(&text) else {
            continue;
        };
        seen.found.insert(text);
        found = true;
        let labels = match labels_of(mapping, ind, layout, |c| sheet.get(r, c)) {
            Ok(l) => l,
            Err(problems) => {
                for (c, p) in problems {
                    errors.cell(name, r, c, p);
                }
                continue;
            }
        };
        for (c, time) in &periods {
            match cells::value(sheet.get(r, *c)) {
                // A period header without an instant (a daylight-saving gap)
                // is reported once, at the header, below.
                Ok(Some(v)) => {
                    if let Ok(t) = time {
                        out.push(Reading {
                            metric: ind.metric.clone(),
                            labels: labels.clone(),
                            time: *t,
                            value: v,
                            sheet: name.clone(),
                            row: r,
                            col: *c,
                        });
                    }
                }
                Ok(None) => {}
                Err(p) => errors.cell(name, r, *c, p),
            }
        }
    }
    for (c, time) in periods {
        if let Err(p) = time {
            errors.cell(name, h, c, p);
        }
    }
    found
}

/// The labels of an indicator's reading on one row: the workbook's, the
/// indicator's, then the label columns'. Problems come with their column.
fn labels_of<'s>(
    mapping: &Checked,
    ind: &Indicator,
    layout: &CheckedSheet,
    cell: impl Fn(u32) -> &'s Cell,
) -> Result<Labels, Vec<(u32, Problem)>> {
    let mut labels: Labels = mapping.labels.clone();
    labels.extend(ind.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut problems = Vec::new();
    for (name, c) in &layout.label_columns {
        match cells::label(cell(*c)) {
            Ok(Some(v)) => {
                labels.insert(name.clone(), v);
            }
            Ok(None) => {}
            Err(p) => problems.push((*c, p)),
        }
    }
    if problems.is_empty() {
        Ok(labels)
    } else {
        Err(problems)
    }
}

/// Whether date-typed periods on this axis mean months: when told so, or
/// (auto) when every date on it is the 1st at midnight.
fn month_dates<'a>(dates: DateCells, axis: impl Iterator<Item = &'a Cell>) -> bool {
    match dates {
        DateCells::Day => false,
        DateCells::Month => true,
        DateCells::Auto => {
            let mut any = false;
            for c in axis {
                if let Cell::Date(d) = c {
                    any = true;
                    if d.day() != 1 || d.num_seconds_from_midnight() != 0 {
                        return false;
                    }
                }
            }
            any
        }
    }
}

/// A period read from a date cell, as its month when the axis holds months.
fn monthly(p: Period, cell: &Cell, month_dates: bool) -> Period {
    match cell {
        Cell::Date(d) if month_dates => Period::month_of(d.date()).unwrap_or(p),
        _ => p,
    }
}

/// A header that tries to be a period: text with a year-like number in it.
fn looks_like_period(c: &Cell) -> bool {
    match c {
        Cell::Text(t) if yearless(t) => true,
        Cell::Text(t) => {
            let t = cells::normalize(t);
            let digits: Vec<&str> = t
                .split(|ch: char| !ch.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .collect();
            digits
                .iter()
                .any(|d| d.len() >= 4 && (d.starts_with("19") || d.starts_with("20")))
        }
        Cell::Number { .. } => true,
        Cell::Date(_) => true,
        _ => false,
    }
}

fn no_indicators(errors: &mut Collector, sheet: &str, header_row: u32, mapping: &Checked) {
    let names: Vec<&str> = mapping
        .indicators
        .values()
        .map(|(w, _)| w.as_str())
        .take(3)
        .collect();
    errors.sheet(
        sheet,
        Problem::new(
            format!(
                "这张表第{}行（映射文件 {} 中 header_row 所指的行）没有找到映射文件列出的任何指标（如“{}”）",
                header_row + 1,
                mapping.file,
                names.join("”“")
            ),
            "请核对 header_row 和 period_column / indicator_column 是否指向表头和时期所在的行列，以及指标名称是否与表中一致",
            "no indicator of the mapping found on the sheet's header row",
        ),
    );
}
