//! Readings as Ndjson: rulewatch's parser (on one thread and cut for three)
//! must accept what the reference built on serde_json / the csv crate
//! accepts, read the same readings, and reject the rest with sane errors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rulewatch::readings::Format;

fuzz_target!(|data: &[u8]| {
    rulewatch_fuzz::check_readings(data, Format::Ndjson);
});
