//! `rulewatch backup FILE`: a consistent copy of the store, taken while the
//! daemon keeps running (SQLite's online backup; see `db::backup`). Restore
//! by stopping the daemon and putting the copy in the store's place
//! (`docs/operations.md`).

use std::path::{Path, PathBuf};

use super::{load_config, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the copy (replaced if it exists; written under a
    /// temporary name first, so a failed backup never leaves a half file)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

pub fn run(config_path: &Path, args: Args) -> Exit {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let store = &config.store_path;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(store, &args.file) {
        eprintln!(
            "error: 备份文件不能是存储库本身（{}）：请换一个文件名 / the backup cannot be the store itself: choose another file",
            store.display()
        );
        return Exit::Trouble;
    }
    let started = std::time::Instant::now();
    match crate::db::backup::backup(store, &args.file) {
        Ok(s) => {
            println!(
                "已备份 {} → {}：{:.1} MiB，结构版本 {}，读数 {} 条，当前告警 {} 条，待发消息 {} 封，用时 {:.1} 秒 / \
                 backed up: {} bytes, schema {}, {} readings, {} alerts, {} messages queued",
                store.display(),
                args.file.display(),
                s.bytes as f64 / (1024.0 * 1024.0),
                s.schema_version,
                s.readings,
                s.alerts,
                s.queued,
                started.elapsed().as_secs_f64(),
                s.bytes,
                s.schema_version,
                s.readings,
                s.alerts,
                s.queued,
            );
            Exit::Ok
        }
        Err(e) => {
            eprintln!("error: {e}");
            Exit::Trouble
        }
    }
}
