//! A workbook opened into plain grids of cells, one per sheet, with what a
//! spreadsheet program shows filled in: merged cells carry the value of their
//! top-left cell, formulas their saved result, percent-formatted numbers are
//! flagged. Everything format-specific (calamine for the three formats; the
//! zip's XML for what calamine does not expose) stays in this file.

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read};
use std::path::Path;

use calamine::{Data, Dimensions, Ods, Range, Reader, SheetVisible, Xls, Xlsx};
use chrono::{NaiveDate, NaiveDateTime};
use quick_xml::events::{BytesStart, Event};

use super::errors::{Collector, Problem};

/// The workbook formats read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Xlsx,
    Xls,
    Ods,
}

impl Kind {
    /// By file extension (`.xlsx`/`.xlsm`, `.xls`, `.ods`), any case.
    pub fn from_path(path: &Path) -> Option<Kind> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "xlsx" | "xlsm" => Some(Kind::Xlsx),
            "xls" => Some(Kind::Xls),
            "ods" => Some(Kind::Ods),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Xlsx => ".xlsx",
            Kind::Xls => ".xls",
            Kind::Ods => ".ods",
        }
    }
}

/// Why a formula's saved result cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsaved {
    /// No result was saved with the formula.
    Missing,
    /// The file asks to recalculate everything on opening: the program that
    /// wrote it did not compute the results (it saved placeholders).
    Placeholder,
}

/// One cell as the sheet shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Cell {
    #[default]
    Empty,
    /// A number; `percent` when formatted as a percentage (0.045 shown as 4.5%).
    Number {
        value: f64,
        percent: bool,
    },
    Text(String),
    /// A date or date-time typed as such (local wall-clock time).
    Date(NaiveDateTime),
    /// A duration (`[h]:mm`), never a reading's value or time.
    Duration,
    Bool(bool),
    /// An error value such as `#DIV/0!`.
    Error(String),
    /// A formula whose result cannot be used.
    Formula {
        formula: String,
        why: Unsaved,
    },
}

/// One sheet: cells addressed by absolute 0-based (row, column).
#[derive(Debug, Clone)]
pub struct Sheet {
    pub name: String,
    /// Hidden sheets are skipped unless a mapping names them.
    pub hidden: bool,
    start: (u32, u32),
    height: u32,
    width: u32,
    cells: Vec<Cell>,
}

const EMPTY: Cell = Cell::Empty;

impl Sheet {
    pub fn get(&self, row: u32, col: u32) -> &Cell {
        let (r0, c0) = self.start;
        if row < r0 || col < c0 || row - r0 >= self.height || col - c0 >= self.width {
            return &EMPTY;
        }
        &self.cells[((row - r0) * self.width + (col - c0)) as usize]
    }

    /// One past the last row and column holding anything.
    pub fn end(&self) -> (u32, u32) {
        (self.start.0 + self.height, self.start.1 + self.width)
    }

    pub fn is_empty(&self) -> bool {
        self.cells.iter().all(|c| *c == Cell::Empty)
    }

    /// A sheet built from cells (tests, and uploads of other shapes later).
    #[cfg(test)]
    pub fn from_rows(name: &str, rows: Vec<Vec<Cell>>) -> Sheet {
        let height = rows.len() as u32;
        let width = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
        let mut cells = Vec::new();
        for mut r in rows {
            r.resize(width as usize, Cell::Empty);
            cells.extend(r);
        }
        Sheet {
            name: name.into(),
            hidden: false,
            start: (0, 0),
            height,
            width,
            cells,
        }
    }
}

/// What a sheet needs beyond calamine's cell values.
#[derive(Default)]
struct Extras {
    merges: Vec<Dimensions>,
    /// Cells formatted as percentages.
    percent: HashSet<(u32, u32)>,
    /// Error values by cell, where calamine reads them as empty text (.ods).
    errors: HashMap<(u32, u32), String>,
    /// Formula text by cell, for cells with a formula.
    formulas: Option<Range<String>>,
    /// The file asks for a full recalculation on opening.
    recalc_on_load: bool,
}

/// Cells per sheet above which a sheet is refused (a dense grid of this size
/// takes ~400 MB; a statistics table is a few thousand cells).
const MAX_CELLS: u64 = 10_000_000;

