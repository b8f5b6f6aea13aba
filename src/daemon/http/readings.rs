//! `POST /api/v1/readings`: a batch of readings, all or nothing.
//!
//! The format comes from `Content-Type` (`application/json`,
//! `application/x-ndjson`, `text/csv`; 415 otherwise). The body is read up
//! to `max_body_bytes` (413 beyond), parsed on the blocking pool, and
//! committed by the group-commit writer ([`crate::daemon::ingest`]): the 200
//! comes once the readings are synced to disk. A bad reading rejects the whole batch:
//! 400 with every bad item (line, column, item index, message), nothing stored.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, HttpBody};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::{error, refusal};
use crate::daemon::access::Principal;
use crate::daemon::ingest;
use crate::daemon::state::Daemon;
use crate::readings::parse::parse_known;
use crate::readings::{Batch, Format, ParseError};

/// What went wrong with a batch, as the client is told.
enum Failure {
    Rejected(ParseError),
    Store(ingest::WriteFailed),
    Crashed(String),
}

/// What a client is told when the store has no room (`507`): nothing of the
/// batch is stored, and sending it again once there is room stores it.
const STORE_FULL: &str = "存储空间已满，本批读数未保存：请清理存储库所在磁盘，或缩短 rulewatch.ron 中 retention 的保留期限（或调高 max_store_bytes），之后重新发送本批 / \
     store full, nothing stored: free disk space where the store is, or shorten `retention` \
     (or raise `max_store_bytes`) in rulewatch.ron, then send this batch again";

/// When a full store was last logged (ms): once a minute is enough while
/// every request is refused.
static FULL_LOGGED: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

pub async fn post(
    State(d): State<Arc<Daemon>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let Some(format) = content_type.and_then(Format::from_content_type) else {
        let shown: String = content_type.unwrap_or("none").chars().take(80).collect();
        return refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("不支持的内容类型 `{shown}`：请在 Content-Type 里写 `application/json`、`application/x-ndjson` 或 `text/csv` / unsupported content type `{shown}`: send `application/json`, `application/x-ndjson` or `text/csv`"),
        );
    };
    let limit = d.config().max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return too_large(limit);
    }
    // Memory for bodies in flight is bounded: wait for room (a body of
    // unknown length books the whole limit).
    let booked = declared.unwrap_or(limit).clamp(1, ingest::BUDGET_BYTES) as u32;
    let Ok(_room) = d.ingest.budget.clone().acquire_many_owned(booked).await else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "服务正在停止，本批未存入，请稍后重新发送 / shutting down",
        );
    };
    let bytes = match read_limited(body, limit, declared.unwrap_or(0)).await {
        Ok(b) => b,
        Err(ReadError::TooLarge) => return too_large(limit),
        Err(ReadError::Body(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "读不到请求内容，本批未存入，请重新发送 / could not read the request body: {e}"
                ),
            );
        }
    };
    let tz = d.config().timezone;
    let known = d.ingest.known.clone();
    let parsed = tokio::task::spawn_blocking(move || parse_known(&bytes, format, tz, &known))
        .await
        .map_err(|e| Failure::Crashed(e.to_string()));
    if let Ok(Ok(batch)) = &parsed {
        let refused = refused_metrics(&principal, batch);
        if !refused.is_empty() {
            return forbidden(&principal, &refused);
        }
    }
    let result = match parsed {
        Ok(Ok(batch)) => d.ingest.write(batch).await.map_err(Failure::Store),
        Ok(Err(e)) => Err(Failure::Rejected(e)),
        Err(e) => Err(e),
    };

    match result {
        Ok(summary) => {
            d.metrics.ingested(summary.readings, started.elapsed());
            tracing::debug!(
                readings = summary.readings,
                new_series = summary.new_series,
                "readings stored"
            );
            (
                StatusCode::OK,
                Json(json!({
                    "accepted": summary.readings,
                    "new": summary.new,
                    "unchanged": summary.unchanged,
                    "changed": summary.changed,
                })),
            )
                .into_response()
        }
        Err(Failure::Rejected(e)) => {
            d.metrics.rejected();
            tracing::info!(bad = e.total, first = %e.errors.first().map(ToString::to_string).unwrap_or_default(), "batch rejected");
            let body = json!({
                "error": format!(
                    "未存入：发现 {n} 条有错的读数，本批数据均未存入，请按 errors 改正后重新发送整批 / batch rejected: {n} bad reading(s), nothing stored",
                    n = e.total
                ),
                "total": e.total,
                "errors": e.errors,
            });
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
        Err(Failure::Store(e)) if e.disk_full => {
            d.metrics.rejected();
            let now = chrono::Utc::now().timestamp_millis();
            let last = FULL_LOGGED.load(std::sync::atomic::Ordering::Relaxed);
            if now - last >= crate::time::MINUTE
                && FULL_LOGGED
                    .compare_exchange(
                        last,
                        now,
                        std::sync::atomic::Ordering::Relaxed,
                        std::sync::atomic::Ordering::Relaxed,
                    )
                    .is_ok()
            {
                tracing::error!(error = %e.message, store = %d.config().store_path.display(), "{STORE_FULL}");
            }
            error(StatusCode::INSUFFICIENT_STORAGE, STORE_FULL)
        }
        Err(Failure::Store(e)) => {
            tracing::error!(error = %e.message, "storing a batch failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "存储出错，本批未存入，请稍后重试或联系管理员 / storing the batch failed, nothing stored: {}",
                    e.message
                ),
            )
        }
        Err(Failure::Crashed(e)) => {
            tracing::error!(error = %e, "ingest task crashed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "内部错误，本批未存入，请联系管理员 / internal error while storing the batch; nothing stored",
            )
        }
    }
}

/// The metrics of `batch` that `principal` may not write, each once.
pub fn refused_metrics(principal: &Principal, batch: &Batch) -> Vec<String> {
    let mut refused: Vec<String> = batch
        .series
        .iter()
        .filter(|k| !principal.may_write(&k.metric))
        .map(|k| k.metric.clone())
        .collect();
    refused.sort();
    refused.dedup();
    refused
}

fn forbidden(principal: &Principal, refused: &[String]) -> Response {
    tracing::warn!(who = %principal.name(), metrics = ?refused, "write refused: metrics of another bureau");
    let body = json!({
        "error": format!(
            "{}的口令不能报送这些指标：{}。每个部门只能报送配置中 bureaus 为其列出的指标；如确需报送，请管理员在配置中加上 / the token of `{}` may not write: {}; nothing stored",
            principal.name(), refused.join("、"), principal.name(), refused.join(", ")
        ),
        "metrics": refused,
    });
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

fn too_large(limit: usize) -> Response {
    refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("请求内容超过 {limit} 字节的上限，本批未存入：请分成几批发送，大文件请用 `rulewatch ingest` 导入 / request body over the limit of {limit} bytes: split the batch, or load large files with `rulewatch ingest`"),
    )
}

enum ReadError {
    TooLarge,
    Body(axum::Error),
}

/// Collects the body, stopping as soon as it passes `limit`.
async fn read_limited(
    mut body: Body,
    limit: usize,
    size_hint: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::with_capacity(size_hint.min(limit));
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(ReadError::Body)?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(ReadError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}
