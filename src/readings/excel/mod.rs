//! Workbooks (`.xlsx`, `.xls`, `.ods`) as readings, for `ingest` and uploads.
//!
//! Two shapes: the long form (a `metric,time,value,…` table, as the CSV) when
//! no mapping file is given, and the wide form a statistics office keeps (a
//! row or column per period, an indicator per column or row under its Chinese
//! name) read through a mapping file (`mapping.rs`, docs/excel.md).
//!
//! The result is the same [`Batch`] the CSV and JSON parsers produce, so the
//! store path is shared. All or nothing: every problem of a workbook is
//! collected with its file, sheet and cell, and a workbook with any problem
//! yields no readings at all.
//!
//! Layout: `grid` opens the file (calamine) into cells with merged cells
//! filled and formulas checked; `cells` reads one cell as a number, period or
//! label; `long` and `wide` read a sheet; `errors` words the problems.

pub mod cells;
pub mod errors;
pub mod grid;
pub mod long;
pub mod mapping;
pub mod upload;
pub mod wide;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;

pub use errors::{CellError, WorkbookError};
pub use grid::Kind;
pub use mapping::Checked as Mapping;

use crate::readings::model::{Batch, Labels};
use crate::time::Millis;
use cells::Period;
use errors::{cell_name, Collector, Problem};

/// One reading and the cell its value came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reading {
    pub metric: String,
    pub labels: Labels,
    pub time: Millis,
    pub value: f64,
    pub sheet: String,
    /// 0-based row and column of the value's cell.
    #[serde(skip)]
    pub row: u32,
    #[serde(skip)]
    pub col: u32,
}

impl Reading {
    /// The value's cell in A1 notation (`C7`).
    pub fn cell(&self) -> String {
        cell_name(self.row, self.col)
    }
}

/// Whether a path names a workbook this module reads.
pub fn is_workbook(path: &Path) -> bool {
    Kind::from_path(path).is_some()
}

/// A period's stamp as an instant in `tz`.
fn stamp(p: Period, tz: Tz) -> Result<Millis, Problem> {
    crate::time::local_to_millis(p.stamp, tz).ok_or_else(|| {
        Problem::new(
            format!("{} 在时区 {tz} 中不存在（夏令时跳过的时刻）", p.stamp),
            "请改为相邻的时刻",
            format!("{} does not exist in {tz}", p.stamp),
        )
    })
}

/// Reads a workbook's bytes. `name` names the file in messages; `mapping`
/// (with its text, to point at entries) selects the wide form.
pub fn read(
    name: &str,
    bytes: &[u8],
    kind: Kind,
    mapping: Option<(&Mapping, &str)>,
    tz: Tz,
) -> Result<Vec<Reading>, WorkbookError> {
    let (readings, errors) = read_all(name, bytes, kind, mapping, tz);
    errors.map(|()| readings)
}

/// [`read`], keeping the readings that were good beside the problems (for a
/// preview that shows both; a workbook with problems is never stored).
pub fn read_all(
    name: &str,
    bytes: &[u8],
    kind: Kind,
    mapping: Option<(&Mapping, &str)>,
    tz: Tz,
) -> (Vec<Reading>, Result<(), WorkbookError>) {
    let mut errors = Collector::new(name);
    let sheets = grid::open(bytes, kind, &mut errors);
    let mut out = Vec::new();
    match mapping {
        Some((m, text)) => read_wide(&sheets, m, text, tz, &mut errors, &mut out),
        None => {
            for sheet in sheets.iter().filter(|s| !s.hidden) {
                let hint = if long::looks_long(sheet) || sheet.is_empty() {
                    String::new()
                } else {
                    format!(
                        "；若这是按时期排列的宽表，请在工作簿旁放映射文件 {name}.ron（写法见 docs/excel.md）"
                    )
                };
                long::read_sheet(sheet, tz, &hint, &mut errors, &mut out);
            }
        }
    }
    check_duplicates(&out, &mut errors);
    if out.is_empty() && errors.is_empty() {
        errors.file_problem(Problem::new(
            "工作簿中没有读到任何数据",
            if mapping.is_some() {
                "请确认表中填有数字，且映射文件中的指标名与表头一致"
            } else {
                "请确认工作表的第一行是 metric、time、value 等列名，下面各行是数据"
            },
            "no readings in the workbook",
        ));
    }
    (out, errors.finish())
}

