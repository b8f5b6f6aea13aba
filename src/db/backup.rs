//! `rulewatch backup FILE`: a consistent copy of the store while the daemon
//! keeps running, through SQLite's online backup.
//!
//! Why not `cp`: the store is a database file plus its write-ahead log, and
//! the daemon writes both at any moment; a file copy can catch half a
//! transaction, or the file without the log's latest commits. The backup
//! copies every page in one step under one read transaction: a snapshot of
//! the last commit before it began. In WAL mode a reader never blocks the
//! writer, so ingest and evaluation go on meanwhile (writes that commit
//! during the copy are simply not in it).
//!
//! The copy is written beside `FILE` under a temporary name, checked
//! (`PRAGMA quick_check`), synced, and only then renamed to `FILE`: a
//! failure (a full disk, say) never leaves a half backup under the name.
//! It is one self-contained file (journal mode DELETE, no `-wal` beside it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// What a backup holds, for the command's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub bytes: u64,
    pub schema_version: i64,
    pub readings: u64,
    pub alerts: u64,
    /// Messages still to send in the copy (they go out again if it is
    /// restored: their Message-IDs are stable, so receivers see one).
    pub queued: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("存储库 `{0}` 不存在：请检查配置中的 store 路径 / store `{0}` does not exist: check `store` in the config")]
    NoStore(PathBuf),
    #[error("备份 `{store}` 到 `{dest}` 失败：{message} / backing up `{store}` to `{dest}` failed: {source}")]
    Failed {
        store: PathBuf,
        dest: PathBuf,
        /// What to do, in Chinese.
        message: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// How often a step that finds the store locked is tried again, and how
/// long in all: a checkpoint or a migration holds it briefly.
const RETRY: Duration = Duration::from_millis(50);
const RETRIES: u32 = 600;

/// Copies the store at `store` to `dest` (replacing it if it exists).
pub fn backup(store: &Path, dest: &Path) -> Result<BackupSummary, BackupError> {
    if !store.exists() {
        return Err(BackupError::NoStore(store.to_path_buf()));
    }
    let partial = partial_name(dest);
    let result = copy(store, &partial).and_then(|summary| {
        std::fs::rename(&partial, dest).map_err(|e| ("无法把备份改名为目标文件名", e))?;
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename itself survives a power cut only once the folder is synced.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(summary)
    });
    result.map_err(|(message, source)| {
        let _ = std::fs::remove_file(&partial);
        BackupError::Failed {
            store: store.to_path_buf(),
            dest: dest.to_path_buf(),
            message,
            source,
        }
    })
}

/// `FILE.partial-PID` beside `FILE`: same folder, so the rename is atomic.
fn partial_name(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(format!(".partial-{}", std::process::id()));
    PathBuf::from(name)
}

type Failure = (&'static str, std::io::Error);

fn sql(message: &'static str) -> impl Fn(rusqlite::Error) -> Failure {
    move |e| {
        let message = if super::is_disk_full(&e) {
            "目标磁盘已满，请换一个有空间的位置"
        } else {
            message
        };
        (message, std::io::Error::other(e))
    }
}

fn copy(store: &Path, partial: &Path) -> Result<BackupSummary, Failure> {
    // Read-write (a WAL reader may need to write the shared-memory index),
    // never create: a mistyped path is an error, not an empty backup.
    let src = Connection::open_with_flags(
        store,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql("无法打开存储库"))?;
    src.busy_timeout(Duration::from_secs(10))
        .map_err(sql("无法打开存储库"))?;
    let _ = std::fs::remove_file(partial);
    let mut dst =
        Connection::open(partial).map_err(sql("无法创建备份文件，请检查目标文件夹的权限"))?;
    {
        let backup = Backup::new(&src, &mut dst).map_err(sql("无法开始备份"))?;
        let mut tries = 0;
        loop {
            // -1: every page in one step, under one read transaction.
            match backup.step(-1).map_err(sql("复制数据页失败"))? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked if tries < RETRIES => {
                    tries += 1;
                    std::thread::sleep(RETRY);
                }
                _ => {
                    return Err((
                        "存储库一直被占用，请稍后再试",
                        std::io::Error::other("the store stayed locked"),
                    ))
                }
            }
        }
    }
    // One self-contained file: no write-ahead log beside the copy.
    dst.pragma_update(None, "journal_mode", "DELETE")
        .map_err(sql("无法写入备份文件"))?;
    let check: String = dst
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(sql("备份文件校验失败"))?;
    if check != "ok" {
        return Err((
            "备份文件校验未通过，请重新备份",
            std::io::Error::other(format!("quick_check: {check}")),
        ));
    }
    let count = |q: &str| -> Result<u64, Failure> {
        dst.query_row(q, [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(sql("备份文件不是 rulewatch 存储库"))
    };
    let schema_version = count("PRAGMA user_version")? as i64;
    // Staged readings (HTTP ingest, not yet folded) are in the copy too.
    let readings = count(
        "SELECT (SELECT coalesce(sum(count), 0) FROM blocks) + (SELECT coalesce(sum(count), 0) FROM staged)",
    )?;
    let alerts = count("SELECT count(*) FROM alert_state")?;
    let queued = count("SELECT count(*) FROM outbox WHERE status = 'queued'")?;
    drop(dst);
    let file = std::fs::File::open(partial).map_err(|e| ("无法读取备份文件", e))?;
    file.sync_all()
        .map_err(|e| ("无法把备份写入磁盘（磁盘已满？）", e))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok(BackupSummary {
        bytes,
        schema_version,
        readings,
        alerts,
        queued,
    })
}
