//! Workbooks written by a real writer (rust_xlsxwriter), read back; each bad
//! cell asserted by its name. LibreOffice-made .ods/.xls files are tested in
//! tests/it/excel_ingest.rs.

use chrono_tz::Tz;
use rust_xlsxwriter::{CalculationMode, ExcelDateTime, Format, Formula, Workbook, Worksheet};

use super::*;
use crate::time::parse_time;

const SH: Tz = chrono_tz::Asia::Shanghai;

fn t(s: &str) -> Millis {
    parse_time(s, SH).unwrap()
}

fn xlsx(build: impl FnOnce(&mut Workbook)) -> Vec<u8> {
    let mut wb = Workbook::new();
    build(&mut wb);
    wb.save_to_buffer().unwrap()
}

fn sheet<'a>(wb: &'a mut Workbook, name: &str) -> &'a mut Worksheet {
    let ws = wb.add_worksheet();
    ws.set_name(name).unwrap();
    ws
}

fn long(bytes: &[u8]) -> Result<Vec<Reading>, WorkbookError> {
    read("t.xlsx", bytes, Kind::Xlsx, None, SH)
}

fn wide(bytes: &[u8], ron: &str) -> Result<Vec<Reading>, WorkbookError> {
    let m = mapping::parse("t.xlsx.ron", ron).unwrap_or_else(|e| panic!("{e:?}"));
    read("t.xlsx", bytes, Kind::Xlsx, Some((&m, ron)), SH)
}

/// Every error as `place: message`.
fn errs(r: Result<Vec<Reading>, WorkbookError>) -> Vec<String> {
    match r {
        Ok(v) => panic!("accepted {} readings: {v:?}", v.len()),
        Err(e) => e
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.place(), e.message))
            .collect(),
    }
}

fn has(errors: &[String], place: &str, words: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&format!("{place}: ")) && e.contains(words)),
        "no error at {place} saying {words:?} in {errors:#?}"
    );
}

fn rows(readings: &[Reading]) -> Vec<(String, String, Millis, f64)> {
    readings
        .iter()
        .map(|r| {
            let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (r.metric.clone(), labels.join(","), r.time, r.value)
        })
        .collect()
}

// ---- long form ----

