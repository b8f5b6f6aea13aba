//! Writes the example and test workbooks (rust_xlsxwriter), deterministic:
//!
//! - `fixtures/excel/人社.xlsx`: the documented example (docs/excel.md), a
//!   人社局 workbook in the wide form with its mapping `人社.xlsx.ron`; the
//!   figures are those of `fixtures/2021/socioeconomic.csv` (SYNTHETIC).
//! - `tests/fixtures/excel/{wide,long,bad}.xlsx`: the sources that
//!   `scripts/excel-fixtures.sh` has LibreOffice turn into .ods, .xls and a
//!   LibreOffice-saved .xlsx (formulas with their computed results), read by
//!   tests/it/excel_ingest.rs.
//!
//! Run `scripts/excel-fixtures.sh` (it calls this first), then commit the files.

use std::path::Path;

use rust_xlsxwriter::{
    ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError,
};

fn main() -> Result<(), XlsxError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(root.join("fixtures/excel")).expect("folder");
    std::fs::create_dir_all(root.join("tests/fixtures/excel")).expect("folder");
    example(&root.join("fixtures/excel/人社.xlsx"))?;
    wide(&root.join("tests/fixtures/excel/wide.xlsx"))?;
    long(&root.join("tests/fixtures/excel/long.xlsx"))?;
    bad(&root.join("tests/fixtures/excel/bad.xlsx"))?;
    Ok(())
}

/// A fixed creation time, so the same bytes come out every run.
fn fixed(wb: &mut Workbook) {
    let props = rust_xlsxwriter::DocProperties::new()
        .set_creation_datetime(&ExcelDateTime::from_ymd(2021, 1, 1).expect("date"));
    wb.set_properties(&props);
}

fn title() -> Format {
    Format::new()
        .set_bold()
        .set_align(FormatAlign::Center)
        .set_font_size(14)
}

fn head() -> Format {
    Format::new()
        .set_bold()
        .set_text_wrap()
        .set_align(FormatAlign::Center)
        .set_border(FormatBorder::Thin)
}

fn strings(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    texts: &[&str],
    f: &Format,
) -> Result<(), XlsxError> {
    for (i, t) in texts.iter().enumerate() {
        ws.write_string_with_format(row, col + i as u16, *t, f)?;
    }
    Ok(())
}

/// The documented example: two sheets, one of each wide layout.
fn example(path: &Path) -> Result<(), XlsxError> {
    let mut wb = Workbook::new();
    fixed(&mut wb);
    let ws = wb.add_worksheet();
    ws.set_name("2021年月报")?;
    ws.merge_range(
        0,
        0,
        0,
        4,
        "南宫市人社局主要指标月报（2021年，合成数据）",
        &title(),
    )?;
    strings(
        ws,
        1,
        0,
        &[
            "时间",
            "城镇登记失业率（%）",
            "新增城镇就业（人，年累计）",
            "农村劳动力转移就业（人，年累计）",
            "职业技能培训（人次，年累计）",
        ],
        &head(),
    )?;
    ws.set_column_width(0, 12)?;
    ws.set_column_range_width(1, 4, 18)?;
    // 2020年12月 (the lead-in) to 2021年12月; May's new jobs were never reported.
    let months: Vec<String> = std::iter::once("2020年12月".to_string())
        .chain((1..=12).map(|m| format!("2021年{m}月")))
        .collect();
    let unemployment = [
        4.3, 4.2, 4.4, 4.7, 4.6, 4.4, 4.3, 4.3, 4.2, 4.2, 4.1, 4.1, 4.0,
    ];
    let jobs = [
        Some(3800.0),
        Some(250.0),
        Some(560.0),
        Some(900.0),
        Some(1250.0),
        None,
        Some(1950.0),
        Some(2300.0),
        Some(2650.0),
        Some(3000.0),
        Some(3350.0),
        Some(3700.0),
        Some(4080.0),
    ];
    let transfer = [
        4900.0, 500.0, 900.0, 1400.0, 1850.0, 2250.0, 2700.0, 3100.0, 3500.0, 3900.0, 4300.0,
        4700.0, 5120.0,
    ];
    let training = [
        5600.0, 300.0, 720.0, 1200.0, 1750.0, 2300.0, 2900.0, 3400.0, 3950.0, 4500.0, 5050.0,
        5600.0, 6180.0,
    ];
    let thousands = Format::new().set_num_format("#,##0");
    for (i, month) in months.iter().enumerate() {
        let r = 2 + i as u32;
        ws.write_string(r, 0, month)?;
        ws.write_number(r, 1, unemployment[i])?;
        if let Some(j) = jobs[i] {
            ws.write_number_with_format(r, 2, j, &thousands)?;
        }
        ws.write_number_with_format(r, 3, transfer[i], &thousands)?;
        ws.write_number_with_format(r, 4, training[i], &thousands)?;
    }
    ws.write_string(16, 0, "注：5月新增城镇就业数据未报送。数据为合成数据。")?;

    let ws = wb.add_worksheet();
    ws.set_name("医保季报")?;
    strings(
        ws,
        0,
        0,
        &[
            "指标",
            "单位",
            "2020年第四季度",
            "2021年第一季度",
            "2021年第二季度",
            "2021年第三季度",
            "2021年第四季度",
        ],
        &head(),
    )?;
    ws.set_column_width(0, 22)?;
    ws.set_column_range_width(2, 6, 14)?;
    ws.write_string(1, 0, "城乡居民医保参保率")?;
    ws.write_string(1, 1, "%")?;
    for (i, v) in [95.8, 96.1, 96.3, 96.4, 96.8].iter().enumerate() {
        ws.write_number(1, 2 + i as u16, *v)?;
    }
    wb.save(path)
}

