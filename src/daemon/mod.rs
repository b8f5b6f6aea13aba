//! `rulewatch run`: the daemon.
//!
//! Start-up: open the store, load the rules (a file that does not load is
//! reported and skipped), bind the HTTP listener, create one cron job per
//! rule, watch the rules folder. Shutdown on SIGTERM/SIGINT: stop accepting,
//! let evaluations and requests in flight finish, flush, exit 0.
//!
//! - [`state`]: what the tasks share
//! - [`ruleset`]: the rule set: rules with their last evaluation, files that do not load
//! - [`jobs`]: the cron jobs, one per rule
//! - [`schedule`]: the jobs kept in step with the rules, across UTC offset changes
//! - [`instants`]: what a tick stands for: the scheduled-instant arithmetic (pure)
//! - [`evaluate`]: one evaluation, guarded against overlap
//! - [`http`]: the daemon's HTTP API (and the status page mounted on it)
//! - [`reload`]: hot reload of the rules folder
//! - [`reconfigure`]: SIGHUP reloads the config file (what can change live, what needs a restart)
//! - [`demo`]: `--demo`, the fixtures replayed on a fast clock instead of the cron jobs
//! - [`metrics`]: counters for `/metrics`
//! - [`retention`]: old data deleted as the config says, in small steps
//! - [`status`]: the daemon as the status page's and the digest's source

pub mod access;
pub mod alerting;
pub mod batch;
pub mod demo;
pub mod evaluate;
pub mod http;
pub mod ingest;
pub mod instants;
pub mod jobs;
pub mod lock;
pub mod metrics;
pub mod reconfigure;
pub mod reload;
pub mod retention;
pub mod ruleset;
pub mod schedule;
pub mod service;
pub mod state;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::readings::store::Store;
use alerting::Alerting;
use state::{Daemon, RuleLoadEvent};

/// How long shutdown waits for HTTP requests in flight (an ingest of a large
/// body, an evaluate call) before closing their connections.
const HTTP_DRAIN: Duration = Duration::from_secs(20);
/// Extra time given to evaluations in flight beyond the rule time limit
/// (recording the outcome, a slow disk).
const EVAL_DRAIN_SLACK: Duration = Duration::from_secs(10);
/// How long shutdown waits for a send in progress (an SMTP dialogue has its
/// own timeout, 30 s by default; a mail cut off stays queued, not lost).
const MAIL_DRAIN: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] crate::readings::store::ReadingStoreError),
    #[error("cannot listen on `{addr}`: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("scheduler: {0}")]
    Scheduler(String),
    #[error("mail: {0}")]
    Mail(String),
    #[error("signals: {0}")]
    Signals(#[source] std::io::Error),
}

