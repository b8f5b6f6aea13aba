//! The one place the sandboxed Rhai engine is built, and the per-evaluation
//! context the rule API reads.
//!
//! Sandbox: `Engine::new()` has no file, network or process access to begin
//! with; on top we refuse module loading, disable `eval`, bound operations,
//! call depth, expression depth and data sizes, and stop a rule that runs
//! past its wall-clock deadline. `print` / `debug` go to the log.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use chrono_tz::Tz;
use rhai::{Dynamic, Engine};

use super::finding::Finding;
use crate::config::Limits;
use crate::readings::source::ReadingSource;
use crate::time::Millis;

// Rule scripts only decide; the heavy lifting is native. These bounds sit
// far above what an honest rule needs and far below what hurts the daemon.
/// Nested function calls (also stops unbounded recursion).
pub const MAX_CALL_LEVELS: usize = 32;
/// Nesting of expressions (global, inside functions).
pub const MAX_EXPR_DEPTH: (usize, usize) = (64, 32);
/// 64 KiB: a long alert message is a few hundred bytes.
pub const MAX_STRING_SIZE: usize = 64 * 1024;
/// Group results over a few thousand counties fit easily.
pub const MAX_ARRAY_SIZE: usize = 100_000;
pub const MAX_MAP_SIZE: usize = 10_000;

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
    /// Subjects reported so far: an alert is one (rule, subject).
    pub subjects: std::collections::HashSet<crate::readings::Labels>,
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

/// Builds the sandboxed engine with the rule API registered.
pub fn new_engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(true)
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTH.0, MAX_EXPR_DEPTH.1)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        .set_max_modules(0)
        .set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    // `eval` would compile strings at run time, past every check; `timestamp`
    // reads the real clock, but rules must use `now()` to be reproducible.
    engine.disable_symbol("eval");
    // No modules at all: a rule is one self-contained file.
    engine.disable_symbol("import");
    engine.disable_symbol("timestamp");
    engine.on_print(|s| tracing::info!(target: "rule", "{s}"));
    engine.on_debug(|s, src, pos| tracing::debug!(target: "rule", ?src, %pos, "{s}"));
    engine.on_progress(|ops| {
        // Checking the clock every 1024 operations costs nothing measurable.
        if ops % 1024 != 0 {
            return None;
        }
        let late = CURRENT
            .with(|c| c.borrow().as_ref().map(|ctx| Instant::now() > ctx.deadline))
            .unwrap_or(false);
        late.then(|| Dynamic::from("wall-clock limit reached"))
    });
    super::api::register(&mut engine);
    engine
}
