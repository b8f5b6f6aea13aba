//! `rulewatch preview`: the mail a rule would send at a time, rendered with
//! the real templates and sent nowhere.

use std::path::Path;

use crate::alerts;
use crate::alerts::AlertRule;
use crate::notify::{compose_all, MailSettings};
use crate::time::{format_duration, format_time};

use super::shared::{evaluation_time, find_rule, open_evaluator};
use super::{load_config, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The rule whose mail to show
    #[arg(long, value_name = "ID")]
    pub rule: String,
    /// Evaluation time: RFC 3339, or a local date / date-time in the configured zone (default: now)
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
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
    let rule = match find_rule(&rules, &problems, &args.rule, &config) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let outcome = evaluator.evaluate(rule, now);
    let findings = outcome.all_findings();
    // The first mail of each alert: as if nothing were active before and
    // `for` were over (a pending breach sends nothing yet).
    let mut machine_rule = AlertRule::from_rule(rule);
    machine_rule.for_ = 0;
    let step = alerts::evaluate(&[], &machine_rule, now, &findings);
    let mails = compose_all(&step.notices, &MailSettings::from_config(&config));
    if mails.is_empty() {
        println!(
            "规则 `{id}` 在 {at} 没有发现问题，不会发邮件 / rule `{id}` finds nothing at {at}: it would send no mail",
            id = rule.meta.id,
            at = format_time(now, tz)
        );
        return Exit::Ok;
    }
    if rule.meta.for_ > 0 {
        eprintln!(
            "note: 本规则 `for` 是 {d}：超标持续这么久才会发邮件 / `for` is {d}: a breach is mailed once it has lasted that long",
            d = format_duration(rule.meta.for_)
        );
    }
    for (i, mail) in mails.iter().enumerate() {
        if i > 0 {
            println!("\n{}\n", "=".repeat(72));
        }
        println!("From: {}", config.mail.from);
        println!("To: {}", mail.recipient);
        println!("Subject: {}", mail.subject);
        println!("\n--- text/plain ---\n{}", mail.text.trim_end());
        println!("\n--- text/html ---\n{}", mail.html.trim_end());
    }
    eprintln!(
        "规则 `{id}` 在 {at} 会发 {n} 封邮件（只是预览，未发送） / {n} mail(s) rendered for rule `{id}` at {at}; nothing sent",
        n = mails.len(),
        id = rule.meta.id,
        at = format_time(now, tz)
    );
    if outcome.error.is_some() {
        Exit::Problems
    } else {
        Exit::Ok
    }
}
