//! The slips a Chinese rule author makes, each found at its line and column
//! and explained in Chinese with the fix (`提示：…`): full-width punctuation
//! and Chinese quotes in code, a bracket left open, a misspelled function or
//! field, `for:` unquoted, `import`. Rhai's own messages are the fallback,
//! put into Chinese.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use rhai::{Engine, EvalAltResult, LexError, ParseErrorType};

use super::source::{end_position, scan, Kind, Token};
use crate::config::Limits;
use crate::diag::Diagnostic;

/// What a full-width mark is called, the ASCII character to type instead, and its name.
fn full_width(c: char) -> Option<(&'static str, char, &'static str)> {
    Some(match c {
        '，' => ("全角逗号", ',', "逗号"),
        '、' => ("顿号", ',', "逗号"),
        '；' => ("全角分号", ';', "分号"),
        '：' => ("全角冒号", ':', "冒号"),
        '（' => ("全角左括号", '(', "括号"),
        '）' => ("全角右括号", ')', "括号"),
        '｛' => ("全角左花括号", '{', "花括号"),
        '｝' => ("全角右花括号", '}', "花括号"),
        '［' | '【' => ("全角左方括号", '[', "方括号"),
        '］' | '】' => ("全角右方括号", ']', "方括号"),
        '＝' => ("全角等号", '=', "等号"),
        '＞' => ("全角大于号", '>', "大于号"),
        '＜' => ("全角小于号", '<', "小于号"),
        '！' => ("全角感叹号", '!', "感叹号"),
        '＋' => ("全角加号", '+', "加号"),
        '－' => ("全角减号", '-', "减号"),
        '＊' => ("全角星号", '*', "星号"),
        '／' => ("全角斜杠", '/', "斜杠"),
        '＃' => ("全角井号", '#', "井号"),
        '．' => ("全角句点", '.', "句点"),
        '。' => ("句号", ';', "分号"),
        '＂' => ("全角双引号", '"', "双引号"),
        '＇' => ("全角单引号", '\'', "单引号"),
        '\u{3000}' => ("全角空格", ' ', "空格"),
        '０'..='９' => (
            "全角数字",
            char::from_digit(c as u32 - '０' as u32, 10).unwrap_or('0'),
            "数字",
        ),
        _ => return None,
    })
}

fn show(c: char) -> String {
    if c == ' ' {
        String::new()
    } else {
        format!("“{c}”")
    }
}

/// Every full-width mark, Chinese quote and bare Chinese text in code
/// (outside strings and comments), one diagnostic each.
pub fn wide_characters(path: &Path, tokens: &[Token]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        i += 1;
        let Kind::Wide(c) = t.kind else { continue };
        if c == '“' || c == '‘' {
            let close = if c == '“' { '”' } else { '’' };
            // Rhai's single quotes hold one character: a string is always in `"`.
            let ascii = '"';
            // The quoted text runs to the closing quote on the same line.
            let end = tokens[i..]
                .iter()
                .position(|x| x.line != t.line || x.kind == Kind::Wide(close))
                .map(|k| i + k);
            let inner: String = match end {
                Some(e) if tokens[e].kind == Kind::Wide(close) => {
                    let text = token_text(&tokens[i..e]);
                    i = e + 1;
                    text
                }
                _ => String::new(),
            };
            let width = inner.chars().count() + 2;
            out.push(
                Diagnostic::error(
                    &path_of(path),
                    t.line,
                    t.col,
                    format!("字符串用了中文引号 {c}…{close}：代码里的字符串要用半角双引号 {ascii}"),
                )
                .with_width(width)
                .with_label("中文引号")
                .with_hint(format!(
                    "第{}行第{}列起的 {c}{inner}{close} 请改为 {ascii}{inner}{ascii}（切换到英文输入法再输入引号）",
                    t.line, t.col
                )),
            );
            continue;
        }
        if let Some((name, ascii, ascii_name)) = full_width(c) {
            out.push(
                Diagnostic::error(
                    &path_of(path),
                    t.line,
                    t.col,
                    format!("代码里用了{name}{}", show(c)),
                )
                .with_label(name)
                .with_hint(format!(
                    "第{}行第{}列是{name}{}，请改为半角{ascii_name}{}（切换到英文输入法再输入）",
                    t.line,
                    t.col,
                    show(c),
                    show(ascii)
                )),
            );
            continue;
        }
        // Chinese text where code was expected: a message without quotes, or
        // a comment without `//`.
        let mut word = c.to_string();
        while let Some(Kind::Wide(d)) = tokens.get(i).map(|x| &x.kind) {
            if tokens[i].line != t.line || full_width(*d).is_some() {
                break;
            }
            word.push(*d);
            i += 1;
        }
        out.push(
            Diagnostic::error(
                &path_of(path),
                t.line,
                t.col,
                format!("代码里出现了中文“{word}”"),
            )
            .with_width(word.chars().count())
            .with_hint(format!(
                "文字要放在半角双引号里（\"{word}\"）；若是说明，在前面加 // 写成注释"
            )),
        );
    }
    out
}

