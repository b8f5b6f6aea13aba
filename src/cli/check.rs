//! `rulewatch check`: the config and every rule file, every problem listed.

use std::path::Path;

use crate::config::Config;
use crate::rules::engine::new_engine;
use crate::rules::load_rules;

use super::Exit;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(config_path: &Path, _args: Args) -> Exit {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(problems) => {
            for p in &problems {
                println!("{p}");
            }
            return Exit::Problems;
        }
    };
    let engine = new_engine(&config.limits);
    let (rules, problems) = load_rules(&engine, &config);
    for p in &problems {
        println!("{p}");
    }
    let errors = problems.iter().filter(|p| p.is_error).count();
    if errors > 0 {
        eprintln!(
            "{errors} error(s) in {} rule file(s); {} rule(s) loaded",
            problems
                .iter()
                .filter(|p| p.is_error)
                .map(|p| &p.path)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            rules.len()
        );
        return Exit::Problems;
    }
    eprintln!(
        "ok: {} and {} rule(s) in `{}`",
        config.path.display(),
        rules.len(),
        config.rules_dir.display()
    );
    Exit::Ok
}