#[test]
fn long_form_reads_dates_text_numbers_and_labels() {
    let bytes = xlsx(|wb| {
        let date = Format::new().set_num_format("yyyy-mm-dd");
        let ws = sheet(wb, "数据");
        for (c, h) in ["metric", "time", "value", "county"].iter().enumerate() {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        ws.write_string(1, 0, "unemployment_rate").unwrap();
        ws.write_string(1, 1, "2021-05-31").unwrap();
        ws.write_number(1, 2, 4.4).unwrap();
        ws.write_string(1, 3, "南宫").unwrap();
        // A date typed as a date.
        ws.write_string(2, 0, "unemployment_rate").unwrap();
        ws.write_datetime_with_format(2, 1, ExcelDateTime::from_ymd(2021, 6, 30).unwrap(), &date)
            .unwrap();
        ws.write_string(2, 2, "4.6%").unwrap();
        ws.write_string(2, 3, "南宫").unwrap();
        // A month as Chinese text, a number stored as text with separators.
        ws.write_string(3, 0, "new_urban_jobs").unwrap();
        ws.write_string(3, 1, "2021年6月").unwrap();
        ws.write_string(3, 2, "1,234").unwrap();
        // Full-width digits; a serial date number; the label empty (absent).
        ws.write_string(4, 0, "new_urban_jobs").unwrap();
        ws.write_number(4, 1, 44408.0).unwrap(); // 2021-07-31
        ws.write_string(4, 2, "１５００").unwrap();
        // An empty row in between is skipped.
        ws.write_string(6, 0, "new_urban_jobs").unwrap();
        ws.write_string(6, 1, "2021/8/31").unwrap();
        ws.write_number(6, 2, 1800.0).unwrap();
    });
    let r = long(&bytes).unwrap();
    assert_eq!(
        rows(&r),
        vec![
            (
                "unemployment_rate".into(),
                "county=南宫".into(),
                t("2021-05-31"),
                4.4
            ),
            (
                "unemployment_rate".into(),
                "county=南宫".into(),
                t("2021-06-30"),
                4.6
            ),
            ("new_urban_jobs".into(), "".into(), t("2021-06-30"), 1234.0),
            ("new_urban_jobs".into(), "".into(), t("2021-07-31"), 1500.0),
            ("new_urban_jobs".into(), "".into(), t("2021-08-31"), 1800.0),
        ]
    );
    assert_eq!(
        (r[0].sheet.as_str(), r[0].cell()),
        ("数据", "C2".to_string())
    );
    let batch = to_batch(&r);
    assert_eq!((batch.len(), batch.series.len()), (5, 2));
}

#[test]
fn long_form_bad_cells_are_named() {
    let bytes = xlsx(|wb| {
        let ws = sheet(wb, "Sheet1");
        for (c, h) in ["metric", "time", "value", "county"].iter().enumerate() {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        let row = |ws: &mut Worksheet, r: u32, m: &str, t: &str, v: &str| {
            ws.write_string(r, 0, m).unwrap();
            ws.write_string(r, 1, t).unwrap();
            ws.write_string(r, 2, v).unwrap();
        };
        row(ws, 1, "unemployment_rate", "2021-06-30", "4.5"); // fine
        row(ws, 2, "unemployment_rate", "2021-06-30", "4.5亿"); // C3: not a number
        row(ws, 3, "unemployment_rate", "", "4.5"); // B4: missing time
        row(ws, 4, "失业率", "2021-06-30", "4.5"); // A5: metric not a name
        row(ws, 5, "unemployment_rate", "2021年13月", "4.5"); // B6: not a period
        row(ws, 6, "unemployment_rate", "2021-07-31", "12,3"); // C7: bad separators
        ws.write_string(7, 0, "unemployment_rate").unwrap();
        ws.write_string(7, 1, "2021-08-31").unwrap();
        ws.write_boolean(7, 2, true).unwrap(); // C8: boolean
    });
    let e = errs(long(&bytes));
    has(&e, "t.xlsx:Sheet1!C3", "“4.5亿”不是数字");
    has(&e, "t.xlsx:Sheet1!B4", "缺少 time");
    has(&e, "t.xlsx:Sheet1!A5", "指标名“失业率”不合规");
    has(&e, "t.xlsx:Sheet1!B6", "“2021年13月”不是可识别的时期");
    has(&e, "t.xlsx:Sheet1!C7", "“12,3”不是数字");
    has(&e, "t.xlsx:Sheet1!C8", "逻辑值");
    assert_eq!(e.len(), 6, "{e:#?}");
}

#[test]
fn long_form_header_problems() {
    let bytes = xlsx(|wb| {
        let ws = sheet(wb, "Sheet1");
        for (c, h) in ["metric", "Time", "value", "县"].iter().enumerate() {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        ws.write_string(1, 0, "x").unwrap();
    });
    let e = errs(long(&bytes));
    has(&e, "t.xlsx:Sheet1!D1", "列名“县”不合规");
    has(&e, "t.xlsx:Sheet1!A1", "缺少“time”列");
    let err = long(&bytes).unwrap_err();
    let missing = err
        .errors
        .iter()
        .find(|e| e.message.contains("缺少"))
        .unwrap();
    assert!(
        missing.hint.contains("区分大小写：表中是“Time”"),
        "{missing:?}"
    );
}

#[test]
fn a_wide_sheet_without_mapping_points_to_the_mapping_file() {
    let bytes = xlsx(|wb| {
        let ws = sheet(wb, "月报");
        ws.write_string(0, 0, "时间").unwrap();
        ws.write_string(0, 1, "城镇登记失业率").unwrap();
        ws.write_string(1, 0, "2021年6月").unwrap();
        ws.write_number(1, 1, 4.5).unwrap();
    });
    let err = long(&bytes).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("t.xlsx:月报!A1: 错误：列名“时间”不合规"),
        "{text}"
    );
    assert!(text.contains("映射文件 t.xlsx.ron"), "{text}");
}

#[test]
fn hidden_sheets_and_empty_sheets_are_skipped() {
    let bytes = xlsx(|wb| {
        let ws = sheet(wb, "data");
        ws.write_string(0, 0, "metric").unwrap();
        ws.write_string(0, 1, "time").unwrap();
        ws.write_string(0, 2, "value").unwrap();
        ws.write_string(1, 0, "m").unwrap();
        ws.write_string(1, 1, "2021-01-31").unwrap();
        ws.write_number(1, 2, 1.0).unwrap();
        sheet(wb, "空白");
        let hidden = sheet(wb, "lookup");
        hidden.write_string(0, 0, "anything").unwrap();
        hidden.set_hidden(true);
    });
    assert_eq!(long(&bytes).unwrap().len(), 1);
}

#[test]
fn an_empty_workbook_is_an_error() {
    let bytes = xlsx(|wb| {
        sheet(wb, "Sheet1");
    });
    let e = errs(long(&bytes));
    has(&e, "t.xlsx", "没有读到任何数据");
}

// ---- wide form, one row per period ----

const PER_ROW: &str = r#"
(
    sheets: [(layout: PeriodPerRow(period_column: "A", header_row: 2), label_columns: {"county": "B"}, skip: ["合计", "注"])],
    indicators: {
        "城镇登记失业率（%）": (metric: "unemployment_rate"),
        "新增城镇就业（人）": (metric: "new_urban_jobs"),
    },
)
"#;

/// 人社局 monthly sheet: a merged title, indicator names with line breaks,
/// the county merged down column B, months as text and as dates.
fn per_row_book(extra: impl FnOnce(&mut Worksheet)) -> Vec<u8> {
    xlsx(|wb| {
        wb.set_calculation_mode(CalculationMode::Manual);
        let month = Format::new().set_num_format("yyyy\"年\"m\"月\"");
        let pct = Format::new().set_num_format("0.0%");
        let ws = sheet(wb, "月报");
        ws.merge_range(0, 0, 0, 4, "南宫市人社局主要指标月报", &Format::new())
            .unwrap();
        ws.write_string(1, 0, "时间").unwrap();
        ws.write_string(1, 1, "县（市、区）").unwrap();
        ws.write_string(1, 2, "城镇登记\n失业率（%）").unwrap();
        ws.write_string(1, 3, "新增城镇就业（人）").unwrap();
        ws.write_string(1, 4, "备注").unwrap();
        ws.merge_range(2, 1, 5, 1, "南宫", &Format::new()).unwrap();
        ws.write_string(2, 0, "2021年1月").unwrap();
        ws.write_number(2, 2, 4.3).unwrap();
        ws.write_number(2, 3, 320.0).unwrap();
        // A month typed as a date (Excel stores 2021-02-01).
        ws.write_datetime_with_format(3, 0, ExcelDateTime::from_ymd(2021, 2, 1).unwrap(), &month)
            .unwrap();
        ws.write_number_with_format(3, 2, 0.044, &pct).unwrap();
        ws.write_string(3, 3, "650").unwrap();
        ws.write_string(4, 0, "2021-03").unwrap();
        ws.write_number(4, 2, 4.7).unwrap();
        // A formula with its saved result.
        ws.write_formula(4, 3, Formula::new("=D4+330").set_result("980"))
            .unwrap();
        ws.write_string(5, 0, "2021年4月").unwrap();
        ws.write_number(5, 2, 4.6).unwrap();
        // April's jobs not reported yet: empty, no reading.
        ws.write_string(6, 0, "合计").unwrap();
        ws.write_number(6, 3, 1950.0).unwrap();
        ws.write_string(7, 0, "注：数据来源于市人社局。").unwrap();
        extra(ws);
    })
}

#[test]
fn wide_period_per_row_with_merged_cells_dates_percent_and_formulas() {
    let r = wide(&per_row_book(|_| {}), PER_ROW).unwrap();
    let u = |m: &str| -> Vec<(Millis, f64)> {
        r.iter()
            .filter(|x| x.metric == m)
            .map(|x| {
                assert_eq!(
                    x.labels.get("county").map(String::as_str),
                    Some("南宫"),
                    "{x:?}"
                );
                (x.time, x.value)
            })
            .collect()
    };
    assert_eq!(
        u("unemployment_rate"),
        vec![
            (t("2021-01-31"), 4.3),
            (t("2021-02-28"), 4.4),
            (t("2021-03-31"), 4.7),
            (t("2021-04-30"), 4.6)
        ]
    );
    assert_eq!(
        u("new_urban_jobs"),
        vec![
            (t("2021-01-31"), 320.0),
            (t("2021-02-28"), 650.0),
            (t("2021-03-31"), 980.0)
        ]
    );
    let march_jobs = r
        .iter()
        .find(|x| x.metric == "new_urban_jobs" && x.time == t("2021-03-31"))
        .unwrap();
    assert_eq!(
        (march_jobs.sheet.as_str(), march_jobs.cell()),
        ("月报", "D5".into())
    );
}

#[test]
fn wide_bad_cells_are_named() {
    let bytes = per_row_book(|ws| {
        ws.write_string(8, 0, "2021年5月").unwrap();
        ws.write_string(8, 2, "四点五").unwrap(); // C9
        ws.write_formula(8, 3, Formula::new("=1/0").set_result("#DIV/0!"))
            .unwrap(); // D9
        ws.write_string(9, 0, "2021年十三月").unwrap(); // A10
        ws.write_number(9, 2, 4.4).unwrap();
        ws.write_number(10, 2, 4.4).unwrap(); // A11 empty period
        ws.write_string(11, 0, "2021年7月").unwrap();
        // Saved without a result, as openpyxl does: `<v></v>`.
        ws.set_formula_result_default("");
        ws.write_formula(11, 3, Formula::new("=SUM(D3:D5)").set_result(""))
            .unwrap(); // D12: no saved result
    });
    let e = errs(wide(&bytes, PER_ROW));
    has(&e, "t.xlsx:月报!C9", "“四点五”不是数字");
    has(&e, "t.xlsx:月报!D9", "错误值 #DIV/0!");
    has(&e, "t.xlsx:月报!A10", "“2021年十三月”不是可识别的时期");
    has(&e, "t.xlsx:月报!A11", "时期这一格是空的");
    has(&e, "t.xlsx:月报!D12", "没有保存计算结果");
    assert_eq!(e.len(), 5, "{e:#?}");
}

#[test]
fn placeholder_formula_results_are_refused() {
    // rust_xlsxwriter's default: results not computed, 0 saved, recalculation
    // asked for on opening.
    let bytes = xlsx(|wb| {
        let ws = sheet(wb, "月报");
        ws.write_string(1, 0, "时间").unwrap();
        ws.write_string(1, 2, "城镇登记失业率（%）").unwrap();
        ws.write_string(1, 3, "新增城镇就业（人）").unwrap();
        ws.write_string(2, 0, "2021年1月").unwrap();
        ws.write_number(2, 2, 4.3).unwrap();
        ws.write_formula(2, 3, "=100+220").unwrap();
    });
    let e = errs(wide(&bytes, PER_ROW));
    has(&e, "t.xlsx:月报!D3", "保存的结果不可信");
    assert_eq!(e.len(), 1, "{e:#?}");
}

#[test]
fn mapping_names_not_in_the_workbook_are_reported_with_a_suggestion() {
    let ron = PER_ROW.replace("新增城镇就业（人）", "新增城镇就业人数");
    let e = errs(wide(&per_row_book(|_| {}), &ron));
    let line = ron
        .lines()
        .position(|l| l.contains("新增城镇就业人数"))
        .unwrap()
        + 1;
    assert!(
        e.iter()
            .any(|x| x.starts_with(&format!("t.xlsx.ron:{line}:"))
                && x.contains("“新增城镇就业人数”在工作簿 t.xlsx 中没有找到")),
        "{e:#?}"
    );
    let err = wide(&per_row_book(|_| {}), &ron).unwrap_err();
    assert!(
        err.errors[0].hint.contains("新增城镇就业(人)"),
        "{:?}",
        err.errors[0]
    );
}

#[test]
fn a_named_sheet_must_exist() {
    let ron = PER_ROW.replace("(layout:", "(name: \"2021年\", layout:");
    let e = errs(wide(&per_row_book(|_| {}), &ron));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].starts_with("t.xlsx.ron:3:") && e[0].contains("没有名为“2021年”的工作表"),
        "{e:#?}"
    );
}

