//! systemd conventions (`Type=notify`, `WatchdogSec=`), through sd-notify.
//!
//! - `READY=1` once the rules are loaded, the HTTP port is bound and the
//!   jobs are scheduled: `systemctl start` returns when the daemon can work.
//! - `WATCHDOG=1` from a job of the scheduler itself ([`HEARTBEAT_CRON`]), so
//!   a hung scheduler (or a starved runtime) stops the pings and systemd
//!   restarts the service; the outbox and the alert states are in the store,
//!   so a restart loses nothing.
//! - `STATUS=` a one-line summary for `systemctl status`.
//!
//! Outside systemd (`$NOTIFY_SOCKET` unset) every call does nothing.

/// How often the heartbeat job pings: well inside the unit's `WatchdogSec=30`.
pub const HEARTBEAT_CRON: &str = "*/5 * * * * *";

/// Whether systemd expects watchdog pings from this process.
pub fn watchdog_enabled() -> bool {
    let mut usec = 0u64;
    sd_notify::watchdog_enabled(false, &mut usec)
}

/// `READY=1` with a status line.
pub fn ready(status: &str) {
    send(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// `WATCHDOG=1` with a fresh status line.
pub fn heartbeat(status: &str) {
    send(&[
        sd_notify::NotifyState::Watchdog,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// `STOPPING=1`.
pub fn stopping() {
    send(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("stopping"),
    ]);
}

fn send(states: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// The status line: rules loaded and broken.
pub fn status_line(rules: usize, broken: usize) -> String {
    if broken == 0 {
        format!("{rules} rules loaded")
    } else {
        format!("{rules} rules loaded, {broken} broken")
    }
}
