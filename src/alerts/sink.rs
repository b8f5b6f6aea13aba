//! The notification seam, seen from the alerts: where the notices of a state
//! change go. [`AlertStore::record`](super::AlertStore::record) hands them to
//! a [`NoticeSink`] inside the transaction that writes the new states, so a
//! notice is queued exactly when its state change is committed.
//!
//! The alerts decide *that* someone must be told; what the message looks
//! like, who reads it and over which channel (mail today, chat robots next)
//! is the sink's business (`notify` implements it), and nothing here knows
//! about mail.

use rusqlite::Connection;

use super::state::Notice;
use crate::time::Millis;

/// Queues the messages notices cause, in the caller's transaction.
pub trait NoticeSink {
    /// Queues what `notices` (all of one evaluation instant) cause, through
    /// `tx`, the transaction recording the state change. Returns the ids of
    /// the messages newly queued (already queued: not repeated, not listed).
    fn queue(
        &self,
        tx: &Connection,
        notices: &[Notice],
        now: Millis,
    ) -> rusqlite::Result<Vec<String>>;

    /// Queues a free-form note to `admin`, once per `key` (e.g. a rule file
    /// that does not load: its file and content hash). Returns whether
    /// anything new was queued.
    fn note(&self, tx: &Connection, note: &AdminNote<'_>, now: Millis) -> rusqlite::Result<bool>;
}

/// A note to `admin` about something other than an alert.
#[derive(Debug, Clone, Copy)]
pub struct AdminNote<'a> {
    /// The same key is queued once.
    pub key: &'a str,
    /// The rule it concerns (for the history), may be empty.
    pub rule: &'a str,
    pub title: &'a str,
    pub text: &'a str,
}