#[test]
fn the_same_figure_twice_with_different_values() {
    let bytes = xlsx(|wb| {
        for (name, v) in [("上报", 4.5), ("核对", 4.6)] {
            let ws = sheet(wb, name);
            ws.write_string(1, 0, "时间").unwrap();
            ws.write_string(1, 2, "城镇登记失业率（%）").unwrap();
            ws.write_string(2, 0, "2021年1月").unwrap();
            ws.write_number(2, 2, v).unwrap();
        }
    });
    let ron = PER_ROW.replace("\"新增城镇就业（人）\": (metric: \"new_urban_jobs\"),", "");
    let e = errs(wide(&bytes, &ron));
    has(&e, "t.xlsx:核对!C3", "上报!C3 是 4.5");
}

// ---- wide form, one column per period ----

#[test]
fn wide_period_per_column_with_merged_indicator_cells() {
    let ron = r#"(
        sheets: [(layout: PeriodPerColumn(header_row: 1, indicator_column: "A"), label_columns: {"county": "B"})],
        indicators: {
            "城镇登记失业率": (metric: "unemployment_rate"),
            "农村劳动力转移就业": (metric: "rural_labor_transfer"),
        },
        labels: {"source": "人社局"},
    )"#;
    let bytes = xlsx(|wb| {
        let ws = sheet(wb, "分县");
        ws.write_string(0, 0, "指标").unwrap();
        ws.write_string(0, 1, "县（市、区）").unwrap();
        ws.write_string(0, 2, "单位").unwrap();
        ws.write_string(0, 3, "2021-01").unwrap();
        ws.write_string(0, 4, "2021年2月").unwrap();
        ws.write_string(0, 5, "2021年第一季度").unwrap();
        ws.write_string(0, 6, "备注").unwrap();
        ws.merge_range(1, 0, 2, 0, "城镇登记失业率", &Format::new())
            .unwrap();
        ws.write_string(1, 1, "南宫").unwrap();
        ws.write_string(2, 1, "威县").unwrap();
        ws.write_string(3, 0, "一、就业").unwrap(); // a sub-heading, not an indicator
        ws.write_string(4, 0, "农村劳动力转移就业").unwrap();
        ws.write_string(4, 1, "南宫").unwrap();
        for (r, vals) in [
            (1u32, [4.3, 4.4, 4.5]),
            (2, [3.9, 4.0, 4.1]),
            (4, [300.0, 700.0, 1200.0]),
        ] {
            for (i, v) in vals.iter().enumerate() {
                ws.write_number(r, 3 + i as u16, *v).unwrap();
            }
        }
        ws.write_string(4, 2, "人").unwrap();
    });
    let ron_m = mapping::parse("t.xlsx.ron", ron).unwrap();
    let r = read("t.xlsx", &bytes, Kind::Xlsx, Some((&ron_m, ron)), SH).unwrap();
    assert_eq!(r.len(), 9, "{r:#?}");
    let weixian: Vec<_> = r
        .iter()
        .filter(|x| x.labels.get("county").map(String::as_str) == Some("威县"))
        .map(|x| (x.metric.as_str(), x.time, x.value, x.cell()))
        .collect();
    assert_eq!(
        weixian,
        vec![
            ("unemployment_rate", t("2021-01-31"), 3.9, "D3".to_string()),
            ("unemployment_rate", t("2021-02-28"), 4.0, "E3".to_string()),
            ("unemployment_rate", t("2021-03-31"), 4.1, "F3".to_string()),
        ]
    );
    assert!(r
        .iter()
        .all(|x| x.labels.get("source").map(String::as_str) == Some("人社局")));
}