/// `source` with every full-width mark and Chinese quote in code replaced by
/// the ASCII character meant (one character for one, so every line and
/// column stays where it was): what the author meant, to look for the next
/// mistakes in the same pass.
pub fn with_ascii_punctuation(source: &str, tokens: &[Token]) -> String {
    let mut replace: HashMap<usize, char> = HashMap::new();
    for t in tokens {
        if let Kind::Wide(c) = t.kind {
            let ascii = match c {
                '“' | '”' => Some('"'),
                '‘' | '’' => Some('"'),
                _ => full_width(c).map(|f| f.1),
            };
            if let Some(a) = ascii {
                replace.insert(t.offset, a);
            }
        }
    }
    source
        .char_indices()
        .map(|(i, c)| replace.get(&i).copied().unwrap_or(c))
        .collect()
}

fn path_of(path: &Path) -> std::path::PathBuf {
    path.to_path_buf()
}

/// The source text of `tokens` as the author wrote it, roughly (for quoting
/// back what sat between Chinese quotes).
fn token_text(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|t| match &t.kind {
            Kind::Ident(s) => s.clone(),
            Kind::Str(s) => format!("\"{s}\""),
            Kind::Punct(c) | Kind::Wide(c) => c.to_string(),
            Kind::Number => "0".into(),
        })
        .collect()
}

fn closing(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

/// What an opening bracket starts, for the message: `函数 breach 的调用`.
fn opened_what(tokens: &[Token], at: usize) -> (String, String) {
    let open = tokens[at].kind.clone();
    let before = at.checked_sub(1).map(|b| &tokens[b]);
    match open {
        Kind::Punct('(') => match before.and_then(Token::ident) {
            Some(name) if !is_keyword(name) => (
                format!("函数 {name} 的调用"),
                format!("在 {name}(…) 的最后一个参数之后补上“)”"),
            ),
            _ => ("括号".into(), "在括号内容之后补上“)”".into()),
        },
        Kind::Punct('[') => ("数组".into(), "在数组最后一项之后补上“]”".into()),
        _ if before.is_some_and(|b| b.is('#')) => {
            ("映射 #{…}".into(), "在映射最后一项之后补上“}”".into())
        }
        _ => {
            // The statement the block belongs to: the nearest keyword before it on its line.
            let line = tokens[at].line;
            let keyword = tokens[..at]
                .iter()
                .rev()
                .take_while(|t| t.line == line)
                .filter_map(Token::ident)
                .find(|w| {
                    matches!(
                        *w,
                        "if" | "else" | "for" | "while" | "loop" | "fn" | "switch" | "do"
                    )
                });
            let what = match keyword {
                Some(k) => format!("{k} 的代码块"),
                None => "代码块".into(),
            };
            (what, "在代码块最后一行之后补上“}”".into())
        }
    }
}

/// A bracket left open or closed twice, pointing at where it opened.
pub fn unbalanced_brackets(path: &Path, source: &str, tokens: &[Token]) -> Option<Diagnostic> {
    let mut stack: Vec<usize> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let Kind::Punct(c) = t.kind else { continue };
        match c {
            '(' | '[' | '{' => stack.push(i),
            ')' | ']' | '}' => match stack.last() {
                Some(&o) if tokens[o].kind == Kind::Punct(opening(c)) => {
                    stack.pop();
                }
                Some(&o) => {
                    let Kind::Punct(open) = tokens[o].kind else {
                        unreachable!()
                    };
                    let (what, hint) = opened_what(tokens, o);
                    return Some(
                        Diagnostic::error(
                            path,
                            tokens[o].line,
                            tokens[o].col,
                            format!("{what}没有结束：缺少“{}”", closing(open)),
                        )
                        .with_label(format!("{what}从这里开始"))
                        .with_related(
                            t.line,
                            t.col,
                            format!("到这里遇到了“{c}”，此前应先有“{}”", closing(open)),
                        )
                        .with_hint(hint),
                    );
                }
                None => {
                    return Some(
                        Diagnostic::error(path, t.line, t.col, format!("多了一个“{c}”"))
                            .with_label("前面没有与之配对的开括号")
                            .with_hint(format!("删去它，或在前面补上“{}”", opening(c))),
                    )
                }
            },
            _ => {}
        }
    }
    let o = *stack.last()?;
    let Kind::Punct(open) = tokens[o].kind else {
        unreachable!()
    };
    let (what, hint) = opened_what(tokens, o);
    let (end_line, end_col) = end_position(source.trim_end());
    Some(
        Diagnostic::error(
            path,
            tokens[o].line,
            tokens[o].col,
            format!("{what}没有结束：缺少“{}”", closing(open)),
        )
        .with_label(format!("{what}从这里开始"))
        .with_related(end_line, end_col, "到文件末尾也没有找到")
        .with_hint(hint),
    )
}