/// Runs the daemon until SIGTERM or SIGINT; Ok after a clean shutdown.
/// With `demo`, a replay of the fixtures on a fast clock takes the place of
/// the cron jobs (see [`demo`]).
pub async fn run(config: Config, demo: Option<demo::Demo>) -> Result<(), DaemonError> {
    // Signals first: a SIGTERM that arrives during start-up still stops us cleanly.
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;

    // Every connection this process opens on the store stops at the configured size.
    crate::db::set_size_limit(&config.store_path, config.retention.max_store_bytes);
    let store_path = config.store_path.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&store_path))
        .await
        .expect("store open does not panic")?;
    let store = Arc::new(store);
    if let Some(demo) = &demo {
        let (s, folder, tz) = (store.clone(), demo.fixtures.clone(), config.timezone);
        match tokio::task::spawn_blocking(move || demo::load_fixtures_if_empty(&s, &folder, tz))
            .await
            .expect("fixture loading does not panic")
        {
            Ok(0) => {
                tracing::info!("demo: the store already holds readings; fixtures not loaded again")
            }
            Ok(n) => {
                tracing::info!(readings = n, folder = %demo.fixtures.display(), "demo: fixtures loaded")
            }
            Err(e) => tracing::error!(error = %e, "demo: fixtures not loaded"),
        }
    }
    // Mail: the transport (an SMTP password is read from its variable here),
    // the sender worker on its own connection, the alert store.
    let mailer = crate::notify::Mailer::from_config(&config.mail)
        .map_err(|e| DaemonError::Mail(e.to_string()))?;
    let mut sender = crate::notify::Sender::open(
        &config.store_path,
        mailer,
        crate::notify::MailSettings::from_config(&config),
    )
    .map_err(|e| DaemonError::Mail(e.to_string()))?;
    // Chat robots: their tokens and secrets are read from their variables here.
    for robots in crate::notify::chat::ChatNotifier::all_from_config(&config)
        .map_err(|e| DaemonError::Mail(e.to_string()))?
    {
        sender = sender.with_notifier(Box::new(robots));
    }
    let alerting = {
        let config = config.clone();
        let (wake, stats) = (sender.waker(), sender.stats());
        tokio::task::spawn_blocking(move || Alerting::open(&config, wake, stats))
            .await
            .expect("opening the alert store does not panic")
            .map_err(|e| DaemonError::Mail(e.to_string()))?
    };
    let alerting = Arc::new(alerting);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let daemon = Arc::new(Daemon::new(config, store, alerting.clone(), events_tx));
    {
        let a = alerting.clone();
        daemon
            .metrics
            .add_extra(Box::new(move |out| a.render_metrics(out)));
    }
    // Charts in alert mails, drawn by the sender from the current rules.
    let sender = sender.with_charts(status::mail_charts(&daemon));
    // A config reload swaps the sender's channels through this handle.
    let channels = sender.channels();
    let (sender_stop_tx, sender_stop_rx) = tokio::sync::watch::channel(false);
    let sender_task = tokio::spawn(sender.run(async move {
        let mut rx = sender_stop_rx;
        let _ = rx.wait_for(|stop| *stop).await;
    }));
    if daemon.token.is_none() {
        match &daemon.config().api_token_env {
            Some(var) => {
                tracing::warn!(env = %var, "the API token variable is not set: writes need no token")
            }
            None => tracing::info!("no api_token_env configured: writes need no token"),
        }
    }
    tokio::spawn(handle_load_events(daemon.clone(), events_rx));

    reload::reload(&daemon, reload::STARTUP).await;

    let listener = tokio::net::TcpListener::bind(&daemon.config().listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: daemon.config().listen.clone(),
            source,
        })?;
    let local = listener.local_addr().ok();
    if local.is_some_and(|a| !a.ip().is_loopback())
        && daemon.config().read_access == crate::config::ReadAccess::Open
    {
        tracing::warn!(
            listen = %daemon.config().listen,
            "警告：状态页和查询接口对能访问 {} 的任何人开放，其中有本县内部考核数据。请在配置中设置 http: (read_access: Tokens) 或 ProxyHeader(name: \"X-Remote-User\")，或只监听 127.0.0.1（见 docs/operations.md） / WARNING: the status page and read API are open to anyone who reaches this non-loopback address: set http.read_access",
            daemon.config().listen
        );
    }

    let jobs = jobs::Jobs::new(daemon.config().timezone)
        .await
        .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
    *daemon.jobs.lock().await = Some(jobs);
    schedule::sync_jobs(&daemon, false).await;
    match demo {
        None => {
            if let Some(jobs) = daemon.jobs.lock().await.as_ref() {
                if let Some(every) = service::watchdog_interval() {
                    tracing::info!(
                        every_s = every.as_secs(),
                        "systemd watchdog: pinging from the scheduler"
                    );
                    let d = daemon.clone();
                    jobs.add_heartbeat(every, move || {
                        service::heartbeat(&service::daemon_status(&d));
                    })
                    .await
                    .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
                }
                jobs.start()
                    .await
                    .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
            }
            tokio::spawn(schedule::watch_offset_changes(daemon.clone()));
            tokio::spawn(status::digest_loop(daemon.clone()));
            retention::start(&daemon);
        }
        // The jobs stay created (reload keeps them in step) but never start.
        Some(demo) => {
            tokio::spawn(demo::replay(daemon.clone(), demo));
        }
    }

    // Without a watcher (inotify limits reached, say) the daemon still runs:
    // rules then reload on SIGHUP only.
    let _watcher = match reload::watch(daemon.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!(folder = %daemon.config().rules_dir.display(), error = %e, "cannot watch the rules folder: rules reload on SIGHUP only");
            None
        }
    };
    reload::on_sighup(daemon.clone(), channels).map_err(DaemonError::Signals)?;

    let app = http::router(daemon.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(daemon.shutdown_signal());
    let mut server = tokio::spawn(async move { server.await });

    {
        let rules = daemon.rules.read();
        tracing::info!(
            listen = %local.map_or_else(|| daemon.config().listen.clone(), |a| a.to_string()),
            rules = rules.rules.len(),
            broken = rules.broken_count(),
            timezone = %daemon.config().timezone,
            store = %daemon.config().store_path.display(),
            version = env!("CARGO_PKG_VERSION"),
            "rulewatch running"
        );
        service::ready(&service::status_line(
            rules.rules.len(),
            rules.broken_count(),
        ));
    }

    let reason = tokio::select! {
        _ = sigterm.recv() => "SIGTERM",
        _ = sigint.recv() => "SIGINT",
        r = &mut server => {
            // The server stopped by itself: an accept loop error.
            tracing::error!(result = ?r.map(|r| r.map_err(|e| e.to_string())), "HTTP server stopped");
            "server stopped"
        }
    };
    tracing::info!(
        reason,
        "shutting down: finishing evaluations and requests in flight"
    );
    service::stopping();
    shutdown(&daemon, server).await;
    // Last: the sender. Mail the final evaluations queued goes out now if
    // the server takes it; whatever is left stays queued for the next start.
    sender_stop_tx.send_replace(true);
    if tokio::time::timeout(MAIL_DRAIN, sender_task).await.is_err() {
        tracing::warn!(
            "mail sender still busy after {MAIL_DRAIN:?}: its mail stays queued for the next start"
        );
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Stops accepting, lets work in flight finish, flushes the store.
async fn shutdown(daemon: &Arc<Daemon>, server: tokio::task::JoinHandle<std::io::Result<()>>) {
    daemon.begin_shutdown();
    if let Some(jobs) = daemon.jobs.lock().await.as_mut() {
        jobs.shutdown().await;
    }
    if !server.is_finished() && tokio::time::timeout(HTTP_DRAIN, server).await.is_err() {
        tracing::warn!("HTTP requests still open after {HTTP_DRAIN:?}: closing them");
    }
    let limit =
        Duration::from_millis(daemon.config().limits.rule_timeout.max(0) as u64) + EVAL_DRAIN_SLACK;
    if tokio::time::timeout(limit, daemon.inflight.idle())
        .await
        .is_err()
    {
        tracing::warn!(
            in_flight = daemon.inflight.count(),
            "evaluations still running after {limit:?}: exiting anyway"
        );
    }
    let d = daemon.clone();
    let flushed = tokio::task::spawn_blocking(move || {
        // Readings HTTP ingest staged into their day blocks: a stopped
        // daemon leaves nothing staged (the next start would fold it anyway).
        match d.store.fold_all_staged() {
            Ok(0) => {}
            Ok(n) => tracing::info!(readings = n, "staged readings folded into day blocks"),
            Err(e) => tracing::warn!(error = %e, "folding staged readings at shutdown failed (nothing lost: the next start folds them)"),
        }
        // Fold the write-ahead log into the database file, so the store is
        // one self-contained file while the daemon is down (backups, copies).
        crate::db::open(d.store.path(), crate::db::Durability::Normal)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                    .map_err(|e| e.to_string())
            })
    })
    .await;
    match flushed {
        Ok(Ok(())) => tracing::debug!("store checkpointed"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "store checkpoint at shutdown failed (no data lost: the log is replayed on start)")
        }
        Err(e) => tracing::warn!(error = %e, "flush at shutdown failed"),
    }
}

/// Consumes rule load events: logs them, and tells `admin` about each
/// broken version of a rule file (once: the events come once per version,
/// and the outbox keys the note by file and content hash across restarts).
async fn handle_load_events(daemon: Arc<Daemon>, mut rx: mpsc::UnboundedReceiver<RuleLoadEvent>) {
    while let Some(event) = rx.recv().await {
        reload::log_event(&event);
        let d = daemon.clone();
        let now = chrono::Utc::now().timestamp_millis();
        let _ =
            tokio::task::spawn_blocking(move || d.alerting.handle_load_event(&event, now)).await;
    }
}