#[test]
fn a_period_header_with_a_typo_is_named() {
    let ron = r#"(
        sheets: [(layout: PeriodPerColumn(header_row: 1, indicator_column: "A"))],
        indicators: { "城镇登记失业率": (metric: "unemployment_rate") },
    )"#;
    let bytes = xlsx(|wb| {
        let ws = sheet(wb, "Sheet1");
        ws.write_string(0, 0, "指标").unwrap();
        ws.write_string(0, 1, "2021年1月").unwrap();
        ws.write_string(0, 2, "2021年2 月份").unwrap();
        ws.write_string(0, 3, "2021年2月31日").unwrap();
        ws.write_string(1, 0, "城镇登记失业率").unwrap();
        ws.write_number(1, 1, 4.3).unwrap();
    });
    let m = mapping::parse("t.xlsx.ron", ron).unwrap();
    let e = errs(read("t.xlsx", &bytes, Kind::Xlsx, Some((&m, ron)), SH));
    has(&e, "t.xlsx:Sheet1!D1", "“2021年2月31日”不是可识别的时期");
    assert_eq!(e.len(), 1, "{e:#?}");
}

#[test]
fn html_saved_as_xls_is_named() {
    let e = errs(read(
        "导出.xls",
        b"<html><body><table><tr><td>1</td></tr></table></body></html>",
        Kind::Xls,
        None,
        SH,
    ));
    has(&e, "导出.xls", "内容是网页（HTML）表格");
}

