//! Diagnostics users read: `PATH:LINE:COL: error: MESSAGE`.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem found in a file the user wrote (config, rule, test file, readings).
/// `line` and `col` are 1-based; 0 means "unknown" and is left out when printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// `false` for warnings: printed, but `check` still succeeds.
    pub is_error: bool,
}

impl Diagnostic {
    pub fn error(path: &Path, line: usize, col: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            path: path.to_path_buf(),
            line,
            col,
            message: message.into(),
            is_error: true,
        }
    }

    pub fn warning(path: &Path, line: usize, col: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            is_error: false,
            ..Diagnostic::error(path, line, col, message)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.col > 0 {
                write!(f, ":{}", self.col)?;
            }
        }
        let level = if self.is_error { "error" } else { "warning" };
        write!(f, ": {level}: {}", self.message)
    }
}

/// 1-based (line, column in characters) of a byte offset in `text`.
pub fn line_col(text: &str, byte_offset: usize) -> (usize, usize) {
    let before = &text[..byte_offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}
