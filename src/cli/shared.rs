//! Pieces several subcommands share: `--at`, opening the store with the
//! rules, finding a rule by id, printing an aligned table, and what a
//! stored file did in words.

use std::sync::Arc;

use chrono_tz::Tz;

use super::Exit;
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::readings::store::{Store, WriteSummary};
use crate::rules::{load_rules, Evaluator, Rule};
use crate::time::{parse_time, Millis};

/// `--at TIME`, or the wall clock when absent.
pub fn evaluation_time(at: Option<&str>, tz: Tz) -> Result<Millis, Exit> {
    match at {
        None => Ok(chrono::Utc::now().timestamp_millis()),
        Some(text) => parse_time(text, tz).map_err(|e| {
            eprintln!(
                "error: --at 的时间 `{text}` 无法识别，请写成 `2021-06-16`、`2021-06-16T09:00` 或 `2021-06-16T09:00:00+08:00` / --at: {e}"
            );
            Exit::Trouble
        }),
    }
}

/// The loaded rule with `id`; when missing, prints the load errors (it may
/// be the broken one) and says so.
pub fn find_rule<'a>(
    rules: &'a [Rule],
    problems: &[Diagnostic],
    id: &str,
    config: &Config,
) -> Result<&'a Rule, Exit> {
    rules.iter().find(|r| r.meta.id == id).ok_or_else(|| {
        for p in problems.iter().filter(|p| p.is_error) {
            eprint!("{}", p.render());
        }
        eprintln!(
            "error: `{dir}` 里没有载入编号为 `{id}` 的规则（若该规则有错，错误见上）/ no rule with id `{id}` loaded from `{dir}`",
            dir = config.rules_dir.display()
        );
        Exit::Problems
    })
}

/// The store, an evaluator on it, and every rule loaded with the
/// evaluator's own engine (one sandboxed engine per command, not two), with
/// the problems found loading them.
pub fn open_evaluator(config: &Config) -> Result<(Evaluator, Vec<Rule>, Vec<Diagnostic>), Exit> {
    let store = Store::open(&config.store_path).map(Arc::new).map_err(|e| {
        eprintln!("error: {e}");
        Exit::Trouble
    })?;
    let evaluator = Evaluator::new(config, store);
    let (rules, problems) = load_rules(evaluator.engine(), config);
    Ok((evaluator, rules, problems))
}

/// Prints `header` and `rows` with every column but the last padded to its
/// widest cell, by display width (a Chinese character takes two columns).
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let width = |s: &str| unicode_width::UnicodeWidthStr::width(s);
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let last = header.len().saturating_sub(1);
    let mut widths = vec![0usize; last];
    for row in std::iter::once(&header).chain(rows) {
        for (i, w) in widths.iter_mut().enumerate() {
            *w = (*w).max(width(&row[i]));
        }
    }
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, w) in widths.iter().enumerate() {
            line.push_str(&row[i]);
            line.push_str(&" ".repeat(w - width(&row[i]) + 2));
        }
        line.push_str(&row[last]);
        println!("{line}");
    }
}

/// What a stored file did, in Chinese and in English: "stored 52 readings:
/// 0 new, 52 unchanged" when a file is ingested again.
pub fn write_counts(summary: &WriteSummary) -> (String, String) {
    let WriteSummary {
        readings,
        new,
        unchanged,
        changed,
        ..
    } = *summary;
    let (zh_changed, en_changed) = match changed {
        0 => (String::new(), String::new()),
        c => (format!("，更正旧值 {c} 条"), format!(", {c} changed")),
    };
    (
        format!("已存入 {readings} 条读数：新增 {new} 条，与已存的相同 {unchanged} 条{zh_changed}"),
        format!("stored {readings} readings: {new} new, {unchanged} unchanged{en_changed}"),
    )
}
