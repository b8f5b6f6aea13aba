//! Persistence: current alert state and the history, in the store's SQLite
//! file (which also holds the outbox the notices are queued in).
//!
//! [`AlertStore::record`] is the one place where alerts change: it loads the
//! rules' alerts, steps the pure machine, and writes the new states, their
//! transitions and (through a [`NoticeSink`]) the messages they cause in
//! **one transaction**. Either all
//! of it is there after a crash or none of it is (and the next evaluation
//! does it again), so no notice is lost or queued twice.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, Row, TransactionBehavior};

use crate::alerts::history::{self, HistoryEntry, HistoryQuery};
use crate::alerts::sink::{AdminNote, NoticeSink};
use crate::alerts::state::{self, subject_key, Alert, AlertRule, State};
use crate::rules::finding::Finding;
use crate::time::Millis;

const SCHEMA: &str = "
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

/// The outbox `notify` queues messages in (see `notify::outbox`), created
/// with the other tables of the file so that a notice can be queued in the
/// transaction of its state change. A row is one message to one target on
/// one channel (`mail` today; chat robots next).
const OUTBOX_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id     TEXT NOT NULL UNIQUE,   -- stable per notification: dedup
    channel        TEXT NOT NULL DEFAULT 'mail', -- how it goes: mail (chat robots next)
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
-- Images a message's HTML part shows by cid:, queued with it.
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

/// How long a write waits for another writer (the readings store, the
/// sender) before giving up: bulk ingest holds the lock for well under a second.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("alert store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("alert store: background task failed: {0}")]
    Task(String),
}

/// Opens (creating if needed) the store file with the alert, history and
/// outbox tables. WAL, so the daemon's readers never wait for writers;
/// `synchronous=FULL` on this connection: a queued mail or a state change,
/// once committed, survives power loss as well as a crash (a few commits per
/// evaluation, so the cost does not matter).
pub fn open_db(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| {
                rusqlite::Error::InvalidPath(format!("{}: {e}", dir.display()).into())
            })?;
        }
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(history::SCHEMA)?;
    conn.execute_batch(OUTBOX_SCHEMA)?;
    // Files made before outbox rows named their channel: every row was mail.
    let has_channel: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('outbox') WHERE name = 'channel'",
        [],
        |r| r.get(0),
    )?;
    if !has_channel {
        conn.execute_batch("ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'mail'")?;
    }
    Ok(conn)
}

/// What [`AlertStore::record`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    pub transitions: Vec<state::Transition>,
    pub notices: Vec<state::Notice>,
    /// Ids (Message-IDs) of the messages newly queued (wake the sender when not empty).
    pub queued: Vec<String>,
}

/// Current alerts and history, through one connection.
pub struct AlertStore {
    conn: Connection,
}

fn alert(row: &Row<'_>) -> rusqlite::Result<Alert> {
    let subject: String = row.get("subject")?;
    let state: String = row.get("state")?;
    let details: String = row.get("details")?;
    Ok(Alert {
        rule: row.get("rule")?,
        subject: serde_json::from_str(&subject).unwrap_or_default(),
        state: State::parse(&state).unwrap_or(State::Pending),
        active_since: row.get("active_since")?,
        fired_at: row.get("fired_at")?,
        last_sent: row.get("last_sent")?,
        last_eval: row.get("last_eval")?,
        message: row.get("message")?,
        details: serde_json::from_str(&details).unwrap_or_default(),
    })
}

fn load(conn: &Connection, rule: Option<&str>) -> rusqlite::Result<Vec<Alert>> {
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM alert_state WHERE (?1 IS NULL OR rule = ?1) ORDER BY rule, slot, subject",
    )?;
    let rows = stmt.query_map(params![rule], alert)?;
    rows.collect()
}

