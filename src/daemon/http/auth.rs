//! Bearer-token check for writes, when the config names a token variable
//! and it is set. Constant-time comparison (see [`ApiToken`]); the token
//! presented is never logged or echoed.
//!
//! [`ApiToken`]: crate::daemon::state::ApiToken

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

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

pub async fn require_token(State(d): State<Arc<Daemon>>, req: Request, next: Next) -> Response {
    let Some(expected) = &d.token else {
        return next.run(req).await;
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| bearer(v.as_bytes()));
    let problem = match presented {
        None => Some("missing bearer token: send `Authorization: Bearer TOKEN`"),
        Some(None) => Some("malformed Authorization header: expected `Bearer TOKEN`"),
        Some(Some(t)) if !expected.matches(t) => Some("wrong bearer token"),
        Some(Some(_)) => None,
    };
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
