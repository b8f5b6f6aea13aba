//! `GET /metrics`: Prometheus text format.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::daemon::state::Daemon;

pub async fn get(State(d): State<Arc<Daemon>>) -> impl IntoResponse {
    let text = d.metrics.render(d.gauges());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}