#[test]
fn periods_without_a_year_take_the_mapping_year() {
    // A two-row header: the year only in the merged title.
    let ron = r#"(
        sheets: [(layout: PeriodPerColumn(header_row: 2, indicator_column: "A"), year: 2021)],
        indicators: { "新增城镇就业": (metric: "new_urban_jobs") },
    )"#;
    let bytes = xlsx(|wb| {
        let ws = sheet(wb, "Sheet1");
        ws.merge_range(0, 0, 0, 3, "2021年新增城镇就业（累计）", &Format::new())
            .unwrap();
        ws.write_string(1, 0, "指标").unwrap();
        ws.write_string(1, 1, "1-2月").unwrap();
        ws.write_string(1, 2, "一季度").unwrap();
        ws.write_string(1, 3, "上半年").unwrap();
        ws.write_string(2, 0, "新增城镇就业").unwrap();
        for (c, v) in [(1u16, 560.0), (2, 900.0), (3, 1950.0)] {
            ws.write_number(2, c, v).unwrap();
        }
    });
    let m = mapping::parse("t.xlsx.ron", ron).unwrap();
    let r = read("t.xlsx", &bytes, Kind::Xlsx, Some((&m, ron)), SH).unwrap();
    let got: Vec<(Millis, f64)> = r.iter().map(|x| (x.time, x.value)).collect();
    assert_eq!(
        got,
        vec![
            (t("2021-02-28"), 560.0),
            (t("2021-03-31"), 900.0),
            (t("2021-06-30"), 1950.0)
        ]
    );
}

#[test]
fn periods_without_a_year_and_no_mapping_year_are_named() {
    let ron = r#"(
        sheets: [(layout: PeriodPerColumn(header_row: 1, indicator_column: "A"))],
        indicators: { "新增城镇就业": (metric: "new_urban_jobs") },
    )"#;
    let bytes = xlsx(|wb| {
        let ws = sheet(wb, "Sheet1");
        ws.write_string(0, 0, "指标").unwrap();
        ws.write_string(0, 1, "6月").unwrap();
        ws.write_string(1, 0, "新增城镇就业").unwrap();
        ws.write_number(1, 1, 1950.0).unwrap();
    });
    let m = mapping::parse("t.xlsx.ron", ron).unwrap();
    let err = read("t.xlsx", &bytes, Kind::Xlsx, Some((&m, ron)), SH).unwrap_err();
    assert_eq!(err.errors[0].place(), "t.xlsx:Sheet1!B1", "{err}");
    assert!(err.errors[0].message.contains("没有写年份"), "{err}");
    assert!(err.errors[0].hint.contains("year: 2021"), "{err}");
}
