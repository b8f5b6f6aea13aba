//! The daemon's side of alerts and mail: outcomes go through the alert
//! state machine ([`AlertStore::record`], which queues the mail in the same
//! transaction through the mail settings, `notify`'s [`NoticeSink`]), the
//! sender worker is woken, broken rule files are told to
//! `admin`, removed rules' alerts end quietly.
//!
//! Two connections to the store file: one that writes (every state change,
//! on the blocking pool), one that reads for the API and `/metrics`, so a
//! status page never waits behind an evaluation's commit.

use std::fmt::Write as _;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use super::ruleset::{ConfigReloadError, LoadError, RuleLoadEvent};
#[cfg(doc)]
use crate::alerts::NoticeSink;
use crate::alerts::{Alert, State};
use crate::alerts::{AlertRule, AlertStore, HistoryEntry, HistoryQuery, Recorded, StoreError};
use crate::config::Config;
use crate::notify::{MailSettings, MailStats, OutboxCounts};
use crate::rules::{Finding, Rule, RuleOutcome};
use crate::time::Millis;

pub struct Alerting {
    writer: Mutex<AlertStore>,
    reader: Mutex<AlertStore>,
    /// Swapped whole by a config reload; a recording keeps the settings it
    /// started with.
    settings: RwLock<Arc<MailSettings>>,
    /// Wakes the sender worker after mail was queued.
    wake: Arc<Notify>,
    mail_stats: Arc<MailStats>,
}

impl Alerting {
    pub fn open(
        config: &Config,
        wake: Arc<Notify>,
        mail_stats: Arc<MailStats>,
    ) -> Result<Alerting, StoreError> {
        Ok(Alerting {
            writer: Mutex::new(AlertStore::open(&config.store_path)?),
            reader: Mutex::new(AlertStore::open(&config.store_path)?),
            settings: RwLock::new(Arc::new(MailSettings::from_config(config))),
            wake,
            mail_stats,
        })
    }

    /// The mail settings in force.
    pub fn settings(&self) -> Arc<MailSettings> {
        self.settings.read().clone()
    }

    /// A reloaded config's mail settings: recordings from now on use them.
    pub fn set_settings(&self, settings: MailSettings) {
        *self.settings.write() = Arc::new(settings);
    }

    /// Records the outcomes of rules evaluated at the same instant `at` in
    /// one transaction (so each recipient gets one mail for it). Blocking.
    pub fn record(
        &self,
        at: Millis,
        outcomes: &[(Arc<Rule>, RuleOutcome)],
    ) -> Result<Recorded, StoreError> {
        let rules: Vec<AlertRule> = outcomes
            .iter()
            .map(|(r, _)| AlertRule::from_rule(r))
            .collect();
        let findings: Vec<std::borrow::Cow<'_, [Finding]>> = outcomes
            .iter()
            .map(|(_, o)| o.findings_with_error())
            .collect();
        let batch: Vec<(&AlertRule, &[Finding])> = rules
            .iter()
            .zip(&findings)
            .map(|(r, f)| (r, f.as_ref()))
            .collect();
        let settings = self.settings();
        let recorded = self.writer.lock().record(at, &batch, &*settings)?;
        for t in &recorded.transitions {
            tracing::info!(
                rule = %t.rule,
                subject = %crate::rules::finding::subject_text(&t.subject),
                from = t.from.as_str(),
                to = t.to.as_str(),
                "alert {}",
                t.message
            );
        }
        if !recorded.queued.is_empty() {
            tracing::info!(mails = recorded.queued.len(), "mail queued");
            self.wake.notify_one();
        }
        Ok(recorded)
    }

    /// A rule left the rules folder: its alerts end quietly. Blocking.
    pub fn forget(&self, rule: &str, content_hash: &str, now: Millis) {
        match self.writer.lock().forget_rule(rule, content_hash, now) {
            Ok(0) => {}
            Ok(n) => tracing::info!(rule, alerts = n, "removed rule's alerts ended quietly"),
            Err(e) => tracing::error!(rule, error = %e, "could not end the removed rule's alerts"),
        }
    }

    /// Tells `admin` about a rule file that does not load, once per broken
    /// version (the outbox keys the note by file and content hash, so a
    /// restart does not repeat it). Blocking.
    pub fn rule_file_broken(
        &self,
        path: &std::path::Path,
        rule: Option<&str>,
        error: &LoadError,
        now: Millis,
    ) {
        let file = path.display().to_string();
        let key = format!("load:{file}:{}", error.content_hash);
        let rule_name = rule.map(str::to_string).unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let title = format!("规则文件无法加载 / rule file does not load: {file}");
        let lead = match rule {
            Some(id) => format!(
                "规则 `{id}` 继续按上一个可用版本运行。The last good version of `{id}` keeps running."
            ),
            None => "该文件未被执行。This file is not evaluated until it loads.".to_string(),
        };
        self.note_broken_file(&key, &rule_name, &title, &lead, &error.errors, &file, now);
    }

