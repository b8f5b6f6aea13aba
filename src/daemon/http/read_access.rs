//! The read guard: who may see the page and the read API, per the config's
//! `http: (read_access: …)` (open, a trusted proxy header, or tokens and
//! page sessions; see [`crate::daemon::access`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::auth::bearer;
use crate::config::ReadAccess;
use crate::daemon::state::Daemon;

/// Who may read, per `read_access`: the middleware on the page and the read API.
pub async fn require_reader(State(d): State<Arc<Daemon>>, req: Request, next: Next) -> Response {
    match &d.access.read {
        ReadAccess::Open => next.run(req).await,
        ReadAccess::ProxyHeader { name } => {
            let user = req
                .headers()
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.trim().is_empty());
            if user.is_some() {
                next.run(req).await
            } else {
                refuse(
                    &req,
                    StatusCode::UNAUTHORIZED,
                    &format!("需要经由单位统一登录访问：请求缺少代理头 {name}。请从单位门户进入本页面 / missing the trusted proxy header `{name}`"),
                )
            }
        }
        ReadAccess::Tokens => {
            let by_token = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| bearer(v.as_bytes()))
                .and_then(|t| d.access.identify(t))
                .is_some();
            if by_token || d.access.session(req.headers()).is_some() {
                next.run(req).await
            } else if req.uri().path().starts_with("/api/") {
                refuse(
                    &req,
                    StatusCode::UNAUTHORIZED,
                    "需要口令：请在请求头中带上 `Authorization: Bearer 口令` / read access needs a bearer token",
                )
            } else {
                let next_path = req.uri().path().to_owned();
                Redirect::to(&format!("/login?next={}", encode_path(&next_path))).into_response()
            }
        }
    }
}

fn refuse(req: &Request, status: StatusCode, message: &str) -> Response {
    tracing::info!(path = %req.uri().path(), "read refused");
    // Refused before any body is read: say the connection closes.
    super::refusal(status, message)
}

/// A path for `?next=`: only our own absolute paths, percent-encoded.
pub fn encode_path(p: &str) -> String {
    p.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
