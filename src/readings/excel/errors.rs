//! What went wrong in a workbook, and where: every problem names the file and,
//! when it has one, the sheet and cell (`人社.xlsx:Sheet1!C7`), says what is
//! wrong in Chinese, how to fix it (`提示：`), and repeats the gist in English
//! for operators. A workbook with any problem stores nothing, so all of them
//! are collected before anything is reported.

use std::fmt;

/// Problems listed with their place; the rest are only counted.
pub const MAX_ERRORS: usize = 100;

/// One problem in a workbook or its mapping file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CellError {
    /// The workbook's (or mapping file's) name as given.
    pub file: String,
    /// The sheet, when the problem is inside one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// The cell in A1 notation (`C7`), when the problem is one cell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell: Option<String>,
    /// Line and column in a mapping file (1-based), when the problem is there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<(usize, usize)>,
    /// What is wrong, in Chinese.
    pub message: String,
    /// How to fix it, in Chinese (printed after `提示：`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hint: String,
    /// The gist in English, for operators.
    pub english: String,
}

impl CellError {
    /// The place as printed: `人社.xlsx:Sheet1!C7`, `人社.xlsx:Sheet1`,
    /// `人社.xlsx.ron:3:5` or `人社.xlsx`.
    pub fn place(&self) -> String {
        let mut s = self.file.clone();
        if let Some((line, col)) = self.line {
            s.push_str(&format!(":{line}:{col}"));
        }
        if let Some(sheet) = &self.sheet {
            s.push(':');
            s.push_str(sheet);
            if let Some(cell) = &self.cell {
                s.push('!');
                s.push_str(cell);
            }
        }
        s
    }
}

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: 错误：{}", self.place(), self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\n  提示：{}", self.hint)?;
        }
        write!(f, "\n  ({})", self.english)
    }
}

/// A rejected workbook: every problem found (up to [`MAX_ERRORS`]), nothing stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WorkbookError {
    pub errors: Vec<CellError>,
    /// How many problems there were in all (`errors` is capped).
    pub total: usize,
}

impl fmt::Display for WorkbookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        if self.total > self.errors.len() {
            write!(
                f,
                "\n…另有 {} 处错误 (and {} more)",
                self.total - self.errors.len(),
                self.total - self.errors.len()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for WorkbookError {}

/// A problem without its place yet: cell readers return these, and the sheet
/// reader adds file, sheet and cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub hint: String,
    pub english: String,
}

impl Problem {
    pub fn new(
        message: impl Into<String>,
        hint: impl Into<String>,
        english: impl Into<String>,
    ) -> Self {
        Problem {
            message: message.into(),
            hint: hint.into(),
            english: english.into(),
        }
    }
}

/// Collects the problems of one workbook, keeping the first [`MAX_ERRORS`].
#[derive(Debug)]
pub struct Collector {
    file: String,
    errors: Vec<CellError>,
    total: usize,
}

impl Collector {
    pub fn new(file: &str) -> Self {
        Collector {
            file: file.to_owned(),
            errors: Vec::new(),
            total: 0,
        }
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn push(&mut self, e: CellError) {
        self.total += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(e);
        }
    }

    /// A problem in one cell; `row` and `col` are 0-based.
    pub fn cell(&mut self, sheet: &str, row: u32, col: u32, p: Problem) {
        let e = CellError {
            file: self.file.clone(),
            sheet: Some(sheet.to_owned()),
            cell: Some(cell_name(row, col)),
            line: None,
            message: p.message,
            hint: p.hint,
            english: p.english,
        };
        self.push(e);
    }

    /// A problem with a whole sheet.
    pub fn sheet(&mut self, sheet: &str, p: Problem) {
        let e = CellError {
            file: self.file.clone(),
            sheet: Some(sheet.to_owned()),
            cell: None,
            line: None,
            message: p.message,
            hint: p.hint,
            english: p.english,
        };
        self.push(e);
    }

    /// A problem with the whole file.
    pub fn file_problem(&mut self, p: Problem) {
        let e = CellError {
            file: self.file.clone(),
            sheet: None,
            cell: None,
            line: None,
            message: p.message,
            hint: p.hint,
            english: p.english,
        };
        self.push(e);
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn finish(self) -> Result<(), WorkbookError> {
        if self.total == 0 {
            Ok(())
        } else {
            Err(WorkbookError {
                errors: self.errors,
                total: self.total,
            })
        }
    }
}

/// `A`, `B`, … `Z`, `AA`, … for a 0-based column.
pub fn column_name(col: u32) -> String {
    let mut n = col as u64 + 1;
    let mut s = Vec::new();
    while n > 0 {
        let r = ((n - 1) % 26) as u8;
        s.push(b'A' + r);
        n = (n - 1) / 26;
    }
    s.reverse();
    String::from_utf8(s).expect("ASCII letters")
}

/// `C7` for 0-based row 6, column 2.
pub fn cell_name(row: u32, col: u32) -> String {
    format!("{}{}", column_name(col), row as u64 + 1)
}

/// The 0-based column of a letter name (`A` → 0, `AA` → 26), any case.
pub fn parse_column(name: &str) -> Option<u32> {
    let name = name.trim();
    if name.is_empty() || name.len() > 3 {
        return None;
    }
    let mut n: u32 = 0;
    for c in name.chars() {
        if !c.is_ascii_alphabetic() {
            return None;
        }
        n = n * 26 + (c.to_ascii_uppercase() as u32 - 'A' as u32 + 1);
    }
    // Excel's last column is XFD (16384).
    (n <= 16_384).then(|| n - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_names() {
        assert_eq!(cell_name(6, 2), "C7");
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_name(16_383), "XFD");
        for c in [0, 1, 25, 26, 27, 701, 702, 16_383] {
            assert_eq!(parse_column(&column_name(c)), Some(c));
        }
        assert_eq!(parse_column("c"), Some(2));
        assert_eq!(parse_column("XFE"), None);
        assert_eq!(parse_column("A1"), None);
        assert_eq!(parse_column(""), None);
    }

    #[test]
    fn places_print_file_sheet_cell() {
        let mut c = Collector::new("人社.xlsx");
        c.cell(
            "Sheet1",
            6,
            2,
            Problem::new("不是数字", "请填写数字", "not a number"),
        );
        let e = c.finish().unwrap_err();
        assert_eq!(e.total, 1);
        let text = e.to_string();
        assert!(
            text.starts_with("人社.xlsx:Sheet1!C7: 错误：不是数字\n  提示：请填写数字"),
            "{text}"
        );
    }
}