/// The wide test workbook: merged title and county cells, months as dates,
/// a percent-formatted cell, numbers as text, a formula; and a sheet with
/// one column per period whose indicator cells are merged.
fn wide(path: &Path) -> Result<(), XlsxError> {
    let mut wb = Workbook::new();
    fixed(&mut wb);
    let month = Format::new().set_num_format("yyyy\"年\"m\"月\"");
    let pct = Format::new().set_num_format("0.0%");
    let ws = wb.add_worksheet();
    ws.set_name("月报")?;
    ws.merge_range(0, 0, 0, 4, "南宫市人社局主要指标月报", &title())?;
    strings(
        ws,
        1,
        0,
        &[
            "时间",
            "县（市、区）",
            "城镇登记\n失业率（%）",
            "新增城镇就业（人）",
            "备注",
        ],
        &head(),
    )?;
    ws.merge_range(2, 1, 5, 1, "南宫", &Format::new())?;
    ws.write_string(2, 0, "2021年1月")?;
    ws.write_number(2, 2, 4.3)?;
    ws.write_number(2, 3, 320.0)?;
    ws.write_datetime_with_format(3, 0, ExcelDateTime::from_ymd(2021, 2, 1)?, &month)?;
    ws.write_number_with_format(3, 2, 0.044, &pct)?;
    ws.write_string(3, 3, "６５０")?;
    ws.write_string(4, 0, "2021-03")?;
    ws.write_number(4, 2, 4.7)?;
    ws.write_formula(4, 3, "=D3+660")?; // 980 once computed
    ws.write_string(5, 0, "2021/4/30")?;
    ws.write_number(5, 2, 4.6)?;
    ws.write_string(5, 3, "1,250")?;
    ws.write_string(6, 0, "合计")?;
    ws.write_formula(6, 3, "=SUM(D3:D6)")?;
    ws.write_string(7, 0, "注：合成数据。")?;

    let ws = wb.add_worksheet();
    ws.set_name("分县")?;
    strings(
        ws,
        0,
        0,
        &[
            "指标",
            "县（市、区）",
            "单位",
            "2021-05",
            "2021年6月",
            "2021年第三季度",
        ],
        &head(),
    )?;
    ws.merge_range(1, 0, 2, 0, "城镇登记失业率", &Format::new())?;
    ws.write_string(1, 1, "南宫")?;
    ws.write_string(2, 1, "威县")?;
    ws.write_string(1, 2, "%")?;
    ws.write_string(2, 2, "%")?;
    for (r, vals) in [(1u32, [4.3, 4.4, 4.5]), (2, [3.9, 4.0, 4.1])] {
        for (i, v) in vals.iter().enumerate() {
            ws.write_number(r, 3 + i as u16, *v)?;
        }
    }
    wb.save(path)
}

/// The long form, as the CSV: dates typed as dates and as text, a label.
fn long(path: &Path) -> Result<(), XlsxError> {
    let mut wb = Workbook::new();
    fixed(&mut wb);
    let date = Format::new().set_num_format("yyyy/m/d");
    let ws = wb.add_worksheet();
    ws.set_name("readings")?;
    strings(
        ws,
        0,
        0,
        &["metric", "time", "value", "county"],
        &Format::new(),
    )?;
    ws.write_string(1, 0, "unemployment_rate")?;
    ws.write_datetime_with_format(1, 1, ExcelDateTime::from_ymd(2021, 5, 31)?, &date)?;
    ws.write_number(1, 2, 4.4)?;
    ws.write_string(1, 3, "南宫")?;
    ws.write_string(2, 0, "unemployment_rate")?;
    ws.write_string(2, 1, "2021-06-30")?;
    ws.write_string(2, 2, "4.3")?;
    ws.write_string(2, 3, "南宫")?;
    ws.write_string(3, 0, "new_urban_jobs")?;
    ws.write_string(3, 1, "2021年6月")?;
    ws.write_string(3, 2, "1,950")?;
    wb.save(path)
}

/// Bad cells, one of each kind, in the long form.
fn bad(path: &Path) -> Result<(), XlsxError> {
    let mut wb = Workbook::new();
    fixed(&mut wb);
    let ws = wb.add_worksheet();
    ws.set_name("Sheet1")?;
    strings(ws, 0, 0, &["metric", "time", "value"], &Format::new())?;
    // Row 2 is good; nothing of it may be stored.
    strings(
        ws,
        1,
        0,
        &["unemployment_rate", "2021-06-30", "4.3"],
        &Format::new(),
    )?;
    strings(
        ws,
        2,
        0,
        &["unemployment_rate", "2021-07-31", "4.5亿"],
        &Format::new(),
    )?; // C3
    strings(
        ws,
        3,
        0,
        &["unemployment_rate", "2021年13月", "4.3"],
        &Format::new(),
    )?; // B4
    ws.write_string(4, 0, "unemployment_rate")?;
    ws.write_string(4, 1, "2021-08-31")?;
    ws.write_formula(4, 2, "=1/0")?; // C5: #DIV/0! once computed
    strings(ws, 5, 0, &["失业率", "2021-09-30", "4.2"], &Format::new())?; // A6
    wb.save(path)
}
