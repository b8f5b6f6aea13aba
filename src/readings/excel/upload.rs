//! An uploaded file — a workbook, or CSV / JSON / NDJSON — read into what it
//! would store, without storing: the readings for a preview table and every
//! problem with its cell (`Sheet1!C7`) or line. The upload page shows this and,
//! once the official confirms, stores [`Preview::batch`], which is there only
//! when nothing is wrong (all or nothing, as `ingest`).
//!
//! It lives beside the workbook reader because workbooks are what officials
//! upload; CSV and JSON go through the same parsers as `ingest` and the API.

use chrono_tz::Tz;

use super::errors::{CellError, MAX_ERRORS};
use super::{read_all, Kind, Mapping};
use crate::readings::model::{Batch, Format, Labels};
use crate::time::format_time;

/// Rows shown in a preview; the rest are counted (`readings`).
pub const PREVIEW_ROWS: usize = 1000;

/// What an uploaded file would store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preview {
    /// The file's name as uploaded.
    pub file: String,
    /// `xlsx`, `xls`, `ods`, `csv`, `json` or `ndjson`; empty when unknown.
    pub format: &'static str,
    /// How many readings the file holds (good ones, when there are problems).
    pub readings: usize,
    /// The first [`PREVIEW_ROWS`] of them.
    pub rows: Vec<PreviewRow>,
    /// Every problem found (the first [`MAX_ERRORS`]), each with its place.
    pub errors: Vec<CellError>,
    /// How many problems in all.
    pub error_total: usize,
    /// What to store on confirmation: `None` when there is any problem.
    #[serde(skip)]
    pub batch: Option<Batch>,
}

/// One reading of the preview table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PreviewRow {
    pub metric: String,
    pub labels: Labels,
    /// RFC 3339 in the configured timezone.
    pub time: String,
    pub value: f64,
    /// Where the value came from: `Sheet1!C7` (workbooks); `None` for CSV/JSON.
    pub source: Option<String>,
}

impl Preview {
    pub fn is_ok(&self) -> bool {
        self.error_total == 0
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Csv => "csv",
        Format::Json => "json",
        Format::Ndjson => "ndjson",
    }
}

