//! `rulewatch compact`: rewrites the store file to its smallest (SQLite's
//! `VACUUM`), while the daemon is stopped.
//!
//! Retention reuses freed space and gives it back to the disk in small steps
//! (`auto_vacuum=INCREMENTAL`), but a store made before schema 2 has no
//! incremental mode: deleted rows leave free pages that only a `VACUUM` gives
//! back, and only a `VACUUM` can switch such a store to the incremental mode.
//! `VACUUM` rewrites the whole file and holds the store's write lock while it
//! does, so it is refused while `rulewatch run` holds the store (its `flock`,
//! see `daemon::lock`), naming the running daemon. A `VACUUM` that fails (a
//! full disk: it needs about the store's size in temporary space) leaves the
//! store as it was.

use std::path::Path;

use super::{load_config, Exit};

#[derive(Debug, clap::Args)]
pub struct Args {}

/// The store file and its write-ahead log, in bytes.
fn size_of(store: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|suffix| {
            let mut p = store.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(p).map_or(0, |m| m.len())
        })
        .sum()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub fn run(config_path: &Path, _args: Args) -> Exit {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let store = config.store_path.clone();
    if !store.exists() {
        eprintln!(
            "error: 存储库 `{}` 不存在，无需压缩：请检查配置中的 store / the store does not exist",
            store.display()
        );
        return Exit::Trouble;
    }
    // Held until the end: no daemon starts on the store while it is rewritten.
    let _lock = match crate::daemon::lock::acquire(&store) {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!(
                "error: rulewatch run 正在运行，不能压缩存储库：压缩要重写整个文件。请先停止服务（systemctl stop rulewatch），压缩后再启动 / \
                 cannot compact while the daemon runs: stop it first\n{e}"
            );
            return Exit::Trouble;
        }
    };
    let started = std::time::Instant::now();
    let before = size_of(&store);
    let done = crate::db::open(&store, crate::db::Durability::Full)
        .map_err(|e| e.to_string())
        .and_then(|conn| {
            let sqlite = |e: rusqlite::Error| {
                if crate::db::is_disk_full(&e) {
                    format!(
                        "磁盘空间不足：压缩需要约 {:.1} MiB 的临时空间（与存储库一样大），存储库未改动，请清理磁盘后再试 / \
                         no room to compact (it needs about the store's size in temporary space); the store is unchanged",
                        mib(before)
                    )
                } else {
                    format!("压缩失败，存储库未改动 / compacting failed, the store is unchanged: {e}")
                }
            };
            let free: i64 = conn
                .query_row("PRAGMA freelist_count", [], |r| r.get(0))
                .map_err(sqlite)?;
            // A store from before schema 2: the rewrite makes it incremental.
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
                .map_err(sqlite)?;
            conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
                .map_err(sqlite)?;
            Ok(free)
        });
    match done {
        Ok(free_pages) => {
            let after = size_of(&store);
            println!(
                "已压缩 {}：{:.1} MiB → {:.1} MiB（腾出空页 {} 个），用时 {:.1} 秒 / compacted: {} → {} bytes, {} free pages given back",
                store.display(),
                mib(before),
                mib(after),
                free_pages,
                started.elapsed().as_secs_f64(),
                before,
                after,
                free_pages
            );
            Exit::Ok
        }
        Err(e) => {
            eprintln!("error: {}: {e}", store.display());
            Exit::Trouble
        }
    }
}
