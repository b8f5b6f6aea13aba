//! Runs test cases: each in a fresh temporary store, through the daemon's
//! own path — [`Evaluator::evaluate`] for the rule, then
//! [`AlertStore::record`] for the state machine and the outbox — with
//! nothing sending (the outbox is the no-op notifier: mail is composed and
//! queued, and thrown away with the store).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rhai::Engine;

use super::file::{Case, Eval, Expected, ExpectedState, Kind, Mail, Place, TestFile, Ticks};
use crate::alerts::{AlertRule, AlertStore, NoticeKind, State};
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::notify::MailSettings;
use crate::readings::source::MemoryReadings;
use crate::readings::{Batch, Labels};
use crate::rules::engine::new_engine;
use crate::rules::loader::{load_rule, load_rules};
use crate::rules::{Evaluator, Finding, Rule};
use crate::status::TestStatus;
use crate::time::Millis;

/// The state of an alert right after an evaluation, as a test sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GotState {
    Pending,
    Firing,
    NoData,
    Error,
    /// A year's final verdict.
    Final,
    /// Ended at this evaluation.
    Resolved,
}

impl GotState {
    pub fn as_str(self) -> &'static str {
        match self {
            GotState::Pending => "pending",
            GotState::Firing => "firing",
            GotState::NoData => "no_data",
            GotState::Error => "error",
            GotState::Final => "final",
            GotState::Resolved => "resolved",
        }
    }

    /// Whether an expected `state` (or none, meaning any active state) matches.
    pub fn matches(self, expected: Option<ExpectedState>) -> bool {
        match expected {
            None => self != GotState::Resolved,
            Some(ExpectedState::Resolved) => self == GotState::Resolved,
            Some(ExpectedState::Pending) => self == GotState::Pending,
            Some(ExpectedState::Final) => self == GotState::Final,
            // No data and a failing rule are notified at once: "firing".
            Some(ExpectedState::Firing) => {
                matches!(self, GotState::Firing | GotState::NoData | GotState::Error)
            }
        }
    }
}

/// An alert as found after one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Got {
    pub rule: String,
    pub subject: Labels,
    pub kind: Kind,
    pub state: GotState,
    pub message: String,
    pub value: Option<f64>,
    /// The notices this evaluation made about it.
    pub mail: Vec<NoticeKind>,
}

/// Why an expected alert and a got one (same rule, subject and kind) differ.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub expected: Expected,
    pub got: Got,
}

/// One evaluation time whose alerts were not as expected.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub at: Millis,
    pub at_text: String,
    pub place: Place,
    /// Expected, and nothing like it happened.
    pub missing: Vec<Expected>,
    /// Happened, and nothing like it was expected.
    pub unexpected: Vec<Got>,
    /// Expected and happened, but differ in state, message, value or mail.
    pub differ: Vec<Difference>,
}

/// How one test case went.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Passed,
    Failed(Vec<Mismatch>),
    /// The case could not run (its readings could not be stored, …).
    Broken(String),
}

/// One test case's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub place: Place,
    pub outcome: Outcome,
}

/// A test file's results, or why it could not run.
#[derive(Debug, Clone)]
pub struct FileResult {
    pub path: PathBuf,
    /// The ids of the rules under test.
    pub rules: Vec<String>,
    pub outcome: Result<Vec<CaseResult>, Vec<Diagnostic>>,
}

/// Runs test files against rules loaded with `config`.
pub struct Runner<'a> {
    config: &'a Config,
    engine: Engine,
    /// Every rule of the configured folder, loaded the first time a test names a rule by id.
    library: Option<Vec<Rule>>,
}

