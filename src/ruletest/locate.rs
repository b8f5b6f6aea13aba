//! Where things are in a RON file that serde has already accepted.
//!
//! serde hands back values without positions, but a failing test must name
//! the line of the evaluation or expected alert that failed, and a bad value
//! (an unknown rule, a bad series token) must be pointed at. This scanner
//! walks the RON text once and keeps the start of every value, so a value
//! can be found again by its path (`tests[2].evals[0].alerts[1]`).
//!
//! It trusts the text to be valid RON (ron parsed it first) and never fails:
//! a path that is not there gives `None`, and callers fall back to the
//! enclosing value.

/// One value of the file and, for containers, what it holds.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Byte offset of the value's first character (for `Name(…)` the name).
    pub start: usize,
    /// Byte offset of the opening quote, for strings.
    pub string_start: Option<usize>,
    /// `(x: 1)` fields and `{ "k": v }` entries (keys as written, quotes removed).
    pub fields: Vec<(String, Node)>,
    /// `[a, b]` and `(a, b)` elements.
    pub items: Vec<Node>,
    /// `Some(…)` and other `Name(…)` wrappers: the name.
    pub name: Option<String>,
    /// A string's content or an identifier (`breach`, `true`).
    pub text: Option<String>,
}

impl Node {
    /// The field `key` of a struct or map, looking through `Some(…)`.
    pub fn field(&self, key: &str) -> Option<&Node> {
        let n = self.unwrap_some();
        n.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The `i`th element of a list, looking through `Some(…)`.
    pub fn item(&self, i: usize) -> Option<&Node> {
        self.unwrap_some().items.get(i)
    }

    /// `Some(x)` → x; anything else → itself.
    pub fn unwrap_some(&self) -> &Node {
        match (&self.name, self.items.as_slice()) {
            (Some(n), [inner]) if n == "Some" && self.fields.is_empty() => inner.unwrap_some(),
            _ => self,
        }
    }
}

/// A step of a path into the file.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    Field(&'a str),
    Item(usize),
}

/// Scans `text` (valid RON) into its tree of values.
pub fn scan(text: &str) -> Node {
    let mut s = Scanner { text, pos: 0 };
    s.skip_ws();
    s.value()
}

/// The deepest node along `path` that exists (the root if none does).
pub fn find<'n>(root: &'n Node, path: &[Step]) -> &'n Node {
    let mut node = root;
    for step in path {
        let next = match step {
            Step::Field(k) => node.field(k),
            Step::Item(i) => node.item(*i),
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    node
}

/// 1-based (line, column in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    crate::diag::line_col(text, offset)
}

