//! Loading rule files: compile once, read the `const RULE` metadata without
//! running the script, validate it, and report every problem with its place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rhai::{Engine, AST};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::schedule::Schedule;
use crate::config::Config;
use crate::diag::{line_col, Diagnostic};
use crate::time::{parse_duration, Millis};

/// How bad a breach is; decides the subject prefix of mails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn parse(text: &str) -> Result<Severity, String> {
        match text {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!(
                "unknown severity `{text}`: use `info`, `warning` or `critical`"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// As shown in mail subjects: `[严重] …` (提示 / 警告 / 严重).
    pub fn label_zh(self) -> &'static str {
        match self {
            Severity::Info => "提示",
            Severity::Warning => "警告",
            Severity::Critical => "严重",
        }
    }
}

/// The `const RULE` map as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaFile {
    id: String,
    title: String,
    #[serde(default)]
    owner: Option<String>,
    severity: String,
    #[serde(default)]
    schedule: Option<String>,
    notify: Vec<String>,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    repeat: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// A rule's validated metadata.
#[derive(Debug, Clone)]
pub struct RuleMeta {
    pub id: String,
    pub title: String,
    pub owner: Option<String>,
    pub description: Option<String>,
    pub severity: Severity,
    pub schedule: Schedule,
    pub notify: Vec<String>,
    /// Mail addresses `notify` resolves to.
    pub recipients: Vec<String>,
    pub for_: Millis,
    pub repeat: Millis,
}

/// A loaded rule: metadata, source, and the compiled script.
#[derive(Debug, Clone)]
pub struct Rule {
    pub meta: RuleMeta,
    pub path: PathBuf,
    pub source: String,
    /// SHA-256 of the file's content, recorded with every alert transition.
    pub content_hash: String,
    pub ast: AST,
}

/// Every `*.rhai` file under `dir`, sorted, recursively.
pub fn rule_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rhai") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Loads every rule under the config's rules folder. Returns the rules that
/// loaded and every problem (errors and warnings) found on the way; a file
/// with an error is left out. Duplicate ids: the second file is the error.
pub fn load_rules(engine: &Engine, config: &Config) -> (Vec<Rule>, Vec<Diagnostic>) {
    let mut rules: Vec<Rule> = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for path in rule_files(&config.rules_dir) {
        match load_rule(engine, config, &path) {
            Ok((rule, warnings)) => {
                problems.extend(warnings);
                if let Some(first) = seen.get(&rule.meta.id) {
                    let (line, col) = meta_position(&rule.source, "id");
                    problems.push(Diagnostic::error(
                        &path,
                        line,
                        col,
                        format!(
                            "duplicate rule id `{}`: `{}` already uses it",
                            rule.meta.id,
                            first.display()
                        ),
                    ));
                    continue;
                }
                seen.insert(rule.meta.id.clone(), path.clone());
                rules.push(rule);
            }
            Err(errors) => problems.extend(errors),
        }
    }
    (rules, problems)
}

/// Loads one rule file. Ok carries warnings; Err every error.
pub fn load_rule(
    engine: &Engine,
    config: &Config,
    path: &Path,
) -> Result<(Rule, Vec<Diagnostic>), Vec<Diagnostic>> {
    let bytes = std::fs::read(path).map_err(|e| {
        vec![Diagnostic::error(
            path,
            0,
            0,
            format!("cannot read rule: {e}"),
        )]
    })?;
    let source = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..offset]).into_owned();
        let (line, col) = line_col(&text, offset);
        vec![Diagnostic::error(
            path,
            line,
            col,
            "rule file is not valid UTF-8",
        )]
    })?;
    parse_rule(engine, config, path, source)
}