impl<'a> Runner<'a> {
    pub fn new(config: &'a Config) -> Runner<'a> {
        Runner {
            config,
            engine: new_engine(&config.limits),
            library: None,
        }
    }

    /// Reads, checks and runs one test file.
    pub fn run_file(&mut self, path: &Path) -> FileResult {
        let mut ids = Vec::new();
        let outcome = super::file::load(path, self.config.timezone).and_then(|file| {
            let rules = self.resolve(&file)?;
            ids = rules.iter().map(|r| r.meta.id.clone()).collect();
            self.check_expected(&file, &rules)?;
            Ok(file
                .cases
                .iter()
                .map(|case| CaseResult {
                    name: case.name.clone(),
                    place: case.place,
                    outcome: self.run_case(case, &rules),
                })
                .collect())
        });
        FileResult {
            path: path.to_path_buf(),
            rules: ids,
            outcome,
        }
    }

    /// Loads the rules a test file names, by path or id.
    fn resolve(&mut self, file: &TestFile) -> Result<Vec<Rule>, Vec<Diagnostic>> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut errors = Vec::new();
        for r in &file.rules {
            let here =
                |message: String| Diagnostic::error(&file.path, r.place.line, r.place.col, message);
            let rule = if r.is_path() {
                let path = file.dir().join(&r.text);
                if !path.is_file() {
                    errors.push(here(format!(
                        "找不到规则文件 `{}`（找的是 `{}`）：规则文件要放在本测试文件旁边，请改正文件名 / rule file `{}` not found (looked for `{}`)",
                        r.text,
                        path.display(),
                        r.text,
                        path.display()
                    )));
                    continue;
                }
                match load_rule(&self.engine, self.config, &path) {
                    Ok((rule, _warnings)) => rule,
                    Err(problems) => {
                        errors.push(here(format!(
                            "规则 `{}` 无法加载，原因如下（rule does not load）：",
                            r.text
                        )));
                        errors.extend(problems);
                        continue;
                    }
                }
            } else {
                let library = self
                    .library
                    .get_or_insert_with(|| load_rules(&self.engine, self.config).0);
                match library.iter().find(|x| x.meta.id == r.text) {
                    Some(rule) => rule.clone(),
                    None => {
                        errors.push(here(format!(
                            "没有编号为 `{}` 的规则（找的是规则文件夹 `{}`；若它有错没能载入，请运行 `rulewatch check`）；也可以写文件名 `{}.rhai` / no rule with id `{}` in `{}` (or it does not load: run `rulewatch check`); name a file with `{}.rhai`",
                            r.text,
                            self.config.rules_dir.display(),
                            r.text,
                            r.text,
                            self.config.rules_dir.display(),
                            r.text
                        )));
                        continue;
                    }
                }
            };
            if let Some(other) = rules.iter().find(|x| x.meta.id == rule.meta.id) {
                errors.push(here(format!(
                    "`{}` 就是规则 `{}`，与 `{}` 重复了：请删去其中一个 / `{}` is rule `{}`, which `{}` already is",
                    r.text,
                    rule.meta.id,
                    other.path.display(),
                    r.text,
                    rule.meta.id,
                    other.path.display()
                )));
                continue;
            }
            rules.push(rule);
        }
        if errors.is_empty() {
            Ok(rules)
        } else {
            Err(errors)
        }
    }

