//! The store file: the one place SQLite is opened, every table is declared
//! and the schema's version is recorded.
//!
//! Why one place: the readings, the alerts, their history and the outbox
//! share one SQLite file, opened by several connections (the readings
//! writer and reader, the alert store, the sender, `rulewatch ingest` beside
//! the daemon). They must agree on the pragmas (WAL, so readers never wait
//! for the writer; a busy timeout, so writers wait for each other) and on the
//! schema; a later version migrates the file forward from
//! [`SCHEMA_VERSION`], which is kept in the file (`PRAGMA user_version`).
//!
//! At the bottom of the layers: this module knows tables, not readings or
//! alerts; [`crate::readings`], [`crate::alerts`] and [`crate::notify`] read
//! and write them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

/// The schema this binary reads and writes. 1: series/blocks/store_meta,
/// alert_state, alert_history, outbox/outbox_inline/outbox_charts as created
/// below. A store made before versions were recorded reads 0 and holds the
/// same tables (or none), but its outbox may lack the `channel` column
/// (every row was mail then): opening it adds the column and records 1.
pub const SCHEMA_VERSION: i64 = 1;

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
        "store `{path}`: written by a newer rulewatch (schema version {found}, this one knows up to {SCHEMA_VERSION}): \
         run the newer version, or restore a backup made by this one"
    )]
    TooNew { path: PathBuf, found: i64 },
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
    configure(&conn, durability).map_err(err)?;
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

fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
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

/// Creates the tables of a new (or pre-version) store and records the
/// version, in one transaction; does nothing to a current one.
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
    // Several connections may open a new file at once: the first to take
    // the write lock creates; the others find the version recorded.
    conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
    let created = (|| {
        if schema_version(conn)? < SCHEMA_VERSION {
            for schema in [READINGS, ALERT_STATE, ALERT_HISTORY, OUTBOX] {
                conn.execute_batch(schema)?;
            }
            // Outboxes made before rows named their channel: every row was mail.
            let has_channel: bool = conn.query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('outbox') WHERE name = 'channel'",
                [],
                |r| r.get(0),
            )?;
            if !has_channel {
                conn.execute_batch(
                    "ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'mail'",
                )?;
            }
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        conn.execute_batch("COMMIT")
    })();
    if let Err(e) = created {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(err(e));
    }
    Ok(())
}

/// Readings ([`crate::readings::store`]). `series` interns (metric, labels)
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

/// Current alerts ([`crate::alerts::store`]).
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

/// Every transition and every mail, kept for good ([`crate::alerts::history`]).
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

/// Messages waiting to be sent ([`crate::notify::outbox`]), queued in the
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
