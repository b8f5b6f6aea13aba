//! rulewatch: watches the quantified targets of a government work report,
//! written as Rhai rules, and mails the responsible bureau when one slips.
//!
//! Layout (one module per concept):
//! - [`config`]: strict RON config with positions and cross-checks
//! - [`time`]: TIME / duration parsing and calendar windows in the configured zone
//! - [`db`]: the store file: opening SQLite, every table, the schema version
//! - [`readings`]: the reading model, parsers (JSON, NDJSON, CSV) and the SQLite store
//! - [`rules`]: rule loading (metadata), the sandboxed engine, the API rules call
//! - [`alerts`]: the alert state machine (pure over `now`), its persistence and history
//! - [`notify`]: routing, grouping, the durable outbox, mail templates and transports, the sender
//! - [`status`]: what the page, the mails and the digest share: status model, chart series, formatting
//! - [`web`]: the status page (`GET /`, `GET /rules/{id}`) with inline SVG charts: renders only
//! - [`daemon`]: `rulewatch run`: schedules, hot reload, shutdown, its HTTP API
//! - [`cli`]: one file per subcommand
#![forbid(unsafe_code)]

pub mod alerts;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod db;
pub mod diag;
pub mod logging;
pub mod notify;
pub mod readings;
pub mod rules;
pub mod ruletest;
pub mod status;
pub mod time;
pub mod web;