    /// Tells `admin` that the config file, read again on SIGHUP, does not
    /// load and the last good config keeps running; once per broken version
    /// (keyed by the file's content hash, like a broken rule file). Blocking.
    pub fn config_broken(&self, error: &ConfigReloadError, now: Millis) {
        let settings = self.settings();
        if settings.admin.is_empty() {
            return;
        }
        let file = error.path.display().to_string();
        let key = format!("config:{file}:{}", error.content_hash);
        let title = format!("配置文件重新加载失败 / config reload failed: {file}");
        let lead = "重新读取配置文件时发现错误，本系统继续按上一个可用的配置和规则运行，改动未生效。改正后再发送 SIGHUP（systemctl reload rulewatch）。\n\
             The config file does not load: the last good config and rules keep running. Fix it and reload again.";
        self.note_broken_file(&key, "config", &title, lead, &error.errors, &file, now);
    }

    /// Queues the note to `admin` about a file that does not load (a rule
    /// file or the config): `lead` says what keeps running, then each error
    /// and where to see them all; once per `key` (the file's version).
    #[allow(clippy::too_many_arguments)]
    fn note_broken_file(
        &self,
        key: &str,
        rule_name: &str,
        title: &str,
        lead: &str,
        errors: &[String],
        file: &str,
        now: Millis,
    ) {
        let mut text = String::new();
        let _ = writeln!(text, "{lead}");
        let _ = writeln!(text);
        for e in errors {
            let _ = writeln!(text, "{e}");
        }
        let _ = writeln!(
            text,
            "\n`rulewatch check` 可列出全部问题。`rulewatch check` lists every problem."
        );
        match self
            .writer
            .lock()
            .admin_note(key, rule_name, title, &text, now, &*self.settings())
        {
            Ok(true) => {
                tracing::info!(file = %file, "admin told about a file that does not load");
                self.wake.notify_one();
            }
            Ok(false) => tracing::debug!(file = %file, "admin already told about this version"),
            Err(e) => {
                tracing::error!(file = %file, error = %e, "could not queue the note to admin")
            }
        }
    }

    pub fn handle_load_event(&self, event: &RuleLoadEvent, now: Millis) {
        if let RuleLoadEvent::Broken { path, rule, error } = event {
            if !self.settings().admin.is_empty() {
                self.rule_file_broken(path, rule.as_deref(), error, now);
            }
        }
    }

    /// Queues the monthly digest of `at` (once per month); wakes the sender. Blocking.
    pub fn queue_digest(
        &self,
        source: &dyn crate::status::StatusSource,
        config: &Config,
        at: Millis,
    ) -> Result<Vec<String>, String> {
        use crate::notify::digest;
        // Built before taking the writer: building reads through the reader.
        let mails = digest::compose(&digest::digests(source, config, at)?, config.timezone);
        let writer = self.writer.lock();
        let mut queued = Vec::new();
        for mail in &mails {
            if crate::notify::outbox::enqueue(writer.connection(), mail, at)
                .map_err(|e| e.to_string())?
            {
                queued.push(mail.message_id.clone());
            }
        }
        if !queued.is_empty() {
            self.wake.notify_one();
        }
        Ok(queued)
    }

    pub fn alerts(&self, rule: Option<&str>) -> Result<Vec<Alert>, StoreError> {
        self.reader.lock().alerts(rule)
    }

    pub fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>, StoreError> {
        self.reader.lock().history(query)
    }

    /// `/metrics` lines: alerts by state, mails by outbox status, send
    /// attempts. Blocking (two small queries).
    pub fn render_metrics(&self, out: &mut String) {
        let (by_state, counts): (Vec<(State, u64)>, Option<OutboxCounts>) = {
            let reader = self.reader.lock();
            (
                reader.count_by_state().unwrap_or_default(),
                crate::notify::outbox::counts(reader.connection()).ok(),
            )
        };
        let _ = writeln!(out, "# HELP rulewatch_alerts Active alerts by state.");
        let _ = writeln!(out, "# TYPE rulewatch_alerts gauge");
        for state in [
            State::Pending,
            State::Firing,
            State::NoData,
            State::Error,
            State::Final,
        ] {
            let n = by_state
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(out, "rulewatch_alerts{{state=\"{}\"}} {n}", state.as_str());
        }
        if let Some(c) = counts {
            let _ = writeln!(out, "# HELP rulewatch_mails Mails in the outbox by status (sent: those retention still keeps; failed: all-time).");
            let _ = writeln!(out, "# TYPE rulewatch_mails gauge");
            let _ = writeln!(out, "rulewatch_mails{{status=\"queued\"}} {}", c.queued);
            let _ = writeln!(out, "rulewatch_mails{{status=\"sent\"}} {}", c.sent);
            let _ = writeln!(out, "rulewatch_mails{{status=\"failed\"}} {}", c.failed);
        }
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP rulewatch_mails_sent_total Mails the server accepted since start."
        );
        let _ = writeln!(out, "# TYPE rulewatch_mails_sent_total counter");
        let _ = writeln!(
            out,
            "rulewatch_mails_sent_total {}",
            load(&self.mail_stats.sent)
        );
        let _ = writeln!(out, "# HELP rulewatch_mail_send_failures_total Failed send attempts since start (each retry counts).");
        let _ = writeln!(out, "# TYPE rulewatch_mail_send_failures_total counter");
        let _ = writeln!(
            out,
            "rulewatch_mail_send_failures_total {}",
            load(&self.mail_stats.failed_attempts)
        );
        let _ = writeln!(
            out,
            "# HELP rulewatch_mails_failed_total Mails given up for good since start."
        );
        let _ = writeln!(out, "# TYPE rulewatch_mails_failed_total counter");
        let _ = writeln!(
            out,
            "rulewatch_mails_failed_total {}",
            load(&self.mail_stats.failed)
        );
    }
}
