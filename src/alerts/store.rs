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

use rusqlite::{params, Connection, Row, TransactionBehavior};

use crate::alerts::history::{self, HistoryEntry, HistoryQuery};
use crate::alerts::sink::{AdminNote, NoticeSink};
use crate::alerts::state::{self, subject_key, Alert, AlertRule, State};
use crate::rules::finding::Finding;
use crate::time::Millis;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("alert store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("alert store: {0}")]
    Db(#[from] crate::db::DbError),
    #[error("alert store: background task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// No room to write (a full disk, or the store's size cap): the
    /// transaction stored nothing.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite(e)
            | StoreError::Db(crate::db::DbError::Sqlite { source: e, .. }) => {
                crate::db::is_disk_full(e)
            }
            StoreError::Db(crate::db::DbError::NoRoomToMigrate { .. }) => true,
            _ => false,
        }
    }
}

/// Opens (creating if needed) the store file for alerts, their history and
/// the outbox ([`crate::db`] owns the tables). `synchronous=FULL` on this
/// connection: a queued mail or a state change, once committed, survives
/// power loss as well as a crash (a few commits per evaluation, so the cost
/// does not matter).
pub fn open_db(path: &Path) -> Result<Connection, StoreError> {
    Ok(crate::db::open(path, crate::db::Durability::Full)?)
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

    /// A private store in memory (rule tests: thrown away after the case).
    pub fn in_memory() -> Result<AlertStore, StoreError> {
        Ok(AlertStore {
            conn: crate::db::open_in_memory()?,
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
