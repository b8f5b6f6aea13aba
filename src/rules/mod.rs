//! Rules: loading and validating rule files, the sandboxed engine, the API
//! rules call, and evaluation into findings.

pub mod domain;
pub mod finding;
pub mod schedule;

/// Rule ids: `[a-z0-9-]+`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
