//! `rulewatch backtest`: replay a rule over stored history through the alert
//! state machine and print the transitions.

use std::path::Path;

use crate::ruletest::backtest::{replay, ticks, Row};
use crate::status::words::Words;
use crate::time::{format_time, parse_duration, Millis};

use super::eval::OutputFormat;
use super::shared::{find_rule, open_evaluator, print_table};
use super::{load_config, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The rule to replay
    #[arg(long, value_name = "ID")]
    pub rule: String,
    /// Start: RFC 3339, or a local date / date-time in the configured zone
    #[arg(long, value_name = "DATE")]
    pub from: String,
    /// End, inclusive (a bare date means the end of that day)
    #[arg(long, value_name = "DATE")]
    pub to: String,
    /// Evaluate every DUR from `--from` instead of at the rule's schedule ticks
    #[arg(long, value_name = "DUR")]
    pub step: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// `--to 2021-12-31` means up to the end of that day.
fn end_of(text: &str, tz: chrono_tz::Tz) -> Result<Millis, String> {
    let t = crate::time::parse_time(text, tz)?;
    let date_only = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").is_ok();
    Ok(if date_only {
        t + crate::time::DAY - 1
    } else {
        t
    })
}

pub fn run(config_path: &Path, args: Args) -> Exit {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let tz = config.timezone;
    let from = match crate::time::parse_time(&args.from, tz) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: --from: {e}");
            return Exit::Trouble;
        }
    };
    let to = match end_of(&args.to, tz) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: --to: {e}");
            return Exit::Trouble;
        }
    };
    if to < from {
        eprintln!("error: --to `{}` is before --from `{}`", args.to, args.from);
        return Exit::Trouble;
    }
    let step = match args.step.as_deref().map(parse_duration) {
        None => None,
        Some(Ok(ms)) if ms > 0 => Some(ms),
        Some(Ok(_)) => {
            eprintln!("error: --step must be longer than 0s");
            return Exit::Trouble;
        }
        Some(Err(e)) => {
            eprintln!("error: --step: {e}");
            return Exit::Trouble;
        }
    };
    let (evaluator, rules, problems) = match open_evaluator(&config) {
        Ok(loaded) => loaded,
        Err(e) => return e,
    };
    let rule = match find_rule(&rules, &problems, &args.rule, &config) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let times = ticks(rule, from, to, step, tz);
    let started = std::time::Instant::now();
    let result = replay(&evaluator, rule, &times);
    match args.format {
        OutputFormat::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&result.rows).expect("rows serialize")
            );
        }
        OutputFormat::Text => print_transitions(&result.rows, tz, &Words::for_config(&config)),
    }
    let took_ms = started.elapsed().as_millis();
    eprintln!(
        "{}：从 {} 到 {} 评估 {} 次，用时 {} 毫秒：状态变化 {} 次，评估出错 {} 次，结束时仍在告警 {} 项 / \
         {}: {} evaluation(s) from {} to {} in {} ms: {} transition(s), {} failed evaluation(s), {} alert(s) still active",
        rule.meta.id,
        format_time(from, tz),
        format_time(to, tz),
        result.evaluations,
        took_ms,
        result.rows.len(),
        result.errors,
        result.active.len(),
        rule.meta.id,
        result.evaluations,
        format_time(from, tz),
        format_time(to, tz),
        took_ms,
        result.rows.len(),
        result.errors,
        result.active.len()
    );
    Exit::Ok
}

/// 时间  对象  原状态  新状态  数值  说明 (time, subject, from, to, value,
/// message), subjects through display names and states in words.
fn print_transitions(rows: &[Row], tz: chrono_tz::Tz, words: &Words) {
    if rows.is_empty() {
        println!("这段时间里状态没有变化，一直正常 / no transitions: the rule never left `inactive` in this range");
        return;
    }
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                crate::time::to_local(r.at, tz)
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
                words.subject(&r.subject),
                state_words(r.from).to_string(),
                state_words(r.to).to_string(),
                // An ended alert's value and message are what was: the
                // value column is left empty and the message marked 此前.
                if ended(r) {
                    "—".into()
                } else {
                    r.value
                        .map(crate::status::format::format_number)
                        .unwrap_or_else(|| "—".into())
                },
                if ended(r) {
                    crate::status::words::ended_note(r.from, &r.message.replace('\n', " "))
                } else {
                    r.message.replace('\n', " ")
                },
            ]
        })
        .collect();
    print_table(
        &["时间", "对象", "原状态", "新状态", "数值", "说明"],
        &lines,
    );
}

/// A row where an alert ended (`resolved`).
fn ended(r: &Row) -> bool {
    r.to == "resolved"
}

/// An alert state as the page words it (`inactive` is 正常).
fn state_words(state: &str) -> &str {
    match state {
        "inactive" => "正常",
        "pending" => "待定",
        "firing" => "告警",
        "resolved" => "已恢复",
        "no_data" => "缺数据",
        "error" => "规则错误",
        other => other,
    }
}
