//! The mapping file of a wide workbook: which sheets, where the periods and
//! the indicator names are, and which reading each Chinese indicator name
//! becomes. RON, beside the workbook (`人社.xlsx.ron` or `人社.ron`) or named
//! with `ingest --mapping`. The format is documented in docs/excel.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::cells::normalize;
use super::errors::{parse_column, CellError};
use crate::readings::model::is_valid_name;

/// A whole mapping file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// How the sheets are laid out; one entry per sheet (or one for all).
    pub sheets: Vec<SheetLayout>,
    /// Indicator name as written in the sheet → the reading it becomes.
    pub indicators: BTreeMap<String, Indicator>,
    /// Labels put on every reading of the workbook, e.g. `{"county": "南宫"}`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Where things are on a sheet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SheetLayout {
    /// The sheet's name; `None`: every visible sheet not named in another entry.
    #[serde(default)]
    pub name: Option<String>,
    pub layout: Layout,
    /// Label name → column (periods in rows) holding that label's value for
    /// each row, e.g. `{"county": "B"}`.
    #[serde(default)]
    pub label_columns: BTreeMap<String, String>,
    /// Texts in the period cell (or indicator cell) that mark rows or columns
    /// to leave out, such as `合计` or `注：`; a cell starting with one is skipped.
    #[serde(default)]
    pub skip: Vec<String>,
    /// How date-typed period cells are read.
    #[serde(default)]
    pub dates: DateCells,
    /// The year of periods written without one (`6月`, `1-6月`, `二季度`,
    /// `上半年`), for sheets whose year is only in the title or sheet name.
    #[serde(default)]
    pub year: Option<i32>,
}

/// Where the periods and the indicator names are.
#[derive(Debug, Clone, Deserialize)]
pub enum Layout {
    /// One row per period: the period in `period_column`, the indicator names
    /// across `header_row`, one column per indicator.
    PeriodPerRow {
        period_column: String,
        header_row: u32,
    },
    /// One column per period: the periods across `header_row`, the indicator
    /// names down `indicator_column`, one row per indicator.
    PeriodPerColumn {
        header_row: u32,
        indicator_column: String,
    },
}

/// Date-typed period cells: Excel turns a typed `2021-06` into the date
/// 2021-06-01, so a period axis of first-of-month dates usually means months.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum DateCells {
    /// Months when every date on the sheet's period axis is the 1st; days otherwise.
    #[default]
    Auto,
    /// Always the day typed.
    Day,
    /// Always the month of the date.
    Month,
}

/// The reading an indicator becomes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    pub metric: String,
    /// Labels of this indicator's readings, e.g. `{"kind": "城镇"}`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A mapping checked and ready: columns as numbers, names normalized.
#[derive(Debug, Clone)]
pub struct Checked {
    pub sheets: Vec<CheckedSheet>,
    /// Normalized indicator name → (name as written in the mapping, indicator).
    pub indicators: BTreeMap<String, (String, Indicator)>,
    pub labels: BTreeMap<String, String>,
    /// Where the mapping came from, for messages.
    pub file: String,
}

#[derive(Debug, Clone)]
pub struct CheckedSheet {
    pub name: Option<String>,
    pub periods_in_rows: bool,
    /// 0-based: the period column (in rows) or indicator column (in columns).
    pub key_column: u32,
    /// 0-based header row.
    pub header_row: u32,
    /// (label name, 0-based column).
    pub label_columns: Vec<(String, u32)>,
    pub skip: Vec<String>,
    pub dates: DateCells,
    pub year: Option<i32>,
}

/// The mapping file for a workbook, if one lies beside it:
/// `人社.xlsx.ron`, then `人社.ron`.
pub fn beside(workbook: &Path) -> Option<PathBuf> {
    let mut with_ron = workbook.as_os_str().to_owned();
    with_ron.push(".ron");
    let first = PathBuf::from(with_ron);
    if first.is_file() {
        return Some(first);
    }
    let second = workbook.with_extension("ron");
    second.is_file().then_some(second)
}

fn problem(
    file: &str,
    line: usize,
    col: usize,
    message: String,
    hint: &str,
    english: String,
) -> CellError {
    CellError {
        file: file.to_owned(),
        sheet: None,
        cell: None,
        line: (line > 0).then_some((line, col.max(1))),
        message,
        hint: hint.to_owned(),
        english,
    }
}

