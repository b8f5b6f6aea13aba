//! Shared by the `web_*` tests: a temp copy of the shipped config and rules
//! (plus any extra rule files), the 2021 fixtures ingested, and a
//! [`Snapshot`] replayed up to a fixed date.
#![allow(dead_code)]

use std::path::PathBuf;

use rulewatch::config::Config;
use rulewatch::readings::store::Store;
use rulewatch::readings::stream::ingest;
use rulewatch::readings::Format;
use rulewatch::ruletest::snapshot::Snapshot;
use rulewatch::time::parse_time;

pub const SH: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

// The helpers every integration test shares.
use crate::common;
pub use common::repo;

pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl Workspace {
    /// The shipped config and rules, `extra` rule files (name, source) in
    /// `rules/extra/`, and the 2021 fixtures ingested.
    pub fn new(extra: &[(&str, &str)]) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("rulewatch.ron");
        std::fs::copy(repo().join("rulewatch.ron"), &config_path).unwrap();
        common::copy_shipped_rules(dir.path());
        if !extra.is_empty() {
            let extra_dir = dir.path().join("rules/extra");
            std::fs::create_dir_all(&extra_dir).unwrap();
            for (name, source) in extra {
                std::fs::write(extra_dir.join(name), source).unwrap();
            }
        }
        let ws = Workspace { dir, config_path };
        let config = ws.config();
        let store = Store::open(&config.store_path).unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("fixtures/2021"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        files.sort();
        for f in files {
            let file = std::fs::File::open(&f).unwrap();
            ingest(&store, file, Format::Csv, config.timezone, |_| {}).unwrap();
        }
        ws
    }

    pub fn config(&self) -> Config {
        Config::load(&self.config_path).unwrap()
    }

    /// Every rule evaluated at its scheduled instants from `from` to `to` (local times).
    pub fn replay(&self, from: &str, to: &str) -> Snapshot {
        let (from, to) = (t(from), t(to));
        let mut s = Snapshot::open(self.config(), to).unwrap();
        s.replay(from, to).unwrap();
        s
    }
}

pub fn t(text: &str) -> i64 {
    parse_time(text, SH).unwrap()
}
