//! `rulewatch run`: the daemon (see [`crate::daemon`]).

use std::path::{Path, PathBuf};

use crate::daemon::demo::Demo;
use crate::time::parse_time;

use super::{load_config, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Demo: load the fixtures into an empty store and replay them on a fast
    /// clock instead of the wall clock; alert mail appears within a minute
    #[arg(long)]
    pub demo: bool,
    /// Demo: the readings folder, relative to the config's folder
    #[arg(
        long,
        value_name = "DIR",
        default_value = "fixtures/2021",
        requires = "demo"
    )]
    pub demo_fixtures: PathBuf,
    /// Demo: where the virtual clock starts (TIME)
    #[arg(
        long,
        value_name = "TIME",
        default_value = "2021-01-01",
        requires = "demo"
    )]
    pub demo_from: String,
    /// Demo: where it stops (TIME)
    #[arg(
        long,
        value_name = "TIME",
        default_value = "2022-01-31",
        requires = "demo"
    )]
    pub demo_to: String,
    /// Demo: virtual days per real second
    #[arg(long, value_name = "DAYS", default_value_t = 1.0, requires = "demo")]
    pub demo_speed: f64,
}

pub fn run(config_path: &Path, args: Args) -> Exit {
    crate::logging::init_for_daemon();
    let mut config = match load_config(config_path) {
        Ok(c) => c,
        Err(e) => return e,
    };
    if args.demo {
        config.store_path = config.store_path.with_file_name("demo.db");
    }
    // One daemon per store: refused before anything is touched (the demo
    // below deletes its store).
    let _store_lock = match crate::daemon::lock::acquire(&config.store_path) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Trouble;
        }
    };
    let demo = if args.demo {
        // The demo replays from the start each time: a store of its own
        // beside the configured one, made afresh, so that alert state from an
        // earlier demo (or real data) never mixes with the replay.
        for suffix in ["", "-wal", "-shm"] {
            let mut p = config.store_path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
        let tz = config.timezone;
        let time = |flag: &str, text: &str| {
            parse_time(text, tz).map_err(|e| {
                eprintln!("error: --{flag}: {e}");
                Exit::Trouble
            })
        };
        let (start, end) = match (
            time("demo-from", &args.demo_from),
            time("demo-to", &args.demo_to),
        ) {
            (Ok(s), Ok(e)) => (s, e),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        if !(args.demo_speed > 0.0 && args.demo_speed.is_finite()) {
            eprintln!("error: --demo-speed must be a positive number of days per second");
            return Exit::Trouble;
        }
        let base = config.path.parent().unwrap_or(Path::new("")).to_path_buf();
        Some(Demo {
            fixtures: base.join(&args.demo_fixtures),
            start,
            end,
            speed: args.demo_speed * crate::time::DAY as f64 / 1000.0,
        })
    } else {
        None
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
    let result = runtime.block_on(crate::daemon::run(config, demo));
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
