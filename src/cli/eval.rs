//! `rulewatch eval`: evaluate rules once and print what they find.

use std::path::Path;

use crate::rules::{Finding, FindingKind};
use crate::status::words::Words;
use crate::time::format_time;

use super::shared::{evaluation_time, open_evaluator, print_table};
use super::{load_config, Exit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Evaluate only this rule
    #[arg(long, value_name = "ID")]
    pub rule: Option<String>,
    /// Evaluation time: RFC 3339, or a local date / date-time in the configured zone (default: now)
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

pub fn run(config_path: &Path, args: Args) -> Exit {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let tz = config.timezone;
    let now = match evaluation_time(args.at.as_deref(), tz) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let (evaluator, rules, problems) = match open_evaluator(&config) {
        Ok(loaded) => loaded,
        Err(e) => return e,
    };
    for p in problems.iter().filter(|p| p.is_error) {
        eprint!("{}", p.render());
    }
    let selected: Vec<_> = match &args.rule {
        None => rules.iter().collect(),
        Some(id) => {
            let r: Vec<_> = rules.iter().filter(|r| &r.meta.id == id).collect();
            if r.is_empty() {
                eprintln!(
                    "error: `{dir}` 里没有载入编号为 `{id}` 的规则（若该规则有错，错误见上）/ no rule with id `{id}` loaded from `{dir}`",
                    dir = config.rules_dir.display()
                );
                return Exit::Problems;
            }
            r
        }
    };
    let outcomes = evaluator.evaluate_all(selected, now);
    let findings: Vec<Finding> = outcomes.iter().flat_map(|o| o.all_findings()).collect();
    match args.format {
        OutputFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&findings).expect("findings serialize")
            );
        }
        OutputFormat::Text => {
            print_findings(&findings, &Words::for_config(&config));
            // Each failure again with its source line and the fix.
            for failure in outcomes.iter().filter_map(|o| o.error.as_ref()) {
                eprint!("{}", failure.diagnostic().render());
            }
        }
    }
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let breaches = findings
        .iter()
        .filter(|f| f.kind == crate::rules::FindingKind::Breach)
        .count();
    let no_data = findings
        .iter()
        .filter(|f| f.kind == crate::rules::FindingKind::NoData)
        .count();
    eprintln!(
        "{n} 条规则在 {at} 评估：超标 {breaches} 项，缺数据 {no_data} 项，规则错误 {failed} 条 / {n} rule(s) evaluated at {at}: {breaches} breach(es), {no_data} no data, {failed} failed",
        n = outcomes.len(),
        at = format_time(now, tz)
    );
    if failed > 0 || problems.iter().any(|p| p.is_error) {
        Exit::Problems
    } else {
        Exit::Ok
    }
}

/// A plain table: 规则  结果  对象  说明 (rule, kind, subject, message), the
/// subject through display names (`县（市、区）：南宫`, never `county=南宫`);
/// a failed rule's message starts with its `file:line:col`, as `--format
/// json` gives it in `details`.
fn print_findings(findings: &[Finding], words: &Words) {
    if findings.is_empty() {
        println!("没有发现问题：每条规则都通过 / no findings: every rule passed");
        return;
    }
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            vec![
                f.rule.clone(),
                kind_words(f.kind).to_string(),
                words.subject(&f.subject),
                match f.kind {
                    FindingKind::Error => format!("{}: {}", place(f), f.message),
                    _ => f.message.clone(),
                },
            ]
        })
        .collect();
    print_table(&["规则", "结果", "对象", "说明"], &rows);
}

/// A finding's kind as the summary line words it.
fn kind_words(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Breach => "超标",
        FindingKind::NoData => "缺数据",
        FindingKind::Error => "规则错误",
    }
}

/// `file:line:col` of an error finding, from its details.
fn place(f: &Finding) -> String {
    let file = f
        .details
        .get("file")
        .and_then(|v| v.as_str())
        .unwrap_or("?");
    let number = |key: &str| f.details.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
    match (number("line"), number("col")) {
        (0, _) => file.to_string(),
        (line, 0) => format!("{file}:{line}"),
        (line, col) => format!("{file}:{line}:{col}"),
    }
}
