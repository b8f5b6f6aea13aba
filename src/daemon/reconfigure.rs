//! SIGHUP reloads the config file as well as the rules.
//!
//! The file is read and checked in full before anything changes. If it
//! loads, the parts that can change while the daemon runs are swapped in
//! whole (recipients and group names, mail, chat robots, limits, retention,
//! labels, owners, admin, upload mappings), and the rules are reloaded
//! against it (their recipients are resolved from the config). Evaluations
//! and requests already running keep the config they started with (see
//! [`super::state::Live`]).
//!
//! Settings that cannot change without a restart ([`RESTART_ONLY`]: the
//! store, the listen address, the time zone, the rules folder, the access
//! tokens, …) keep their start-up values, and the log says so for each.
//!
//! If the file does not load (or a mail transport or chat robot cannot be
//! built from it), nothing changes: the last good config and rules keep
//! running, the error is logged with its position, shown on the status page
//! and in `GET /api/v1/rules`, and `admin` is told once per broken version.

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use super::ruleset::ConfigReloadError;
use super::state::Daemon;
use crate::config::Config;
use crate::diag::Diagnostic;
use crate::notify::{Channels, ChannelsHandle, MailSettings, Mailer};
use crate::rules::Evaluator;
use crate::time::Millis;

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reconfigured {
    /// A new config is in force; `needs_restart` names the settings whose
    /// change waits for a restart.
    Applied { needs_restart: Vec<&'static str> },
    /// The file does not load: the last good config stays.
    Failed,
}

/// The settings a running daemon cannot take over, with how each is shown.
/// Their start-up values stay in force until a restart.
pub const RESTART_ONLY: &[&str] = &[
    "store",
    "listen",
    "timezone",
    "rules",
    "api_token_env",
    "bureaus",
    "http.read_access",
    "http.max_body_bytes",
    "digest",
    "retention.max_store_bytes",
];

/// The restart-only settings in which `new` differs from `running`.
/// `new`'s values of those are replaced by `running`'s, so the config in
/// force always says what the daemon does.
pub fn keep_restart_only(running: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    // `run --demo` runs on `demo.db` beside the configured store.
    let same_store = new.store_path == running.store_path
        || new.store_path.with_file_name("demo.db") == running.store_path;
    if !same_store {
        changed.push("store");
    }
    new.store_path = running.store_path.clone();
    macro_rules! keep {
        ($name:literal, $($field:tt)+) => {
            if new.$($field)+ != running.$($field)+ {
                changed.push($name);
                new.$($field)+ = running.$($field)+.clone();
            }
        };
    }
    keep!("listen", listen);
    keep!("timezone", timezone);
    keep!("rules", rules_dir);
    keep!("api_token_env", api_token_env);
    keep!("bureaus", bureaus);
    keep!("http.read_access", read_access);
    keep!("http.max_body_bytes", max_body_bytes);
    if new.digest.schedule.cron_text != running.digest.schedule.cron_text {
        changed.push("digest");
        new.digest = running.digest.clone();
    }
    keep!("retention.max_store_bytes", retention.max_store_bytes);
    changed
}

/// Reads the config file again and puts it in force if it loads (see the
/// module doc). `channels` is the mail sender's.
pub async fn reload_config(daemon: &Arc<Daemon>, channels: &ChannelsHandle) -> Reconfigured {
    let running = daemon.config();
    let path = running.path.clone();
    let read = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || read_and_build(&path))
            .await
            .unwrap_or_else(|e| Err((String::new(), vec![format!("{e}")])))
    };
    let now = chrono::Utc::now().timestamp_millis();
    let (mut new, built) = match read {
        Ok(ok) => ok,
        Err((hash, errors)) => {
            failed(daemon, path, hash, errors, now).await;
            return Reconfigured::Failed;
        }
    };
    let needs_restart = keep_restart_only(&running, &mut new);
    for name in &needs_restart {
        tracing::warn!(
            setting = name,
            "配置项 `{name}` 已改动，需要重启才能生效（systemctl restart rulewatch），在此之前仍按原值运行 / `{name}` changed: needs a restart to take effect; the running value is kept until then"
        );
    }
    let was_broken = daemon.config_error.write().take().is_some();
    if was_broken {
        tracing::info!(file = %path.display(), "配置文件已可正常加载 / the config file loads again");
    }
    let evaluator = Evaluator::new(&new, daemon.store.clone());
    let settings = MailSettings::from_config(&new);
    *channels.write() = Arc::new(Channels::new(built.mailer, built.robots, settings.clone()));
    daemon.alerting.set_settings(settings);
    daemon.set_config(new, evaluator);
    tracing::info!(file = %path.display(), "配置已重新加载 / config reloaded");
    Reconfigured::Applied { needs_restart }
}

