//! The config file (RON): any text is either a config or a list of problems
//! that render against it; nothing panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rulewatch::config::Config;

fuzz_target!(|text: &str| {
    // As if in the repository's root, where the seeds' `rules` folder exists.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rulewatch.ron");
    if let Err(problems) = Config::parse(&path, text) {
        assert!(!problems.is_empty());
        rulewatch_fuzz::render_all(&problems, text);
    }
});
