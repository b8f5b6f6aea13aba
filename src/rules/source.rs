//! A light scan of a rule's source text: identifiers, string literals and
//! brackets with their line and column, comments and string contents
//! skipped. Rhai's own parser stops at the first error and says little about
//! a Chinese author's usual slips (a full-width comma, a bracket left open);
//! this scan finds them, and the names a rule calls, without running it.

/// One piece of the source outside comments.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: Kind,
    /// 1-based line and character column.
    pub line: usize,
    pub col: usize,
    /// Byte offset in the source.
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Ident(String),
    /// A string literal's content (`"…"`, `` `…` ``, `'…'`), escapes left as written.
    Str(String),
    /// An ASCII punctuation character (`(`, `{`, `.`, `#` …).
    Punct(char),
    /// A character outside ASCII, outside strings and comments: a full-width
    /// punctuation mark or Chinese text where code was expected.
    Wide(char),
    Number,
}

impl Token {
    pub fn ident(&self) -> Option<&str> {
        match &self.kind {
            Kind::Ident(s) => Some(s),
            _ => None,
        }
    }

    pub fn is(&self, c: char) -> bool {
        self.kind == Kind::Punct(c)
    }
}

/// Splits `source` into tokens. Never fails: an unterminated string or
/// comment runs to the end of the file.
pub fn scan(source: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let mut out = Vec::new();
    let (mut line, mut col) = (1usize, 1usize);
    let mut i = 0;
    // Advances over chars[i], keeping line and col.
    let step = |i: &mut usize, line: &mut usize, col: &mut usize| {
        if chars[*i].1 == '\n' {
            *line += 1;
            *col = 1;
        } else {
            *col += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        let (offset, c) = chars[i];
        let next = chars.get(i + 1).map(|x| x.1);
        let (at_line, at_col) = (line, col);
        let push = |out: &mut Vec<Token>, kind| {
            out.push(Token {
                kind,
                line: at_line,
                col: at_col,
                offset,
            })
        };
        if c.is_whitespace() && c.is_ascii() {
            step(&mut i, &mut line, &mut col);
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i].1 != '\n' {
                step(&mut i, &mut line, &mut col);
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0usize;
            while i < chars.len() {
                let (a, b) = (chars[i].1, chars.get(i + 1).map(|x| x.1));
                if a == '/' && b == Some('*') {
                    depth += 1;
                    step(&mut i, &mut line, &mut col);
                } else if a == '*' && b == Some('/') {
                    depth -= 1;
                    step(&mut i, &mut line, &mut col);
                    if depth == 0 {
                        step(&mut i, &mut line, &mut col);
                        break;
                    }
                }
                step(&mut i, &mut line, &mut col);
            }
        } else if c == '"' || c == '`' || c == '\'' {
            step(&mut i, &mut line, &mut col);
            let mut text = String::new();
            while i < chars.len() && chars[i].1 != c {
                // A plain string ends at the line's end (Rhai wants `\` to go on).
                if c == '"' && chars[i].1 == '\n' {
                    break;
                }
                if chars[i].1 == '\\' && i + 1 < chars.len() {
                    text.push('\\');
                    step(&mut i, &mut line, &mut col);
                }
                text.push(chars[i].1);
                step(&mut i, &mut line, &mut col);
            }
            if i < chars.len() && chars[i].1 == c {
                step(&mut i, &mut line, &mut col);
            }
            push(&mut out, Kind::Str(text));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut name = String::new();
            while i < chars.len() && (chars[i].1.is_ascii_alphanumeric() || chars[i].1 == '_') {
                name.push(chars[i].1);
                step(&mut i, &mut line, &mut col);
            }
            push(&mut out, Kind::Ident(name));
        } else if c.is_ascii_digit() {
            while i < chars.len()
                && (chars[i].1.is_ascii_alphanumeric() || chars[i].1 == '_' || chars[i].1 == '.')
            {
                // `1..5` is a range, not a number.
                if chars[i].1 == '.' && chars.get(i + 1).is_some_and(|x| x.1 == '.') {
                    break;
                }
                step(&mut i, &mut line, &mut col);
            }
            push(&mut out, Kind::Number);
        } else if c.is_ascii() {
            push(&mut out, Kind::Punct(c));
            step(&mut i, &mut line, &mut col);
        } else {
            push(&mut out, Kind::Wide(c));
            step(&mut i, &mut line, &mut col);
        }
    }
    out
}

/// 1-based (line, column) just past the last character of `source`.
pub fn end_position(source: &str) -> (usize, usize) {
    crate::diag::line_col(source, source.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_comments_hide_their_content() {
        let t = scan("let a = \"，\"; // （\n/* ｛ */ b（");
        let kinds: Vec<&Kind> = t.iter().map(|t| &t.kind).collect();
        assert_eq!(
            kinds,
            [
                &Kind::Ident("let".into()),
                &Kind::Ident("a".into()),
                &Kind::Punct('='),
                &Kind::Str("，".into()),
                &Kind::Punct(';'),
                &Kind::Ident("b".into()),
                &Kind::Wide('（'),
            ]
        );
        let wide = t.last().unwrap();
        assert_eq!((wide.line, wide.col), (2, 10));
    }
}
