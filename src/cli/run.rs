//! `rulewatch run`: the daemon (see [`crate::daemon`]).

use std::path::Path;

use super::{load_config, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(config_path: &Path, _args: Args) -> Exit {
    crate::logging::init_for_daemon();
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return Exit::Trouble;
        }
    };
    let result = runtime.block_on(crate::daemon::run(config));
    // Jobs or watcher threads still parked must not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => Exit::Ok,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            Exit::Trouble
        }
    }
}
