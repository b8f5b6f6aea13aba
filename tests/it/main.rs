//! Every integration test of rulewatch, in one binary: one link instead of
//! one per file, and one place for what the tests share. Each module is the
//! tests of one concern; `cargo test --test it MODULE::` runs one of them
//! (for example `cargo test --test it mail::tls`).
//!
//! Shared helpers: [`common`] (the repository's files in a temp folder, free
//! ports, the fixtures workspace), [`daemon_support`] (the real daemon on
//! loopback), [`web_support`] (a replayed status snapshot) and
//! `mail::support` (stores, senders and SMTP servers for notification tests).
//! The tests run on threads of this one process: process-wide state (the
//! environment, the global log subscriber) is set only under names no other
//! test uses.

mod common;
mod daemon_support;
mod web_support;

mod author_mistakes;
mod chat;
mod cli_compact;
mod cli_core;
mod daemon_demo;
mod daemon_http;
mod daemon_kills;
mod daemon_lifecycle;
mod daemon_reconfig;
mod daemon_watchdog;
mod eval_fixtures;
mod excel_ingest;
mod http_ingest_kills;
mod mail;
mod mail_kinds;
mod notify_routing;
mod rule_mutations;
mod ruletest_backtest;
mod ruletest_cli;
mod shipped_rules;
mod store_full;
mod store_upkeep;
mod web_chart_meta;
mod web_daemon;
mod web_delivery;
mod web_digest;
mod web_mail_chart;
mod web_status;
mod web_upload;
mod year_verdict;
