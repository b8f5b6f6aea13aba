//! Who is asking: the API token (full rights), a bureau's token (writes only
//! its own metrics), a signed-in page session, or a trusted reverse-proxy
//! header; and who may read (`http: (read_access: …)`).
//!
//! Tokens are kept only as SHA-256 digests ([`ApiToken`]) and compared in
//! constant time. Page sessions are random ids kept in memory (a restart
//! signs everyone out), each with its own CSRF token; uploads waiting for
//! confirmation are kept here too, under a one-time random id.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use parking_lot::Mutex;

use crate::config::{Config, ReadAccess};
use crate::readings::Batch;

/// The cookie holding the page session id.
pub const SESSION_COOKIE: &str = "rw_session";
// A working day: officials sign in in the morning and upload during the day.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
// Long enough to read a preview and confirm, short enough that a stale
// preview is not stored by a late click.
pub const UPLOAD_TTL: Duration = Duration::from_secs(15 * 60);

/// Who a request speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The API token: every metric.
    Admin,
    /// A bureau's token: only its metrics.
    Bureau {
        name: String,
        metrics: BTreeSet<String>,
    },
    /// A user named by the trusted proxy header: may read, not write.
    Reader(String),
}

impl Principal {
    pub fn may_write(&self, metric: &str) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Bureau { metrics, .. } => metrics.contains(metric),
            Principal::Reader(_) => false,
        }
    }

    /// The name shown on the page: `人社局`, `管理员`.
    pub fn name(&self) -> String {
        match self {
            Principal::Admin => "管理员".into(),
            Principal::Bureau { name, .. } => name.clone(),
            Principal::Reader(user) => user.clone(),
        }
    }
}

/// A signed-in page session.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
    expires: Instant,
}

/// An upload previewed and waiting for confirmation.
pub struct PendingUpload {
    pub session: String,
    pub file: String,
    pub batch: Batch,
    expires: Instant,
}

pub struct Access {
    admin: Option<ApiToken>,
    bureaus: Vec<(String, ApiToken, BTreeSet<String>)>,
    pub read: ReadAccess,
    sessions: Mutex<HashMap<String, Session>>,
    uploads: Mutex<HashMap<String, PendingUpload>>,
}

/// 256 random bits as hex (two v4 UUIDs: 244 random bits from the OS RNG).
pub fn random_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Access {
    pub fn new(config: &Config) -> Access {
        let admin = config.api_token().map(|t| ApiToken::new(&t));
        let mut bureaus = Vec::new();
        for (name, token) in config.bureau_tokens() {
            match token {
                Some(t) => {
                    let metrics = config.bureaus[&name].metrics.iter().cloned().collect();
                    bureaus.push((name, ApiToken::new(&t), metrics));
                }
                None => tracing::warn!(
                    bureau = %name,
                    "部门“{name}”的口令环境变量 {} 未设置，该部门无法登录 / bureau token variable unset",
                    config.bureaus[&name].token_env
                ),
            }
        }
        Access {
            admin,
            bureaus,
            read: config.read_access.clone(),
            sessions: Mutex::new(HashMap::new()),
            uploads: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any token is configured (else writes are open, as before tokens).
    pub fn has_tokens(&self) -> bool {
        self.admin.is_some() || !self.bureaus.is_empty()
    }

    /// The principal a presented token stands for.
    pub fn identify(&self, token: &[u8]) -> Option<Principal> {
        // Compare against every token, so timing says nothing about which matched.
        let mut found = None;
        if self.admin.as_ref().is_some_and(|a| a.matches(token)) {
            found = Some(Principal::Admin);
        }
        for (name, t, metrics) in &self.bureaus {
            if t.matches(token) && found.is_none() {
                found = Some(Principal::Bureau {
                    name: name.clone(),
                    metrics: metrics.clone(),
                });
            }
        }
        found
    }

    /// A new session for `principal`: its id (for the cookie).
    pub fn sign_in(&self, principal: Principal) -> String {
        let id = random_id();
        let now = Instant::now();
        let mut sessions = self.sessions.lock();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(
            id.clone(),
            Session {
                principal,
                csrf: random_id(),
                expires: now + SESSION_TTL,
            },
        );
        id
    }

    pub fn sign_out(&self, id: &str) {
        self.sessions.lock().remove(id);
        self.uploads.lock().retain(|_, u| u.session != id);
    }

    /// The live session whose id the request's cookie carries.
    pub fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = session_cookie(headers)?;
        let sessions = self.sessions.lock();
        let s = sessions.get(&id)?;
        (s.expires > Instant::now()).then(|| (id.clone(), s.clone()))
    }

    /// Keeps a previewed batch for confirmation; the one-time id.
    pub fn keep_upload(&self, session: &str, file: &str, batch: Batch) -> String {
        let id = random_id();
        let now = Instant::now();
        let mut uploads = self.uploads.lock();
        uploads.retain(|_, u| u.expires > now);
        uploads.insert(
            id.clone(),
            PendingUpload {
                session: session.to_owned(),
                file: file.to_owned(),
                batch,
                expires: now + UPLOAD_TTL,
            },
        );
        id
    }

    /// Takes (once) the upload `id` kept for `session`.
    pub fn take_upload(&self, session: &str, id: &str) -> Option<PendingUpload> {
        let mut uploads = self.uploads.lock();
        match uploads.get(id) {
            Some(u) if u.session == session && u.expires > Instant::now() => uploads.remove(id),
            _ => None,
        }
    }
}

/// The session id from `Cookie: rw_session=…`.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// Whether two secrets are equal, in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A cross-site form post: `Origin` (or, without it, `Referer`) names
/// another host than the one asked. Absent both, the CSRF token decides.
pub fn cross_site(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match from {
        None => false,
        Some("null") => true,
        Some(url) => {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"));
            match rest {
                Some(rest) => rest.split('/').next() != Some(host),
                None => true,
            }
        }
    }
}

/// The API token, kept only as its SHA-256 so that comparison is constant
/// time and leaks not even the length.
pub struct ApiToken([u8; 32]);

impl ApiToken {
    pub fn new(token: &str) -> ApiToken {
        ApiToken(sha256(token.as_bytes()))
    }

    pub fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.ct_eq(&sha256(presented)))
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(…)")
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn token_compare() {
        let t = ApiToken::new("s3cret-token");
        assert!(t.matches(b"s3cret-token"));
        assert!(!t.matches(b"s3cret-tokeN"));
        assert!(!t.matches(b""));
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn cross_site_compares_origin_with_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!cross_site(&h), "no Origin: the CSRF token decides");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(cross_site(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(cross_site(&h));
        h.remove(header::ORIGIN);
        h.insert(
            header::REFERER,
            HeaderValue::from_static("http://evil.example/x"),
        );
        assert!(cross_site(&h));
    }

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; rw_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
    }

    #[test]
    fn a_bureau_writes_only_its_metrics() {
        let p = Principal::Bureau {
            name: "人社局".into(),
            metrics: ["unemployment_rate".to_string()].into(),
        };
        assert!(p.may_write("unemployment_rate"));
        assert!(!p.may_write("pm25"));
        assert!(Principal::Admin.may_write("pm25"));
    }
}
