//! Rule-test files (`*.test.ron`): any text is either a test file or a list
//! of problems that render against it; nothing panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rulewatch::ruletest::file::parse;

fuzz_target!(|text: &str| {
    if let Err(problems) = parse(Path::new("rules/r.test.ron"), text, rulewatch_fuzz::TZ) {
        assert!(!problems.is_empty());
        rulewatch_fuzz::render_all(&problems, text);
    }
});
