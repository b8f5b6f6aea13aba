//! The status page officials look at: `GET /` (every rule, grouped by the
//! bureau that owns it) and `GET /rules/{id}` (one rule: source, metadata,
//! alert history, a larger chart). Server-rendered HTML with inline SVG
//! charts and inline CSS, no script and no outside asset, so the page works
//! on a closed network and on a phone.
//!
//! The page only renders: what it shows comes from [`crate::status`] (the
//! status model, chart series, number formatting), read through
//! [`StatusSource`], which the daemon implements. Wiring it into a server is
//! `web::router(source)` merged into the API router.
//!
//! Every string a rule, a reading or the config provides goes through
//! [`escape`] before it reaches the page.

pub mod page;
pub mod svg;
pub mod upload;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub use crate::status::format::escape_html as escape;
pub use crate::status::StatusSource;

/// `GET /` and `GET /rules/{id}` over `source`; merge it into the daemon's router.
pub fn router<S: StatusSource>(source: Arc<S>) -> Router {
    Router::new()
        .route("/", get(index::<S>))
        .route("/rules/{id}", get(rule_page::<S>))
        .with_state(source)
}

/// Nothing on the page is loaded from elsewhere, no script runs, forms post
/// only here, and no other site may frame the page (a hidden confirm button).
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'";

/// An HTML answer with the page's headers (CSP, no caching).
pub fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
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
