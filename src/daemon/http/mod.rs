//! The HTTP API (axum): readings in, rules and their evaluations out,
//! health and Prometheus metrics. Every error answer is JSON:
//! `{"error": "…"}`, with more fields where there is more to say.
//!
//! | route | |
//! |---|---|
//! | `POST /api/v1/readings` | JSON / NDJSON / CSV by `Content-Type` → `{"accepted": N}` (token) |
//! | `POST /api/v1/evaluate[?rule=ID]` | evaluate now, answer with the findings (token) |
//! | `GET /api/v1/rules`, `/api/v1/rules/{id}` | every rule: metadata, file, last evaluation, load error |
//! | `GET /api/v1/alerts[?rule=ID&state=S]` | active alerts |
//! | `GET /api/v1/history?rule=&since=&until=&limit=` | transitions and mail events, oldest first |
//! | `GET /`, `GET /rules/{id}` | the status page (HTML, see [`crate::web`]) |
//! | `GET /login`, `/upload`; `POST /login`, `/logout`, `/upload`, `/upload/confirm` | the upload page (see [`upload`]) |
//! | `GET /healthz` | liveness |
//! | `GET /metrics` | Prometheus text format |

pub mod alerts;
pub mod auth;
pub mod metrics;
pub mod read_access;
pub mod readings;
pub mod rules;
pub mod upload;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::daemon::state::Daemon;

/// The API's routes over the shared daemon state.
pub fn router(daemon: Arc<Daemon>) -> Router {
    let writes = Router::new()
        .route("/api/v1/readings", post(readings::post))
        .route("/api/v1/evaluate", post(rules::evaluate))
        .route_layer(axum::middleware::from_fn_with_state(
            daemon.clone(),
            auth::require_token,
        ));
    // What `read_access` guards: the read API and the status page
    // officials look at (`GET /`, `GET /rules/{id}`).
    let reads = Router::new()
        .route("/api/v1/rules", get(rules::list))
        .route("/api/v1/rules/{id}", get(rules::one))
        .route("/api/v1/alerts", get(alerts::list))
        .route("/api/v1/history", get(alerts::history))
        .with_state(daemon.clone())
        .merge(crate::web::router(daemon.clone()))
        .route_layer(axum::middleware::from_fn_with_state(
            daemon.clone(),
            read_access::require_reader,
        ));
    Router::new()
        .merge(writes)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::get))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(daemon.clone())
        .merge(reads)
        // Sign-in and the upload page (their own session checks).
        .merge(upload::router(daemon))
}

/// A JSON error answer: `{"error": message}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// [`error`] for a request refused before its body was read (a wrong token,
/// an unknown content type, a body declared too large): the server closes
/// the connection rather than read a body it does not want, so it says so
/// (`Connection: close`), and the client does not send its next request on
/// a connection that is going away.
pub fn refusal(status: StatusCode, message: impl Into<String>) -> Response {
    let mut resp = error(status, message);
    resp.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    resp
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!(
            "没有这个地址 `{p}`，请对照 docs/operations.md 检查 / no such endpoint `{p}`",
            p = uri.path()
        ),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "地址 `{p}` 不接受 `{method}` 请求 / `{method}` is not allowed on `{p}`",
            p = uri.path()
        ),
    )
}

async fn healthz(axum::extract::State(d): axum::extract::State<Arc<Daemon>>) -> Response {
    let g = d.gauges();
    let status = if d.is_shutting_down() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({
        "status": if d.is_shutting_down() { "stopping" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "rules": g.rules_loaded,
        "broken_rule_files": g.rule_files_broken,
    });
    (status, Json(body)).into_response()
}