fn read_wide(
    sheets: &[grid::Sheet],
    m: &Mapping,
    text: &str,
    tz: Tz,
    errors: &mut Collector,
    out: &mut Vec<Reading>,
) {
    let mut seen = wide::Seen::default();
    let mut sheet_missing = false;
    for entry in &m.sheets {
        if let Some(want) = &entry.name {
            if !sheets.iter().any(|s| &s.name == want) {
                sheet_missing = true;
                let (line, col) = mapping_place(text, &format!("\"{want}\""));
                let names: Vec<&str> = sheets.iter().map(|s| s.name.as_str()).collect();
                errors.push(CellError {
                    file: m.file.clone(),
                    sheet: None,
                    cell: None,
                    line: (line > 0).then_some((line, col)),
                    message: format!("工作簿 {} 中没有名为“{want}”的工作表", errors.file()),
                    hint: format!("工作簿中的工作表有：{}", names.join("、")),
                    english: format!("no sheet named `{want}`"),
                });
            }
        }
    }
    for sheet in sheets {
        let named = m
            .sheets
            .iter()
            .any(|s| s.name.as_deref() == Some(&sheet.name));
        if !named && sheet.hidden {
            continue;
        }
        let Some(layout) = m.layout_for(&sheet.name) else {
            continue;
        };
        wide::read_sheet(sheet, layout, m, named, tz, &mut seen, errors, out);
    }
    for (key, (written, _)) in &m.indicators {
        // A sheet not found already explains indicators not found.
        if seen.found.contains(key) || sheet_missing {
            continue;
        }
        let (line, col) = m.locate_indicator(text, written);
        let hint = match closest(key, &seen.headers) {
            Some(h) => format!("表中有“{h}”，是否指它？名称须与表头一致（空格、全角半角不计）"),
            None => "请核对指标名是否与表头一致，以及 header_row、列字母是否正确".to_owned(),
        };
        errors.push(CellError {
            file: m.file.clone(),
            sheet: None,
            cell: None,
            line: (line > 0).then_some((line, col)),
            message: format!(
                "映射文件中的指标“{written}”在工作簿 {} 中没有找到",
                errors.file()
            ),
            hint,
            english: format!("indicator `{written}` not found in the workbook"),
        });
    }
}

fn mapping_place(text: &str, needle: &str) -> (usize, usize) {
    text.find(needle)
        .map_or((0, 0), |off| crate::diag::line_col(text, off))
}

/// The header most like `want`: one containing it (or contained), else the
/// nearest by edit distance within a third of its length.
fn closest<'a>(want: &str, headers: impl IntoIterator<Item = &'a String>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for h in headers {
        let d = if h.contains(want) || want.contains(h.as_str()) {
            0
        } else {
            edit_distance(want, h)
        };
        if d <= want.chars().count() / 3 && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, h));
        }
    }
    best.map(|(_, h)| h)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The same reading (metric, labels, time) twice with different values: the
/// second cell is named, with the first.
fn check_duplicates(readings: &[Reading], errors: &mut Collector) {
    let mut first: HashMap<(&str, &Labels, Millis), &Reading> = HashMap::new();
    for r in readings {
        match first.entry((&r.metric, &r.labels, r.time)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(r);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let a = *o.get();
                if a.value != r.value {
                    errors.cell(
                        &r.sheet,
                        r.row,
                        r.col,
                        Problem::new(
                            format!(
                                "同一指标同一时期有两个不同的数：这里是 {}，{}!{} 是 {}",
                                r.value,
                                a.sheet,
                                a.cell(),
                                a.value
                            ),
                            "请核对两处，只保留正确的一个",
                            format!(
                                "{} at the same time also in {}!{} with another value",
                                r.metric,
                                a.sheet,
                                a.cell()
                            ),
                        ),
                    );
                }
            }
        }
    }
}

/// The readings as a [`Batch`] for the store (duplicates of equal value once).
pub fn to_batch(readings: &[Reading]) -> Batch {
    let mut batch = Batch::new();
    let mut seen = std::collections::HashSet::new();
    for r in readings {
        if seen.insert((&r.metric, &r.labels, r.time)) {
            batch.push(&r.metric, r.labels.clone(), r.time, r.value);
        }
    }
    batch
}

/// A workbook on disk: the mapping is `mapping` if given, else one beside
/// the workbook (`人社.xlsx.ron`, `人社.ron`), else none (long form).
/// Returns the readings and the mapping file used.
pub fn read_path(
    path: &Path,
    mapping: Option<&Path>,
    tz: Tz,
) -> Result<(Vec<Reading>, Option<PathBuf>), WorkbookError> {
    let name = path.display().to_string();
    let fail = |file: String, message: String, english: String| WorkbookError {
        errors: vec![CellError {
            file,
            sheet: None,
            cell: None,
            line: None,
            message,
            hint: String::new(),
            english,
        }],
        total: 1,
    };
    let Some(kind) = Kind::from_path(path) else {
        return Err(fail(
            name,
            "不是工作簿（文件名应以 .xlsx、.xls 或 .ods 结尾）".into(),
            "not a workbook (.xlsx, .xls, .ods)".into(),
        ));
    };
    let bytes = std::fs::read(path).map_err(|e| {
        fail(
            name.clone(),
            format!("无法打开文件：{e}"),
            format!("cannot open: {e}"),
        )
    })?;
    let mapping_path = mapping
        .map(Path::to_path_buf)
        .or_else(|| mapping::beside(path));
    let mapping = match &mapping_path {
        None => None,
        Some(p) => {
            let file = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|e| {
                fail(
                    file.clone(),
                    format!("无法读取映射文件：{e}"),
                    format!("cannot read the mapping file: {e}"),
                )
            })?;
            let m = mapping::parse(&file, &text).map_err(|errors| WorkbookError {
                total: errors.len(),
                errors,
            })?;
            Some((m, text))
        }
    };
    let readings = read(
        &name,
        &bytes,
        kind,
        mapping.as_ref().map(|(m, t)| (m, t.as_str())),
        tz,
    )?;
    Ok((readings, mapping_path))
}

#[cfg(test)]
mod tests;
