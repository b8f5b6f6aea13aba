//! Hot reload of the rules folder: on file changes (watched folder, debounced)
//! and on SIGHUP.
//!
//! Every reload rescans the whole folder (dozens of small files compile in
//! milliseconds) and reconciles the result with the running set:
//! - a file that loads replaces its rule's version (a new id is added);
//! - a file that does not load keeps its rule's last good version
//!   evaluating, with the error shown in `/api/v1/rules` and announced once
//!   per broken version on the [`RuleLoadEvent`] channel;
//! - a rule whose file is gone (or now defines another id) is removed;
//! - jobs whose schedule changed are re-created.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};
use rhai::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::state::{BrokenFile, Daemon, LoadError, RuleEntry, RuleLoadEvent, RuleSet};
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::rules::loader::{load_rule, meta_position, parse_rule, rule_files};
use crate::rules::Rule;
use crate::time::Millis;

/// Editors save in bursts (write temp, rename, chmod): wait this long after
/// the last event before rescanning.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// One rule file as read now.
pub struct FileScan {
    pub path: PathBuf,
    /// SHA-256 of the bytes read.
    pub hash: String,
    pub result: Result<(Rule, Vec<Diagnostic>), Vec<Diagnostic>>,
}

/// Reads and compiles every rule file under the rules folder.
pub fn scan(engine: &Engine, config: &Config) -> Vec<FileScan> {
    rule_files(&config.rules_dir)
        .into_iter()
        .map(|path| scan_file(engine, config, &path))
        .collect()
}

fn scan_file(engine: &Engine, config: &Config, path: &Path) -> FileScan {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return FileScan {
                path: path.to_path_buf(),
                hash: String::new(),
                result: Err(vec![Diagnostic::error(
                    path,
                    0,
                    0,
                    format!("无法读取规则文件：{e}（请检查文件权限）/ cannot read rule: {e}"),
                )]),
            }
        }
    };
    let hash = hex::encode(Sha256::digest(&bytes));
    let result = match String::from_utf8(bytes) {
        Ok(source) => parse_rule(engine, config, path, source),
        // The loader words the encoding error with its position.
        Err(_) => load_rule(engine, config, path),
    };
    FileScan {
        path: path.to_path_buf(),
        hash,
        result,
    }
}

/// What a reconciliation did.
#[derive(Debug, Default)]
pub struct Applied {
    pub events: Vec<RuleLoadEvent>,
    /// Rules no longer evaluated: (id, content hash of the last version).
    pub removed: Vec<(String, String)>,
    /// Warnings of files whose content changed (printed once per version).
    pub warnings: Vec<Diagnostic>,
}

