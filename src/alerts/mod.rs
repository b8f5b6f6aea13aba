//! Alerts: the state machine per (rule, subject), pure over `now`
//! ([`state`]); its persistence and the history ([`store`], [`history`]).
//!
//! The daemon's seam: build an [`AlertRule`] per loaded rule, evaluate, then
//! [`AlertStore::record`] the findings of every rule evaluated at that tick;
//! the notices go to a [`NoticeSink`] ([`sink`], implemented by `notify`) in
//! the same transaction; wake the sender when something was queued.

pub mod history;
pub mod sink;
pub mod state;
pub mod store;

pub use history::{HistoryEntry, HistoryEvent, HistoryQuery};
pub use sink::{AdminNote, NoticeSink};
pub use state::{
    evaluate, Alert, AlertRule, Evaluation, Notice, NoticeKind, Severity, State, Transition,
};
pub use store::{open_db, AlertStore, Recorded, StoreError};
