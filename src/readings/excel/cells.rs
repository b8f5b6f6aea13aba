//! Reading one cell as a number, a period or a label, the way officials type
//! them: numbers stored as text (`1,234.5`, full-width `１２３`, `4.5%`),
//! periods as dates or as text (`2021年6月`, `2021-06`, `2021/6/30`,
//! `2021年第二季度`, `2021年1-6月`), dates as Excel serial numbers.
//!
//! A period is stamped at 00:00 of its last day, as the shipped fixtures and
//! rules expect (June's figure at 2021-06-30 00:00; a quarter's at its last
//! day; a year's at 12-31): see docs/excel.md.

use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use regex::Regex;

use super::errors::Problem;
use super::grid::{Cell, Unsaved};

/// How long a period a time cell names; decides the stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// A day or an exact time: stamped as given.
    Day,
    Month,
    Quarter,
    Half,
    Year,
}

/// A period read from a cell: its stamp (local wall-clock time) and span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub stamp: NaiveDateTime,
    pub span: Span,
}

impl Period {
    fn day(d: NaiveDate) -> Period {
        Period {
            stamp: midnight(d),
            span: Span::Day,
        }
    }

    /// The month of a date typed as the first of the month (Excel turns a
    /// typed `2021-06` into 2021-06-01).
    pub fn month_of(d: NaiveDate) -> Option<Period> {
        month_end(d.year(), d.month()).map(|d| Period {
            stamp: midnight(d),
            span: Span::Month,
        })
    }
}

fn midnight(d: NaiveDate) -> NaiveDateTime {
    d.and_hms_opt(0, 0, 0).expect("midnight exists")
}

/// Texts officials put for "no figure": read as an empty cell.
const NO_FIGURE: &[&str] = &["-", "--", "—", "——", "–", "…", "……", "...", "/", "\\", "、"];

/// Full-width digits and signs to ASCII, whitespace (also U+3000 and NBSP) removed.
pub fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{a0}' && *c != '\u{feff}')
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            'Ａ'..='Ｚ' => char::from_u32(c as u32 - 'Ａ' as u32 + 'A' as u32).unwrap_or(c),
            'ａ'..='ｚ' => char::from_u32(c as u32 - 'ａ' as u32 + 'a' as u32).unwrap_or(c),
            '．' | '。' => '.',
            '，' => ',',
            '－' | '−' => '-',
            '＋' => '+',
            '％' => '%',
            '／' => '/',
            '（' => '(',
            '）' => ')',
            _ => c,
        })
        .collect()
}

static PLAIN_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$").expect("valid"));
static GROUPED_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$").expect("valid"));

/// A number as the sheet shows it, with at most 15 significant digits (what
/// Excel keeps): 0.045 formatted as a percentage is 4.5, not 4.499999….
fn shown(v: f64) -> f64 {
    format!("{v:.14e}").parse().unwrap_or(v)
}

/// A reading's value: `None` for an empty cell (no figure yet), or why the
/// cell is not a number.
pub fn value(cell: &Cell) -> Result<Option<f64>, Problem> {
    match cell {
        Cell::Empty => Ok(None),
        Cell::Number { value, percent } => {
            if !value.is_finite() {
                return Err(Problem::new(
                    "数值不是有限数",
                    "请填写数字",
                    "value is not a finite number",
                ));
            }
            Ok(Some(if *percent {
                shown(value * 100.0)
            } else {
                *value
            }))
        }
        Cell::Text(text) => number_text(text),
        Cell::Bool(b) => Err(Problem::new(
            format!(
                "这一格是逻辑值（{}），不是数字",
                if *b { "TRUE" } else { "FALSE" }
            ),
            "请填写数字；没有数据请留空",
            format!("value is a boolean ({b}), not a number"),
        )),
        Cell::Date(d) => Err(Problem::new(
            format!("这一格是日期（{}），不是数字", d.format("%Y-%m-%d")),
            "请把这一格的单元格格式设为“常规”或“数值”，再填写数字",
            "value is a date, not a number",
        )),
        Cell::Duration => Err(Problem::new(
            "这一格是时长，不是数字",
            "请把这一格的单元格格式设为“常规”或“数值”，再填写数字",
            "value is a duration, not a number",
        )),
        other => Err(unusable(other).expect("error and formula cells are unusable")),
    }
}

