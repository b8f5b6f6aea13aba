//! Diagnostics users read. The first line is the machine-readable
//! `PATH:LINE:COL: error: MESSAGE` (editors and scripts parse it); `render`
//! adds the source line with a caret under the column (CJK characters count
//! two columns, as a terminal draws them) and `提示：` with the fix, drawn by
//! codespan-reporting.

use std::fmt;
use std::path::{Path, PathBuf};

use codespan_reporting::diagnostic::{Diagnostic as Report, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;

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
    /// What to write instead, printed as `提示：…` under the source line.
    pub hint: Option<String>,
    /// How many characters the caret underlines (at least one).
    pub width: usize,
    /// Words beside the caret.
    pub label: Option<String>,
    /// A second place that explains this one (e.g. where a block opened).
    pub related: Option<Related>,
}

/// A second position in the same file, drawn with `-` under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    pub line: usize,
    pub col: usize,
    pub width: usize,
    pub label: String,
}

impl Diagnostic {
    pub fn error(path: &Path, line: usize, col: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            path: path.to_path_buf(),
            line,
            col,
            message: message.into(),
            is_error: true,
            hint: None,
            width: 1,
            label: None,
            related: None,
        }
    }

    pub fn warning(path: &Path, line: usize, col: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            is_error: false,
            ..Diagnostic::error(path, line, col, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Underlines `width` characters from the column.
    pub fn with_width(mut self, width: usize) -> Self {
        self.width = width.max(1);
        self
    }

    pub fn with_related(mut self, line: usize, col: usize, label: impl Into<String>) -> Self {
        self.related = Some(Related {
            line,
            col,
            width: 1,
            label: label.into(),
        });
        self
    }

    /// The full form, reading the source line from the file itself.
    pub fn render(&self) -> String {
        let source = std::fs::read_to_string(&self.path).ok();
        self.render_with(source.as_deref())
    }

    /// The full form: the first line as `Display`, then (when the position
    /// is known and `source` has it) the source line with a caret under the
    /// column, then `= 提示：…`.
    pub fn render_with(&self, source: Option<&str>) -> String {
        let mut out = format!("{self}\n");
        let source = source.filter(|s| self.line > 0 && self.line <= s.lines().count().max(1));
        let Some(source) = source else {
            if let Some(hint) = &self.hint {
                out.push_str(&format!("  = 提示：{hint}\n"));
            }
            return out;
        };
        let file = SimpleFile::new(self.path.display().to_string(), source);
        let mut primary = Label::primary((), span(source, self.line, self.col, self.width));
        if let Some(label) = &self.label {
            primary = primary.with_message(label);
        }
        let mut labels = vec![primary];
        if let Some(r) = &self.related {
            labels.push(
                Label::secondary((), span(source, r.line, r.col, r.width)).with_message(&r.label),
            );
        }
        let report = if self.is_error {
            Report::error()
        } else {
            Report::warning()
        }
        .with_labels(labels)
        .with_notes(self.hint.iter().map(|h| format!("提示：{h}")).collect());
        let config = term::Config::default();
        let Ok(text) = term::emit_into_string(&config, &file, &report) else {
            return out;
        };
        // codespan's own header (`error: …`) and locus (`┌─ path:line:col`)
        // repeat our first line: leave them out.
        for (i, line) in text.lines().enumerate() {
            if i == 0
                || (i == 1
                    && line
                        .trim_start()
                        .starts_with(config.chars.snippet_start.as_str()))
            {
                continue;
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The byte range of `width` characters at 1-based (line, char column),
/// clamped to the line (a position past its end marks the end).
fn span(source: &str, line: usize, col: usize, width: usize) -> std::ops::Range<usize> {
    let mut start_of_line = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let text = l.trim_end_matches(['\n', '\r']);
            let byte_at = |c: usize| text.char_indices().nth(c).map_or(text.len(), |(b, _)| b);
            let from = byte_at(col.saturating_sub(1));
            let to = byte_at(col.saturating_sub(1) + width.max(1)).max(from);
            return start_of_line + from..start_of_line + to;
        }
        start_of_line += l.len();
    }
    source.len()..source.len()
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

/// The nearest of `candidates` to `word` by edit distance, if near enough to
/// be a slip of the keyboard (at most 2 edits, and fewer than its length).
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = 2.min(word.chars().count().saturating_sub(1)).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_sits_under_the_column_counting_wide_characters_twice() {
        let src = "// 说明\nlet x = latest(\"pm25\"，#{});\n";
        let d = Diagnostic::error(Path::new("r.rhai"), 2, 22, "全角逗号")
            .with_label("全角逗号")
            .with_hint("请改为半角逗号“,”");
        let text = d.render_with(Some(src));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "r.rhai:2:22: error: 全角逗号", "{text}");
        let code = lines.iter().find(|l| l.contains("latest")).unwrap();
        let caret = lines.iter().find(|l| l.contains('^')).unwrap();
        let w = |s: &str| unicode_width::UnicodeWidthStr::width(s);
        let comma = code.find('，').unwrap();
        assert_eq!(
            w(&code[..comma]),
            w(&caret[..caret.find('^').unwrap()]),
            "{text}"
        );
        // A full-width comma is two columns wide: two carets.
        assert!(caret.contains("^^ "), "{text}");
        assert!(text.contains("= 提示：请改为半角逗号“,”"), "{text}");
    }

    #[test]
    fn without_a_position_only_the_line_and_hint() {
        let d = Diagnostic::error(Path::new("r.rhai"), 0, 0, "读不到").with_hint("检查权限");
        assert_eq!(
            d.render_with(Some("x")),
            "r.rhai: error: 读不到\n  = 提示：检查权限\n"
        );
    }
}
