//! `GET /api/v1/alerts[?rule=ID]` and `GET /api/v1/history?rule=&since=&until=&limit=`,
//! served from the alert store (a read connection of its own).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error;
use crate::alerts::{Alert, HistoryEntry, HistoryQuery};
use crate::daemon::state::Daemon;
use crate::time::{format_time, parse_time, Millis};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    rule: Option<String>,
    state: Option<String>,
}

fn time(t: Option<Millis>, tz: chrono_tz::Tz) -> Value {
    t.map_or(Value::Null, |t| Value::String(format_time(t, tz)))
}

fn alert_json(a: &Alert, tz: chrono_tz::Tz) -> Value {
    json!({
        "rule": a.rule,
        "subject": a.subject,
        "state": a.state,
        "active_since": format_time(a.active_since, tz),
        "fired_at": time(a.fired_at, tz),
        "last_sent": time(a.last_sent, tz),
        "last_evaluation": format_time(a.last_eval, tz),
        "message": a.message,
        "details": a.details,
    })
}

/// The active alerts (pending, firing, no data, rule errors).
pub async fn list(
    State(d): State<Arc<Daemon>>,
    query: Result<Query<AlertsQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let alerting = d.alerting.clone();
    let rule = q.rule.clone();
    let result = tokio::task::spawn_blocking(move || alerting.alerts(rule.as_deref())).await;
    let tz = d.config().timezone;
    match result {
        Ok(Ok(alerts)) => {
            let out: Vec<Value> = alerts
                .iter()
                .filter(|a| q.state.as_deref().is_none_or(|s| a.state.as_str() == s))
                .map(|a| alert_json(a, tz))
                .collect();
            Json(json!({ "alerts": out })).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    rule: Option<String>,
    /// TIME: RFC 3339 or a local date / date-time in the configured zone.
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

fn entry_json(e: &HistoryEntry, tz: chrono_tz::Tz) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("time".into(), Value::String(format_time(e.time, tz)));
    }
    v
}

/// Every transition and every mail event, oldest first: "when did we first know".
pub async fn history(
    State(d): State<Arc<Daemon>>,
    query: Result<Query<HistoryParams>, QueryRejection>,
) -> Response {
    let Query(p) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let tz = d.config().timezone;
    let parse = |name: &str, v: &Option<String>| -> Result<Option<Millis>, String> {
        v.as_deref()
            .map(|t| parse_time(t, tz).map_err(|e| format!("`{name}`: {e}")))
            .transpose()
    };
    let (since, until) = match (parse("since", &p.since), parse("until", &p.until)) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let mut q = HistoryQuery {
        rule: p.rule,
        since,
        until,
        ..HistoryQuery::default()
    };
    if let Some(limit) = p.limit {
        q.limit = limit.clamp(1, q.limit);
    }
    let alerting = d.alerting.clone();
    match tokio::task::spawn_blocking(move || alerting.history(&q)).await {
        Ok(Ok(rows)) => {
            let out: Vec<Value> = rows.iter().map(|e| entry_json(e, tz)).collect();
            Json(json!({ "history": out })).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
