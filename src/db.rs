//! The store file: the one place SQLite is opened, every table is declared
//! and the schema's version is recorded.
//!
//! Why one place: the readings, the alerts, their history and the outbox
//! share one SQLite file, opened by several connections (the readings
//! writer and reader, the alert store, the sender, `rulewatch ingest` beside
//! the daemon). They must agree on the pragmas (WAL, so readers never wait
//! for the writer; a busy timeout, so writers wait for each other) and on the
//! schema. The schema's version is kept in the file (`PRAGMA
//! user_version`); [`migrate`] brings an older store forward, a newer one is
//! refused. Also here: the store's size cap ([`set_size_limit`]), telling a
//! full disk from other errors ([`is_disk_full`]), giving freed space back
//! ([`reclaim`]) and consistent copies ([`backup`]).
//!
//! At the bottom of the layers: this module knows tables, not readings or
//! alerts; the `readings`, `alerts` and `notify` modules read
//! and write them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::Connection;

pub mod backup;
mod migrate;
pub use migrate::Migrated;

/// The schema this binary reads and writes; [`migrate`] brings older
/// stores here. 1: series/blocks/store_meta, alert_state, alert_history,
/// outbox/outbox_inline/outbox_charts as declared below. 2: an index of
/// sent mail by time (retention). 3: `staged` (HTTP ingest's staging). 0: a store from before versions were
/// recorded (the tables of 1, perhaps without the outbox's `channel`).
pub const SCHEMA_VERSION: i64 = 3;

/// How long a write waits for another writer (the readings store, the alert
/// store, the sender, a CLI ingest) before giving up: bulk ingest holds the
/// lock for well under a second.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("store `{path}`: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("store `{path}`: cannot create its folder: {source}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "存储库 `{path}` 由更新版本的 rulewatch 写入（结构版本 {found}，本程序只认识到 {SCHEMA_VERSION}）：\
         请运行更新的版本，或恢复本版本做的备份 / store `{path}` was written by a newer rulewatch \
         (schema version {found}, this one knows up to {SCHEMA_VERSION}): run the newer version, \
         or restore a backup made by this one"
    )]
    TooNew { path: PathBuf, found: i64 },
    #[error(
        "存储库 `{path}` 所在磁盘已满（或已到 max_store_bytes 上限），存储结构未能从版本 {from} 升级到 {SCHEMA_VERSION}，存储库未改动：\
         请清理磁盘后重新启动 / store `{path}`: no room to migrate the schema from version {from} to {SCHEMA_VERSION} \
         (the store is unchanged): free disk space and start again"
    )]
    NoRoomToMigrate { path: PathBuf, from: i64 },
}

/// How far a commit on a connection is synced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A commit survives a crash of the process; a power cut may lose the
    /// last commits but never corrupts (`synchronous=NORMAL`): readings,
    /// which the sender of the data can send again.
    Normal,
    /// A commit survives a power cut too (`synchronous=FULL`): alert states,
    /// queued and sent mail, a few commits per evaluation.
    Full,
}

/// Opens (creating the file and its folder if missing) the store at `path`
/// with the pragmas every connection uses, creating or checking the schema.
/// Refuses a store whose schema is newer than [`SCHEMA_VERSION`].
pub fn open(path: &Path, durability: Durability) -> Result<Connection, DbError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DbError::Folder {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let err = |source| DbError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open(path).map_err(err)?;
    // Only a file never written can change its vacuum mode without being
    // rewritten (VACUUM), and switching to WAL writes it: so first. A store
    // from before keeps `none` (see `reclaim` and `docs/operations.md`).
    let empty: bool = conn
        .query_row("SELECT count(*) = 0 FROM sqlite_master", [], |r| r.get(0))
        .map_err(err)?;
    if empty {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(err)?;
    }
    configure(&conn, path, durability).map_err(err)?;
    ensure_schema(&conn, path)?;
    Ok(conn)
}