fn opening(close: char) -> char {
    match close {
        ')' => '(',
        ']' => '[',
        _ => '{',
    }
}

const KEYWORDS: &[&str] = &[
    "if", "else", "while", "for", "in", "loop", "do", "until", "switch", "return", "throw", "try",
    "catch", "fn", "let", "const", "break", "continue", "import", "export", "as", "private",
    "global", "true", "false", "this",
];

fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}

/// The nearest name to a slip of the keyboard (lives in `diag`, the lowest
/// layer, so the config can suggest names too).
pub use crate::diag::nearest;

/// Turns a Rhai compile error into the author's diagnostics: full-width
/// marks and open brackets first (they are why Rhai stopped), then the
/// error itself in Chinese.
pub fn compile_error(path: &Path, source: &str, err: &rhai::ParseError) -> Vec<Diagnostic> {
    let tokens = scan(source);
    let wide = wide_characters(path, &tokens);
    if !wide.is_empty() {
        return wide;
    }
    let pos = err.position();
    let (line, col) = (pos.line().unwrap_or(0), pos.position().unwrap_or(0));
    // `for: "1h"` in RULE: `for` is a keyword.
    if let Some(t) = tokens
        .windows(2)
        .find_map(|w| (w[0].ident() == Some("for") && w[1].is(':')).then_some(&w[0]))
    {
        return vec![Diagnostic::error(
            path,
            t.line,
            t.col,
            "`for` 是 Rhai 的关键字，作为 RULE 的键要加引号",
        )
        .with_width(3)
        .with_hint("写成 \"for\": \"1h\"（持续多久才告警）")];
    }
    if let ParseErrorType::Reserved(word) = err.err_type() {
        if word == "import" {
            return vec![Diagnostic::error(
                path,
                line,
                col,
                "规则不能导入模块或其他文件（import）",
            )
            .with_width(6)
            .with_hint(
                "一条规则是一个独立的文件：把需要的常量和函数直接写在本文件里，删去 import 这一行",
            )];
        }
    }
    let about_brackets = match err.err_type() {
        ParseErrorType::MissingToken(..) | ParseErrorType::UnexpectedEOF => true,
        ParseErrorType::BadInput(LexError::UnexpectedInput(s)) => {
            matches!(s.as_str(), ")" | "]" | "}")
        }
        _ => false,
    };
    if about_brackets {
        if let Some(d) = unbalanced_brackets(path, source, &tokens) {
            return vec![d];
        }
    }
    vec![parse_error_in_chinese(
        path,
        source,
        &tokens,
        err.err_type(),
        line,
        col,
    )]
}