/// Parses and checks a mapping file's text; `file` names it in messages.
/// All problems found are returned.
pub fn parse(file: &str, text: &str) -> Result<Checked, Vec<CellError>> {
    let options =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let mapping: Mapping = options.from_str(text).map_err(|e| {
        vec![problem(
            file,
            e.span.start.line,
            e.span.start.col,
            format!("映射文件写法有误：{}", e.code),
            "请对照 docs/excel.md 中的示例检查括号、引号、逗号和字段名",
            format!("mapping file: {}", e.code),
        )]
    })?;
    check(file, text, mapping)
}

/// 1-based line and column of the first occurrence of `needle` in `text`
/// (to point at a bad entry; the RON parser gives spans only for syntax).
fn locate(text: &str, needle: &str) -> (usize, usize) {
    match text.find(needle) {
        Some(off) => crate::diag::line_col(text, off),
        None => (0, 0),
    }
}

fn check(file: &str, text: &str, m: Mapping) -> Result<Checked, Vec<CellError>> {
    let mut errors = Vec::new();
    let mut bad = |needle: &str, message: String, hint: &str, english: String| {
        let (line, col) = locate(text, needle);
        errors.push(problem(file, line, col, message, hint, english));
    };
    let label_name = |name: &str, bad: &mut dyn FnMut(&str, String, &str, String)| {
        if !is_valid_name(name) {
            bad(
                &format!("\"{name}\""),
                format!("分类名“{name}”不合规：只能用英文字母、数字和下划线，且不以数字开头"),
                "如 county、section、item",
                format!("label name `{name}` is not valid: use [A-Za-z_][A-Za-z0-9_]*"),
            );
        }
    };
    if m.sheets.is_empty() {
        bad(
            "sheets",
            "映射文件没有列出任何工作表（sheets 为空）".into(),
            "至少写一项，如 sheets: [(layout: PeriodPerRow(period_column: \"A\", header_row: 2))]",
            "mapping lists no sheets".into(),
        );
    }
    if m.indicators.is_empty() {
        bad(
            "indicators",
            "映射文件没有列出任何指标（indicators 为空）".into(),
            "如 indicators: { \"城镇登记失业率\": (metric: \"unemployment_rate\") }",
            "mapping lists no indicators".into(),
        );
    }
    let mut sheets = Vec::new();
    let mut unnamed = 0;
    for s in &m.sheets {
        if s.name.is_none() {
            unnamed += 1;
        }
        let (periods_in_rows, key, header_row, key_field) = match &s.layout {
            Layout::PeriodPerRow {
                period_column,
                header_row,
            } => (true, period_column, *header_row, "period_column"),
            Layout::PeriodPerColumn {
                header_row,
                indicator_column,
            } => (false, indicator_column, *header_row, "indicator_column"),
        };
        let key_column = parse_column(key);
        if key_column.is_none() {
            bad(
                &format!("\"{key}\""),
                format!("{key_field} 应是列字母（如 \"A\"），而不是“{key}”"),
                "列用 Excel 列标字母表示：A、B、…、Z、AA",
                format!("{key_field} `{key}` is not a column letter"),
            );
        }
        if header_row == 0 {
            bad(
                "header_row",
                "header_row 是表头所在的行号，从 1 开始".into(),
                "如表头在第2行，写 header_row: 2",
                "header_row counts from 1".into(),
            );
        }
        if s.year.is_some_and(|y| !(1900..=2100).contains(&y)) {
            bad(
                "year",
                "year 应是四位年份，如 2021".into(),
                "year 用于表中只写了月份（如“6月”）的时期",
                "year must be a year such as 2021".into(),
            );
        }
        let mut label_columns = Vec::new();
        for (name, col) in &s.label_columns {
            label_name(name, &mut bad);
            match parse_column(col) {
                Some(c) => label_columns.push((name.clone(), c)),
                None => bad(
                    &format!("\"{col}\""),
                    format!("label_columns 中“{name}”的列应是列字母（如 \"B\"），而不是“{col}”"),
                    "列用 Excel 列标字母表示：A、B、…、Z、AA",
                    format!("label column `{col}` is not a column letter"),
                ),
            }
        }
        sheets.push(CheckedSheet {
            name: s.name.clone(),
            periods_in_rows,
            key_column: key_column.unwrap_or(0),
            header_row: header_row.saturating_sub(1),
            label_columns,
            skip: s
                .skip
                .iter()
                .map(|t| normalize(t))
                .filter(|t| !t.is_empty())
                .collect(),
            dates: s.dates,
            year: s.year,
        });
    }
    if unnamed > 1 {
        bad(
            "sheets",
            "有多项工作表没有写 name：只能有一项适用于“其余所有工作表”".into(),
            "请给每项写上工作表名，如 name: \"2021年\"",
            "more than one sheet entry without a name".into(),
        );
    }
    for name in m.labels.keys() {
        label_name(name, &mut bad);
    }
    let mut indicators: BTreeMap<String, (String, Indicator)> = BTreeMap::new();
    for (name, ind) in &m.indicators {
        if !is_valid_name(&ind.metric) {
            bad(
                &format!("\"{}\"", ind.metric),
                format!("指标“{name}”对应的 metric“{}”不合规：只能用英文字母、数字和下划线，且不以数字开头", ind.metric),
                "请用规则中使用的指标名，如 unemployment_rate",
                format!("metric `{}` is not a valid name", ind.metric),
            );
        }
        for label in ind.labels.keys() {
            label_name(label, &mut bad);
        }
        let key = normalize(name);
        if let Some((first, _)) = indicators.get(&key) {
            bad(
                &format!("\"{name}\""),
                format!("指标名“{name}”与“{first}”重复（忽略空格和全角半角后相同）"),
                "每个指标名只写一次",
                format!("indicator `{name}` is listed twice"),
            );
            continue;
        }
        indicators.insert(key, (name.clone(), ind.clone()));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Checked {
        sheets,
        indicators,
        labels: m.labels,
        file: file.to_owned(),
    })
}