/// A private store in memory, with the same schema: for rule tests and
/// previews, whose state is thrown away afterwards.
pub fn open_in_memory() -> Result<Connection, DbError> {
    let path = Path::new(":memory:");
    let conn = Connection::open_in_memory().map_err(|source| DbError::Sqlite {
        path: path.to_path_buf(),
        source,
    })?;
    ensure_schema(&conn, path)?;
    Ok(conn)
}

/// Each store file's size cap in pages, for every connection this process
/// opens on that file: SQLite's limit is per connection, and the daemon's
/// connections (readings, alerts, sender) must all stop at the same size.
/// Keyed by file so that two stores in one process (tests) keep their own.
static MAX_PAGES: Mutex<BTreeMap<PathBuf, u64>> = Mutex::new(BTreeMap::new());

/// Caps the store file at `path` at about `bytes` for the connections this
/// process opens on it from now on (`retention.max_store_bytes`). At the cap
/// a write fails as on a full disk ([`is_disk_full`]) and stores nothing;
/// space freed by retention is used again. `None`: no cap (the disk is the
/// limit).
pub fn set_size_limit(path: &Path, bytes: Option<u64>) {
    let mut caps = MAX_PAGES.lock().unwrap_or_else(|e| e.into_inner());
    match bytes {
        Some(b) => caps.insert(cap_key(path), (b / PAGE_SIZE).max(1)),
        None => caps.remove(&cap_key(path)),
    };
}

/// The cap set for `path`, in pages (0: none).
fn max_pages(path: &Path) -> u64 {
    let caps = MAX_PAGES.lock().unwrap_or_else(|e| e.into_inner());
    caps.get(&cap_key(path)).copied().unwrap_or(0)
}

/// One key per file however the path is spelled (the file may not exist yet).
fn cap_key(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// SQLite's default page size, which rulewatch never changes.
const PAGE_SIZE: u64 = 4096;

/// Whether `e` means there is no room to write: the disk (or the file system
/// quota) is full, or the store reached its size cap. Such a write stored
/// nothing; the same write succeeds once there is room again.
pub fn is_disk_full(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DiskFull))
}

/// Gives up to `pages` free pages of the file back to the disk, if the store
/// was made with `auto_vacuum=INCREMENTAL` (every store made since schema 2;
/// older ones reuse freed pages for new data but keep their size). Short:
/// a few thousand pages take milliseconds. Returns the pages freed.
pub fn reclaim(conn: &Connection, pages: u64) -> rusqlite::Result<u64> {
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode != 2 {
        return Ok(0);
    }
    let before: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    if before == 0 {
        return Ok(0);
    }
    // One result row per page freed: step to the end (a single step frees one).
    let mut stmt = conn.prepare(&format!("PRAGMA incremental_vacuum({pages})"))?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    drop(rows);
    drop(stmt);
    let after: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    Ok(before.saturating_sub(after).max(0) as u64)
}

fn configure(conn: &Connection, path: &Path, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let max_pages = max_pages(path);
    if max_pages > 0 {
        conn.pragma_update(None, "max_page_count", max_pages as i64)?;
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        },
    )?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    Ok(())
}

/// Settings for the connection that writes readings in bulk: 64 MiB of page
/// cache (a chunk of a large file touches a leaf page of every series, and
/// spilling them costs more than RAM) and 64 MiB of log between automatic
/// checkpoints (SQLite's default is 4 MiB: a checkpoint syncs the database
/// file, and the many small commits of HTTP ingest would otherwise pay for
/// one almost every time).
pub fn tune_for_bulk_writes(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=16384;")
}

/// The schema version recorded in the file (0: none recorded yet).
pub fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Creates the tables of a new store, or migrates an older one forward
/// (see [`migrate`]); does nothing to a current one.
fn ensure_schema(conn: &Connection, path: &Path) -> Result<(), DbError> {
    let err = |source| DbError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let found = schema_version(conn).map_err(err)?;
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    if found > SCHEMA_VERSION {
        return Err(DbError::TooNew {
            path: path.to_path_buf(),
            found,
        });
    }
    let done = migrate::migrate(conn).map_err(|source| {
        if is_disk_full(&source) {
            DbError::NoRoomToMigrate {
                path: path.to_path_buf(),
                from: found,
            }
        } else {
            err(source)
        }
    })?;
    if done.from > 0 && done.from < done.to {
        tracing::info!(
            store = %path.display(), from = done.from, to = done.to,
            "存储库结构已从版本 {} 升级到 {} / store schema migrated", done.from, done.to
        );
    }
    Ok(())
}