/// Opens a workbook from its bytes. Problems (not a workbook, a protected
/// one, an unreadable sheet) go to `errors`, and the sheets read are returned.
pub fn open(bytes: &[u8], kind: Kind, errors: &mut Collector) -> Vec<Sheet> {
    if let Some(p) = wrong_content(bytes, kind) {
        errors.file_problem(p);
        return Vec::new();
    }
    let result = match kind {
        Kind::Xlsx => open_xlsx(bytes),
        Kind::Xls => open_xls(bytes),
        Kind::Ods => open_ods(bytes),
    };
    match result {
        Ok(sheets) => {
            let mut out = Vec::new();
            for s in sheets {
                match s {
                    Ok(s) => out.push(s),
                    Err((sheet, p)) => errors.sheet(&sheet, p),
                }
            }
            out
        }
        Err(e) => {
            errors.file_problem(Problem::new(
                format!("无法读取{}文件：{e}", kind.name()),
                "请用 Excel 或 WPS 打开这个文件，确认能正常打开后重新保存，再导入；文件如有密码，请先取消密码",
                format!("cannot read the {} workbook: {e}", kind.name()),
            ));
            Vec::new()
        }
    }
}

/// Catches files whose name says one format and whose content is another:
/// systems often export an HTML table or CSV text under the name `.xls`.
fn wrong_content(bytes: &[u8], kind: Kind) -> Option<Problem> {
    const OLE: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    let is_zip = bytes.starts_with(b"PK\x03\x04");
    let is_ole = bytes.starts_with(OLE);
    let fits = match kind {
        Kind::Xlsx | Kind::Ods => is_zip,
        Kind::Xls => is_ole,
    };
    if fits {
        return None;
    }
    if bytes.is_empty() {
        return Some(Problem::new(
            "文件是空的",
            "请确认上传或导入的是保存好的工作簿",
            "the file is empty",
        ));
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
    let what = if is_zip {
        "另一种格式的压缩文件（如 .xlsx 或 .ods）"
    } else if is_ole {
        "旧版 Excel 97-2003 工作簿（.xls）"
    } else if head.contains("<html") || head.contains("<table") || head.contains("<!doctype") {
        "网页（HTML）表格"
    } else {
        "文本或其他格式"
    };
    Some(Problem::new(
        format!("文件名是{}，但内容是{what}，不是{}工作簿", kind.name(), kind.name()),
        "请用 Excel 或 WPS 打开后“另存为” Excel 工作簿（.xlsx），再导入；若是 CSV 文本，请把文件名改为 .csv",
        format!("named {} but the content is something else", kind.name()),
    ))
}

type SheetResult = Result<Sheet, (String, Problem)>;

fn unreadable(sheet: &str, e: impl std::fmt::Display) -> (String, Problem) {
    (
        sheet.to_owned(),
        Problem::new(
            format!("无法读取这张工作表：{e}"),
            "请用 Excel 或 WPS 打开并重新保存后再导入",
            format!("cannot read the sheet: {e}"),
        ),
    )
}

fn open_xlsx(bytes: &[u8]) -> Result<Vec<SheetResult>, String> {
    let recalc_on_load = xlsx_recalc_on_load(bytes);
    let wb: Result<Xlsx<_>, _> = calamine::open_workbook_from_rs(Cursor::new(bytes));
    let mut wb = wb.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for meta in wb.sheets_metadata().to_vec() {
        let name = meta.name.clone();
        if meta.typ != calamine::SheetType::WorkSheet {
            continue; // chart sheets hold no cells
        }
        let range = match wb.worksheet_range(&name) {
            Ok(r) => r,
            Err(e) => {
                out.push(Err(unreadable(&name, e)));
                continue;
            }
        };
        let mut extras = Extras {
            recalc_on_load,
            formulas: wb.worksheet_formula(&name).ok(),
            merges: wb.merge_cells_by_sheet_name(&name).unwrap_or_default(),
            ..Extras::default()
        };
        if let Ok(styles) = wb.worksheet_style(&name) {
            for (row, cols) in range_positions(&range) {
                for col in cols {
                    let Some(style) = styles.get((row, col)) else {
                        continue;
                    };
                    if style.number_format.as_ref().is_some_and(|f| {
                        matches!(f.format_id, Some(9 | 10)) || is_percent_format(&f.format_code)
                    }) {
                        extras.percent.insert((row, col));
                    }
                }
            }
        }
        out.push(build(
            name,
            meta.visible != SheetVisible::Visible,
            range,
            extras,
        ));
    }
    Ok(out)
}

fn open_xls(bytes: &[u8]) -> Result<Vec<SheetResult>, String> {
    let wb: Result<Xls<_>, _> = calamine::open_workbook_from_rs(Cursor::new(bytes));
    let mut wb = wb.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for meta in wb.sheets_metadata().to_vec() {
        let name = meta.name.clone();
        if meta.typ != calamine::SheetType::WorkSheet {
            continue;
        }
        let range = match wb.worksheet_range(&name) {
            Ok(r) => r,
            Err(e) => {
                out.push(Err(unreadable(&name, e)));
                continue;
            }
        };
        let extras = Extras {
            formulas: wb.worksheet_formula(&name).ok(),
            merges: wb.merge_cells_by_sheet_name(&name).unwrap_or_default(),
            ..Extras::default()
        };
        out.push(build(
            name,
            meta.visible != SheetVisible::Visible,
            range,
            extras,
        ));
    }
    Ok(out)
}

fn open_ods(bytes: &[u8]) -> Result<Vec<SheetResult>, String> {
    let mut layout = ods_layout(bytes).unwrap_or_default();
    let wb: Result<Ods<_>, _> = calamine::open_workbook_from_rs(Cursor::new(bytes));
    let mut wb = wb.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for meta in wb.sheets_metadata().to_vec() {
        let name = meta.name.clone();
        let range = match wb.worksheet_range(&name) {
            Ok(r) => r,
            Err(e) => {
                out.push(Err(unreadable(&name, e)));
                continue;
            }
        };
        let mut extras = layout.remove(&name).unwrap_or_default();
        extras.formulas = wb.worksheet_formula(&name).ok();
        out.push(build(
            name,
            meta.visible != SheetVisible::Visible,
            range,
            extras,
        ));
    }
    Ok(out)
}

/// A number format that shows a percentage: a `%` outside quotes and escapes.
fn is_percent_format(code: &str) -> bool {
    let mut quoted = false;
    let mut escaped = false;
    for c in code.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '%' if !quoted => return true,
            _ => {}
        }
    }
    false
}