/// Reconciles the running rule set with a fresh scan. Pure over `now`.
/// With `refresh` (the config changed) every rule that loads takes its new
/// version, even if its file is unchanged: recipients and defaults are
/// resolved from the config when a rule is loaded.
pub fn apply(set: &mut RuleSet, scans: Vec<FileScan>, now: Millis, refresh: bool) -> Applied {
    let mut out = Applied::default();
    let old_hash_of: HashMap<PathBuf, String> = set
        .rules
        .values()
        .map(|e| (e.rule.path.clone(), e.rule.content_hash.clone()))
        .chain(set.rules.values().filter_map(|e| {
            e.load_error
                .as_ref()
                .map(|l| (e.rule.path.clone(), l.content_hash.clone()))
        }))
        .chain(
            set.broken
                .values()
                .map(|b| (b.path.clone(), b.error.content_hash.clone())),
        )
        .collect();
    let old_id_of: HashMap<PathBuf, String> = set
        .rules
        .iter()
        .map(|(id, e)| (e.rule.path.clone(), id.clone()))
        .collect();
    let broken_before: std::collections::HashSet<PathBuf> = set
        .broken
        .keys()
        .cloned()
        .chain(
            set.rules
                .values()
                .filter(|e| e.load_error.is_some())
                .map(|e| e.rule.path.clone()),
        )
        .collect();
    let was_broken = |path: &Path| broken_before.contains(path);

    // Files that load, by id; a second file with the same id is an error
    // (the file that had the id before keeps it, else the first by name).
    let mut good: BTreeMap<String, Rule> = BTreeMap::new();
    let mut failed: Vec<(PathBuf, String, Vec<String>)> = Vec::new();
    for scan in scans {
        match scan.result {
            Ok((rule, warnings)) => {
                if old_hash_of.get(&scan.path) != Some(&scan.hash) {
                    out.warnings.extend(warnings);
                }
                let id = rule.meta.id.clone();
                let incumbent = set.rules.get(&id).map(|e| e.rule.path.clone());
                let (winner, loser) = match good.remove(&id) {
                    None => (rule, None),
                    Some(other) if incumbent.as_ref() == Some(&rule.path) => (rule, Some(other)),
                    Some(other) => (other, Some(rule)),
                };
                if let Some(loser) = loser {
                    let (line, col) = meta_position(&loser.source, "id");
                    // Worded as `rulewatch check` words it, with the English after.
                    let d = Diagnostic::error(
                        &loser.path,
                        line,
                        col,
                        format!(
                            "规则编号 `{id}` 重复：`{}` 已经用了它，本文件未载入；每条规则的 id 要不同，请给本文件换一个编号 / duplicate rule id `{id}`: `{}` already uses it; give this file's rule another id",
                            winner.path.display(),
                            winner.path.display()
                        ),
                    );
                    failed.push((
                        loser.path.clone(),
                        loser.content_hash.clone(),
                        vec![d.to_string()],
                    ));
                }
                good.insert(id, winner);
            }
            Err(errors) => {
                let errors = errors
                    .iter()
                    .filter(|d| d.is_error)
                    .map(ToString::to_string)
                    .collect();
                failed.push((scan.path, scan.hash, errors));
            }
        }
    }

    let mut old = std::mem::take(&mut set.rules);
    let mut old_broken = std::mem::take(&mut set.broken);
    let mut rules: BTreeMap<String, RuleEntry> = BTreeMap::new();
    for (id, rule) in good {
        let path = rule.path.clone();
        let fixed = was_broken(&path);
        match old.remove(&id) {
            Some(mut entry) => {
                let changed =
                    entry.rule.content_hash != rule.content_hash || entry.rule.path != rule.path;
                if changed || refresh {
                    entry.rule = Arc::new(rule);
                }
                entry.load_error = None;
                if fixed {
                    out.events.push(RuleLoadEvent::Fixed {
                        path,
                        rule: id.clone(),
                    });
                } else if changed {
                    out.events.push(RuleLoadEvent::Updated {
                        path,
                        rule: id.clone(),
                    });
                }
                rules.insert(id, entry);
            }
            None => {
                if fixed {
                    out.events.push(RuleLoadEvent::Fixed {
                        path: path.clone(),
                        rule: id.clone(),
                    });
                }
                out.events.push(RuleLoadEvent::Added {
                    path,
                    rule: id.clone(),
                });
                rules.insert(
                    id,
                    RuleEntry {
                        rule: Arc::new(rule),
                        load_error: None,
                        guard: Arc::new(tokio::sync::Mutex::new(())),
                        last: None,
                        cursor: now,
                    },
                );
            }
        }
    }

    let mut broken = BTreeMap::new();
    for (path, hash, errors) in failed {
        let since = |previous: Option<&LoadError>| match previous {
            Some(p) if p.content_hash == hash => p.since,
            _ => now,
        };
        // The rule this file defined keeps its last good version, unless
        // another file has taken the id meanwhile.
        let keeper = old_id_of
            .get(&path)
            .filter(|id| !rules.contains_key(*id) && old.contains_key(*id));
        let (rule_id, error) = match keeper {
            Some(id) => {
                let mut entry = old.remove(id).expect("checked above");
                let error = LoadError {
                    since: since(entry.load_error.as_ref()),
                    content_hash: hash.clone(),
                    errors,
                };
                entry.load_error = Some(error.clone());
                rules.insert(id.clone(), entry);
                (Some(id.clone()), error)
            }
            None => {
                let error = LoadError {
                    since: since(old_broken.remove(&path).as_ref().map(|b| &b.error)),
                    content_hash: hash.clone(),
                    errors,
                };
                broken.insert(
                    path.clone(),
                    BrokenFile {
                        path: path.clone(),
                        error: error.clone(),
                    },
                );
                (None, error)
            }
        };
        if set.announced.insert((path.clone(), hash)) {
            out.events.push(RuleLoadEvent::Broken {
                path,
                rule: rule_id,
                error,
            });
        }
    }

    for (id, entry) in old {
        out.events.push(RuleLoadEvent::Removed {
            path: entry.rule.path.clone(),
            rule: id.clone(),
        });
        out.removed.push((id, entry.rule.content_hash.clone()));
    }
    set.rules = rules;
    set.broken = broken;
    out
}

