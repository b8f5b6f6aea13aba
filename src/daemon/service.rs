//! systemd conventions (`Type=notify`, `WatchdogSec=`), through sd-notify.
//!
//! - `READY=1` once the rules are loaded, the HTTP port is bound and the
//!   jobs are scheduled: `systemctl start` returns when the daemon can work.
//! - `WATCHDOG=1` from a job of the scheduler itself, every half
//!   `WatchdogSec=` ([`watchdog_interval`]), so
//!   a hung scheduler (or a starved runtime) stops the pings and systemd
//!   restarts the service; the outbox and the alert states are in the store,
//!   so a restart loses nothing.
//! - `STATUS=` a one-line summary for `systemctl status`.
//!
//! Outside systemd (`$NOTIFY_SOCKET` unset) every call does nothing.

use std::time::Duration;

/// How often the scheduler's heartbeat job sends `WATCHDOG=1`, if systemd
/// expects pings from this process: half the unit's `WatchdogSec=` (as
/// systemd advises), in whole seconds (the scheduler's resolution), at
/// least one.
pub fn watchdog_interval() -> Option<Duration> {
    ping_interval(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// `sd_watchdog_enabled(3)`: `$WATCHDOG_USEC` set and positive, and
/// `$WATCHDOG_PID` either unset or this process (systemd sets it to the main
/// process; a child started by it inherits the variable and must not ping).
/// (The sd-notify crate's own check wants `$WATCHDOG_PID` set.)
fn ping_interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != me {
            return None;
        }
    }
    Some(Duration::from_secs((usec / 2 / 1_000_000).max(1)))
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

/// `STATUS=` alone (after a config reload).
pub fn status(line: &str) {
    send(&[sd_notify::NotifyState::Status(line)]);
}

/// The daemon's status line: rules loaded and broken, and whether the last
/// config reload failed.
pub fn daemon_status(daemon: &super::state::Daemon) -> String {
    let line = {
        let rules = daemon.rules.read();
        status_line(rules.rules.len(), rules.broken_count())
    };
    if daemon.config_error.read().is_some() {
        format!("{line}, config reload failed (the last good config runs)")
    } else {
        line
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_at_half_the_watchdog_interval_for_this_process_only() {
        let s = Duration::from_secs;
        assert_eq!(ping_interval(Some("30000000"), Some("42"), 42), Some(s(15)));
        assert_eq!(ping_interval(Some("30000000"), None, 42), Some(s(15)));
        assert_eq!(ping_interval(Some("500000"), None, 42), Some(s(1)));
        assert_eq!(ping_interval(Some("30000000"), Some("41"), 42), None);
        assert_eq!(ping_interval(Some("0"), None, 42), None);
        assert_eq!(ping_interval(Some("x"), None, 42), None);
        assert_eq!(ping_interval(None, Some("42"), 42), None);
    }
}
