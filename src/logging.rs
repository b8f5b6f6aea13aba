//! Logging with `tracing`: plain lines for the CLI, and for the daemon either
//! plain lines (journald adds its own timestamps) or JSON. `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;

fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// Warnings and errors only, to stderr: command output stays on stdout.
pub fn init_for_cli() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter("warn"))
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

/// The daemon's default filter (when `RUST_LOG` is unset): our own info
/// lines, third-party crates only from warnings up (tokio-cron-scheduler
/// logs "Job creator created" once per job: 5,000 rules, 5,000 lines).
pub const DAEMON_FILTER: &str = "info,tokio_cron_scheduler=warn";

/// The daemon's log: `RULEWATCH_LOG_FORMAT=json` for JSON lines. Colours
/// only on a terminal; under systemd (`$JOURNAL_STREAM` set) no timestamps,
/// since journald stamps each line itself.
pub fn init_for_daemon() {
    use std::io::IsTerminal;
    let json = std::env::var("RULEWATCH_LOG_FORMAT").is_ok_and(|v| v == "json");
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(DAEMON_FILTER))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else if journald {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}