/// The problem with an error value or a formula without a usable result.
pub fn unusable(cell: &Cell) -> Option<Problem> {
    match cell {
        Cell::Error(e) => Some(Problem::new(
            format!("这一格显示错误值 {e}，没有数字"),
            "请在 Excel 或 WPS 中修正这一格的公式或数字后保存，再导入",
            format!("the cell holds the error value {e}"),
        )),
        Cell::Formula { formula, why } => {
            let f = shorten(formula);
            Some(match why {
                Unsaved::Missing => Problem::new(
                    format!("这一格是公式（={f}），但文件中没有保存计算结果"),
                    "请用 Excel 或 WPS 打开文件，确认这一格显示正常后保存，再导入",
                    format!("formula `={f}` has no saved result"),
                ),
                Unsaved::Placeholder => Problem::new(
                    format!(
                        "这一格是公式（={f}），文件由不计算公式的程序生成，其中保存的结果不可信"
                    ),
                    "请用 Excel 或 WPS 打开文件（打开时会重新计算），保存后再导入",
                    format!(
                        "formula `={f}`: the file asks to recalculate on opening, so its saved result is a placeholder"
                    ),
                ),
            })
        }
        _ => None,
    }
}

fn shorten(s: &str) -> String {
    let s = s.trim().trim_start_matches('=');
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// A number typed as text.
fn number_text(raw: &str) -> Result<Option<f64>, Problem> {
    let t = normalize(raw);
    if t.is_empty() || NO_FIGURE.contains(&t.as_str()) {
        return Ok(None);
    }
    let (body, percent) = match t.strip_suffix('%') {
        Some(b) => (b, true),
        None => (t.as_str(), false),
    };
    let digits: String = if GROUPED_NUMBER.is_match(body) {
        body.replace(',', "")
    } else {
        body.to_owned()
    };
    if PLAIN_NUMBER.is_match(&digits) {
        if let Ok(v) = digits.parse::<f64>() {
            if v.is_finite() {
                // "4.5%" is read as the number shown: 4.5 (percent metrics are in percent).
                let _ = percent;
                return Ok(Some(v));
            }
        }
    }
    let shown = raw.trim();
    let hint = if body.contains(',') {
        "千位分隔符“,”须每三位一个（如 1,234,567）；小数点请用“.”".to_owned()
    } else {
        "请只填数字，如 1234 或 1,234.5，单位写在表头里；没有数据请留空".to_owned()
    };
    Err(Problem::new(
        format!("“{shown}”不是数字"),
        hint,
        format!("value `{shown}` is not a number"),
    ))
}

/// A label's value: text as typed (trimmed), numbers without a trailing `.0`.
pub fn label(cell: &Cell) -> Result<Option<String>, Problem> {
    match cell {
        Cell::Empty => Ok(None),
        Cell::Text(t) => {
            let t = t.trim();
            Ok((!t.is_empty()).then(|| t.to_owned()))
        }
        Cell::Number { value, .. } => Ok(Some(if value.fract() == 0.0 && value.abs() < 1e15 {
            format!("{}", *value as i64)
        } else {
            format!("{value}")
        })),
        Cell::Bool(b) => Ok(Some(if *b { "TRUE" } else { "FALSE" }.to_owned())),
        Cell::Date(d) => Ok(Some(d.format("%Y-%m-%d").to_string())),
        Cell::Duration => Err(Problem::new(
            "这一格是时长，不能作为分类名称",
            "请填写文字",
            "a duration cannot be a label",
        )),
        other => Err(unusable(other).expect("error and formula cells are unusable")),
    }
}

/// The text of a header cell (indicator name, column name), normalized for
/// matching: whitespace and line breaks removed, full-width brackets and
/// digits made half-width. `None` for non-text cells.
pub fn header(cell: &Cell) -> Option<String> {
    match cell {
        Cell::Text(t) => Some(normalize(t)).filter(|s| !s.is_empty()),
        Cell::Number { .. } | Cell::Date(_) => label(cell).ok().flatten(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Periods.

fn last_day(year: i32, month: u32) -> Option<NaiveDate> {
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)?.pred_opt()
}

fn month_end(year: i32, month: u32) -> Option<NaiveDate> {
    (1..=12).contains(&month).then(|| last_day(year, month))?
}

fn plausible_year(y: i32) -> bool {
    (1900..=2100).contains(&y)
}

fn cn_number(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    const DIGITS: [char; 10] = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
    let digit = |c: char| DIGITS.iter().position(|&d| d == c).map(|i| i as u32);
    let chars: Vec<char> = s.chars().collect();
    match chars.as_slice() {
        [c] if *c == '十' => Some(10),
        [c] => digit(*c),
        ['十', c] => Some(10 + digit(*c)?),
        [c, '十'] => Some(digit(*c)? * 10),
        [a, '十', b] => Some(digit(*a)? * 10 + digit(*b)?),
        _ => None,
    }
}

const NUM: &str = r"(\d{1,2}|[一二三四五六七八九十]{1,3})";
const TO: &str = r"[-~～—–至到]";

struct Patterns {
    day: Regex,
    month: Regex,
    month_dash: Regex,
    quarter: Regex,
    quarter_q: Regex,
    first_three: Regex,
    half: Regex,
    half_h: Regex,
    year: Regex,
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    let r = |s: &str| Regex::new(s).expect("valid period pattern");
    Patterns {
        day: r(r"^(\d{4})(?:年(\d{1,2})月(\d{1,2})日?|[-/.](\d{1,2})[-/.](\d{1,2}))$"),
        // 2021年6月, 2021年6月份/末/底, 2021年1-6月 (year to date)
        month: r(&format!(
            r"^(\d{{4}})年(?:{NUM}月?{TO})?{NUM}月(?:份|末|底)?$"
        )),
        month_dash: r(r"^(\d{4})(?:[-/.](\d{1,2})|(\d{2}))$"),
        quarter: r(&format!(
            r"^(\d{{4}})年(?:第)?(?:{NUM}{TO})?{NUM}(?:季度|季)(?:末|底)?$"
        )),
        quarter_q: r(r"^(\d{4})[-/]?[Qq]([1-4])$"),
        first_three: r(r"^(\d{4})年前([一二三])季度$"),
        half: r(r"^(\d{4})年(上|下)半年(?:末|底)?$"),
        half_h: r(r"^(\d{4})[-/]?[Hh]([12])$"),
        year: r(r"^(\d{4})(?:年(?:全年|年度|度)?)?$"),
    }
});

/// Why a text or number is not a period, with the forms accepted.
pub fn not_a_period(shown: &str) -> Problem {
    Problem::new(
        format!("“{shown}”不是可识别的时期或日期"),
        "请写成 2021年6月、2021-06、2021/6/30、2021年第二季度、2021年上半年或 2021年，或把单元格设为日期格式",
        format!("`{shown}` is not a period or date (e.g. 2021年6月, 2021-06, 2021/6/30, 2021年第二季度)"),
    )
}

/// A period typed as text; `None` if the text is not one.
pub fn period_text(raw: &str) -> Option<Period> {
    let t = normalize(raw);
    if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().ok().and_then(period_number); // 20210630
    }
    let p = &*PATTERNS;
    let year = |s: &str| s.parse::<i32>().ok().filter(|y| plausible_year(*y));
    let end = |d: Option<NaiveDate>, span| {
        d.map(|d| Period {
            stamp: midnight(d),
            span,
        })
    };
    if let Some(c) = p.day.captures(&t) {
        let y = year(&c[1])?;
        let (m, d) = match (c.get(2), c.get(3)) {
            (Some(m), Some(d)) => (m.as_str(), d.as_str()),
            _ => (c.get(4)?.as_str(), c.get(5)?.as_str()),
        };
        return NaiveDate::from_ymd_opt(y, m.parse().ok()?, d.parse().ok()?).map(Period::day);
    }
    if let Some(c) = p.month.captures(&t) {
        let y = year(&c[1])?;
        let m = cn_number(&c[3])?;
        if let Some(from) = c.get(2) {
            if !(1..=m).contains(&cn_number(from.as_str())?) {
                return None;
            }
        }
        return end(month_end(y, m), Span::Month);
    }
    if let Some(c) = p.month_dash.captures(&t) {
        let y = year(&c[1])?;
        let m = c.get(2).or(c.get(3))?.as_str().parse().ok()?;
        return end(month_end(y, m), Span::Month);
    }
    let quarter = |y: i32, q: u32| {
        (1..=4)
            .contains(&q)
            .then(|| end(month_end(y, q * 3), Span::Quarter))?
    };
    if let Some(c) = p.quarter.captures(&t) {
        let q = cn_number(&c[3])?;
        if let Some(from) = c.get(2) {
            if !(1..=q).contains(&cn_number(from.as_str())?) {
                return None;
            }
        }
        return quarter(year(&c[1])?, q);
    }
    if let Some(c) = p.quarter_q.captures(&t) {
        return quarter(year(&c[1])?, c[2].parse().ok()?);
    }
    if let Some(c) = p.first_three.captures(&t) {
        return quarter(year(&c[1])?, cn_number(&c[2])?);
    }
    let half = |y: i32, second: bool| end(month_end(y, if second { 12 } else { 6 }), Span::Half);
    if let Some(c) = p.half.captures(&t) {
        return half(year(&c[1])?, &c[2] == "下");
    }
    if let Some(c) = p.half_h.captures(&t) {
        return half(year(&c[1])?, &c[2] == "2");
    }
    if let Some(c) = p.year.captures(&t) {
        return end(month_end(year(&c[1])?, 12), Span::Year);
    }
    None
}

/// Excel's day 0 in the 1900 date system (serial 1 is 1900-01-01; the
/// system's phantom 1900-02-29 makes 1899-12-30 the base for real dates).
fn excel_base() -> NaiveDate {
    NaiveDate::from_ymd_opt(1899, 12, 30).expect("valid date")
}

/// A period typed as a plain number: a year (`2021`), a year and month
/// (`202106`), a date (`20210630`), or an Excel serial date (`44377`).
pub fn period_number(v: f64) -> Option<Period> {
    if !v.is_finite() || v <= 0.0 {
        return None;
    }
    if v.fract() == 0.0 {
        let n = v as i64;
        if plausible_year(n as i32) && n < 10_000 {
            return month_end(n as i32, 12).map(|d| Period {
                stamp: midnight(d),
                span: Span::Year,
            });
        }
        if (190_001..=210_012).contains(&n) {
            let d = month_end((n / 100) as i32, (n % 100) as u32)?;
            return Some(Period {
                stamp: midnight(d),
                span: Span::Month,
            });
        }
        if (19_000_101..=21_001_231).contains(&n) {
            let d = NaiveDate::from_ymd_opt(
                (n / 10_000) as i32,
                (n / 100 % 100) as u32,
                (n % 100) as u32,
            )?;
            return Some(Period::day(d));
        }
    }
    // Serial dates from 1900-03-01 (61) to 2100-12-31 (73415).
    if (61.0..73_416.0).contains(&v) {
        let days = v.trunc() as i64;
        let ms = ((v - v.trunc()) * 86_400_000.0).round() as i64;
        let stamp = midnight(excel_base() + chrono::Duration::days(days))
            + chrono::Duration::milliseconds(ms);
        return Some(Period {
            stamp,
            span: Span::Day,
        });
    }
    None
}

/// A cell as a period: dates as typed, text and numbers as above.
pub fn period(cell: &Cell) -> Result<Option<Period>, Problem> {
    match cell {
        Cell::Empty => Ok(None),
        Cell::Date(d) => Ok(Some(Period {
            stamp: *d,
            span: Span::Day,
        })),
        Cell::Text(t) if t.trim().is_empty() => Ok(None),
        Cell::Text(t) => period_text(t)
            .map(Some)
            .ok_or_else(|| not_a_period(t.trim())),
        Cell::Number { value, .. } => period_number(*value)
            .map(Some)
            .ok_or_else(|| not_a_period(&format!("{value}"))),
        Cell::Bool(b) => Err(not_a_period(if *b { "TRUE" } else { "FALSE" })),
        Cell::Duration => Err(Problem::new(
            "这一格是时长，不是日期或时期",
            "请填写日期或时期，如 2021年6月",
            "a duration is not a period",
        )),
        other => Err(unusable(other).expect("error and formula cells are unusable")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDateTime {
        midnight(NaiveDate::from_ymd_opt(y, m, day).unwrap())
    }

    fn text(s: &str) -> Option<(NaiveDateTime, Span)> {
        period_text(s).map(|p| (p.stamp, p.span))
    }

    #[test]
    fn periods_as_text() {
        use Span::*;
        let june = Some((d(2021, 6, 30), Month));
        for s in [
            "2021年6月",
            "2021年06月",
            "2021年6月份",
            "2021年六月",
            "2021-06",
            "2021/6",
            "2021.6",
            "202106",
            "２０２１年６月",
            " 2021 年 6 月 ",
            "2021年1-6月",
            "2021年1～6月",
            "2021年1至6月",
            "2021年6月末",
        ] {
            assert_eq!(text(s), june, "{s}");
        }
        assert_eq!(text("2021年12月"), Some((d(2021, 12, 31), Month)));
        assert_eq!(text("2021年十二月"), Some((d(2021, 12, 31), Month)));
        assert_eq!(text("2024年2月"), Some((d(2024, 2, 29), Month)));
        for s in [
            "2021/6/30",
            "2021-6-30",
            "2021.06.30",
            "2021年6月30日",
            "2021年6月30",
            "20210630",
        ] {
            assert_eq!(text(s), Some((d(2021, 6, 30), Day)), "{s}");
        }
        for s in [
            "2021年第二季度",
            "2021年二季度",
            "2021年第2季度",
            "2021Q2",
            "2021-Q2",
            "2021年1-2季度",
        ] {
            assert_eq!(text(s), Some((d(2021, 6, 30), Quarter)), "{s}");
        }
        assert_eq!(text("2021年前三季度"), Some((d(2021, 9, 30), Quarter)));
        assert_eq!(text("2021年上半年"), Some((d(2021, 6, 30), Half)));
        assert_eq!(text("2021年下半年"), Some((d(2021, 12, 31), Half)));
        assert_eq!(text("2021H1"), Some((d(2021, 6, 30), Half)));
        for s in ["2021年", "2021", "2021年全年", "2021年度"] {
            assert_eq!(text(s), Some((d(2021, 12, 31), Year)), "{s}");
        }
        for s in [
            "2021年13月",
            "2021年6-3月",
            "2021-02-30",
            "合计",
            "2021年第五季度",
            "6月",
            "1899年",
        ] {
            assert_eq!(text(s), None, "{s}");
        }
    }

    #[test]
    fn periods_as_numbers() {
        assert_eq!(period_number(2021.0).unwrap().stamp, d(2021, 12, 31));
        assert_eq!(period_number(202106.0).unwrap().stamp, d(2021, 6, 30));
        assert_eq!(period_number(20210630.0).unwrap().stamp, d(2021, 6, 30));
        // Excel serial 44377 is 2021-06-30.
        let p = period_number(44377.0).unwrap();
        assert_eq!((p.stamp, p.span), (d(2021, 6, 30), Span::Day));
        assert_eq!(
            period_number(44377.375).unwrap().stamp,
            d(2021, 6, 30) + chrono::Duration::hours(9)
        );
        assert_eq!(period_number(-3.0), None);
        assert_eq!(period_number(202113.0), None);
    }

    #[test]
    fn numbers_as_text() {
        let v = |s: &str| value(&Cell::Text(s.into()));
        assert_eq!(v("1,234.5"), Ok(Some(1234.5)));
        assert_eq!(v("１２３４"), Ok(Some(1234.0)));
        assert_eq!(v("１，２３４．５"), Ok(Some(1234.5)));
        assert_eq!(v(" 4.5% "), Ok(Some(4.5)));
        assert_eq!(v("-3"), Ok(Some(-3.0)));
        assert_eq!(v("1e3"), Ok(Some(1000.0)));
        assert_eq!(v("—"), Ok(None));
        assert_eq!(v(""), Ok(None));
        for bad in ["12,3", "1.2.3", "inf", "NaN", "4.5亿", "12a"] {
            let e = v(bad).unwrap_err();
            assert!(e.message.contains("不是数字"), "{bad}: {e:?}");
        }
        assert!(v("12,3").unwrap_err().hint.contains("千位分隔符"));
    }

    #[test]
    fn percent_cells_read_as_shown() {
        let c = Cell::Number {
            value: 0.045,
            percent: true,
        };
        assert_eq!(value(&c), Ok(Some(4.5)));
        let c = Cell::Number {
            value: 0.047,
            percent: true,
        };
        assert_eq!(value(&c), Ok(Some(4.7)));
    }

    #[test]
    fn labels_from_numbers() {
        let n = |v| Cell::Number {
            value: v,
            percent: false,
        };
        assert_eq!(label(&n(2021.0)), Ok(Some("2021".into())));
        assert_eq!(label(&n(1.5)), Ok(Some("1.5".into())));
        assert_eq!(
            label(&Cell::Text("  南宫 ".into())),
            Ok(Some("南宫".into()))
        );
    }
}