// The tables as version 1 made them; later versions change them only
// through the steps in `migrate` (a step that shipped is never edited).

/// Readings (`readings::store`). `series` interns (metric, labels)
/// to an id; `blocks` holds each series' readings one UTC day per row.
const READINGS: &str = "
CREATE TABLE IF NOT EXISTS series (
    id     INTEGER PRIMARY KEY,
    metric TEXT NOT NULL,
    labels TEXT NOT NULL,            -- canonical JSON object, keys sorted
    UNIQUE (metric, labels)
);
CREATE TABLE IF NOT EXISTS blocks (
    series_id INTEGER NOT NULL REFERENCES series(id),
    start     INTEGER NOT NULL,       -- the block's UTC day: ms since the epoch, a multiple of 86 400 000
    count     INTEGER NOT NULL,       -- readings in `data`
    data      BLOB NOT NULL,          -- count × (time i64 LE, value f64 LE), sorted by time, times unique
    PRIMARY KEY (series_id, start)
) WITHOUT ROWID;
-- Bumped by every write of readings, from any process: a store that sees a
-- generation it did not write reloads its memory copy (e.g. `rulewatch
-- ingest` run beside the daemon).
CREATE TABLE IF NOT EXISTS store_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO store_meta (key, value) VALUES ('generation', 0);
";

/// Readings of HTTP ingest acknowledged but not yet folded into `blocks`
/// (`readings::store::staging`), one row per request, in arrival order.
/// Version 3.
const STAGED: &str = "
CREATE TABLE IF NOT EXISTS staged (
    id    INTEGER PRIMARY KEY,      -- arrival order: a later row wins on equal series and time
    count INTEGER NOT NULL,         -- readings in `data`
    data  BLOB NOT NULL             -- count × (series_id i64 LE, time i64 LE, value f64 LE)
);
";

/// Current alerts (`alerts::store`).
const ALERT_STATE: &str = "
CREATE TABLE IF NOT EXISTS alert_state (
    rule         TEXT NOT NULL,
    slot         TEXT NOT NULL,     -- 'alert', or 'error' for the rule-level error state
    subject      TEXT NOT NULL,     -- canonical JSON of the labels
    state        TEXT NOT NULL,     -- pending | firing | no_data | error
    active_since INTEGER NOT NULL,
    fired_at     INTEGER,
    last_sent    INTEGER,
    last_eval    INTEGER NOT NULL,
    message      TEXT NOT NULL,
    details      TEXT NOT NULL,     -- JSON object
    PRIMARY KEY (rule, slot, subject)
);
";

/// Every transition and every mail, kept for good (`alerts::history`).
const ALERT_HISTORY: &str = "
CREATE TABLE IF NOT EXISTS alert_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    time         INTEGER NOT NULL,          -- ms since the epoch
    rule         TEXT NOT NULL,
    subject      TEXT NOT NULL,             -- canonical JSON of the labels
    event        TEXT NOT NULL,             -- see HistoryEvent
    from_state   TEXT,
    to_state     TEXT,
    notice       TEXT,                      -- the notice kind a mail event carries
    value        REAL,
    message      TEXT NOT NULL,
    content_hash TEXT NOT NULL,             -- the rule file's content at the time
    recipient    TEXT,
    message_id   TEXT,
    error        TEXT
);
CREATE INDEX IF NOT EXISTS alert_history_rule_time ON alert_history (rule, time);
CREATE INDEX IF NOT EXISTS alert_history_time ON alert_history (time);
";