/// The (row, columns) of every position in a range.
fn range_positions<T>(range: &Range<T>) -> Vec<(u32, std::ops::RangeInclusive<u32>)>
where
    T: calamine::CellType,
{
    match (range.start(), range.end()) {
        (Some(s), Some(e)) => (s.0..=e.0).map(|r| (r, s.1..=e.1)).collect(),
        _ => Vec::new(),
    }
}

/// Turns calamine's range and the extras into a [`Sheet`].
fn build(name: String, hidden: bool, range: Range<Data>, extras: Extras) -> SheetResult {
    // The grid covers the values, the formulas and the merged regions.
    let mut lo = (u32::MAX, u32::MAX);
    let mut hi = (0u32, 0u32);
    let mut grow = |s: (u32, u32), e: (u32, u32)| {
        lo = (lo.0.min(s.0), lo.1.min(s.1));
        hi = (hi.0.max(e.0), hi.1.max(e.1));
    };
    if let (Some(s), Some(e)) = (range.start(), range.end()) {
        grow(s, e);
    }
    if let Some(f) = &extras.formulas {
        if let (Some(s), Some(e)) = (f.start(), f.end()) {
            grow(s, e);
        }
    }
    for m in &extras.merges {
        grow(m.start, m.end);
    }
    if lo.0 == u32::MAX {
        return Ok(Sheet {
            name,
            hidden,
            start: (0, 0),
            height: 0,
            width: 0,
            cells: Vec::new(),
        });
    }
    let height = hi.0 - lo.0 + 1;
    let width = hi.1 - lo.1 + 1;
    if height as u64 * width as u64 > MAX_CELLS {
        return Err((
            name,
            Problem::new(
                format!("工作表太大（{height} 行 × {width} 列）"),
                "请只保留需要导入的数据，或拆成几个文件",
                format!("sheet too large: {height} rows x {width} columns"),
            ),
        ));
    }
    let mut sheet = Sheet {
        name,
        hidden,
        start: lo,
        height,
        width,
        cells: vec![Cell::Empty; (height * width) as usize],
    };
    let idx = |r: u32, c: u32| ((r - lo.0) * width + (c - lo.1)) as usize;
    for (r, c, data) in range.used_cells() {
        let (r, c) = (
            r as u32 + range.start().unwrap_or_default().0,
            c as u32 + range.start().unwrap_or_default().1,
        );
        sheet.cells[idx(r, c)] = cell_of(data, extras.percent.contains(&(r, c)));
    }
    for (&(r, c), shown) in &extras.errors {
        if r >= lo.0 && c >= lo.1 && r <= hi.0 && c <= hi.1 {
            sheet.cells[idx(r, c)] = Cell::Error(shown.clone());
        }
    }
    if let Some(f) = &extras.formulas {
        let start = f.start().unwrap_or_default();
        for (r, c, formula) in f.used_cells() {
            if formula.trim().is_empty() {
                continue;
            }
            let (r, c) = (r as u32 + start.0, c as u32 + start.1);
            let slot = &mut sheet.cells[idx(r, c)];
            let no_result = match slot {
                Cell::Empty => true,
                Cell::Text(t) => t.is_empty(),
                _ => false,
            };
            let why = if no_result {
                Some(Unsaved::Missing)
            } else if extras.recalc_on_load {
                Some(Unsaved::Placeholder)
            } else {
                None
            };
            if let Some(why) = why {
                *slot = Cell::Formula {
                    formula: formula.clone(),
                    why,
                };
            }
        }
    }
    // Merged cells show the top-left cell's value across the whole region.
    for m in &extras.merges {
        let top_left = sheet.cells[idx(m.start.0, m.start.1)].clone();
        for r in m.start.0..=m.end.0 {
            for c in m.start.1..=m.end.1 {
                if (r, c) != m.start {
                    sheet.cells[idx(r, c)] = top_left.clone();
                }
            }
        }
    }
    Ok(sheet)
}

