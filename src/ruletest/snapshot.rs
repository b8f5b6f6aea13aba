//! A [`StatusSource`] over a store file without the daemon: the rules as
//! loaded from the config, the alert store, and the last evaluation of each
//! rule made here. [`Snapshot::replay`] evaluates every rule at each of its
//! scheduled instants over a period, as the daemon would have, recording
//! alerts, history and (queued, unsent) mail: the test server, the browser
//! test and the digest tests use it on the 2021 fixtures.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono_tz::Tz;
use parking_lot::Mutex;

use super::runner::test_status_of;
use crate::alerts::{Alert, AlertRule, AlertStore, HistoryEntry, HistoryQuery};
use crate::config::Config;
use crate::notify::chart::{ChartSource, StoreCharts};
use crate::notify::MailSettings;
use crate::readings::store::Store;
use crate::rules::{load_rules, Evaluator, Finding};
use crate::status::{LastRun, RuleEntry, StatusSource, TestStatus};
use crate::time::Millis;

pub struct Snapshot {
    /// The readings the page and the mail charts show.
    pub store: Arc<Store>,
    pub config: Config,
    /// Draws the charts of the mails [`Snapshot::replay`] queued (hand it to
    /// the sender: charts are drawn when sending).
    pub mail_charts: Arc<dyn ChartSource>,
    pub evaluator: Evaluator,
    pub rules: Vec<RuleEntry>,
    pub alerts: Mutex<AlertStore>,
    /// Files that did not load: (file, problems).
    pub broken: Vec<(String, Vec<String>)>,
    /// The clock the page shows (the end of the last replay).
    pub now: Millis,
}

impl Snapshot {
    /// Loads the rules and opens the store of `config`; mails queued by
    /// [`Snapshot::replay`] carry charts, drawn by [`Snapshot::mail_charts`].
    pub fn open(config: Config, now: Millis) -> Result<Snapshot, String> {
        let store = Arc::new(Store::open(&config.store_path).map_err(|e| e.to_string())?);
        let evaluator = Evaluator::new(&config, store.clone());
        let (rules, problems) = load_rules(evaluator.engine(), &config);
        let mut broken: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in problems.iter().filter(|p| p.is_error) {
            broken
                .entry(p.path.display().to_string())
                .or_default()
                .push(p.to_string());
        }
        let alerts = AlertStore::open(&config.store_path).map_err(|e| e.to_string())?;
        let specs: BTreeMap<String, _> = rules
            .iter()
            .filter_map(|r| r.meta.chart.clone().map(|c| (r.meta.id.clone(), c)))
            .collect();
        let mail_charts = Arc::new(
            StoreCharts::new(store.clone(), config.timezone, move |id: &str| {
                specs.get(id).cloned()
            })
            .with_words(crate::status::Words::for_config(&config)),
        );
        Ok(Snapshot {
            mail_charts,
            store,
            evaluator,
            rules: rules
                .into_iter()
                .map(|r| RuleEntry {
                    rule: Arc::new(r),
                    last: None,
                    load_error: None,
                })
                .collect(),
            alerts: Mutex::new(alerts),
            broken: broken.into_iter().collect(),
            now,
            config,
        })
    }

    /// Evaluates every rule at each of its scheduled instants in `[from, to]`,
    /// in time order, recording the rules due at the same instant together
    /// (one mail per recipient per instant, as the daemon does). Returns how
    /// many evaluations ran.
    pub fn replay(&mut self, from: Millis, to: Millis) -> Result<usize, String> {
        let tz = self.config.timezone;
        let mut ticks: BTreeMap<Millis, Vec<usize>> = BTreeMap::new();
        for (i, e) in self.rules.iter().enumerate() {
            for t in e.rule.meta.schedule.between(from, to, tz) {
                ticks.entry(t).or_default().push(i);
            }
        }
        let settings = MailSettings::from_config(&self.config);
        let mut count = 0;
        for (at, due) in ticks {
            let outcomes: Vec<_> = due
                .iter()
                .map(|&i| self.evaluator.evaluate(&self.rules[i].rule, at))
                .collect();
            let rules: Vec<AlertRule> = due
                .iter()
                .map(|&i| AlertRule::from_rule(&self.rules[i].rule))
                .collect();
            let findings: Vec<Vec<Finding>> = outcomes.iter().map(|o| o.all_findings()).collect();
            let batch: Vec<(&AlertRule, &[Finding])> = rules
                .iter()
                .zip(&findings)
                .map(|(r, f)| (r, f.as_slice()))
                .collect();
            self.alerts
                .lock()
                .record(at, &batch, &settings)
                .map_err(|e| e.to_string())?;
            for (&i, o) in due.iter().zip(outcomes) {
                self.rules[i].last = Some(LastRun {
                    at,
                    findings: o.findings.len(),
                    breach: o.first_breach().cloned(),
                    error: o.error,
                });
                count += 1;
            }
        }
        self.now = to;
        Ok(count)
    }
}

impl StatusSource for Snapshot {
    fn words(&self) -> crate::status::Words {
        crate::status::Words::for_config(&self.config)
    }
    fn rules(&self) -> Vec<RuleEntry> {
        self.rules.clone()
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn alerts(&self, rule: Option<&str>) -> Result<Vec<Alert>, String> {
        self.alerts.lock().alerts(rule).map_err(|e| e.to_string())
    }

    fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>, String> {
        self.alerts.lock().history(query).map_err(|e| e.to_string())
    }

    fn timezone(&self) -> Tz {
        self.config.timezone
    }

    fn now(&self) -> Millis {
        self.now
    }

    fn broken_files(&self) -> Vec<(String, Vec<String>)> {
        self.broken.clone()
    }

    fn test_status(&self, rule: &str) -> Option<TestStatus> {
        let entry = self.rules.iter().find(|e| e.rule.meta.id == rule)?;
        test_status_of(&self.config, &entry.rule.path)
    }
}
