//! The status page officials look at: `GET /` (every rule, grouped by the
//! bureau that owns it) and `GET /rules/{id}` (one rule: source, metadata,
//! alert history, a larger chart). Server-rendered HTML with inline SVG
//! charts and inline CSS, no script and no outside asset, so the page works
//! on a closed network and on a phone.
//!
//! The page reads the daemon through [`StatusSource`], a narrow seam: the
//! loaded rules with their last evaluation, the readings store, the alert
//! store and the timezone. Wiring it into a server is `web::router(source)`
//! merged into the API router.
//!
//! Every string a rule, a reading or the config provides goes through
//! [`escape`] before it reaches the page.

pub mod daemon;
pub mod page;
pub mod series;
pub mod snapshot;
pub mod status;
pub mod svg;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono_tz::Tz;

use crate::alerts::{Alert, HistoryEntry, HistoryQuery};
use crate::readings::store::Store;
use crate::rules::{Rule, RuleFailure};
use crate::time::Millis;

pub use crate::notify::templates::escape_html as escape;
pub use status::{RuleStatus, StateLabel};

/// A rule as the daemon holds it.
#[derive(Debug, Clone)]
pub struct RuleEntry {
    pub rule: Arc<Rule>,
    pub last: Option<LastRun>,
    /// The file's current version does not load (the rule shown is the last
    /// good one): each problem as `PATH:LINE:COL: error: MESSAGE`.
    pub load_error: Option<Vec<String>>,
}

/// The rule's last evaluation.
#[derive(Debug, Clone)]
pub struct LastRun {
    /// The evaluation time (`now` the rule saw).
    pub at: Millis,
    pub error: Option<RuleFailure>,
    pub findings: usize,
}

/// A rule's own tests (`rulewatch test`), when the daemon knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestStatus {
    pub passed: usize,
    pub failed: usize,
    /// What failed, one line each.
    pub failures: Vec<String>,
}

/// What the status page needs from the daemon.
pub trait StatusSource: Send + Sync + 'static {
    /// Every loaded rule with its last evaluation.
    fn rules(&self) -> Vec<RuleEntry>;
    fn store(&self) -> &Store;
    /// Active alerts (of one rule, or all).
    fn alerts(&self, rule: Option<&str>) -> Result<Vec<Alert>, String>;
    /// Alert history, oldest first.
    fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>, String>;
    fn timezone(&self) -> Tz;
    /// The wall clock (charts of a rule never evaluated end here).
    fn now(&self) -> Millis;
    /// Rule files that load nowhere (no last good version): (file, problems).
    fn broken_files(&self) -> Vec<(String, Vec<String>)> {
        Vec::new()
    }
    /// The rule's own tests, when known.
    fn test_status(&self, _rule: &str) -> Option<TestStatus> {
        None
    }
}

/// `GET /` and `GET /rules/{id}` over `source`; merge it into the daemon's router.
pub fn router<S: StatusSource>(source: Arc<S>) -> Router {
    Router::new()
        .route("/", get(index::<S>))
        .route("/rules/{id}", get(rule_page::<S>))
        .with_state(source)
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing on the page is loaded from elsewhere, and no script runs.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn index<S: StatusSource>(State(source): State<Arc<S>>) -> Response {
    let body = tokio::task::spawn_blocking(move || page::index(source.as_ref())).await;
    match body {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            page::error_page("状态页生成失败", &e.to_string()),
        ),
    }
}

async fn rule_page<S: StatusSource>(
    State(source): State<Arc<S>>,
    Path(id): Path<String>,
) -> Response {
    let body = tokio::task::spawn_blocking(move || page::rule(source.as_ref(), &id)).await;
    match body {
        Ok(Some(body)) => html(StatusCode::OK, body),
        Ok(None) => html(
            StatusCode::NOT_FOUND,
            page::error_page("没有这条规则", "该规则不存在或已被删除。"),
        ),
        Err(e) => html(
            StatusCode::INTERNAL_SERVER_ERROR,
            page::error_page("页面生成失败", &e.to_string()),
        ),
    }
}