/// Compiles and validates rule `source` as if read from `path`.
pub fn parse_rule(
    engine: &Engine,
    config: &Config,
    path: &Path,
    source: String,
) -> Result<(Rule, Vec<Diagnostic>), Vec<Diagnostic>> {
    let ast = engine.compile(&source).map_err(|e| {
        let pos = e.position();
        let (line, col) = (pos.line().unwrap_or(0), pos.position().unwrap_or(0));
        let mut message = e.err_type().to_string();
        // `for` is a Rhai keyword, so `for: "1h"` cannot be a map key unquoted.
        let at_line = source.lines().nth(line.saturating_sub(1)).unwrap_or("");
        if message.contains("'import'") {
            message.push_str(
                ": rules cannot load modules or files; a rule is one self-contained file",
            );
        }
        if at_line.trim_start().starts_with("for:") || at_line.contains(" for:") {
            message.push_str("; `for` is a keyword: write the key quoted, `\"for\": \"1h\"`");
        }
        vec![Diagnostic::error(path, line, col, message)]
    })?;
    let err_at = |key: &str, message: String| {
        let (line, col) = meta_position(&source, key);
        Diagnostic::error(path, line, col, message)
    };
    let Some(value) = ast
        .iter_literal_variables(true, false)
        .find(|(name, _, _)| *name == "RULE")
        .map(|(_, _, v)| v)
    else {
        let message = if source.contains("const RULE") {
            "`const RULE` must be a literal map (#{ id: \"…\", … }) with no computed values"
        } else {
            "missing `const RULE = #{ id, title, severity, schedule, notify, … };` at the top of the rule"
        };
        return Err(vec![err_at("", message.to_string())]);
    };
    let meta: MetaFile = rhai::serde::from_dynamic(&value).map_err(|e| {
        let message = e.to_string();
        // Point at the field serde names, when it names one.
        let key = message
            .split('`')
            .nth(1)
            .filter(|k| source.contains(&format!("{k}:")))
            .unwrap_or("")
            .to_string();
        vec![err_at(&key, format!("bad RULE metadata: {message}"))]
    })?;

    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    if !super::is_valid_id(&meta.id) {
        errors.push(err_at(
            "id",
            format!("rule id `{}` may hold only a-z, 0-9 and `-`", meta.id),
        ));
    }
    if meta.title.trim().is_empty() {
        errors.push(err_at("title", "title is empty".into()));
    }
    let severity = Severity::parse(&meta.severity).unwrap_or_else(|e| {
        errors.push(err_at("severity", e));
        Severity::Warning
    });
    let schedule_text = meta
        .schedule
        .clone()
        .unwrap_or_else(|| config.defaults.schedule.clone());
    let schedule = match Schedule::parse(&schedule_text) {
        Ok(s) => {
            if s.restricts_both_days() {
                let (line, col) = meta_position(&source, "schedule");
                warnings.push(Diagnostic::warning(
                    path,
                    line,
                    col,
                    format!("schedule `{schedule_text}` sets both day-of-month and day-of-week: here they must BOTH match (classic cron matches either)"),
                ));
            }
            Some(s)
        }
        Err(e) => {
            errors.push(err_at("schedule", e));
            None
        }
    };
    let mut duration = |key: &str, text: &Option<String>, default: Millis| match text {
        None => default,
        Some(t) => parse_duration(t).unwrap_or_else(|e| {
            errors.push(err_at(key, format!("`{key}`: {e}")));
            default
        }),
    };
    let for_ = duration("for", &meta.for_, config.defaults.for_);
    let repeat = duration("repeat", &meta.repeat, config.defaults.repeat);
    if meta.notify.is_empty() {
        errors.push(err_at(
            "notify",
            "notify is empty: name at least one recipient group".into(),
        ));
    }
    let recipients = config.resolve_recipients(&meta.notify).unwrap_or_else(|e| {
        errors.push(err_at("notify", e));
        Vec::new()
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    let content_hash = hex::encode(Sha256::digest(source.as_bytes()));
    Ok((
        Rule {
            meta: RuleMeta {
                id: meta.id,
                title: meta.title,
                owner: meta.owner,
                description: meta.description,
                severity,
                schedule: schedule.expect("errors checked above"),
                notify: meta.notify,
                recipients,
                for_,
                repeat,
            },
            path: path.to_path_buf(),
            source,
            content_hash,
            ast,
        },
        warnings,
    ))
}

/// Position of `key:` inside the `const RULE` map (or of `const RULE` itself
/// when `key` is empty or not found); (1, 1) when there is no RULE at all.
pub fn meta_position(source: &str, key: &str) -> (usize, usize) {
    let Some(start) = source.find("const RULE") else {
        return (1, 1);
    };
    if !key.is_empty() {
        let body = &source[start..];
        let end = body.find("};").map_or(body.len(), |e| e + 2);
        let mut from = 0;
        while let Some(i) = body[from..end].find(key) {
            let at = from + i;
            let before = body[..at].chars().next_back();
            // The key may be quoted (`"for": …`, as it must be for keywords).
            let rest = &body[at + key.len()..];
            let after = rest.strip_prefix('"').unwrap_or(rest).trim_start();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && after.starts_with(':') {
                let at = if before == Some('"') { at - 1 } else { at };
                return line_col(source, start + at);
            }
            from = at + key.len();
        }
    }
    line_col(source, start)
}
