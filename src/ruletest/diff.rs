//! What `rulewatch test` prints: a line per test, then for each failure the
//! expected-vs-got difference at each evaluation time, with the test file's
//! line, then `N passed, N failed`.

use std::fmt::Write as _;
use std::path::Path;

use chrono_tz::Tz;

use super::file::Expected;
use super::runner::{CaseResult, Difference, Got, Mismatch, Outcome};
use crate::readings::Labels;
use crate::status::format::format_number;
use crate::time::format_time;

/// `{county=南宫, section=S1}`; `{}` for the rule as a whole.
pub fn subject(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// An expected alert in one line.
pub fn expected(x: &Expected, rule: &str) -> String {
    let mut s = format!("{rule} {} {}", subject(&x.subject), x.kind.as_str());
    match x.state {
        Some(st) => write!(s, ", {}", st.as_str()).unwrap(),
        None => s.push_str(", any active state"),
    }
    if let Some(m) = &x.message {
        write!(s, ", message containing {m:?}").unwrap();
    }
    if let Some(v) = x.value {
        write!(s, ", value {}", format_number(v)).unwrap();
    }
    if let Some(m) = x.mail {
        write!(s, ", mail {}", m.as_str()).unwrap();
    }
    s
}

/// A got alert in one line.
pub fn got(g: &Got) -> String {
    let mut s = format!(
        "{} {} {}, {}, message {:?}",
        g.rule,
        subject(&g.subject),
        g.kind.as_str(),
        state_text(g),
        g.message
    );
    if let Some(v) = g.value {
        write!(s, ", value {}", format_number(v)).unwrap();
    }
    s.push_str(", mail ");
    s.push_str(&mail_text(g));
    s
}

/// The state as test files name it: no data and a failing rule, once
/// notified, are `firing`.
fn state_text(g: &Got) -> &'static str {
    use super::runner::GotState;
    match g.state {
        GotState::Pending => "pending",
        GotState::Firing | GotState::NoData | GotState::Error => "firing",
        GotState::Resolved => "resolved",
        GotState::Final => "final",
    }
}

fn mail_text(g: &Got) -> String {
    if g.mail.is_empty() {
        "none".into()
    } else {
        g.mail
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// Which fields of a paired expected / got alert differ, one per line.
fn differences(d: &Difference) -> Vec<String> {
    let (x, g) = (&d.expected, &d.got);
    let mut out = Vec::new();
    if !g.state.matches(x.state) {
        let want = x.state.map_or("an active state", |s| s.as_str());
        out.push(format!(
            "状态 state：预期 {want}，实际 {} / expected {want}, got {}",
            state_text(g),
            state_text(g)
        ));
    }
    if let Some(m) = &x.message {
        if !g.message.contains(m.as_str()) {
            out.push(format!(
                "消息 message：预期含有 {m:?}，实际是 {:?} / expected to contain {m:?}",
                g.message
            ));
        }
    }
    if let Some(v) = x.value {
        let same = g
            .value
            .is_some_and(|gv| (gv - v).abs() <= 1e-9 * gv.abs().max(v.abs()).max(1.0));
        if !same {
            let gv = g.value.map_or("none".to_string(), format_number);
            out.push(format!(
                "数值 value：预期 {v}，实际 {gv} / expected {v}, got {gv}",
                v = format_number(v)
            ));
        }
    }
    if let Some(m) = x.mail {
        let ok = match m {
            super::file::Mail::None => g.mail.is_empty(),
            m => g.mail.iter().any(|k| k.as_str() == m.as_str()),
        };
        if !ok {
            out.push(format!(
                "邮件 mail：预期 {m}，实际 {g} / expected {m}, got {g}",
                m = m.as_str(),
                g = mail_text(g)
            ));
        }
    }
    out
}

/// The report of one failing evaluation time.
pub fn mismatch(out: &mut String, file: &Path, m: &Mismatch, default_rule: &str, tz: Tz) {
    let _ = writeln!(
        out,
        "{}:{}: 评估时间 at {} ({}):",
        file.display(),
        m.place.line,
        m.at_text,
        format_time(m.at, tz)
    );
    let rule_of = |x: &Expected| x.rule.clone().unwrap_or_else(|| default_rule.to_string());
    for d in &m.differ {
        let _ = writeln!(
            out,
            "  ~ 第{}行 line {}: {}",
            d.expected.place.line,
            d.expected.place.line,
            expected(&d.expected, &rule_of(&d.expected))
        );
        for line in differences(d) {
            let _ = writeln!(out, "        {line}");
        }
    }
    for x in &m.missing {
        let _ = writeln!(
            out,
            "  - 第{}行 line {}: 预期 expected {}",
            x.place.line,
            x.place.line,
            expected(x, &rule_of(x))
        );
        let _ = writeln!(out, "        但没有这条告警 / but no such alert");
    }
    for g in &m.unexpected {
        let _ = writeln!(out, "  + 预期之外 unexpected: {}", got(g));
    }
}

/// The failure section of one test case (nothing for a passed one).
pub fn failure(out: &mut String, file: &Path, case: &CaseResult, default_rule: &str, tz: Tz) {
    let _ = writeln!(out, "---- {} ----", test_name(file, &case.name));
    match &case.outcome {
        Outcome::Passed => {}
        Outcome::Broken(e) => {
            let _ = writeln!(out, "{}:{}: error: {e}", file.display(), case.place.line);
        }
        Outcome::Failed(ms) => {
            for m in ms {
                mismatch(out, file, m, default_rule, tz);
            }
        }
    }
    out.push('\n');
}

/// How a test is named in the output: `FILE::NAME`.
pub fn test_name(file: &Path, name: &str) -> String {
    format!("{}::{name}", file.display())
}
