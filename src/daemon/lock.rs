//! One writer per store: `rulewatch run` holds an exclusive `flock` on a
//! file beside the store (`STORE.lock`) for as long as it runs.
//!
//! Two daemons on one store would both evaluate, both send the same mails
//! and fight over the outbox. The lock is the kernel's: it goes away with the
//! process however it ends (SIGKILL included), so a stale file never blocks a
//! restart. The file holds the holder's pid and start time, only so that the
//! refusal can name the running daemon. CLI commands that write (`ingest`) do
//! not take it: SQLite's own locking lets them write beside the daemon.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Held while the daemon runs; dropping it releases the lock.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("另一个 rulewatch run 正在使用这个数据库 `{store}`（{holder}），不能同时运行两个：请先停掉它（systemctl stop rulewatch 或 kill {pid}）。\nanother `rulewatch run` already uses the store `{store}` ({holder}); stop it first (lock file `{lock}`)")]
    Held {
        store: String,
        lock: String,
        holder: String,
        pid: String,
    },
    #[error("打不开锁文件 `{lock}`（cannot open the lock file）：{message}")]
    Open { lock: String, message: String },
}

/// The lock file of a store: `data/rulewatch.db` → `data/rulewatch.db.lock`.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut p = store.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Takes the store's lock, or says who holds it.
pub fn acquire(store: &Path) -> Result<StoreLock, LockError> {
    let path = lock_path(store);
    let open_error = |e: std::io::Error| LockError::Open {
        lock: path.display().to_string(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(open_error)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(open_error)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let pid = holder_field(&text, "pid").unwrap_or_else(|| "?".into());
            let since = holder_field(&text, "since").unwrap_or_else(|| "?".into());
            return Err(LockError::Held {
                store: store.display().to_string(),
                lock: path.display().to_string(),
                holder: format!("pid {pid}，自 {since} 起 / since {since}"),
                pid,
            });
        }
        Err(TryLockError::Error(e)) => return Err(open_error(e)),
    }
    let since = chrono::Local::now().format("%Y-%m-%d %H:%M:%S %:z");
    let record = format!("pid={}\nsince={since}\n", std::process::id());
    let write = file
        .set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(record.as_bytes()))
        .and_then(|_| file.flush());
    write.map_err(open_error)?;
    Ok(StoreLock { _file: file, path })
}

fn holder_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = std::env::temp_dir().join(format!("rw-lock-{}", std::process::id()));
        let store = dir.join("rulewatch.db");
        let first = acquire(&store).unwrap();
        let err = acquire(&store).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("rulewatch.db"), "{err}");
        drop(first);
        let again = acquire(&store).expect("released on drop");
        drop(again);
        let _ = std::fs::remove_dir_all(dir);
    }
}