    /// Every expected alert names a rule under test (or there is only one).
    fn check_expected(&self, file: &TestFile, rules: &[Rule]) -> Result<(), Vec<Diagnostic>> {
        let ids: Vec<&str> = rules.iter().map(|r| r.meta.id.as_str()).collect();
        let mut errors = Vec::new();
        for case in &file.cases {
            for eval in &case.evals {
                for x in &eval.expected {
                    match &x.rule {
                        Some(id) if ids.contains(&id.as_str()) => {}
                        Some(id) => {
                            errors.push(Diagnostic::error(
                                &file.path,
                                x.rule_place.line,
                                x.rule_place.col,
                                format!(
                                    "规则 `{id}` 不在本文件测试的规则里（本文件测试：{}），请改正 rule / rule `{id}` is not under test here (this file tests: {})",
                                    ids.join("、"),
                                    ids.join(", ")
                                ),
                            ));
                        }
                        None if ids.len() <= 1 => {}
                        None => {
                            errors.push(Diagnostic::error(
                                &file.path,
                                x.place.line,
                                x.place.col,
                                format!("本文件测试多条规则（{}）：请用 `rule: \"…\"` 写明是哪一条 / this file tests several rules ({}): say which with `rule: \"…\"`", ids.join("、"), ids.join(", ")),
                            ));
                        }
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn run_case(&self, case: &Case, rules: &[Rule]) -> Outcome {
        match self.try_run_case(case, rules) {
            Ok(mismatches) if mismatches.is_empty() => Outcome::Passed,
            Ok(mismatches) => Outcome::Failed(mismatches),
            Err(e) => Outcome::Broken(e),
        }
    }

    fn try_run_case(&self, case: &Case, rules: &[Rule]) -> Result<Vec<Mismatch>, String> {
        // The case's own readings and alerts, in memory: nothing to sync
        // or clean up, and no case sees another's.
        let mut batch = Batch::new();
        for r in &case.readings {
            batch.push(&r.metric, r.labels.clone(), r.time, r.value);
        }
        let readings = MemoryReadings::new(&batch);
        let mut alerts = AlertStore::in_memory().map_err(|e| e.to_string())?;
        let settings = MailSettings::from_config(self.config);
        let evaluator = Evaluator::new(self.config, readings);
        let alert_rules: Vec<AlertRule> = rules.iter().map(AlertRule::from_rule).collect();
        let tz = self.config.timezone;

        // Which rules run when: every rule at every listed time, and between
        // them at the ticks the test asks for.
        let listed: BTreeMap<Millis, &Eval> = case.evals.iter().map(|e| (e.at, e)).collect();
        let mut plan: BTreeMap<Millis, BTreeSet<usize>> = BTreeMap::new();
        for &at in listed.keys() {
            plan.entry(at).or_default().extend(0..rules.len());
        }
        if let (Some(&first), Some(&last)) = (listed.keys().next(), listed.keys().next_back()) {
            match case.ticks {
                Ticks::Listed => {}
                Ticks::Schedule => {
                    for (i, rule) in rules.iter().enumerate() {
                        for t in rule.meta.schedule.between(first, last, tz) {
                            plan.entry(t).or_default().insert(i);
                        }
                    }
                }
                Ticks::Every(step) => {
                    let mut t = first;
                    while t <= last {
                        plan.entry(t).or_default().extend(0..rules.len());
                        t += step;
                    }
                }
            }
        }

        let mut mismatches = Vec::new();
        for (at, which) in plan {
            let outcomes: Vec<(usize, Vec<Finding>)> = which
                .iter()
                .map(|&i| (i, evaluator.evaluate(&rules[i], at).all_findings()))
                .collect();
            let batch: Vec<(&AlertRule, &[Finding])> = outcomes
                .iter()
                .map(|(i, f)| (&alert_rules[*i], f.as_slice()))
                .collect();
            let recorded = alerts
                .record(at, &batch, &settings)
                .map_err(|e| format!("alert store: {e}"))?;
            let Some(eval) = listed.get(&at) else {
                continue;
            };

            // What a test sees: every active alert of the rules under test,
            // plus what ended at this evaluation.
            let mut got: Vec<Got> = Vec::new();
            let active = alerts
                .alerts(None)
                .map_err(|e| format!("alert store: {e}"))?;
            let notices_for = |rule: &str, subject: &Labels, error_slot: bool| -> Vec<NoticeKind> {
                recorded
                    .notices
                    .iter()
                    .filter(|n| {
                        n.rule == rule
                            && &n.subject == subject
                            && matches!(n.kind, NoticeKind::RuleError | NoticeKind::RuleRecovered)
                                == error_slot
                    })
                    .map(|n| n.kind)
                    .collect()
            };
            for a in &active {
                let (kind, state) = match a.state {
                    State::Pending => (Kind::Breach, GotState::Pending),
                    State::Firing => (Kind::Breach, GotState::Firing),
                    State::Final => (Kind::Breach, GotState::Final),
                    State::NoData => (Kind::NoData, GotState::NoData),
                    State::Error => (Kind::Error, GotState::Error),
                    State::Inactive => continue,
                };
                got.push(Got {
                    rule: a.rule.clone(),
                    subject: a.subject.clone(),
                    kind,
                    state,
                    message: a.message.clone(),
                    value: a.value(),
                    mail: notices_for(&a.rule, &a.subject, a.state == State::Error),
                });
            }
            for t in recorded
                .transitions
                .iter()
                .filter(|t| t.to == State::Inactive)
            {
                let kind = match t.from {
                    State::NoData => Kind::NoData,
                    State::Error => Kind::Error,
                    _ => Kind::Breach,
                };
                got.push(Got {
                    rule: t.rule.clone(),
                    subject: t.subject.clone(),
                    kind,
                    state: GotState::Resolved,
                    message: t.message.clone(),
                    value: t.value,
                    mail: notices_for(&t.rule, &t.subject, t.from == State::Error),
                });
            }
            if let Some(m) = compare(eval, &got, rules) {
                mismatches.push(m);
            }
        }
        Ok(mismatches)
    }
}

/// Whether `got` is what `x` expects (rule ids already filled in).
fn matches(x: &Expected, rule: &str, got: &Got) -> bool {
    same_alert(x, rule, got)
        && got.state.matches(x.state)
        && x.message
            .as_ref()
            .is_none_or(|m| got.message.contains(m.as_str()))
        && x.value
            .is_none_or(|v| got.value.is_some_and(|g| close(g, v)))
        && x.mail.is_none_or(|m| mail_matches(m, &got.mail))
}

/// Same identity: rule, subject and kind.
fn same_alert(x: &Expected, rule: &str, got: &Got) -> bool {
    got.rule == rule && got.subject == x.subject && got.kind == x.kind
}

/// Values equal up to float noise (`0.1 + 0.2` is `0.3`).
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn mail_matches(expected: Mail, got: &[NoticeKind]) -> bool {
    match expected {
        Mail::None => got.is_empty(),
        m => got.iter().any(|k| k.as_str() == m.as_str()),
    }
}

/// The rule id an expected alert is about.
fn rule_of(x: &Expected, rules: &[Rule]) -> String {
    x.rule
        .clone()
        .unwrap_or_else(|| rules.first().map(|r| r.meta.id.clone()).unwrap_or_default())
}

/// Pairs expected alerts with got ones; `None` when everything matched.
fn compare(eval: &Eval, got: &[Got], rules: &[Rule]) -> Option<Mismatch> {
    let mut used = vec![false; got.len()];
    let mut unmatched: Vec<&Expected> = Vec::new();
    for x in &eval.expected {
        let rule = rule_of(x, rules);
        match (0..got.len()).find(|&i| !used[i] && matches(x, &rule, &got[i])) {
            Some(i) => used[i] = true,
            None => unmatched.push(x),
        }
    }
    let mut m = Mismatch {
        at: eval.at,
        at_text: eval.at_text.clone(),
        place: eval.place,
        missing: Vec::new(),
        unexpected: Vec::new(),
        differ: Vec::new(),
    };
    for x in unmatched {
        let rule = rule_of(x, rules);
        match (0..got.len()).find(|&i| !used[i] && same_alert(x, &rule, &got[i])) {
            Some(i) => {
                used[i] = true;
                m.differ.push(Difference {
                    expected: x.clone(),
                    got: got[i].clone(),
                });
            }
            None => m.missing.push(x.clone()),
        }
    }
    m.unexpected = got
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(g, _)| g.clone())
        .collect();
    if m.missing.is_empty() && m.unexpected.is_empty() && m.differ.is_empty() {
        None
    } else {
        Some(m)
    }
}

/// The results of the test file beside a rule file (`NAME.test.ron` beside
/// `NAME.rhai`), as the status page shows them; `None` without one.
pub fn test_status_of(config: &Config, rule_path: &Path) -> Option<TestStatus> {
    let stem = rule_path.file_stem()?.to_str()?;
    let test = rule_path.with_file_name(format!("{stem}.test.ron"));
    if !test.is_file() {
        return None;
    }
    let result = Runner::new(config).run_file(&test);
    Some(match result.outcome {
        Err(problems) => TestStatus {
            passed: 0,
            failed: 1,
            failures: problems.iter().map(|p| p.to_string()).collect(),
        },
        Ok(cases) => {
            let mut status = TestStatus {
                passed: 0,
                failed: 0,
                failures: Vec::new(),
            };
            for c in cases {
                match c.outcome {
                    Outcome::Passed => status.passed += 1,
                    Outcome::Failed(m) => {
                        status.failed += 1;
                        status
                            .failures
                            .push(format!("{}：{} 处与预期不符", c.name, m.len()));
                    }
                    Outcome::Broken(why) => {
                        status.failed += 1;
                        status.failures.push(format!("{}：无法运行：{why}", c.name));
                    }
                }
            }
            status
        }
    })
}
