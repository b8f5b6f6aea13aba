//! What evaluating a rule says: breaches, missing data and errors.

use serde::Serialize;

use crate::readings::Labels;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    Breach,
    NoData,
    Error,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Breach => "breach",
            FindingKind::NoData => "no_data",
            FindingKind::Error => "error",
        }
    }
}

/// One thing a rule reported about one subject at one evaluation. The JSON
/// form is the contract's `eval --format json` item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub rule: String,
    pub kind: FindingKind,
    /// The label map naming what is in breach (`{}` for the rule as a whole).
    pub subject: Labels,
    pub message: String,
    /// Whatever the rule passed (`value`, `threshold`, `unit`, …); for errors
    /// the `file`, `line` and `col`.
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// Subject labels as users read them: `county=南宫, section=S1` (or `—` for none).
pub fn subject_text(subject: &Labels) -> String {
    if subject.is_empty() {
        return "—".into();
    }
    subject
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
