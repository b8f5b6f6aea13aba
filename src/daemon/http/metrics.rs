//! `GET /metrics`: Prometheus text format.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::daemon::state::Daemon;

pub async fn get(State(d): State<Arc<Daemon>>) -> impl IntoResponse {
    // The alert gauges read the store: off the async threads.
    let d2 = d.clone();
    let text = tokio::task::spawn_blocking(move || d2.metrics.render(d2.gauges()))
        .await
        .unwrap_or_else(|e| format!("# metrics failed: {e}\n"));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
