//! Rules: loading and validating rule files, the sandboxed engine, the API
//! rules call, and evaluation into findings.

pub mod air_standard;
pub mod api;
pub mod context;
pub mod domain;
pub mod engine;
pub mod eval;
pub mod finding;
pub mod loader;
pub mod mistakes;
pub mod source;
/// Schedules are a matter of time (cron in the configured zone): [`crate::time::schedule`].
pub use crate::time::schedule;

pub use eval::{Evaluator, RuleFailure, RuleOutcome};
pub use finding::{Finding, FindingKind};
pub use loader::{load_rules, Rule, RuleMeta, Severity};

pub use crate::config::is_valid_id;

#[cfg(test)]
mod tests;
