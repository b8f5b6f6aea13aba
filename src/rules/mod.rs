//! Rules: loading and validating rule files, the sandboxed engine, the API
//! rules call, and evaluation into findings.

pub mod api;
pub mod domain;
pub mod engine;
pub mod eval;
pub mod finding;
pub mod loader;
pub mod mistakes;
pub mod schedule;
pub mod source;

pub use eval::{Evaluator, RuleFailure, RuleOutcome};
pub use finding::{Finding, FindingKind};
pub use loader::{load_rules, Rule, RuleMeta, Severity};

/// Rule ids: `[a-z0-9-]+`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests;