/// The `why` of the first load.
pub const STARTUP: &str = "start-up";

/// Rescans the rules folder and applies the result; then brings the jobs in line.
pub async fn reload(daemon: &Arc<Daemon>, why: &str) {
    reload_rules(daemon, why, false).await
}

/// [`reload`]; with `refresh`, every rule is taken anew from its file (the
/// config changed: see [`apply`]).
pub async fn reload_rules(daemon: &Arc<Daemon>, why: &str, refresh: bool) {
    let _one_at_a_time = daemon.reloading.lock().await;
    if !daemon.config().rules_dir.is_dir() {
        // A folder being replaced (or unmounted) must not unload every rule.
        tracing::error!(folder = %daemon.config().rules_dir.display(), why, "rules folder is missing: keeping the rules as they are");
        return;
    }
    let d = daemon.clone();
    let scans = match tokio::task::spawn_blocking(move || scan(d.evaluator().engine(), &d.config()))
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "rule scan crashed: keeping the rules as they are");
            return;
        }
    };
    let files = scans.len();
    let now = chrono::Utc::now().timestamp_millis();
    let applied = apply(&mut daemon.rules.write(), scans, now, refresh);
    daemon
        .metrics
        .reloads
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    for w in &applied.warnings {
        tracing::warn!("{w}");
    }
    let changed = !applied.events.is_empty();
    let initial = why == STARTUP;
    for event in applied.events {
        // At start-up every rule is "added": the summary line says it.
        if !(initial && matches!(event, RuleLoadEvent::Added { .. })) {
            let _ = daemon.load_events.send(event);
        }
    }
    if !applied.removed.is_empty() {
        let d = daemon.clone();
        let removed = applied.removed.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for (id, hash) in &removed {
                d.alerting.forget(id, hash, now);
            }
        })
        .await;
    }
    let (loaded, broken) = {
        let set = daemon.rules.read();
        (set.rules.len(), set.broken_count())
    };
    if initial {
        tracing::info!(folder = %daemon.config().rules_dir.display(), files, loaded, broken, "rules loaded");
    } else if changed {
        tracing::info!(why, files, loaded, broken, "rules reloaded");
    } else {
        tracing::debug!(why, files, "rules rescanned: nothing changed");
    }
    super::schedule::sync_jobs(daemon, false).await;
}

/// Logs each load event. (The notifier tells `admin` about `Broken` ones
/// once it is wired in; see `mod.rs`.)
pub fn log_event(event: &RuleLoadEvent) {
    match event {
        RuleLoadEvent::Broken { path, rule, error } => {
            let keeps = match rule {
                Some(id) => format!("the last good version of `{id}` keeps running"),
                None => "the file is not evaluated".to_string(),
            };
            tracing::error!(file = %path.display(), "rule file does not load; {keeps}: {}", error.errors.join("; "));
        }
        RuleLoadEvent::Fixed { path, rule } => {
            tracing::info!(file = %path.display(), rule = %rule, "rule file loads again")
        }
        RuleLoadEvent::Added { path, rule } => {
            tracing::info!(file = %path.display(), rule = %rule, "rule added")
        }
        RuleLoadEvent::Updated { path, rule } => {
            tracing::info!(file = %path.display(), rule = %rule, "rule updated")
        }
        RuleLoadEvent::Removed { path, rule } => {
            tracing::info!(file = %path.display(), rule = %rule, "rule removed; its open alerts resolve quietly")
        }
    }
}

/// Watches the rules folder (recursively; the folder, not the files, since
/// editors save by rename) and reloads after each burst of changes.
pub fn watch(
    daemon: Arc<Daemon>,
) -> Result<Debouncer<notify::RecommendedWatcher, RecommendedCache>, notify::Error> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut debouncer =
        new_debouncer(
            DEBOUNCE,
            None,
            move |result: DebounceEventResult| match result {
                Ok(events) => {
                    // Reading the files ourselves makes access events: ignore them,
                    // and editors' swap and backup files.
                    let relevant = events.iter().any(|e| {
                        !matches!(e.event.kind, EventKind::Access(_))
                            && e.event.paths.iter().any(|p| match p.extension() {
                                None => true, // a folder
                                Some(ext) => ext == "rhai",
                            })
                    });
                    if relevant {
                        let _ = tx.send(());
                    }
                }
                Err(errors) => {
                    for e in errors {
                        tracing::warn!(error = %e, "watching the rules folder");
                    }
                }
            },
        )?;
    debouncer.watch(&daemon.config().rules_dir, RecursiveMode::Recursive)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            while rx.try_recv().is_ok() {}
            if daemon.is_shutting_down() {
                break;
            }
            reload(&daemon, "file change").await;
        }
    });
    Ok(debouncer)
}

