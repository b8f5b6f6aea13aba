//! Command line: one file per subcommand, each with its own `Args`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};

mod backtest;
mod backup;
mod check;
mod compact;
mod eval;
mod ingest;
mod ingest_workbook;
mod preview;
mod run;
mod shared;
mod test;

/// What a command tells the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything worked.
    Ok = 0,
    /// The command ran and found problems (bad rules, rejected readings, a rule failed).
    Problems = 1,
    /// The command could not run (unreadable config, store error).
    Trouble = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "rulewatch",
    version,
    about = "Watches the targets of a work report, written as Rhai rules, and mails the responsible bureau when one slips"
)]
pub struct Cli {
    /// Config file (default: ./rulewatch.ron, then $RULEWATCH_CONFIG)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the config and every rule file; print each problem as PATH:LINE:COL: error: MESSAGE
    Check(check::Args),
    /// Store readings from .csv, .json, .ndjson files (`-` = stdin) and .xlsx, .xls, .ods workbooks
    Ingest(ingest::Args),
    /// Evaluate rules once against the store and print the findings (sends nothing)
    Eval(eval::Args),
    /// Run rule tests (`*.test.ron`): expected alerts at given times, on given readings
    Test(test::Args),
    /// Replay a rule over stored history through the alert state machine; print its transitions
    Backtest(backtest::Args),
    /// Render the mail a rule would send at a time (subject, text and HTML) without sending it
    Preview(preview::Args),
    /// Run the daemon: evaluate rules on their schedules, serve the HTTP API, reload rules on change
    Run(run::Args),
    /// Copy the store to FILE, consistently, while the daemon keeps running
    Backup(backup::Args),
    /// Rewrite the store to its smallest (SQLite VACUUM); refused while the daemon runs
    Compact(compact::Args),
}

pub fn run() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_)) {
        crate::logging::init_for_cli();
    }
    let config_path = cli.config.clone().unwrap_or_else(config::default_path);
    let exit = match cli.command {
        Command::Check(args) => check::run(&config_path, args),
        Command::Ingest(args) => ingest::run(&config_path, args),
        Command::Eval(args) => eval::run(&config_path, args),
        Command::Test(args) => test::run(&config_path, args),
        Command::Backtest(args) => backtest::run(&config_path, args),
        Command::Preview(args) => preview::run(&config_path, args),
        Command::Run(args) => run::run(&config_path, args),
        Command::Backup(args) => backup::run(&config_path, args),
        Command::Compact(args) => compact::run(&config_path, args),
    };
    exit.into()
}

/// Loads the config or prints why not.
pub(crate) fn load_config(path: &std::path::Path) -> Result<Config, Exit> {
    Config::load(path).map_err(|problems| {
        for p in problems {
            eprintln!("{p}");
        }
        Exit::Trouble
    })
}

/// `rulewatch eval | head` closes the pipe early; Rust then panics in
/// `println!`. End quietly instead, with the status a shell expects from a
/// process stopped by SIGPIPE (128 + 13). Everything else panics as usual.
fn quiet_on_closed_pipe() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
}