fn parse_error_in_chinese(
    path: &Path,
    source: &str,
    tokens: &[Token],
    err: &ParseErrorType,
    line: usize,
    col: usize,
) -> Diagnostic {
    let at = |message: String| Diagnostic::error(path, line, col, message);
    match err {
        ParseErrorType::MissingToken(token, _) if token == ";" => {
            // Rhai notices at the next statement; the `;` belongs after the last one.
            let prev = tokens
                .iter()
                .rev()
                .find(|t| (t.line, t.col) < (line, col))
                .map(|t| {
                    let text_len = match &t.kind {
                        Kind::Ident(s) => s.chars().count(),
                        Kind::Str(s) => s.chars().count() + 2,
                        _ => 1,
                    };
                    let line_text = source.lines().nth(t.line - 1).unwrap_or("");
                    let end = line_text.trim_end().chars().count() + 1;
                    (t.line, end.max(t.col + text_len))
                });
            let (l, c) = prev.unwrap_or((line, col));
            Diagnostic::error(path, l, c, "语句末尾缺少半角分号“;”")
                .with_hint(format!("在第{l}行末尾加上 ;"))
        }
        ParseErrorType::MissingToken(token, _) => {
            at(format!("这里缺少“{token}”")).with_hint(format!("补上半角的 {token}"))
        }
        ParseErrorType::UnexpectedEOF => at("文件在语句中途结束".into())
            .with_hint("检查最后一条语句是否写完（括号、引号是否配对）"),
        ParseErrorType::BadInput(LexError::UnterminatedString) => {
            at("字符串没有结束：缺少右边的半角双引号“\"”".into())
                .with_hint("在这一行字符串的末尾补上 \"")
        }
        ParseErrorType::BadInput(LexError::UnexpectedInput(s)) => {
            at(format!("这里不能出现“{s}”")).with_hint("删去它，或检查是否少写了运算符")
        }
        ParseErrorType::BadInput(LexError::MalformedNumber(s)) => {
            at(format!("数字 `{s}` 写得不对")).with_hint("数字只用半角 0-9 和小数点，如 4.5")
        }
        ParseErrorType::BadInput(other) => at(format!("无法识别的写法：{other}")),
        ParseErrorType::VariableUndefined(name) => {
            let declared = declared_names(tokens);
            let d = at(format!("`{name}` 没有定义")).with_width(name.chars().count());
            match nearest(name, declared.iter().map(String::as_str)) {
                Some(n) => d.with_hint(format!("是否想用 {n}？")),
                None => d.with_hint(format!(
                    "先用 let {name} = …; 定义它；若是文字，要放在双引号里：\"{name}\""
                )),
            }
        }
        ParseErrorType::Reserved(word) => {
            at(format!("`{word}` 是保留字，不能用作名字")).with_hint("换一个名字")
        }
        ParseErrorType::AssignmentToConstant(name) => at(format!("常量 `{name}` 不能再赋值"))
            .with_hint(format!("要改变的值用 let 定义：let {name} = …;")),
        ParseErrorType::DuplicatedProperty(name) => {
            at(format!("映射里 `{name}` 写了两次")).with_hint("删去其中一个")
        }
        ParseErrorType::ExprExpected(what) => {
            at(format!("这里缺少内容（{what}）")).with_hint("检查是否多写了逗号或运算符")
        }
        other => at(format!("语法错误：{other}")),
    }
}

/// Names the rule declares (`let`, `const`, `fn`, closure and loop variables).
fn declared_names(tokens: &[Token]) -> HashSet<String> {
    let mut out = HashSet::new();
    for w in tokens.windows(2) {
        if let (Some(k), Some(name)) = (w[0].ident(), w[1].ident()) {
            if matches!(k, "let" | "const" | "fn" | "for") {
                out.insert(name.to_string());
            }
        }
    }
    // Closure parameters: `|a, b|`.
    let mut in_params = false;
    for t in tokens {
        if t.is('|') {
            in_params = !in_params;
        } else if in_params {
            if let Some(name) = t.ident() {
                out.insert(name.to_string());
            }
        }
    }
    out
}

/// Functions Rhai handles itself: not in the engine's function list.
const KEYWORD_FUNCTIONS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_fn",
    "is_def_var",
    "eval",
];

