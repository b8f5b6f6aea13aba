//! The per-evaluation context the rule API reads: which readings, which
//! instant and zone, which rule, and the findings reported so far. Apart
//! from the engine so that the API (which reads it) and the engine (which
//! registers the API) do not depend on each other.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use chrono_tz::Tz;

use super::finding::Finding;
use crate::readings::source::ReadingSource;
use crate::time::Millis;

/// What the rule API functions see while one rule is evaluated.
pub struct EvalContext {
    /// Where the rule API reads readings (the store, or a rule test's own).
    pub readings: Arc<dyn ReadingSource>,
    pub now: Millis,
    pub tz: Tz,
    pub rule_id: String,
    /// The work-report year the rule judges (`year` in `RULE`).
    pub year: Option<i32>,
    pub findings: Vec<Finding>,
    /// Hashes of the subjects reported so far (an alert is one (rule,
    /// subject)): a repeat is confirmed against `findings`, so subjects are
    /// not copied.
    pub subjects: rustc_hash::FxHashSet<u64>,
    pub deadline: Instant,
}

thread_local! {
    // Evaluation is synchronous and runs on one thread from start to end, so
    // the context of the rule being evaluated lives here for its duration.
    static CURRENT: RefCell<Option<EvalContext>> = const { RefCell::new(None) };
}

/// Runs `f` with `ctx` installed as the current evaluation; returns the
/// result and the context (with the findings the rule reported).
pub fn with_context<R>(ctx: EvalContext, f: impl FnOnce() -> R) -> (R, EvalContext) {
    CURRENT.with(|c| *c.borrow_mut() = Some(ctx));
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.with(|c| c.borrow_mut().take());
        }
    }
    let guard = Reset;
    let r = f();
    let ctx = CURRENT
        .with(|c| c.borrow_mut().take())
        .expect("context installed above");
    drop(guard);
    (r, ctx)
}

/// Gives `f` the current evaluation context; an error outside an evaluation
/// (e.g. when `check` compiles a rule).
pub fn current<R>(f: impl FnOnce(&mut EvalContext) -> R) -> Result<R, String> {
    CURRENT.with(|c| match c.borrow_mut().as_mut() {
        Some(ctx) => Ok(f(ctx)),
        None => Err("rule API used outside an evaluation".to_string()),
    })
}

/// Whether the rule being evaluated has run past its wall-clock deadline
/// (false outside an evaluation).
pub fn past_deadline() -> bool {
    CURRENT
        .with(|c| c.borrow().as_ref().map(|ctx| Instant::now() > ctx.deadline))
        .unwrap_or(false)
}
