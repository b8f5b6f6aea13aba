//! Rule files through the full loader (Rhai compile, then the `RULE` map:
//! metadata, schedule, chart): any text is either a rule or problems that
//! render against it; nothing panics. Inputs are bounded (16 KiB): rules
//! are small, and Rhai's compile time grows with size.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rulewatch::config::Config;
use rulewatch::rules::engine::new_engine;
use rulewatch::rules::loader::parse_rule;

const CONFIG: &str = r#"(timezone: "Asia/Shanghai", rules: "rules", store: "s.db",
    mail: (from: "a@example.cn", transport: File(dir: "outbox")),
    recipients: { "env": ["e@example.cn"], "环保局": ["h@example.cn"] },
    limits: (max_operations: 200000, rule_timeout: "1s"))"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn setup() -> &'static (Config, rhai::Engine) {
    static SETUP: OnceLock<(Config, rhai::Engine)> = OnceLock::new();
    SETUP.get_or_init(|| {
        // Beside the repository's `rules/` folder, which the config checks exists.
        let config =
            Config::parse(&repo().join("rulewatch.ron"), CONFIG).expect("the fuzz config is valid");
        let engine = new_engine(&config.limits);
        (config, engine)
    })
}

fuzz_target!(|text: &str| {
    if text.len() > 16 * 1024 {
        return;
    }
    let (config, engine) = setup();
    let path = repo().join("rules/r.rhai");
    match parse_rule(engine, config, &path, text.to_owned()) {
        Ok((_, warnings)) => rulewatch_fuzz::render_all(&warnings, text),
        Err(problems) => {
            assert!(!problems.is_empty());
            rulewatch_fuzz::render_all(&problems, text);
        }
    }
});