/// Every function name the engine knows (the rule API and Rhai's library),
/// and the rule API's own (the likelier meaning of a typo).
fn engine_functions(engine: &Engine) -> &'static (HashSet<String>, Vec<String>) {
    static NAMES: OnceLock<(HashSet<String>, Vec<String>)> = OnceLock::new();
    NAMES.get_or_init(|| {
        let name = |sig: &String| sig.split('(').next().unwrap_or("").trim().to_string();
        let all = engine.gen_fn_signatures(true).iter().map(name).collect();
        let mut api: Vec<String> = engine.gen_fn_signatures(false).iter().map(name).collect();
        api.retain(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        api.sort();
        api.dedup();
        (all, api)
    })
}

/// What the rule API's results hold: `latest(…)` a map, `group(…)` groups.
const LATEST_FIELDS: &[&str] = &["value", "time", "labels"];
const GROUP_FIELDS: &[&str] = &["key", "value", "labels"];

/// Calls of functions that exist nowhere (`lastest`, `breech`), and fields
/// read from an API result that it does not have (`r.valu`).
pub fn unknown_names(path: &Path, engine: &Engine, tokens: &[Token]) -> Vec<Diagnostic> {
    let (known, api) = engine_functions(engine);
    let declared = declared_names(tokens);
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let Some(name) = t.ident() else { continue };
        let called = tokens.get(i + 1).is_some_and(|n| n.is('('));
        let defining = i > 0 && tokens[i - 1].ident() == Some("fn");
        if !called
            || defining
            || is_keyword(name)
            || known.contains(name)
            || declared.contains(name)
            || KEYWORD_FUNCTIONS.contains(&name)
        {
            continue;
        }
        let suggestion = nearest(name, api.iter().map(String::as_str))
            .or_else(|| nearest(name, known.iter().map(String::as_str)))
            .or_else(|| nearest(name, declared.iter().map(String::as_str)));
        let d = Diagnostic::error(path, t.line, t.col, format!("没有函数 {name}"))
            .with_width(name.chars().count());
        out.push(match suggestion {
            Some(s) => d.with_hint(format!("没有函数 {name}，是否想用 {s}？")),
            None => d.with_hint("docs/rules.md 列出了规则可用的全部函数"),
        });
    }
    out.extend(unknown_fields(path, tokens));
    out
}

/// `let r = latest(…)` then `r.valu`: a field the result does not have.
fn unknown_fields(path: &Path, tokens: &[Token]) -> Vec<Diagnostic> {
    // What each variable holds, as far as a straight read can tell.
    #[derive(Clone, Copy, PartialEq)]
    enum Holds {
        Latest,
        Groups,
        Group,
    }
    let produces = |i: usize| -> Option<Holds> {
        let name = tokens.get(i)?.ident()?;
        tokens.get(i + 1)?.is('(').then_some(())?;
        match name {
            "latest" => Some(Holds::Latest),
            "group" | "top" | "bottom" | "above" | "below" => Some(Holds::Groups),
            _ => None,
        }
    };
    let mut vars: HashMap<String, Holds> = HashMap::new();
    let mut out = Vec::new();
    for i in 0..tokens.len() {
        let t = &tokens[i];
        match t.ident() {
            Some("let" | "const") => {
                if let Some(name) = tokens.get(i + 1).and_then(Token::ident) {
                    let holds = tokens.get(i + 2).filter(|e| e.is('=')).and(produces(i + 3));
                    match holds {
                        Some(h) => vars.insert(name.to_string(), h),
                        None => vars.remove(name),
                    };
                }
            }
            Some("for") => {
                let (Some(var), Some(in_)) = (
                    tokens.get(i + 1).and_then(Token::ident),
                    tokens.get(i + 2).and_then(Token::ident),
                ) else {
                    continue;
                };
                let source = produces(i + 3).or_else(|| {
                    tokens
                        .get(i + 3)
                        .and_then(Token::ident)
                        .and_then(|v| vars.get(v).copied())
                });
                if in_ == "in" && source == Some(Holds::Groups) {
                    vars.insert(var.to_string(), Holds::Group);
                } else {
                    vars.remove(var);
                }
            }
            Some(var) => {
                let Some(&holds) = vars.get(var) else {
                    continue;
                };
                // `r.field` or `r?.field`, not `r.method(…)`.
                let dot = match tokens.get(i + 1) {
                    Some(d) if d.is('.') => i + 1,
                    Some(q) if q.is('?') && tokens.get(i + 2).is_some_and(|d| d.is('.')) => i + 2,
                    _ => continue,
                };
                if i > 0 && tokens[i - 1].is('.') {
                    continue;
                }
                let Some(field_token) = tokens.get(dot + 1) else {
                    continue;
                };
                let Some(field) = field_token.ident() else {
                    continue;
                };
                if tokens.get(dot + 2).is_some_and(|p| p.is('(')) {
                    continue;
                }
                let (fields, what) = match holds {
                    Holds::Latest => (LATEST_FIELDS, "latest(…) 的结果"),
                    Holds::Group => (GROUP_FIELDS, "group(…) 的每一组"),
                    Holds::Groups => continue,
                };
                if fields.contains(&field) {
                    continue;
                }
                let list = fields.join("、");
                let d = Diagnostic::error(
                    path,
                    field_token.line,
                    field_token.col,
                    format!("{var} 是 {what}，没有字段 {field}"),
                )
                .with_width(field.chars().count());
                out.push(match nearest(field, fields.iter().copied()) {
                    Some(n) => d.with_hint(format!("是否想用 {var}.{n}？{what}有 {list}")),
                    None => d.with_hint(format!("{what}有 {list}")),
                });
            }
            None => {}
        }
    }
    out
}