impl Checked {
    /// The layout for a sheet: the entry naming it, else the unnamed entry.
    pub fn layout_for(&self, sheet: &str) -> Option<&CheckedSheet> {
        self.sheets
            .iter()
            .find(|s| s.name.as_deref() == Some(sheet))
            .or_else(|| self.sheets.iter().find(|s| s.name.is_none()))
    }

    /// Where an indicator is written in the mapping file (for "not found").
    pub fn locate_indicator(&self, text: &str, name: &str) -> (usize, usize) {
        locate(text, &format!("\"{name}\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
// 人社局月报：每行一个月
(
    sheets: [
        (name: "月报", layout: PeriodPerRow(period_column: "A", header_row: 2), skip: ["合计"]),
        (layout: PeriodPerColumn(header_row: 1, indicator_column: "A"), label_columns: {"county": "B"}),
    ],
    indicators: {
        "城镇登记失业率（%）": (metric: "unemployment_rate"),
        "新增城镇就业": (metric: "new_urban_jobs", labels: {"kind": "total"}),
    },
    labels: {"county": "南宫"},
)
"#;

    #[test]
    fn parses_a_good_mapping() {
        let m = parse("m.ron", GOOD).unwrap();
        assert_eq!(m.sheets.len(), 2);
        assert!(m.sheets[0].periods_in_rows);
        assert_eq!((m.sheets[0].key_column, m.sheets[0].header_row), (0, 1));
        assert_eq!(m.sheets[1].label_columns, [("county".to_string(), 1)]);
        assert!(m.indicators.contains_key("城镇登记失业率(%)"));
        assert_eq!(m.layout_for("月报").unwrap().header_row, 1);
        assert_eq!(m.layout_for("其他").unwrap().header_row, 0);
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = parse("m.ron", "(\n  sheets: [,\n)").unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line.map(|l| l.0), Some(2), "{e:?}");
        assert!(e[0].message.starts_with("映射文件写法有误"), "{e:?}");
    }

    #[test]
    fn unknown_fields_are_named() {
        let e = parse(
            "m.ron",
            r#"(sheets: [(layout: PeriodPerRow(period_column: "A", header_row: 1), colour: 1)], indicators: {})"#,
        )
        .unwrap_err();
        assert!(e[0].message.contains("colour"), "{e:?}");
    }

    #[test]
    fn bad_entries_are_all_reported_with_lines() {
        let text = r#"(
    sheets: [(layout: PeriodPerRow(period_column: "1", header_row: 0))],
    indicators: {
        "失业率": (metric: "unemployment-rate"),
    },
    labels: {"县": "南宫"},
)"#;
        let e = parse("m.ron", text).unwrap_err();
        let msgs: Vec<String> = e
            .iter()
            .map(|e| format!("{}: {}", e.place(), e.message))
            .collect();
        assert_eq!(e.len(), 4, "{msgs:#?}");
        assert!(msgs[0].starts_with("m.ron:2:"), "{msgs:#?}");
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("m.ron:4:") && m.contains("unemployment-rate")),
            "{msgs:#?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("m.ron:6:") && m.contains("分类名“县”")),
            "{msgs:#?}"
        );
    }
}