/// What a loaded config is sent through: built before anything is swapped,
/// so that a missing password variable fails the reload, not the sending.
struct Built {
    mailer: Mailer,
    robots: Vec<Box<dyn crate::notify::Notifier>>,
}

/// The config and what it sends through, or the file's hash and its errors.
type ReadResult = Result<(Config, Built), (String, Vec<String>)>;

fn read_and_build(path: &std::path::Path) -> ReadResult {
    let bytes = std::fs::read(path).map_err(|e| {
        (
            String::new(),
            vec![Diagnostic::error(
                path,
                0,
                0,
                format!("无法读取配置文件：{e}，请检查文件是否存在、权限是否可读 / cannot read the config: {e}"),
            )
            .to_string()],
        )
    })?;
    let hash = hex::encode(Sha256::digest(&bytes));
    let text = String::from_utf8_lossy(&bytes);
    let config = Config::parse(path, &text).map_err(|ds| {
        (
            hash.clone(),
            ds.iter()
                .filter(|d| d.is_error)
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
        )
    })?;
    let at = |e: String| {
        (
            hash.clone(),
            vec![Diagnostic::error(path, 0, 0, e).to_string()],
        )
    };
    let mailer = Mailer::from_config(&config.mail).map_err(|e| at(e.to_string()))?;
    let robots = crate::notify::chat::ChatNotifier::all_from_config(&config)
        .map_err(|e| at(e.to_string()))?
        .into_iter()
        .map(|r| Box::new(r) as Box<dyn crate::notify::Notifier>)
        .collect();
    Ok((config, Built { mailer, robots }))
}

/// Keeps the last good config; logs, records and tells `admin`.
async fn failed(
    daemon: &Arc<Daemon>,
    path: PathBuf,
    hash: String,
    errors: Vec<String>,
    now: Millis,
) {
    tracing::error!(
        file = %path.display(),
        "配置文件重新加载失败，继续按上一个可用的配置和规则运行，改动未生效 / config reload failed: the last good config and rules keep running:\n{}",
        errors.join("\n")
    );
    let error = {
        let mut slot = daemon.config_error.write();
        let since = match slot.as_ref() {
            Some(e) if e.content_hash == hash => e.since,
            _ => now,
        };
        let error = ConfigReloadError {
            path,
            since,
            content_hash: hash,
            errors,
        };
        *slot = Some(error.clone());
        error
    };
    let d = daemon.clone();
    let _ = tokio::task::spawn_blocking(move || d.alerting.config_broken(&error, now)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path, text_extra: &str) -> Config {
        let text = format!(
            r#"(
                timezone: "Asia/Shanghai",
                rules: "rules",
                store: "data/rulewatch.db",
                mail: (from: "alerts@example.cn", transport: File(dir: "outbox")),
                recipients: {{ "env": ["huanbao@example.cn"] }},
                admin: ["ops@example.cn"],
                {text_extra}
            )"#
        );
        let _ = std::fs::create_dir(dir.join("rules"));
        Config::parse(&dir.join("rulewatch.ron"), &text).unwrap()
    }

    #[test]
    fn restart_only_settings_keep_their_running_values_and_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let running = config(dir.path(), r#"listen: "127.0.0.1:8080","#);
        let mut new = config(dir.path(), r#"listen: "0.0.0.0:9090","#);
        new.limits.rule_timeout += 1000;
        new.recipients
            .insert("env".into(), vec!["new@example.cn".into()]);
        new.timezone = chrono_tz::Europe::Berlin;
        let changed = keep_restart_only(&running, &mut new);
        assert_eq!(changed, ["listen", "timezone"]);
        assert!(changed.iter().all(|c| RESTART_ONLY.contains(c)));
        assert_eq!(new.listen, "127.0.0.1:8080");
        assert_eq!(new.timezone, chrono_tz::Asia::Shanghai);
        // What may change live does.
        assert_eq!(new.recipients["env"], ["new@example.cn"]);
        assert_ne!(new.limits, running.limits);
    }

    #[test]
    fn the_demo_store_is_not_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut running = config(dir.path(), "");
        running.store_path = running.store_path.with_file_name("demo.db");
        let mut new = config(dir.path(), "");
        assert!(keep_restart_only(&running, &mut new).is_empty());
        assert_eq!(new.store_path, running.store_path);
    }
}
