//! The config file (RON): any text is either a config or a list of problems
//! that render against it; nothing panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rulewatch::config::Config;

fuzz_target!(|text: &str| {
    if let Err(problems) = Config::parse(Path::new("/etc/rulewatch/rulewatch.ron"), text) {
        assert!(!problems.is_empty());
        rulewatch_fuzz::render_all(&problems, text);
    }
});