fn save(conn: &Connection, rule: &str, alerts: &[Alert]) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM alert_state WHERE rule = ?1")?
        .execute(params![rule])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO alert_state (rule, slot, subject, state, active_since, fired_at, last_sent,
                                  last_eval, message, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for a in alerts {
        insert.execute(params![
            rule,
            if a.state == State::Error {
                "error"
            } else {
                "alert"
            },
            subject_key(&a.subject),
            a.state.as_str(),
            a.active_since,
            a.fired_at,
            a.last_sent,
            a.last_eval,
            a.message,
            serde_json::Value::Object(a.details.clone()).to_string(),
        ])?;
    }
    Ok(())
}

impl AlertStore {
    /// Opens the store file (the readings store's file; these tables live beside its own).
    pub fn open(path: &Path) -> Result<AlertStore, StoreError> {
        Ok(AlertStore {
            conn: open_db(path)?,
        })
    }

    /// Records one evaluation: for each rule its findings at `now`. Steps the
    /// state machine, and in one transaction writes the new states, every
    /// transition to the history, and what `sink` queues for the notices
    /// (from all the rules of the batch together; `notify` queues one mail
    /// per recipient listing every notice for them).
    ///
    /// Pass all rules evaluated at the same tick in one batch so each
    /// recipient gets one mail for that tick.
    pub fn record<S: NoticeSink + ?Sized>(
        &mut self,
        now: Millis,
        batch: &[(&AlertRule, &[Finding])],
        sink: &S,
    ) -> Result<Recorded, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Recorded::default();
        for (rule, findings) in batch {
            let prev = load(&tx, Some(&rule.id))?;
            let step = state::evaluate(&prev, rule, now, findings);
            save(&tx, &rule.id, &step.alerts)?;
            for t in &step.transitions {
                history::insert_transition(&tx, t)?;
            }
            out.transitions.extend(step.transitions);
            out.notices.extend(step.notices);
        }
        out.queued = sink.queue(&tx, &out.notices, now)?;
        tx.commit()?;
        Ok(out)
    }

    /// A rule was deleted: its alerts end quietly (history only, no mail).
    /// Returns how many alerts ended.
    pub fn forget_rule(
        &mut self,
        rule: &str,
        content_hash: &str,
        now: Millis,
    ) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let prev = load(&tx, Some(rule))?;
        let transitions = state::forget(&prev, rule, content_hash, now);
        for t in &transitions {
            history::insert_transition(&tx, t)?;
        }
        save(&tx, rule, &[])?;
        tx.commit()?;
        Ok(transitions.len())
    }

    /// Queues a free-form note to `admin`, once per `key` (e.g. a rule file
    /// that does not load: key `load:<file>:<content hash>`, so each broken
    /// version is reported once). Returns whether anything new was queued.
    #[allow(clippy::too_many_arguments)]
    pub fn admin_note<S: NoticeSink + ?Sized>(
        &mut self,
        key: &str,
        rule: &str,
        title: &str,
        text: &str,
        now: Millis,
        sink: &S,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let note = AdminNote {
            key,
            rule,
            title,
            text,
        };
        let queued = sink.note(&tx, &note, now)?;
        tx.commit()?;
        Ok(queued)
    }

    /// The active alerts (all rules, or one), for `GET /api/v1/alerts`.
    pub fn alerts(&self, rule: Option<&str>) -> Result<Vec<Alert>, StoreError> {
        Ok(load(&self.conn, rule)?)
    }

    /// Active alerts per state, for `/metrics`.
    pub fn count_by_state(&self) -> Result<Vec<(State, u64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT state, COUNT(*) FROM alert_state GROUP BY state ORDER BY state",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (state, n) = row?;
            if let Some(s) = State::parse(&state) {
                out.push((s, n));
            }
        }
        Ok(out)
    }

    /// History rows, for `GET /api/v1/history?rule=&since=`.
    pub fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>, StoreError> {
        Ok(history::query(&self.conn, query)?)
    }

    /// The underlying connection, for tests and one-off queries.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}