/// Reads an uploaded file. The format comes from the file name's extension;
/// `mapping` (with its text) reads a workbook in the wide form.
pub fn preview(file: &str, body: &[u8], mapping: Option<(&Mapping, &str)>, tz: Tz) -> Preview {
    let path = std::path::Path::new(file);
    let mut p = Preview {
        file: file.to_owned(),
        format: "",
        readings: 0,
        rows: Vec::new(),
        errors: Vec::new(),
        error_total: 0,
        batch: None,
    };
    if let Some(kind) = Kind::from_path(path) {
        p.format = match kind {
            Kind::Xlsx => "xlsx",
            Kind::Xls => "xls",
            Kind::Ods => "ods",
        };
        let (readings, result) = read_all(file, body, kind, mapping, tz);
        p.readings = readings.len();
        p.rows = readings
            .iter()
            .take(PREVIEW_ROWS)
            .map(|r| PreviewRow {
                metric: r.metric.clone(),
                labels: r.labels.clone(),
                time: format_time(r.time, tz),
                value: r.value,
                source: Some(format!("{}!{}", r.sheet, r.cell())),
            })
            .collect();
        match result {
            Ok(()) => p.batch = Some(super::to_batch(&readings)),
            Err(e) => {
                p.errors = e.errors;
                p.error_total = e.total;
            }
        }
        return p;
    }
    let Some(format) = Format::from_path(path) else {
        p.errors.push(CellError {
            file: file.to_owned(),
            sheet: None,
            cell: None,
            line: None,
            message: "不支持这种文件：请上传 Excel 工作簿（.xlsx、.xls）、.ods 或 CSV 文件".into(),
            hint: "在 Excel 或 WPS 中“另存为” .xlsx 后再上传".into(),
            english: "unsupported file type: upload .xlsx, .xls, .ods, .csv, .json or .ndjson"
                .into(),
        });
        p.error_total = 1;
        return p;
    };
    p.format = format_name(format);
    match crate::readings::parse::parse(body, format, tz) {
        Ok(batch) => {
            p.readings = batch.len();
            p.rows = batch
                .points
                .iter()
                .take(PREVIEW_ROWS)
                .map(|pt| {
                    let key = &batch.series[pt.series as usize];
                    PreviewRow {
                        metric: key.metric.clone(),
                        labels: key.labels.clone(),
                        time: format_time(pt.time, tz),
                        value: pt.value,
                        source: None,
                    }
                })
                .collect();
            p.batch = Some(batch);
        }
        Err(e) => {
            p.error_total = e.total;
            p.errors = e
                .errors
                .into_iter()
                .take(MAX_ERRORS)
                .map(|item| {
                    let place = match (item.line, item.col) {
                        (0, _) => String::new(),
                        (l, 0) => format!("第{l}行："),
                        (l, c) => format!("第{l}行第{c}列："),
                    };
                    CellError {
                        file: file.to_owned(),
                        sheet: None,
                        cell: None,
                        line: (item.line > 0).then_some((item.line, item.col.max(1))),
                        message: format!("{place}{}", item.message),
                        hint: String::new(),
                        english: item.to_string(),
                    }
                })
                .collect();
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use rust_xlsxwriter::Workbook;

    use super::super::mapping;
    use super::*;

    const SH: Tz = chrono_tz::Asia::Shanghai;

    const RON: &str = r#"(
        sheets: [(layout: PeriodPerRow(period_column: "A", header_row: 1))],
        indicators: { "城镇登记失业率（%）": (metric: "unemployment_rate") },
        labels: {"county": "南宫"},
    )"#;

    fn book(values: &[(&str, &str)]) -> Vec<u8> {
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        ws.set_name("月报").unwrap();
        ws.write_string(0, 0, "时间").unwrap();
        ws.write_string(0, 1, "城镇登记失业率（%）").unwrap();
        for (i, (period, v)) in values.iter().enumerate() {
            ws.write_string(1 + i as u32, 0, *period).unwrap();
            ws.write_string(1 + i as u32, 1, *v).unwrap();
        }
        wb.save_to_buffer().unwrap()
    }

    #[test]
    fn a_good_workbook_previews_its_readings_with_cells_and_a_batch() {
        let m = mapping::parse("人社.ron", RON).unwrap();
        let p = preview(
            "人社.xlsx",
            &book(&[("2021年3月", "4.7"), ("2021年4月", "4.6")]),
            Some((&m, RON)),
            SH,
        );
        assert!(p.is_ok(), "{:?}", p.errors);
        assert_eq!((p.format, p.readings), ("xlsx", 2));
        assert_eq!(
            p.rows[0],
            PreviewRow {
                metric: "unemployment_rate".into(),
                labels: [("county".to_string(), "南宫".to_string())].into(),
                time: "2021-03-31T00:00:00+08:00".into(),
                value: 4.7,
                source: Some("月报!B2".into()),
            }
        );
        assert_eq!(p.batch.as_ref().map(Batch::len), Some(2));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["rows"][1]["source"], "月报!B3");
        assert!(json.get("batch").is_none());
    }

    #[test]
    fn a_bad_cell_is_shown_by_cell_with_the_good_rows_and_no_batch() {
        let m = mapping::parse("人社.ron", RON).unwrap();
        let p = preview(
            "人社.xlsx",
            &book(&[("2021年3月", "4.7"), ("2021年4月", "四点六")]),
            Some((&m, RON)),
            SH,
        );
        assert!(!p.is_ok());
        assert!(p.batch.is_none(), "nothing to store");
        assert_eq!(p.readings, 1);
        assert_eq!(p.error_total, 1);
        let e = &p.errors[0];
        assert_eq!(
            (e.sheet.as_deref(), e.cell.as_deref()),
            (Some("月报"), Some("B3"))
        );
        assert_eq!(e.place(), "人社.xlsx:月报!B3");
        assert!(e.message.contains("“四点六”不是数字"), "{e:?}");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["errors"][0]["cell"], "B3");
        assert_eq!(json["errors"][0]["sheet"], "月报");
    }

    #[test]
    fn csv_previews_through_the_csv_parser() {
        let p = preview(
            "上报.csv",
            "metric,time,value,county\nunemployment_rate,2021-03-31,4.7,南宫\n".as_bytes(),
            None,
            SH,
        );
        assert!(p.is_ok(), "{:?}", p.errors);
        assert_eq!((p.format, p.readings), ("csv", 1));
        assert_eq!(p.rows[0].time, "2021-03-31T00:00:00+08:00");
        assert_eq!(p.rows[0].source, None);

        let p = preview(
            "上报.csv",
            b"metric,time,value\nunemployment_rate,2021-03-31,x\n",
            None,
            SH,
        );
        assert!(p.batch.is_none());
        assert_eq!(p.error_total, 1);
        assert_eq!(p.errors[0].line.map(|l| l.0), Some(2), "{:?}", p.errors);
        assert!(p.errors[0].message.starts_with("第2行第"), "{:?}", p.errors);
    }

    #[test]
    fn other_files_are_refused_with_what_to_upload() {
        let p = preview("report.docx", b"PK\x03\x04", None, SH);
        assert_eq!(p.error_total, 1);
        assert!(p.errors[0].message.contains(".xlsx"));
        assert!(p.batch.is_none());
    }
}