/// Messages waiting to be sent (`notify::outbox`), queued in the
/// transaction of the state change that causes them. A row is one message to
/// one target on one channel.
const OUTBOX: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id     TEXT NOT NULL UNIQUE,   -- stable per notification: dedup
    channel        TEXT NOT NULL DEFAULT 'mail', -- how it goes: mail, or a chat robot
    recipient      TEXT NOT NULL,          -- the target on that channel: a mail address
    kind           TEXT NOT NULL,          -- alert | admin
    subject        TEXT NOT NULL,
    text_body      TEXT NOT NULL,
    html_body      TEXT NOT NULL,
    items          TEXT NOT NULL,          -- JSON list of MailItem
    created        INTEGER NOT NULL,
    status         TEXT NOT NULL,          -- queued | sent | failed
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_attempt   INTEGER NOT NULL,
    last_error     TEXT,
    sent_at        INTEGER,
    admin_notified INTEGER NOT NULL DEFAULT 0  -- 0 no, 1 told delayed, 2 told failed
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt);
-- Images a mail's HTML part shows by cid: (charts), queued with the mail.
CREATE TABLE IF NOT EXISTS outbox_inline (
    message_id   TEXT NOT NULL,
    cid          TEXT NOT NULL,
    content_type TEXT NOT NULL,
    data         BLOB NOT NULL,
    PRIMARY KEY (message_id, cid)
) WITHOUT ROWID;
-- Charts a message shows, drawn when it is sent (never inside the write
-- transaction that queues it): what to draw, as JSON.
CREATE TABLE IF NOT EXISTS outbox_charts (
    message_id   TEXT NOT NULL,
    cid          TEXT NOT NULL,
    request      TEXT NOT NULL,
    PRIMARY KEY (message_id, cid)
) WITHOUT ROWID;
";

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        let names = stmt.query_map([], |r| r.get(0)).unwrap();
        names.map(Result::unwrap).collect()
    }

    #[test]
    fn a_new_store_has_every_table_and_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/store.db");
        let conn = open(&path, Durability::Normal).unwrap();
        assert_eq!(schema_version(&conn).unwrap(), SCHEMA_VERSION);
        for t in [
            "alert_history",
            "alert_state",
            "blocks",
            "outbox",
            "outbox_charts",
            "outbox_inline",
            "series",
            "staged",
            "store_meta",
        ] {
            assert!(tables(&conn).contains(&t.to_string()), "{t}");
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let full = open(&path, Durability::Full).unwrap();
        let sync: i64 = full
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        let memory = open_in_memory().unwrap();
        assert_eq!(tables(&memory), tables(&conn));
    }

    #[test]
    fn a_store_from_before_versions_is_adopted_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // What rulewatch made before recording versions: the tables, no version.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(READINGS).unwrap();
            conn.execute_batch("INSERT INTO series (metric, labels) VALUES ('pm25', '{}');")
                .unwrap();
        }
        let conn = open(&path, Durability::Normal).unwrap();
        assert_eq!(schema_version(&conn).unwrap(), SCHEMA_VERSION);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM series", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        assert!(tables(&conn).contains(&"outbox".to_string()));
    }

    #[test]
    fn an_outbox_from_before_channels_is_given_its_channel_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // The outbox before rows named their channel (every row was mail).
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE, \
                 recipient TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL, text_body TEXT NOT NULL, \
                 html_body TEXT NOT NULL, items TEXT NOT NULL, created INTEGER NOT NULL, status TEXT NOT NULL, \
                 attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL, last_error TEXT, \
                 sent_at INTEGER, admin_notified INTEGER NOT NULL DEFAULT 0);
                 INSERT INTO outbox (message_id, recipient, kind, subject, text_body, html_body, items, created, status, next_attempt)
                 VALUES ('<a@b>', 'x@example.cn', 'alert', 's', 't', 'h', '[]', 0, 'queued', 0);",
            )
            .unwrap();
        }
        let conn = open(&path, Durability::Full).unwrap();
        let channel: String = conn
            .query_row("SELECT channel FROM outbox", [], |r| r.get(0))
            .unwrap();
        assert_eq!(channel, "mail");
        assert!(tables(&conn).contains(&"outbox_charts".to_string()));
    }

    #[test]
    fn a_store_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let e = open(&path, Durability::Normal).unwrap_err().to_string();
        assert!(e.contains("new.db"), "{e}");
        assert!(e.contains("newer rulewatch"), "{e}");
    }

    /// A copy of the committed store made by rulewatch at schema 1.
    fn v1_fixture(dir: &Path) -> PathBuf {
        let path = dir.join("v1.db");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store/v1.db"),
            &path,
        )
        .unwrap();
        path
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn the_store_made_by_schema_1_is_migrated_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = v1_fixture(dir.path());
        {
            let raw = Connection::open(&path).unwrap();
            assert_eq!(schema_version(&raw).unwrap(), 1);
        }
        let conn = open(&path, Durability::Full).unwrap();
        assert_eq!(schema_version(&conn).unwrap(), SCHEMA_VERSION);
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM sqlite_master WHERE name = 'outbox_sent'"
            ),
            1
        );
        // Everything it held is still there.
        assert_eq!(count(&conn, "SELECT sum(count) FROM blocks"), 159);
        assert_eq!(count(&conn, "SELECT count(*) FROM series"), 3);
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM alert_state WHERE state = 'firing'"
            ),
            1
        );
        assert_eq!(count(&conn, "SELECT count(*) FROM alert_history"), 7);
        assert_eq!(
            count(&conn, "SELECT count(*) FROM outbox WHERE status = 'queued'"),
            2
        );
        assert_eq!(
            count(&conn, "SELECT count(*) FROM outbox WHERE status = 'sent'"),
            1
        );
        // The new index is the one pruning sent mail uses.
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM outbox WHERE status = 'sent' AND sent_at < 5",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("outbox_sent"), "{plan}");
        // An old store keeps its vacuum mode (changing it needs a VACUUM).
        assert_eq!(count(&conn, "PRAGMA auto_vacuum"), 0);
        // Opening again does nothing more.
        drop(conn);
        let again = open(&path, Durability::Normal).unwrap();
        assert_eq!(schema_version(&again).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn a_migration_that_cannot_finish_changes_nothing() {
        // The disk fills up half-way through: the store stays at version 1,
        // readable by the binary that made it, and migrates once there is room.
        let dir = tempfile::tempdir().unwrap();
        let path = v1_fixture(dir.path());
        let pages = {
            let raw = Connection::open(&path).unwrap();
            count(&raw, "PRAGMA page_count")
        };
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "max_page_count", pages).unwrap();
        let e = ensure_schema(&conn, &path).unwrap_err();
        assert!(matches!(e, DbError::NoRoomToMigrate { from: 1, .. }), "{e}");
        assert!(e.to_string().starts_with("存储库 `"), "{e}");
        assert_eq!(schema_version(&conn).unwrap(), 1);
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM sqlite_master WHERE name = 'outbox_sent'"
            ),
            0
        );
        conn.pragma_update(None, "max_page_count", pages + 100)
            .unwrap();
        ensure_schema(&conn, &path).unwrap();
        assert_eq!(schema_version(&conn).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn a_new_store_gives_freed_space_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = open(&path, Durability::Normal).unwrap();
        assert_eq!(count(&conn, "PRAGMA auto_vacuum"), 2, "incremental");
        conn.execute_batch(
            "INSERT INTO series (metric, labels) VALUES ('pm25', '{}');
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
             INSERT INTO blocks SELECT 1, i * 86400000, 1, zeroblob(4000) FROM n;
             PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .unwrap();
        let full = std::fs::metadata(&path).unwrap().len();
        conn.execute_batch("DELETE FROM blocks WHERE start < 900 * 86400000")
            .unwrap();
        assert!(count(&conn, "PRAGMA freelist_count") > 800);
        let freed = reclaim(&conn, 100).unwrap();
        assert_eq!(freed, 100, "at most as many pages as asked");
        while reclaim(&conn, 1000).unwrap() > 0 {}
        assert_eq!(count(&conn, "PRAGMA freelist_count"), 0);
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        let small = std::fs::metadata(&path).unwrap().len();
        assert!(small * 5 < full, "{small} of {full} bytes");
        assert_eq!(count(&conn, "SELECT count(*) FROM blocks"), 100);
    }

    #[test]
    fn a_store_at_its_size_cap_reports_a_full_disk_and_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = open(&path, Durability::Normal).unwrap();
        let pages = count(&conn, "PRAGMA page_count");
        conn.pragma_update(None, "max_page_count", pages + 20)
            .unwrap();
        conn.execute_batch("INSERT INTO series (metric, labels) VALUES ('pm25', '{}')")
            .unwrap();
        let insert = |n: i64| {
            conn.execute_batch(&format!(
                "BEGIN; WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < {n} - 1)
                 INSERT OR REPLACE INTO blocks SELECT 1, i * 86400000, 1, zeroblob(2000) FROM k; COMMIT;"
            ))
        };
        let e = insert(200).unwrap_err();
        let _ = conn.execute_batch("ROLLBACK");
        assert!(is_disk_full(&e), "{e}");
        assert_eq!(
            count(&conn, "SELECT count(*) FROM blocks"),
            0,
            "nothing half-stored"
        );
        // Something smaller still fits, and space freed is used again.
        insert(10).unwrap();
        conn.execute_batch("DELETE FROM blocks").unwrap();
        insert(10).unwrap();
        assert_eq!(count(&conn, "SELECT count(*) FROM blocks"), 10);
        assert!(!is_disk_full(&rusqlite::Error::QueryReturnedNoRows));
    }

    #[test]
    fn a_backup_while_writes_go_on_is_a_consistent_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = open(&path, Durability::Normal).unwrap();
        conn.execute_batch("INSERT INTO series (metric, labels) VALUES ('pm25', '{}')")
            .unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let dest = dir.path().join("backups/copy.db");
        std::fs::create_dir(dir.path().join("backups")).unwrap();
        let (summaries, written) = std::thread::scope(|s| {
            // A writer committing 10 readings (as 10 one-reading blocks) at a time.
            let writer = s.spawn(|| {
                let w = open(&path, Durability::Normal).unwrap();
                let mut day = 0i64;
                while !stop.load(Ordering::SeqCst) {
                    w.execute_batch("BEGIN IMMEDIATE").unwrap();
                    for _ in 0..10 {
                        w.execute(
                            "INSERT INTO blocks VALUES (1, ?1, 1, zeroblob(500))",
                            [day * 86_400_000],
                        )
                        .unwrap();
                        day += 1;
                    }
                    w.execute_batch("COMMIT").unwrap();
                }
                day
            });
            let mut summaries = Vec::new();
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(30));
                summaries.push(backup::backup(&path, &dest).unwrap());
            }
            stop.store(true, Ordering::SeqCst);
            (summaries, writer.join().unwrap())
        });
        for s in &summaries {
            assert_eq!(s.readings % 10, 0, "whole transactions only: {s:?}");
            assert_eq!(s.schema_version, SCHEMA_VERSION);
        }
        assert!(summaries.last().unwrap().readings > 0);
        assert!(summaries.last().unwrap().readings <= written as u64);
        // The copy opens as a store on its own: one file, no log beside it.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("backups"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["copy.db"]);
        let copy = Connection::open(&dest).unwrap();
        let mode: String = copy
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        drop(copy);
        let copy = open(&dest, Durability::Normal).unwrap();
        assert_eq!(
            count(&copy, "SELECT sum(count) FROM blocks") as u64,
            summaries.last().unwrap().readings
        );
        // A store that is not there is an error naming it, not an empty copy.
        let e = backup::backup(&dir.path().join("nope.db"), &dest).unwrap_err();
        assert!(e.to_string().contains("nope.db"), "{e}");
    }

    #[test]
    fn connections_opening_a_new_store_at_once_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| open(&path, Durability::Normal).unwrap());
            }
        });
        let conn = open(&path, Durability::Normal).unwrap();
        assert_eq!(schema_version(&conn).unwrap(), SCHEMA_VERSION);
    }
}