/// Fields any API result has, for a field missing at run time.
pub fn known_fields() -> impl Iterator<Item = &'static str> {
    LATEST_FIELDS.iter().chain(GROUP_FIELDS).copied()
}

/// Metric names the rule reads, as string literals or constants holding
/// one (`const METRIC = "pm25"; latest(METRIC)`): the first argument of
/// `latest`, `agg`, `group`, `overdue`, `is_overdue`, and `chart.metric`.
/// With the line, column and width (in characters) where the call names it.
pub fn metric_names(tokens: &[Token]) -> Vec<(String, usize, usize, usize)> {
    let constants: HashMap<&str, &str> = tokens
        .windows(4)
        .filter_map(|w| match (&w[0].kind, &w[1].kind, &w[3].kind) {
            (Kind::Ident(k), Kind::Ident(name), Kind::Str(text))
                if (k == "const" || k == "let") && w[2].is('=') =>
            {
                Some((name.as_str(), text.as_str()))
            }
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for w in tokens.windows(3) {
        let reads = matches!(
            w[0].ident(),
            Some("latest" | "agg" | "group" | "overdue" | "is_overdue")
        ) && w[1].is('(');
        let chart = w[0].ident() == Some("metric") && w[1].is(':');
        if !(reads || chart) {
            continue;
        }
        let (metric, width) = match &w[2].kind {
            Kind::Str(metric) => (metric.as_str(), metric.chars().count() + 2),
            Kind::Ident(name) => match constants.get(name.as_str()) {
                Some(metric) => (*metric, name.chars().count()),
                None => continue,
            },
            _ => continue,
        };
        out.push((metric.to_string(), w[2].line, w[2].col, width));
    }
    out
}

/// A rule's run-time error in the author's words, and the fix: a limit
/// names itself and its value (`运算次数超过上限 10000000（limits.max_operations）`).
pub fn runtime_error(
    err: &EvalAltResult,
    engine: &Engine,
    limits: &Limits,
    source: &str,
) -> (String, Option<String>) {
    use super::engine::{MAX_ARRAY_SIZE, MAX_CALL_LEVELS, MAX_MAP_SIZE, MAX_STRING_SIZE};
    let loops = "检查循环是否一定会结束（如 while 的条件）；汇总大量数据请用 agg、group 等函数";
    match err {
        EvalAltResult::ErrorTerminated(..) => (
            format!(
                "运行时间超过上限 {}（limits.rule_timeout），规则被中止",
                duration_text(limits.rule_timeout)
            ),
            Some(format!(
                "{loops}；确需更久，调大配置里的 limits.rule_timeout"
            )),
        ),
        EvalAltResult::ErrorTooManyOperations(..) => (
            format!(
                "运算次数超过上限 {}（limits.max_operations），规则被中止",
                limits.max_operations
            ),
            Some(loops.into()),
        ),
        EvalAltResult::ErrorStackOverflow(..) => (
            format!("函数调用嵌套超过上限 {MAX_CALL_LEVELS} 层，规则被中止"),
            Some("函数是否在无止境地调用自己？给递归加上结束条件".into()),
        ),
        EvalAltResult::ErrorDataTooLarge(what, ..) => {
            let what = what.to_lowercase();
            let limit = if what.contains("string") {
                format!("字符串长度超过上限 {MAX_STRING_SIZE} 字节")
            } else if what.contains("array") {
                format!("数组超过上限 {MAX_ARRAY_SIZE} 项")
            } else if what.contains("map") {
                format!("映射超过上限 {MAX_MAP_SIZE} 项")
            } else {
                format!("数据超过大小上限（{what}）")
            };
            (
                format!("{limit}，规则被中止"),
                Some("规则用不到这么大的数据：检查循环里是否在不断追加".into()),
            )
        }
        EvalAltResult::ErrorRuntime(v, _) => (v.to_string(), None),
        EvalAltResult::ErrorFunctionNotFound(signature, _) => {
            let name = signature.split([' ', '(']).next().unwrap_or(signature);
            if let Some(field) = name.strip_prefix("get$") {
                return missing_field(field, source);
            }
            let (known, api) = engine_functions(engine);
            if known.contains(name) {
                (
                    format!("函数 {name} 的参数个数或类型不对：{signature}"),
                    Some(format!("docs/rules.md 里有 {name} 的写法和例子")),
                )
            } else {
                let hint = match nearest(name, api.iter().map(String::as_str)) {
                    Some(n) => format!("没有函数 {name}，是否想用 {n}？"),
                    None => "docs/rules.md 列出了规则可用的全部函数".into(),
                };
                (format!("没有函数 {name}"), Some(hint))
            }
        }
        EvalAltResult::ErrorPropertyNotFound(field, _) => missing_field(field, source),
        EvalAltResult::ErrorVariableNotFound(name, _) => (
            format!("`{name}` 没有定义"),
            Some(format!("先用 let {name} = …; 定义它")),
        ),
        EvalAltResult::ErrorArithmetic(message, _) => (
            format!("计算出错：{message}"),
            Some("除数可能为 0：先判断再除".into()),
        ),
        EvalAltResult::ErrorArrayBounds(len, index, _) => (
            format!("下标 {index} 超出数组范围（共 {len} 项）"),
            Some("先判断数组的长度（len）".into()),
        ),
        other => {
            let mut s = other.to_string();
            // Rhai appends " (line N, position M)"; the position is printed apart.
            if let Some(i) = s.rfind(" (line ") {
                s.truncate(i);
            }
            (format!("运行出错：{s}"), None)
        }
    }
}

fn missing_field(field: &str, source: &str) -> (String, Option<String>) {
    // The keys the rule writes in its own maps (`#{ total: 1 }`), and the API's.
    let tokens = scan(source);
    let mut candidates: Vec<&str> = known_fields().collect();
    candidates.extend(
        tokens
            .windows(2)
            .filter(|w| w[1].is(':'))
            .filter_map(|w| w[0].ident()),
    );
    let hint = match nearest(field, candidates) {
        Some(n) => format!("是否想用 .{n}？"),
        None => format!("映射里没有 {field} 这一项：可先用 \"{field}\" in 映射 判断"),
    };
    (format!("没有字段 {field}"), Some(hint))
}

/// `5s`, `1500ms`, as the config writes durations.
fn duration_text(ms: crate::time::Millis) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_slips_not_strangers() {
        let api = ["latest", "breach", "agg", "group", "no_data"];
        assert_eq!(nearest("lastest", api), Some("latest"));
        assert_eq!(nearest("breech", api), Some("breach"));
        assert_eq!(nearest("nodata", api), Some("no_data"));
        assert_eq!(nearest("compute", api), None);
        assert_eq!(nearest("ag", api), Some("agg"));
    }

    #[test]
    fn metric_names_are_read_from_the_calls() {
        let t = scan("const M = \"so2\";\nlet r = latest(\"pm25\");\nlet a = agg(\"aqi\", #{}, \"30d\", \"mean\");\nlet b = latest(M);");
        let names: Vec<_> = metric_names(&t).into_iter().map(|m| m.0).collect();
        assert_eq!(names, ["pm25", "aqi", "so2"]);
    }
}
