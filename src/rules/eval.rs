//! Evaluating rules: one rule at a time, each failing alone.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono_tz::Tz;
use parking_lot::Mutex;
use rhai::{Engine, EvalAltResult, Scope};

use super::context::{with_context, EvalContext};
use super::engine::new_engine;
use super::finding::{Finding, FindingKind};
use super::loader::Rule;
use crate::config::{Config, Limits};
use crate::readings::source::ReadingSource;
use crate::readings::Labels;
use crate::time::Millis;

/// Why a rule could not be evaluated, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleFailure {
    pub path: PathBuf,
    /// 1-based; 0 when Rhai gave no position (e.g. a limit hit inside a function).
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// What to do about it (`提示：…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl RuleFailure {
    /// As a diagnostic, to print with the source line and the hint.
    pub fn diagnostic(&self) -> crate::diag::Diagnostic {
        let d = crate::diag::Diagnostic::error(&self.path, self.line, self.col, &self.message);
        match &self.hint {
            Some(h) => d.with_hint(h),
            None => d,
        }
    }
}

impl std::fmt::Display for RuleFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.diagnostic())
    }
}

/// The result of evaluating one rule once.
#[derive(Debug, Clone)]
pub struct RuleOutcome {
    pub rule: String,
    pub at: Millis,
    /// What the rule reported; empty when it failed (a half-run rule's
    /// findings are not trusted).
    pub findings: Vec<Finding>,
    pub error: Option<RuleFailure>,
    pub duration: Duration,
}

impl RuleOutcome {
    /// [`RuleOutcome::all_findings`], borrowed when the rule did not fail
    /// (the usual case: no copy of thousands of findings).
    pub fn findings_with_error(&self) -> std::borrow::Cow<'_, [Finding]> {
        match self.error {
            None => std::borrow::Cow::Borrowed(&self.findings),
            Some(_) => std::borrow::Cow::Owned(self.all_findings()),
        }
    }

    /// The first breach found (a verdict is one), if any.
    pub fn first_breach(&self) -> Option<&Finding> {
        self.findings.iter().find(|f| f.kind == FindingKind::Breach)
    }

    /// The findings, plus the failure as a finding of kind `error`.
    pub fn all_findings(&self) -> Vec<Finding> {
        let mut out = self.findings.clone();
        if let Some(e) = &self.error {
            let mut details = serde_json::Map::new();
            details.insert("file".into(), e.path.display().to_string().into());
            details.insert("line".into(), e.line.into());
            details.insert("col".into(), e.col.into());
            if let Some(hint) = &e.hint {
                details.insert("hint".into(), hint.clone().into());
            }
            out.push(Finding {
                rule: self.rule.clone(),
                kind: FindingKind::Error,
                subject: Labels::new(),
                message: e.message.clone(),
                details,
            });
        }
        out
    }
}

/// Evaluates rules against readings (the store, or a rule test's).
pub struct Evaluator {
    engine: Engine,
    /// Whether a rule is being evaluated on `engine` right now.
    engine_busy: AtomicBool,
    /// Engines for rules evaluated at the same time as the one on `engine`,
    /// one each, made when first needed and kept. Threads running rules on
    /// one shared `Engine` slowed each other down (two threads took longer
    /// than one for the benchmark's five rules: 15 against 10 ms), while
    /// an engine each scales.
    spare: Mutex<Vec<Engine>>,
    /// How long each rule (by id) took when last evaluated: `evaluate_all`
    /// starts the longest first, so a long rule does not start last and
    /// leave the other cores idle while it runs.
    last_took: Mutex<std::collections::HashMap<String, Duration>>,
    readings: Arc<dyn ReadingSource>,
    tz: Tz,
    limits: Limits,
}

/// Marks `engine` free again when the evaluation on it ends.
struct EngineTaken<'a>(&'a AtomicBool);

impl Drop for EngineTaken<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Evaluator {
    pub fn new(config: &Config, readings: Arc<dyn ReadingSource>) -> Evaluator {
        Evaluator {
            engine: new_engine(&config.limits),
            engine_busy: AtomicBool::new(false),
            spare: Mutex::new(Vec::new()),
            last_took: Mutex::default(),
            readings,
            tz: config.timezone,
            limits: config.limits.clone(),
        }
    }

    /// How many engines are kept for rules evaluated alongside another.
    pub fn spare_engines(&self) -> usize {
        self.spare.lock().len()
    }

