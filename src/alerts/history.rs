//! The history: every transition and every mail, kept for good unless the
//! config's `retention.history` says otherwise ([`prune_step`]), queryable
//! by rule and time (`GET /api/v1/history?rule=&since=`): officials are
//! asked "when did we first know".

use rusqlite::{params, Connection, Row};
use serde::Serialize;

use crate::alerts::state::{subject_key, State, Transition};
use crate::readings::Labels;
use crate::time::Millis;

/// What a history row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryEvent {
    /// An alert changed state (`from` → `to`).
    Transition,
    /// A mail carrying this item was queued in the outbox.
    Queued,
    /// The mail server accepted it (or the `.eml` file was written).
    Sent,
    /// Not delivered yet after repeated tries; `admin` was told. Still retried.
    Delayed,
    /// Given up: the server refused it for good; `admin` was told.
    Failed,
}

impl HistoryEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryEvent::Transition => "transition",
            HistoryEvent::Queued => "queued",
            HistoryEvent::Sent => "sent",
            HistoryEvent::Delayed => "delayed",
            HistoryEvent::Failed => "failed",
        }
    }

    fn parse(text: &str) -> HistoryEvent {
        match text {
            "queued" => HistoryEvent::Queued,
            "sent" => HistoryEvent::Sent,
            "delayed" => HistoryEvent::Delayed,
            "failed" => HistoryEvent::Failed,
            _ => HistoryEvent::Transition,
        }
    }
}

/// One row of the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    pub id: i64,
    /// ms since the epoch.
    pub time: Millis,
    pub rule: String,
    pub subject: Labels,
    pub event: HistoryEvent,
    pub from: Option<State>,
    pub to: Option<State>,
    /// For mail events: what the mail said about this item (`firing`, `resolved`, …).
    pub notice: Option<String>,
    pub value: Option<f64>,
    pub message: String,
    pub content_hash: String,
    pub recipient: Option<String>,
    pub message_id: Option<String>,
    pub error: Option<String>,
}

/// Which history rows to read. Results come oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    pub rule: Option<String>,
    /// Inclusive lower bound (ms).
    pub since: Option<Millis>,
    /// Inclusive upper bound (ms).
    pub until: Option<Millis>,
    pub limit: usize,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        HistoryQuery {
            rule: None,
            since: None,
            until: None,
            // Enough for a year of daily reminders on a few dozen subjects, and
            // still a response a browser renders at once.
            limit: 10_000,
        }
    }
}

/// A row to write; `id` is assigned by SQLite.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewEntry<'a> {
    pub time: Millis,
    pub rule: &'a str,
    pub subject: String,
    pub event: Option<HistoryEvent>,
    pub from: Option<State>,
    pub to: Option<State>,
    pub notice: Option<&'a str>,
    pub value: Option<f64>,
    pub message: &'a str,
    pub content_hash: &'a str,
    pub recipient: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub error: Option<&'a str>,
}

pub(crate) fn insert(conn: &Connection, e: &NewEntry<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO alert_history (time, rule, subject, event, from_state, to_state, notice,
                                    value, message, content_hash, recipient, message_id, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        e.time,
        e.rule,
        e.subject,
        e.event.unwrap_or(HistoryEvent::Transition).as_str(),
        e.from.map(State::as_str),
        e.to.map(State::as_str),
        e.notice,
        e.value,
        e.message,
        e.content_hash,
        e.recipient,
        e.message_id,
        e.error,
    ])?;
    Ok(())
}

pub(crate) fn insert_transition(conn: &Connection, t: &Transition) -> rusqlite::Result<()> {
    insert(
        conn,
        &NewEntry {
            time: t.at,
            rule: &t.rule,
            subject: subject_key(&t.subject),
            event: Some(HistoryEvent::Transition),
            from: Some(t.from),
            to: Some(t.to),
            value: t.value,
            message: &t.message,
            content_hash: &t.content_hash,
            ..Default::default()
        },
    )
}

fn entry(row: &Row<'_>) -> rusqlite::Result<HistoryEntry> {
    let subject: String = row.get("subject")?;
    let from: Option<String> = row.get("from_state")?;
    let to: Option<String> = row.get("to_state")?;
    let event: String = row.get("event")?;
    Ok(HistoryEntry {
        id: row.get("id")?,
        time: row.get("time")?,
        rule: row.get("rule")?,
        subject: serde_json::from_str(&subject).unwrap_or_default(),
        event: HistoryEvent::parse(&event),
        from: from.as_deref().and_then(State::parse),
        to: to.as_deref().and_then(State::parse),
        notice: row.get("notice")?,
        value: row.get("value")?,
        message: row.get("message")?,
        content_hash: row.get("content_hash")?,
        recipient: row.get("recipient")?,
        message_id: row.get("message_id")?,
        error: row.get("error")?,
    })
}

/// The rows `q` selects, oldest first (by time, then by insertion).
pub fn query(conn: &Connection, q: &HistoryQuery) -> rusqlite::Result<Vec<HistoryEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM alert_history
          WHERE (?1 IS NULL OR rule = ?1) AND (?2 IS NULL OR time >= ?2) AND (?3 IS NULL OR time <= ?3)
          ORDER BY time, id
          LIMIT ?4",
    )?;
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![q.rule, q.since, q.until, limit], entry)?;
    rows.collect()
}

/// Deletes at most `max_rows` history rows older than `before`, oldest
/// first, in one short transaction (retention; call again until it deletes
/// nothing). The rows of an alert still open, from the moment it became
/// active, are kept whatever their age: its story stays whole while it lasts.
pub fn prune_step(conn: &Connection, before: Millis, max_rows: usize) -> rusqlite::Result<usize> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let deleted = tx
        .prepare_cached(
            "DELETE FROM alert_history WHERE id IN (
               SELECT h.id FROM alert_history h
                WHERE h.time < ?1
                  AND NOT EXISTS (SELECT 1 FROM alert_state s
                                   WHERE s.rule = h.rule AND s.subject = h.subject
                                     AND h.time >= s.active_since)
                ORDER BY h.time LIMIT ?2)",
        )?
        .execute(params![before, i64::try_from(max_rows).unwrap_or(i64::MAX)])?;
    tx.commit()?;
    Ok(deleted)
}
