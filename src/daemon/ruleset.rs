//! The rule set as the daemon holds it: each rule with its last evaluation
//! and load error, the files that do not load (and a config that does not
//! reload), and what a (re)load changed. Plain data, shared by the daemon's
//! parts (`state` re-exports it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::rules::{Finding, Rule, RuleFailure};
use crate::time::Millis;

/// Where an evaluation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Schedule,
    Api,
}

/// The last evaluation of a rule, as `/api/v1/rules` shows it.
#[derive(Debug, Clone)]
pub struct LastEvaluation {
    /// The evaluation time (`now` the rule saw: the scheduled instant).
    pub at: Millis,
    /// When it finished, wall clock.
    pub finished: Millis,
    pub duration: Duration,
    pub error: Option<RuleFailure>,
    pub findings: usize,
    /// Its first breach, if any (see [`crate::status::LastRun::breach`]).
    pub breach: Option<Finding>,
    pub trigger: Trigger,
}

/// A rule file's current version that does not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// SHA-256 of the broken content: one notice per broken version.
    pub content_hash: String,
    /// Each problem as `PATH:LINE:COL: error: MESSAGE`.
    pub errors: Vec<String>,
    /// When this version was first seen.
    pub since: Millis,
}

/// A rule being evaluated.
pub struct RuleEntry {
    /// The version evaluating: the file's current one, or its last good one
    /// when `load_error` is set.
    pub rule: Arc<Rule>,
    pub load_error: Option<LoadError>,
    /// Held while the rule evaluates: a scheduled run that finds it taken is
    /// skipped (and counted); an API run waits for it.
    pub guard: Arc<tokio::sync::Mutex<()>>,
    pub last: Option<LastEvaluation>,
    /// Every scheduled instant up to here has been handled (run or skipped).
    pub cursor: Millis,
}

/// A rule file that does not load and has no last good version.
#[derive(Debug, Clone)]
pub struct BrokenFile {
    pub path: PathBuf,
    pub error: LoadError,
}

/// All rules known to the daemon.
#[derive(Default)]
pub struct RuleSet {
    pub rules: BTreeMap<String, RuleEntry>,
    pub broken: BTreeMap<PathBuf, BrokenFile>,
    /// (file, content hash) of every broken version already announced.
    pub announced: HashSet<(PathBuf, String)>,
}

impl RuleSet {
    /// Rule id → cron text, what the scheduler should run.
    pub fn wanted_jobs(&self) -> HashMap<String, String> {
        self.rules
            .iter()
            .map(|(id, e)| (id.clone(), e.rule.meta.schedule.cron_text.clone()))
            .collect()
    }

    pub fn broken_count(&self) -> usize {
        self.broken.len()
            + self
                .rules
                .values()
                .filter(|e| e.load_error.is_some())
                .count()
    }
}

/// What happened to a rule file on a (re)load. `Broken` is sent once per
/// broken version (per daemon run; the outbox dedups across restarts), and
/// `admin` is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleLoadEvent {
    /// A version of `path` that does not load. `rule` is the id whose last
    /// good version keeps evaluating, if there is one.
    Broken {
        path: PathBuf,
        rule: Option<String>,
        error: LoadError,
    },
    /// `path` loads again after being broken.
    Fixed {
        path: PathBuf,
        rule: String,
    },
    Added {
        path: PathBuf,
        rule: String,
    },
    Updated {
        path: PathBuf,
        rule: String,
    },
    /// The rule's file is gone (or no longer defines it): it is no longer
    /// evaluated; its open alerts resolve quietly.
    Removed {
        path: PathBuf,
        rule: String,
    },
}

/// A config reload that failed: what the status page, the API and the note
/// to `admin` show until a reload succeeds.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigReloadError {
    pub path: PathBuf,
    /// When this version of the file was first found broken.
    pub since: Millis,
    /// SHA-256 of the bytes read (empty if the file could not be read).
    pub content_hash: String,
    /// Each problem, `file:line:col` first.
    pub errors: Vec<String>,
}
