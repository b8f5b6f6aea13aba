//! What the status page, the alert mails and the monthly digest share: a
//! rule's status (state, value against target, gap), the series its chart
//! draws, and how numbers and text are written. The page (`web`) and the
//! mails (`notify`) render it; the daemon provides it through
//! [`StatusSource`], so the page, the mails and the digest never disagree.
//!
//! - [`model`]: the status of a rule, from its alerts, last run and chart
//! - [`series`]: what a chart shows, as numbers, read from the readings store
//! - [`format`]: numbers without float noise, HTML escaping
//! - [`words`]: display names of label and detail keys (no `key=value` for readers)

pub mod format;
pub mod model;
pub mod series;
pub mod words;

use std::sync::Arc;

use chrono_tz::Tz;

use crate::alerts::{Alert, HistoryEntry, HistoryQuery};
use crate::readings::store::Store;
use crate::rules::{Finding, Rule, RuleFailure};
use crate::time::Millis;

pub use model::{all, rule_status, Figure, FigureSource, RuleStatus, StateLabel};
pub use series::ChartData;
pub use words::Words;

/// A rule as the daemon holds it.
#[derive(Debug, Clone)]
pub struct RuleEntry {
    pub rule: Arc<Rule>,
    pub last: Option<LastRun>,
    /// The file's current version does not load (the rule shown is the last
    /// good one): each problem as `PATH:LINE:COL: error: MESSAGE`.
    pub load_error: Option<Vec<String>>,
}

/// The rule's last evaluation.
#[derive(Debug, Clone)]
pub struct LastRun {
    /// The evaluation time (`now` the rule saw).
    pub at: Millis,
    pub error: Option<RuleFailure>,
    pub findings: usize,
    /// The first breach it found. A year's result judged after the year's
    /// reminders ended has no alert: its figure (8 条 of 9) comes from here,
    /// not from the chart (which may show the part that was met).
    pub breach: Option<Finding>,
}

/// A rule's own tests (`rulewatch test`), when the daemon knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestStatus {
    pub passed: usize,
    pub failed: usize,
    /// What failed, one line each.
    pub failures: Vec<String>,
}

/// What the status page and the digest read: the daemon implements it over
/// its live state, `ruletest::snapshot::Snapshot` over a replay.
pub trait StatusSource: Send + Sync + 'static {
    /// Every loaded rule with its last evaluation.
    fn rules(&self) -> Vec<RuleEntry>;
    fn store(&self) -> &Store;
    /// Active alerts (of one rule, or all).
    fn alerts(&self, rule: Option<&str>) -> Result<Vec<Alert>, String>;
    /// Alert history, oldest first.
    fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>, String>;
    fn timezone(&self) -> Tz;
    /// The wall clock (charts of a rule never evaluated end here).
    fn now(&self) -> Millis;
    /// Rule files that load nowhere (no last good version): (file, problems).
    fn broken_files(&self) -> Vec<(String, Vec<String>)> {
        Vec::new()
    }
    /// The last config reload, if it failed (the last good config runs
    /// meanwhile): (config file, problems).
    fn config_error(&self) -> Option<(String, Vec<String>)> {
        None
    }
    /// Display names of label and detail keys (the config's `labels:`).
    fn words(&self) -> Words {
        Words::default()
    }
    /// The rule's own tests, when known.
    fn test_status(&self, _rule: &str) -> Option<TestStatus> {
        None
    }
}