    /// The sandboxed engine (for compiling rules).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Runs `rule` as of `now`. Never panics and never fails the caller: a
    /// rule that errors, runs away or panics comes back with `error` set.
    pub fn evaluate(&self, rule: &Rule, now: Millis) -> RuleOutcome {
        if self
            .engine_busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            let _taken = EngineTaken(&self.engine_busy);
            return self.evaluate_on(&self.engine, rule, now);
        }
        let engine = self
            .spare
            .lock()
            .pop()
            .unwrap_or_else(|| new_engine(&self.limits));
        let outcome = self.evaluate_on(&engine, rule, now);
        self.spare.lock().push(engine);
        outcome
    }

    fn evaluate_on(&self, engine: &Engine, rule: &Rule, now: Millis) -> RuleOutcome {
        let started = Instant::now();
        let ctx = EvalContext {
            readings: self.readings.clone(),
            now,
            tz: self.tz,
            rule_id: rule.meta.id.clone(),
            year: rule.meta.year,
            findings: Vec::new(),
            subjects: Default::default(),
            deadline: started + Duration::from_millis(self.limits.rule_timeout.max(0) as u64),
        };
        let (result, ctx) = with_context(ctx, || {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                engine.run_ast_with_scope(&mut Scope::new(), &rule.ast)
            }))
        });
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(failure(rule, &e, engine, &self.limits)),
            Err(panic) => Some(RuleFailure {
                path: rule.path.clone(),
                line: 0,
                col: 0,
                message: format!(
                    "内部错误（internal error while evaluating）：{}",
                    panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("panic")
                ),
                hint: Some("这是 rulewatch 的问题，不是规则的：请把这条消息交给管理员".into()),
            }),
        };
        let duration = started.elapsed();
        let mut last_took = self.last_took.lock();
        match last_took.get_mut(&rule.meta.id) {
            Some(took) => *took = duration, // no new key on every evaluation
            None => {
                last_took.insert(rule.meta.id.clone(), duration);
            }
        }
        drop(last_took);
        RuleOutcome {
            rule: rule.meta.id.clone(),
            at: now,
            findings: if error.is_some() {
                Vec::new()
            } else {
                ctx.findings
            },
            error,
            duration,
        }
    }

    /// Evaluates the rules on every core, one rule per thread at a time (one
    /// failing does not stop the others); outcomes come back in rule order.
    pub fn evaluate_all<'a>(
        &self,
        rules: impl IntoIterator<Item = &'a Rule>,
        now: Millis,
    ) -> Vec<RuleOutcome> {
        let rules: Vec<&Rule> = rules.into_iter().collect();
        let workers = cores().min(rules.len());
        if workers <= 1 {
            return rules.iter().map(|r| self.evaluate(r, now)).collect();
        }
        let order = self.start_order(&rules);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut outcomes: Vec<(usize, RuleOutcome)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(&i) = order.get(n) else { break };
                            let rule = rules[i];
                            done.push((i, self.evaluate(rule, now)));
                        }
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("evaluate catches panics"))
                .collect()
        });
        outcomes.sort_by_key(|(i, _)| *i);
        outcomes.into_iter().map(|(_, o)| o).collect()
    }

    /// The order `evaluate_all` starts `rules` in (indices).
    fn start_order(&self, rules: &[&Rule]) -> Vec<usize> {
        longest_first(
            rules.iter().map(|r| r.meta.id.as_str()),
            &self.last_took.lock(),
        )
    }
}

/// Indices of `ids` by how long each took last time, longest first; ids not
/// evaluated yet before all (their time is unknown); ties in the given order.
fn longest_first<'a>(
    ids: impl Iterator<Item = &'a str>,
    took: &std::collections::HashMap<String, Duration>,
) -> Vec<usize> {
    let mut order: Vec<(usize, Duration)> = ids
        .enumerate()
        .map(|(i, id)| (i, took.get(id).copied().unwrap_or(Duration::MAX)))
        .collect();
    order.sort_by_key(|&(_, d)| std::cmp::Reverse(d));
    order.into_iter().map(|(i, _)| i).collect()
}

/// The cores this process may use, asked once: `available_parallelism`
/// reads the cgroup files each time (2% of an evaluation of five rules).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Turns a Rhai error into a message with the most precise position there is:
/// inside a function call, the position inside the function.
fn failure(rule: &Rule, err: &EvalAltResult, engine: &Engine, limits: &Limits) -> RuleFailure {
    let mut inner = err;
    let mut pos = err.position();
    let mut context = Vec::new();
    while let EvalAltResult::ErrorInFunctionCall(name, _, e, p) = inner {
        if !p.is_none() && pos.is_none() {
            pos = *p;
        }
        context.push(name.clone());
        inner = e;
        if !inner.position().is_none() {
            pos = inner.position();
        }
    }
    let (message, hint) = super::mistakes::runtime_error(inner, engine, limits, &rule.source);
    let message = if context.is_empty() {
        message
    } else {
        format!("{message}（在函数 {} 中）", context.join(" → "))
    };
    RuleFailure {
        path: rule.path.clone(),
        line: pos.line().unwrap_or(0),
        col: pos.position().unwrap_or(0),
        message,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_that_took_longest_starts_first() {
        let ms = Duration::from_millis;
        let took = [("quick", ms(1)), ("slow", ms(40)), ("middling", ms(5))]
            .map(|(id, d)| (id.to_string(), d))
            .into();
        let ids = ["quick", "new", "slow", "middling", "other-new"];
        assert_eq!(longest_first(ids.into_iter(), &took), [1, 4, 2, 3, 0]);
        assert_eq!(
            longest_first(["a", "b"].into_iter(), &Default::default()),
            [0, 1]
        );
    }
}
