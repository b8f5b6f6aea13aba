//! Bearer-token check for writes, when the config names a token variable
//! and it is set. Constant-time comparison (see [`ApiToken`]); the token
//! presented is never logged or echoed.
//!
//! [`ApiToken`]: crate::daemon::access::ApiToken

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::daemon::access::Principal;
use crate::daemon::state::Daemon;

/// The token from `Authorization: Bearer TOKEN` (scheme case-insensitive).
pub fn bearer(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    if value.len() < SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let token = value[SCHEME.len()..].trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Writes need the API token (every metric) or a bureau's token (its
/// metrics: the handler checks, see [`Principal::may_write`]); with no token
/// configured at all, writes are open as before. The [`Principal`] goes into
/// the request's extensions.
///
/// [`Principal`]: crate::daemon::access::Principal
/// [`Principal::may_write`]: crate::daemon::access::Principal::may_write
pub async fn require_token(State(d): State<Arc<Daemon>>, mut req: Request, next: Next) -> Response {
    if !d.access.has_tokens() {
        req.extensions_mut().insert(Principal::Admin);
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| bearer(v.as_bytes()));
    let (problem, principal) = match presented {
        None => (
            Some("缺少口令：请在请求头中带上 `Authorization: Bearer 口令`（口令由管理员发给各部门）/ missing bearer token: send `Authorization: Bearer TOKEN`"),
            None,
        ),
        Some(None) => (
            Some("Authorization 请求头格式不对：应为 `Bearer 口令`（Bearer 与口令之间一个空格）/ malformed Authorization header: expected `Bearer TOKEN`"),
            None,
        ),
        Some(Some(t)) => match d.access.identify(t) {
            None => (Some("口令不正确：请核对口令（区分大小写），或向管理员索取本部门的口令 / wrong bearer token"), None),
            Some(p) => (None, Some(p)),
        },
    };
    if let Some(p) = principal {
        if p != Principal::Admin && req.uri().path() == "/api/v1/evaluate" {
            return super::refusal(
                StatusCode::FORBIDDEN,
                "部门口令只能报送本部门的指标，不能触发评估：请使用管理员口令 / a bureau token may not trigger evaluation",
            );
        }
        req.extensions_mut().insert(p);
    }
    match problem {
        None => next.run(req).await,
        Some(message) => {
            let peer = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.to_string());
            tracing::warn!(path = %req.uri().path(), peer = ?peer, "write refused: {message}");
            let mut resp = super::refusal(StatusCode::UNAUTHORIZED, message);
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rulewatch\""),
            );
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn parses_bearer() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bear"), None);
    }
}