fn cell_of(data: &Data, percent: bool) -> Cell {
    match data {
        Data::Empty => Cell::Empty,
        Data::Int(i) => Cell::Number {
            value: *i as f64,
            percent,
        },
        Data::Float(f) => Cell::Number { value: *f, percent },
        Data::String(s) => Cell::Text(s.clone()),
        Data::Bool(b) => Cell::Bool(*b),
        Data::Error(e) => Cell::Error(e.to_string()),
        Data::DurationIso(_) => Cell::Duration,
        Data::DateTime(dt) if dt.is_duration() => Cell::Duration,
        Data::DateTime(dt) => {
            let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
            NaiveDate::from_ymd_opt(y as i32, mo as u32, d as u32)
                .and_then(|date| date.and_hms_milli_opt(h as u32, mi as u32, s as u32, ms as u32))
                .map_or_else(|| Cell::Error(format!("{}", dt.as_f64())), Cell::Date)
        }
        Data::DateTimeIso(s) => NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .or_else(|| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
            .map_or_else(|| Cell::Text(s.clone()), Cell::Date),
    }
}

/// Reads one file out of a zip archive, if there.
fn zip_entry(bytes: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
    let mut file = zip.by_name(name).ok()?;
    let mut out = Vec::new();
    // A bomb guard: content.xml of a county's table is a few MB at most.
    file.by_ref()
        .take(512 * 1024 * 1024)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// Whether an .xlsx asks to recalculate all formulas on opening
/// (`<calcPr fullCalcOnLoad="1">`): writers that cannot compute formulas
/// (libraries, exports) set it and save 0 or nothing as every result.
fn xlsx_recalc_on_load(bytes: &[u8]) -> bool {
    let Some(xml) = zip_entry(bytes, "xl/workbook.xml") else {
        return false;
    };
    let mut reader = quick_xml::Reader::from_reader(xml.as_slice());
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == "calcPr" => {
                return attr(&e, "fullCalcOnLoad").is_some_and(|v| v == "1" || v == "true");
            }
            Ok(Event::Eof) | Err(_) => return false,
            _ => {}
        }
        buf.clear();
    }
}

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .map(|a| a.value.into_owned())
}

