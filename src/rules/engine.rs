//! The one place the sandboxed Rhai engine is built, with the rule API
//! ([`super::api`]) registered on it.
//!
//! Sandbox: `Engine::new()` has no file, network or process access to begin
//! with; on top we refuse module loading, disable `eval`, bound operations,
//! call depth, expression depth and data sizes, and stop a rule that runs
//! past its wall-clock deadline. `print` / `debug` go to the log.

use rhai::{Dynamic, Engine};

use crate::config::Limits;

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
        super::context::past_deadline().then(|| Dynamic::from("wall-clock limit reached"))
    });
    super::api::register(&mut engine);
    // `iaqi`, `composite_index`, `air_limit`, `air_edition`: by the edition
    // of the air standards in force at the reading's time.
    super::air_standard::register(&mut engine);
    engine
}
