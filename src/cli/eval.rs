//! `rulewatch eval`: evaluate rules once and print what they find.

use std::path::Path;
use std::sync::Arc;

use crate::readings::store::Store;
use crate::rules::engine::new_engine;
use crate::rules::finding::subject_text;
use crate::rules::{load_rules, Evaluator, Finding};
use crate::time::{format_time, parse_time};

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
    let now = match &args.at {
        None => chrono::Utc::now().timestamp_millis(),
        Some(text) => match parse_time(text, tz) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: --at: {e}");
                return Exit::Trouble;
            }
        },
    };
    let engine = new_engine(&config.limits);
    let (rules, problems) = load_rules(&engine, &config);
    for p in problems.iter().filter(|p| p.is_error) {
        eprintln!("{p}");
    }
    let selected: Vec<_> = match &args.rule {
        None => rules.iter().collect(),
        Some(id) => {
            let r: Vec<_> = rules.iter().filter(|r| &r.meta.id == id).collect();
            if r.is_empty() {
                eprintln!(
                    "error: no rule with id `{id}` loaded from `{}`",
                    config.rules_dir.display()
                );
                return Exit::Problems;
            }
            r
        }
    };
    let store = match Store::open(&config.store_path) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Trouble;
        }
    };
    let evaluator = Evaluator::new(&config, store);
    let outcomes = evaluator.evaluate_all(selected, now);
    let findings: Vec<Finding> = outcomes.iter().flat_map(|o| o.all_findings()).collect();
    match args.format {
        OutputFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&findings).expect("findings serialize")
            );
        }
        OutputFormat::Text => print_table(&findings),
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
        "{} rule(s) evaluated at {}: {breaches} breach(es), {no_data} no data, {failed} failed",
        outcomes.len(),
        format_time(now, tz)
    );
    if failed > 0 || problems.iter().any(|p| p.is_error) {
        Exit::Problems
    } else {
        Exit::Ok
    }
}

/// A plain table: RULE  KIND  SUBJECT  MESSAGE, columns padded by display width.
fn print_table(findings: &[Finding]) {
    if findings.is_empty() {
        println!("no findings: every rule passed");
        return;
    }
    let rows: Vec<[String; 4]> = findings
        .iter()
        .map(|f| {
            [
                f.rule.clone(),
                f.kind.as_str().to_string(),
                subject_text(&f.subject),
                f.message.clone(),
            ]
        })
        .collect();
    let header = ["RULE", "KIND", "SUBJECT", "MESSAGE"].map(String::from);
    let width = |s: &str| unicode_width::UnicodeWidthStr::width(s);
    let mut widths = [0usize; 3];
    for row in std::iter::once(&header).chain(&rows) {
        for i in 0..3 {
            widths[i] = widths[i].max(width(&row[i]));
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for i in 0..3 {
            line.push_str(&row[i]);
            line.push_str(&" ".repeat(widths[i] - width(&row[i]) + 2));
        }
        line.push_str(&row[3]);
        println!("{line}");
    }
}
