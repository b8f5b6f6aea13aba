//! `GET /api/v1/rules`, `GET /api/v1/rules/{id}` and `POST /api/v1/evaluate`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error;
use crate::daemon::evaluate::{evaluate_now, NotRun};
use crate::daemon::state::{BrokenFile, Daemon, LoadError, RuleEntry};
use crate::rules::Finding;
use crate::time::{format_time, Millis};

fn load_error_json(e: &LoadError, tz: chrono_tz::Tz) -> Value {
    json!({
        "errors": e.errors,
        "since": format_time(e.since, tz),
        "content_hash": e.content_hash,
    })
}

fn entry_json(d: &Daemon, id: &str, e: &RuleEntry, now: Millis) -> Value {
    let tz = d.config().timezone;
    let meta = &e.rule.meta;
    let last = e.last.as_ref().map(|l| {
        json!({
            "at": format_time(l.at, tz),
            "at_ms": l.at,
            "finished": format_time(l.finished, tz),
            "duration_ms": l.duration.as_secs_f64() * 1e3,
            "trigger": l.trigger,
            "findings": l.findings,
            "error": l.error.as_ref().map(ToString::to_string),
        })
    });
    // The one-line problem, if any: a load error first (an operator must fix
    // the file), else the last evaluation's failure.
    let problem = e
        .load_error
        .as_ref()
        .map(|l| l.errors.join("\n"))
        .or_else(|| {
            e.last
                .as_ref()
                .and_then(|l| l.error.as_ref())
                .map(ToString::to_string)
        });
    json!({
        "id": id,
        "title": meta.title,
        "owner": meta.owner,
        "severity": meta.severity,
        "schedule": meta.schedule.text,
        "notify": meta.notify,
        "file": e.rule.path.display().to_string(),
        "content_hash": e.rule.content_hash,
        "status": if e.load_error.is_some() { "load_error" } else { "ok" },
        "next_evaluation": meta.schedule.next_after(now, tz).map(|t| format_time(t, tz)),
        "last_evaluation": last,
        "load_error": e.load_error.as_ref().map(|l| load_error_json(l, tz)),
        "error": problem,
        "skipped_overlapping_runs": d.metrics.skipped_count(id),
    })
}

fn broken_json(d: &Daemon, b: &BrokenFile) -> Value {
    json!({
        "id": null,
        "file": b.path.display().to_string(),
        "status": "broken",
        "load_error": load_error_json(&b.error, d.config().timezone),
        "error": b.error.errors.join("\n"),
    })
}

/// Every rule, then every rule file that does not load and has no last
/// good version (`id: null`, `status: "broken"`); and under `config`, the
/// config file and its last failed reload (`reload_error`, null if none).
pub async fn list(State(d): State<Arc<Daemon>>) -> Response {
    let now = chrono::Utc::now().timestamp_millis();
    let config = config_json(&d);
    let rules = d.rules.read();
    let mut out: Vec<Value> = rules
        .rules
        .iter()
        .map(|(id, e)| entry_json(&d, id, e, now))
        .collect();
    out.extend(rules.broken.values().map(|b| broken_json(&d, b)));
    Json(json!({ "rules": out, "config": config })).into_response()
}

fn config_json(d: &Daemon) -> Value {
    let config = d.config();
    let error = d.config_error.read().as_ref().map(|e| {
        json!({
            "errors": e.errors,
            "since": format_time(e.since, config.timezone),
            "content_hash": e.content_hash,
        })
    });
    json!({
        "file": config.path.display().to_string(),
        "reload_error": error,
    })
}

pub async fn one(State(d): State<Arc<Daemon>>, Path(id): Path<String>) -> Response {
    let now = chrono::Utc::now().timestamp_millis();
    let rules = d.rules.read();
    match rules.rules.get(&id) {
        Some(e) => Json(entry_json(&d, &id, e, now)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("没有编号为 `{id}` 的规则 / no rule with id `{id}`"),
        ),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateQuery {
    rule: Option<String>,
}

/// Evaluates one rule (`?rule=ID`) or all of them as of now, and answers
/// once done with the findings (the `eval --format json` items) and a
/// summary per rule. Waits for a scheduled run of the same rule to finish.
pub async fn evaluate(
    State(d): State<Arc<Daemon>>,
    query: Result<Query<EvaluateQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let ids: Vec<String> = {
        let rules = d.rules.read();
        match &query.rule {
            Some(id) if !rules.rules.contains_key(id) => {
                let broken = rules
                    .broken
                    .values()
                    .any(|b| b.path.file_stem().is_some_and(|s| s == id.as_str()));
                let (hint_zh, hint) = if broken {
                    (
                        "：同名的规则文件有错、没有载入，详见 /api/v1/rules",
                        " (a file of that name does not load: see /api/v1/rules)",
                    )
                } else {
                    ("", "")
                };
                return error(
                    StatusCode::NOT_FOUND,
                    format!("没有编号为 `{id}` 的规则{hint_zh} / no rule with id `{id}`{hint}"),
                );
            }
            Some(id) => vec![id.clone()],
            None => rules.rules.keys().cloned().collect(),
        }
    };
    let tz = d.config().timezone;
    let at = chrono::Utc::now().timestamp_millis();
    let outcomes = match evaluate_now(&d, ids, at).await {
        Ok(o) => o,
        Err(NotRun::ShuttingDown) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "服务正在停止，未评估 / shutting down: evaluation not started",
            );
        }
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("评估未能运行 / evaluation did not run: {e}"),
            )
        }
    };
    let mut found = Vec::with_capacity(outcomes.len());
    let mut per_rule = Vec::new();
    let mut failed = 0usize;
    for (rule, outcome) in &outcomes {
        if outcome.error.is_some() {
            failed += 1;
        }
        per_rule.push(json!({
            "rule": rule.meta.id,
            "duration_ms": outcome.duration.as_secs_f64() * 1e3,
            "findings": outcome.findings.len(),
            "error": outcome.error.as_ref().map(ToString::to_string),
        }));
        found.push(outcome.findings_with_error());
    }
    let findings: Vec<&Finding> = found.iter().flat_map(|f| f.iter()).collect();
    // Written straight from the findings (as `eval --format json` writes
    // them), not through a `Value` tree of thousands of maps first.
    #[derive(serde::Serialize)]
    struct Answer<'a> {
        at: String,
        evaluated: usize,
        failed: usize,
        findings: Vec<&'a Finding>,
        rules: Vec<Value>,
    }
    Json(Answer {
        at: format_time(at, tz),
        evaluated: per_rule.len(),
        failed,
        findings,
        rules: per_rule,
    })
    .into_response()
}