/// Reloads the config, then the rules, on each SIGHUP (see
/// [`super::reconfigure`]); `channels` are the mail sender's. A config that
/// does not load leaves the config and the rules as they are.
pub fn on_sighup(
    daemon: Arc<Daemon>,
    channels: crate::notify::ChannelsHandle,
) -> std::io::Result<()> {
    use super::reconfigure::{reload_config, Reconfigured};
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if daemon.is_shutting_down() {
                break;
            }
            tracing::info!("SIGHUP: reloading the config and the rules");
            match reload_config(&daemon, &channels).await {
                Reconfigured::Failed => {}
                Reconfigured::Applied { .. } => reload_rules(&daemon, "SIGHUP", true).await,
            }
            super::service::status(&super::service::daemon_status(&daemon));
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::engine::new_engine;

    struct Fixture {
        dir: tempfile::TempDir,
        config: Config,
        engine: Engine,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("rules")).unwrap();
            let text = r#"(
                timezone: "Asia/Shanghai",
                rules: "rules",
                store: "data/rulewatch.db",
                mail: (from: "alerts@example.cn", transport: File(dir: "outbox")),
                recipients: { "env": ["huanbao@example.cn"] },
                admin: ["ops@example.cn"],
            )"#;
            let config = Config::parse(&dir.path().join("rulewatch.ron"), text).unwrap();
            let engine = new_engine(&config.limits);
            Fixture {
                dir,
                config,
                engine,
            }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join("rules").join(name)
        }

        fn write(&self, name: &str, id: &str, schedule: &str, body: &str) {
            let text = format!(
                "const RULE = #{{ id: \"{id}\", title: \"{id}\", severity: \"warning\", schedule: \"{schedule}\", notify: [\"env\"] }};\n{body}\n"
            );
            std::fs::write(self.path(name), text).unwrap();
        }

        fn apply(&self, set: &mut RuleSet, now: Millis) -> Applied {
            apply(set, scan(&self.engine, &self.config), now, false)
        }
    }

    fn kinds(events: &[RuleLoadEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                RuleLoadEvent::Broken { rule, .. } => {
                    format!("broken:{}", rule.as_deref().unwrap_or("-"))
                }
                RuleLoadEvent::Fixed { rule, .. } => format!("fixed:{rule}"),
                RuleLoadEvent::Added { rule, .. } => format!("added:{rule}"),
                RuleLoadEvent::Updated { rule, .. } => format!("updated:{rule}"),
                RuleLoadEvent::Removed { rule, .. } => format!("removed:{rule}"),
            })
            .collect()
    }

    #[test]
    fn broken_edit_keeps_the_last_good_version_and_is_announced_once() {
        let f = Fixture::new();
        f.write("a.rhai", "rule-a", "0 0 9 * * *", "let x = 1;");
        f.write("b.rhai", "rule-b", "@hourly", "let y = 2;");
        std::fs::write(f.path("c.rhai"), "this is not rhai (").unwrap();
        let mut set = RuleSet::default();
        let a = f.apply(&mut set, 1_000);
        assert_eq!(
            kinds(&a.events),
            ["added:rule-a", "added:rule-b", "broken:-"]
        );
        assert_eq!(set.rules.len(), 2);
        assert_eq!(set.broken.len(), 1);
        assert_eq!(set.rules["rule-a"].cursor, 1_000);
        let good_hash = set.rules["rule-a"].rule.content_hash.clone();

        // Break rule-a: the last good version keeps running, the error shows.
        std::fs::write(f.path("a.rhai"), "const RULE = #{ id: \"rule-a\" ").unwrap();
        let a = f.apply(&mut set, 2_000);
        assert_eq!(kinds(&a.events), ["broken:rule-a"]);
        let entry = &set.rules["rule-a"];
        assert_eq!(entry.rule.content_hash, good_hash);
        let err = entry.load_error.as_ref().unwrap();
        assert!(err.errors[0].contains("a.rhai:1:"), "{:?}", err.errors);
        assert_eq!(err.since, 2_000);
        assert_eq!(entry.cursor, 1_000, "bookkeeping survives");
        assert_eq!(set.broken_count(), 2);

        // Rescanning the same broken version: nothing new to tell.
        let a = f.apply(&mut set, 3_000);
        assert!(a.events.is_empty(), "{:?}", kinds(&a.events));
        assert_eq!(
            set.rules["rule-a"].load_error.as_ref().unwrap().since,
            2_000
        );

        // Another broken version: told again.
        std::fs::write(f.path("a.rhai"), "const RULE = #{ id: \"rule-a\", ").unwrap();
        assert_eq!(kinds(&f.apply(&mut set, 4_000).events), ["broken:rule-a"]);

        // Fixed, with a new body: the new version runs.
        f.write("a.rhai", "rule-a", "0 0 9 * * *", "let x = 3;");
        let a = f.apply(&mut set, 5_000);
        assert_eq!(kinds(&a.events), ["fixed:rule-a"]);
        assert!(set.rules["rule-a"].load_error.is_none());
        assert_ne!(set.rules["rule-a"].rule.content_hash, good_hash);
        assert!(set.rules["rule-a"].rule.source.contains("x = 3"));
    }

    #[test]
    fn added_updated_removed_rescheduled_and_duplicates() {
        let f = Fixture::new();
        f.write("a.rhai", "rule-a", "0 0 9 * * *", "let x = 1;");
        let mut set = RuleSet::default();
        f.apply(&mut set, 0);
        let guard = set.rules["rule-a"].guard.clone();

        // Unchanged content: the same Arc keeps running, no events.
        let before = Arc::as_ptr(&set.rules["rule-a"].rule);
        assert!(f.apply(&mut set, 1).events.is_empty());
        assert_eq!(Arc::as_ptr(&set.rules["rule-a"].rule), before);

        // A schedule change shows in the wanted jobs; the overlap guard is kept.
        f.write("a.rhai", "rule-a", "0 30 8 * * *", "let x = 1;");
        assert_eq!(kinds(&f.apply(&mut set, 2).events), ["updated:rule-a"]);
        assert_eq!(set.wanted_jobs()["rule-a"], "0 30 8 * * *");
        assert!(Arc::ptr_eq(&guard, &set.rules["rule-a"].guard));

        // A second file claiming the same id is the error; the incumbent stays.
        f.write("0-dup.rhai", "rule-a", "@daily", "let z = 1;");
        let a = f.apply(&mut set, 3);
        assert_eq!(kinds(&a.events), ["broken:-"]);
        assert!(set.rules["rule-a"].rule.path.ends_with("a.rhai"));
        let dup = &set.broken[&f.path("0-dup.rhai")];
        assert!(
            dup.error.errors[0].contains("规则编号 `rule-a` 重复")
                && dup.error.errors[0].contains("duplicate rule id `rule-a`")
                && dup.error.errors[0].contains("请给本文件换一个编号"),
            "{:?}",
            dup.error.errors
        );

        // A new file, then the original deleted: the duplicate takes over the id.
        f.write("b.rhai", "rule-b", "@daily", "let y = 1;");
        std::fs::remove_file(f.path("a.rhai")).unwrap();
        let a = f.apply(&mut set, 4);
        assert_eq!(kinds(&a.events), ["fixed:rule-a", "added:rule-b"]);
        assert!(set.rules["rule-a"].rule.path.ends_with("0-dup.rhai"));
        assert!(set.broken.is_empty());

        // Deleted: removed.
        std::fs::remove_file(f.path("b.rhai")).unwrap();
        let a = f.apply(&mut set, 5);
        assert_eq!(kinds(&a.events), ["removed:rule-b"]);
        assert_eq!(a.removed[0].0, "rule-b");
        assert!(!set.wanted_jobs().contains_key("rule-b"));
    }

    #[test]
    fn a_file_that_changes_its_id_removes_the_old_one() {
        let f = Fixture::new();
        f.write("a.rhai", "rule-a", "@daily", "let x = 1;");
        let mut set = RuleSet::default();
        f.apply(&mut set, 0);
        f.write("a.rhai", "rule-z", "@daily", "let x = 1;");
        let a = f.apply(&mut set, 1);
        assert_eq!(kinds(&a.events), ["added:rule-z", "removed:rule-a"]);
    }
}