fn attr_n(e: &BytesStart, name: &str) -> u32 {
    attr(e, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// Merged regions and percentage cells of every sheet of an .ods, from its
/// `content.xml` (calamine reads covered cells as empty and keeps no spans).
fn ods_layout(bytes: &[u8]) -> Option<HashMap<String, Extras>> {
    let xml = zip_entry(bytes, "content.xml")?;
    let mut reader = quick_xml::Reader::from_reader(xml.as_slice());
    let mut buf = Vec::new();
    let mut out: HashMap<String, Extras> = HashMap::new();
    let mut table: Option<String> = None;
    let mut depth = 0usize; // nesting of tables (a table inside a cell is skipped)
    let (mut row, mut col) = (0u32, 0u32);
    let mut row_repeat = 1u32;
    // An error cell being read: its position and the text shown (`#DIV/0!`).
    let mut error_cell: Option<((u32, u32), String)> = None;
    loop {
        let event = reader.read_event_into(&mut buf).ok()?;
        if let (Some((_, text)), Event::Text(t)) = (error_cell.as_mut(), &event) {
            text.push_str(&t.xml10_content());
        }
        if let (Some(_), Event::End(e)) = (&error_cell, &event) {
            if e.name().as_ref() == "table:table-cell" {
                let (at, text) = error_cell.take().expect("checked");
                if let Some(x) = table.as_deref().and_then(|t| out.get_mut(t)) {
                    x.errors.insert(at, text);
                }
            }
        }
        let (e, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                match e.name().as_ref() {
                    "table:table" => {
                        depth -= 1;
                        if depth == 0 {
                            table = None;
                        }
                    }
                    "table:table-row" if depth == 1 => row = row.saturating_add(row_repeat),
                    _ => {}
                }
                buf.clear();
                continue;
            }
            Event::Eof => break,
            _ => {
                buf.clear();
                continue;
            }
        };
        match e.name().as_ref() {
            "table:table" if !empty => {
                depth += 1;
                if depth == 1 {
                    let name = attr(e, "table:name").unwrap_or_default();
                    out.entry(name.clone()).or_default();
                    table = Some(name);
                    row = 0;
                }
            }
            "table:table-row" if depth == 1 => {
                row_repeat = attr_n(e, "table:number-rows-repeated");
                col = 0;
                if empty {
                    row = row.saturating_add(row_repeat);
                }
            }
            "table:table-cell" | "table:covered-table-cell" if depth == 1 => {
                let repeat = attr_n(e, "table:number-columns-repeated");
                let extras = out.get_mut(table.as_deref().unwrap_or_default())?;
                let rows_spanned = attr_n(e, "table:number-rows-spanned");
                let cols_spanned = attr_n(e, "table:number-columns-spanned");
                if e.name().as_ref() == "table:table-cell" && (rows_spanned > 1 || cols_spanned > 1)
                {
                    extras.merges.push(Dimensions::new(
                        (row, col),
                        (row + rows_spanned - 1, col + cols_spanned - 1),
                    ));
                }
                if !empty && attr(e, "calcext:value-type").as_deref() == Some("error") {
                    error_cell = Some(((row, col), String::new()));
                }
                if attr(e, "office:value-type").as_deref() == Some("percentage") {
                    // Repeated runs of one percentage cell are short in practice.
                    for r in row..row.saturating_add(row_repeat.min(1_000)) {
                        for c in col..col.saturating_add(repeat.min(1_000)) {
                            extras.percent.insert((r, c));
                        }
                    }
                }
                col = col.saturating_add(repeat);
            }
            _ => {}
        }
        buf.clear();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_formats() {
        assert!(is_percent_format("0.0%"));
        assert!(is_percent_format("0%"));
        assert!(!is_percent_format("0.0\"%\""));
        assert!(!is_percent_format("0.0\\%"));
        assert!(!is_percent_format("General"));
    }

    #[test]
    fn names_html_saved_as_xls() {
        let p = wrong_content(
            b"<html><table><tr><td>1</td></tr></table></html>",
            Kind::Xls,
        )
        .unwrap();
        assert!(p.message.contains("网页（HTML）表格"), "{}", p.message);
        assert!(wrong_content(b"PK\x03\x04rest", Kind::Xlsx).is_none());
        assert!(wrong_content(b"", Kind::Ods)
            .unwrap()
            .message
            .contains("空"));
    }
}