/// The position of character `k` of the string value whose opening quote is
/// at byte `quote`: escapes count as the one character they stand for.
pub fn string_char_position(text: &str, quote: usize, k: usize) -> (usize, usize) {
    let rest = &text[quote..];
    // Raw strings: r"…", r#"…"#.
    let skip = if rest.starts_with('r') {
        rest.find('"').map_or(1, |i| i + 1)
    } else {
        1
    };
    let mut offset = quote + skip;
    let mut chars = text[offset..].char_indices();
    let mut seen = 0;
    while seen < k {
        let Some((_, c)) = chars.next() else { break };
        if c == '\\' && skip == 1 {
            chars.next();
        }
        seen += 1;
    }
    if let Some((i, _)) = chars.next() {
        offset += i;
    } else {
        offset = text.len();
    }
    line_col(text, offset)
}

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn skip_ws(&mut self) {
        loop {
            while self.peek().is_some_and(char::is_whitespace) {
                self.bump();
            }
            if self.rest().starts_with("//") {
                let end = self
                    .rest()
                    .find('\n')
                    .map_or(self.text.len(), |i| self.pos + i);
                self.pos = end;
            } else if self.rest().starts_with("/*") {
                // Block comments nest in RON.
                let mut depth = 0;
                while !self.rest().is_empty() {
                    if self.rest().starts_with("/*") {
                        depth += 1;
                        self.pos += 2;
                    } else if self.rest().starts_with("*/") {
                        depth -= 1;
                        self.pos += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        self.bump();
                    }
                }
            } else {
                return;
            }
        }
    }

    fn value(&mut self) -> Node {
        let start = self.pos;
        let mut node = Node {
            start,
            ..Node::default()
        };
        match self.peek() {
            Some('(') => self.compound(&mut node, ')'),
            Some('[') => self.compound(&mut node, ']'),
            Some('{') => self.compound(&mut node, '}'),
            Some('"') => {
                node.string_start = Some(start);
                node.text = Some(self.string());
            }
            Some('r') if self.rest()[1..].starts_with(['"', '#']) => {
                node.string_start = Some(start);
                node.text = Some(self.raw_string());
            }
            Some('b') if self.rest()[1..].starts_with(['"', '\'']) => {
                self.bump();
                self.value();
            }
            Some('\'') => {
                self.bump();
                if self.peek() == Some('\\') {
                    self.bump();
                }
                self.bump();
                self.bump(); // closing quote
            }
            Some(c) if c.is_alphabetic() || c == '_' => {
                let name = self.ident();
                self.skip_ws();
                if self.peek() == Some('(') {
                    node.name = Some(name);
                    self.compound(&mut node, ')');
                } else {
                    node.text = Some(name);
                }
            }
            _ => {
                // Numbers and anything else: up to the next delimiter.
                while self.peek().is_some_and(|c| {
                    !c.is_whitespace() && !matches!(c, ',' | ')' | ']' | '}' | ':')
                }) {
                    self.bump();
                }
            }
        }
        node
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        if self.rest().starts_with("r#") {
            self.pos += 2;
        }
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.bump();
        }
        self.text[start..self.pos]
            .trim_start_matches("r#")
            .to_string()
    }

    fn string(&mut self) -> String {
        self.bump(); // "
        let mut out = String::new();
        while let Some(c) = self.bump() {
            match c {
                '\\' => {
                    if let Some(e) = self.bump() {
                        out.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                    }
                }
                '"' => break,
                c => out.push(c),
            }
        }
        out
    }

    fn raw_string(&mut self) -> String {
        self.bump(); // r
        let mut hashes = 0;
        while self.peek() == Some('#') {
            self.bump();
            hashes += 1;
        }
        self.bump(); // "
        let close = format!("\"{}", "#".repeat(hashes));
        match self.rest().find(&close) {
            Some(i) => {
                let s = self.rest()[..i].to_string();
                self.pos += i + close.len();
                s
            }
            None => {
                let s = self.rest().to_string();
                self.pos = self.text.len();
                s
            }
        }
    }

    /// `( … )`, `[ … ]`, `{ … }`: elements separated by commas; an element
    /// `key: value` is a field.
    fn compound(&mut self, node: &mut Node, close: char) {
        self.bump(); // opener
        loop {
            self.skip_ws();
            match self.peek() {
                None => return,
                Some(c) if c == close => {
                    self.bump();
                    return;
                }
                Some(',') => {
                    self.bump();
                    continue;
                }
                _ => {}
            }
            let before = self.pos;
            let first = self.value();
            self.skip_ws();
            if self.peek() == Some(':') {
                self.bump();
                self.skip_ws();
                let key = first.text.clone().unwrap_or_default();
                let value = self.value();
                node.fields.push((key, value));
            } else {
                node.items.push(first);
            }
            if self.pos == before {
                // Not RON after all: step over the character rather than loop.
                self.bump();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"// a test
(
    rules: ["a.rhai"],   /* nested /* comment */ here */
    tests: [
        (
            name: "first, with (parens)",
            series: [(metric: "pm25", labels: {"county": "南宫"}, values: "1 2 x3")],
            evals: [
                (at: "2021-01-01", alerts: []),
                (at: "2021-01-02", alerts: [
                    (subject: {"county": "南宫"}, kind: breach, state: Some(firing)),
                ]),
            ],
        ),
    ],
)
"#;

    fn pos(path: &[Step]) -> (usize, usize) {
        let root = scan(TEXT);
        line_col(TEXT, find(&root, path).start)
    }

    #[test]
    fn finds_values_by_path() {
        use Step::*;
        assert_eq!(pos(&[Field("rules"), Item(0)]), (3, 13));
        assert_eq!(pos(&[Field("tests"), Item(0)]), (5, 9));
        assert_eq!(pos(&[Field("tests"), Item(0), Field("name")]), (6, 19));
        assert_eq!(
            pos(&[Field("tests"), Item(0), Field("evals"), Item(1)]),
            (10, 17)
        );
        assert_eq!(
            pos(&[
                Field("tests"),
                Item(0),
                Field("evals"),
                Item(1),
                Field("alerts"),
                Item(0),
                Field("kind")
            ]),
            (11, 55)
        );
        assert_eq!(
            pos(&[
                Field("tests"),
                Item(0),
                Field("evals"),
                Item(1),
                Field("alerts"),
                Item(0),
                Field("subject"),
                Field("county")
            ]),
            (11, 42)
        );
        // A missing step stops at the deepest node found.
        assert_eq!(pos(&[Field("tests"), Item(0), Field("nope")]), (5, 9));
    }

    #[test]
    fn characters_inside_strings() {
        use Step::*;
        let root = scan(TEXT);
        let values = find(
            &root,
            &[
                Field("tests"),
                Item(0),
                Field("series"),
                Item(0),
                Field("values"),
            ],
        );
        let quote = values.string_start.unwrap();
        assert_eq!(line_col(TEXT, quote), (7, 73));
        assert_eq!(string_char_position(TEXT, quote, 4), (7, 78));
    }
}
