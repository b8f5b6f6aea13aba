//! Chat robots as notification channels: DingTalk custom robots (钉钉自定义
//! 机器人), WeCom group robots (企业微信群机器人) and Feishu custom bots (飞书
//! 自定义机器人). Each is a [`Notifier`] over HTTPS webhooks (reqwest,
//! rustls), with the platform's request shape, signature and error codes.
//!
//! - The message is markdown in Chinese with the content of the mail
//!   ([`render`], from the same rows as the mail text), cut to the
//!   platform's size at a UTF-8 boundary with `…（详见邮件/页面）` ([`fit`]).
//! - Errors are read from the body: the platforms answer most failures with
//!   HTTP 200 and a non-zero `errcode` / `code` ([`classify`]). Rate limits
//!   (DingTalk 130101, WeCom 45009, Feishu 11232) are temporary with the
//!   platform's block as the least delay; so are signature, key and address
//!   problems (the operator fixes the config, the message must not be lost).
//!   Malformed or oversized bodies are permanent.
//! - Tokens, keys and signing secrets are read from environment variables
//!   once, at start, kept in [`Secret`]s and scrubbed from every error.
//!   Error texts never carry the webhook address (it holds the token).

use std::time::Duration;

use base64::Engine as _;
use chrono_tz::Tz;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::alerts::state::{Audience, Notice};
use crate::config::{Config, Robot, RobotKind};
use crate::notify::channel::{ChannelKind, ChatLimits, Delivery, Notifier};
use crate::notify::mail::{Secret, SendError};
use crate::notify::outbox::QueuedMail;
use crate::notify::templates::{self, Rendered};
use crate::time::{Millis, MINUTE, SECOND};

/// What a token or rule id in a URL path or query keeps as is: RFC 3986's
/// unreserved characters.
const URL_PART: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Ends a message cut to the platform's size.
pub const CUT_MARK: &str = "…（详见邮件/页面）";

/// The platforms' documented rates: 20 messages a minute per robot
/// (DingTalk blocks a robot for 10 minutes past that; WeCom answers 45009).
/// Feishu allows 100 a minute and 5 a second; 20 a minute keeps within both.
const PER_MINUTE: usize = 20;

/// Markdown bytes per message. DingTalk: 20,000 bytes a message; the
/// title, the JSON around the text and its escapes get the rest. WeCom:
/// markdown `content` at most 4,096 bytes. Feishu: the request body at most
/// 20 KB (20,480 bytes), with the card around the text.
fn max_bytes(kind: RobotKind) -> usize {
    match kind {
        RobotKind::DingTalk => 18_000,
        RobotKind::WeCom => 4_096,
        RobotKind::Feishu => 18_000,
    }
}

/// `text` cut to at most `max` bytes at a character boundary, ending in
/// [`CUT_MARK`] when cut.
pub fn fit(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let room = max.saturating_sub(CUT_MARK.len());
    let mut end = room.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT_MARK}", text[..end].trim_end())
}

/// The markdown message for `sorted` notices: the mail's subject as a bold
/// first line, then each item with the mail's rows (value against target,
/// gap, since when, who is responsible) and a link to the rule's page when
/// the status page has a public address.
pub fn render(
    sorted: &[&Notice],
    tz: Tz,
    words: &crate::status::Words,
    public_url: Option<&str>,
) -> Rendered {
    let subject = templates::subject_line(sorted);
    let mut text = format!("**{subject}**\n\n");
    text.push_str(&if sorted.len() == 1 {
        "rulewatch 有 1 项新通知：\n\n".to_string()
    } else {
        format!("rulewatch 有 {} 项新通知：\n\n", sorted.len())
    });
    for (i, n) in sorted.iter().enumerate().take(templates::MAX_LISTED) {
        let tag = if n.kind.is_recovery() || n.kind.audience() == Audience::Admin {
            templates::notice_label(n)
        } else {
            format!("{}·{}", n.severity.label_zh(), templates::notice_label(n))
        };
        text.push_str(&format!(
            "**{}. 【{tag}】{}**\n\n",
            i + 1,
            one_line(&n.title)
        ));
        for (name, value) in templates::rows_in(n, tz, words) {
            // The rule file and version are for the operator; the mail has them.
            if name == "依据" {
                continue;
            }
            text.push_str(&format!("- {name}：{}\n", one_line(&value)));
        }
        if let (Some(base), Audience::Rule) = (public_url, n.kind.audience()) {
            text.push_str(&format!(
                "- [查看详情]({base}/rules/{})\n",
                utf8_percent_encode(&n.rule, URL_PART)
            ));
        }
        text.push('\n');
    }
    if let Some(u) = templates::unlisted(sorted, words, public_url) {
        text.push_str(&format!("**{}**\n\n", u.heading));
        for line in &u.lines {
            text.push_str(&format!("- {line}\n"));
        }
        text.push_str(&format!("\n{}\n\n", u.where_text()));
    }
    text.push_str("本消息由 rulewatch 自动发送，详见同时发出的邮件。");
    Rendered {
        subject,
        text,
        html: String::new(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

type HmacSha256 = Hmac<Sha256>;

/// DingTalk 加签: `urlencode(base64(HMAC-SHA256(key = secret,
/// message = timestamp_ms + "\n" + secret)))`.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    utf8_percent_encode(&b64, NON_ALPHANUMERIC).to_string()
}

/// Feishu 签名校验: `base64(HMAC-SHA256(key = timestamp_s + "\n" + secret,
/// message = empty))`, sent in the JSON body beside `timestamp`.
pub fn feishu_sign(secret: &str, timestamp_s: i64) -> String {
    let key = format!("{timestamp_s}\n{secret}");
    let mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A robot could not be set up from the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("environment variable `{var}` ({what} of the {kind} robot of recipient group `{group}`) is not set or empty")]
    MissingVar {
        var: String,
        what: &'static str,
        kind: &'static str,
        group: String,
    },
    #[error("cannot set up the HTTP client for chat robots: {0}")]
    Client(String),
}

/// A robot with its token and secret read from the environment.
struct RobotClient {
    robot: Robot,
    token: Secret,
    secret: Option<Secret>,
}

impl RobotClient {
    fn scrub(&self, text: &str) -> String {
        let text = self.token.scrub(text);
        match &self.secret {
            Some(s) => s.scrub(&text),
            None => text,
        }
    }

    /// For logs and errors: platform, group, variable and host; no token.
    fn describe(&self) -> String {
        format!(
            "{} robot `{}` of group `{}` at {}",
            self.robot.kind.as_str(),
            self.robot.token_env,
            self.robot.group,
            if self.token.expose().starts_with("http") {
                "its webhook address".to_string()
            } else {
                self.robot.base_url.clone()
            }
        )
    }

    /// The webhook address (holds the token: never printed).
    fn url(&self) -> String {
        let token = self.token.expose();
        if token.starts_with("http://") || token.starts_with("https://") {
            return token.to_string();
        }
        let base = &self.robot.base_url;
        match self.robot.kind {
            RobotKind::DingTalk => format!(
                "{base}?access_token={}",
                utf8_percent_encode(token, URL_PART)
            ),
            RobotKind::WeCom => {
                format!("{base}?key={}", utf8_percent_encode(token, URL_PART))
            }
            RobotKind::Feishu => {
                format!("{base}/{}", utf8_percent_encode(token, URL_PART))
            }
        }
    }
}

/// The robots of one platform.
pub struct ChatNotifier {
    kind: RobotKind,
    robots: Vec<RobotClient>,
    http: reqwest::Client,
}

fn read_var(var: &str, what: &'static str, robot: &Robot) -> Result<Secret, ChatError> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| Secret::new(v.trim().to_string()))
        .ok_or_else(|| ChatError::MissingVar {
            var: var.to_string(),
            what,
            kind: robot.kind.as_str(),
            group: robot.group.clone(),
        })
}

impl ChatNotifier {
    /// The `kind` robots of the config, their tokens and secrets read from
    /// the environment now; `None` when the config has none of that kind.
    pub fn from_config(
        config: &Config,
        kind: RobotKind,
    ) -> Result<Option<ChatNotifier>, ChatError> {
        let mut robots = Vec::new();
        for robot in config.robots.iter().filter(|r| r.kind == kind) {
            let token = read_var(
                &robot.token_env,
                if kind == RobotKind::WeCom {
                    "key"
                } else {
                    "access token"
                },
                robot,
            )?;
            let secret = match &robot.secret_env {
                Some(var) => Some(read_var(var, "signing secret", robot)?),
                None => None,
            };
            robots.push(RobotClient {
                robot: robot.clone(),
                token,
                secret,
            });
        }
        if robots.is_empty() {
            return Ok(None);
        }
        let http = reqwest::Client::builder()
            // Each request also has the robot's own `timeout`.
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ChatError::Client(e.to_string()))?;
        Ok(Some(ChatNotifier { kind, robots, http }))
    }

    /// Every robot kind the config uses, each as a notifier.
    pub fn all_from_config(config: &Config) -> Result<Vec<ChatNotifier>, ChatError> {
        let mut out = Vec::new();
        for kind in [RobotKind::DingTalk, RobotKind::WeCom, RobotKind::Feishu] {
            out.extend(ChatNotifier::from_config(config, kind)?);
        }
        Ok(out)
    }

    async fn post(&self, robot: &RobotClient, url: &str, body: &Value) -> Result<(), SendError> {
        let at = robot.describe();
        let timeout = Duration::from_millis(robot.robot.timeout.max(1) as u64);
        let request = self.http.post(url).timeout(timeout).json(body).send();
        // The whole exchange, body included, within the timeout.
        let exchange = async {
            let response = request.await?;
            let status = response.status();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        };
        let (status, text) = match tokio::time::timeout(timeout, exchange).await {
            Err(_) => {
                return Err(SendError::temporary(format!(
                    "{at}: no answer within {} s",
                    timeout.as_secs_f64()
                )))
            }
            Ok(Err(e)) => {
                let what = if e.is_timeout() {
                    format!("no answer within {} s", timeout.as_secs_f64())
                } else {
                    e.without_url().to_string()
                };
                return Err(SendError::temporary(robot.scrub(&format!("{at}: {what}"))));
            }
            Ok(Ok(answer)) => answer,
        };
        classify(self.kind, status.as_u16(), &text).map_err(|mut e| {
            e.message = robot.scrub(&format!("{at}: {}", e.message));
            e
        })
    }

    async fn send(&self, robot: &RobotClient, message: &QueuedMail) -> Result<(), SendError> {
        let mention = message.items.iter().any(|i| i.critical) && !robot.robot.mentions.is_empty();
        let max = max_bytes(self.kind);
        let mentions = &robot.robot.mentions;
        match self.kind {
            RobotKind::DingTalk => {
                let at_line = mentions
                    .iter()
                    .map(|m| format!("@{m}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                let text = if mention {
                    format!(
                        "{}\n\n{at_line}",
                        fit(&message.text, max - at_line.len() - 2)
                    )
                } else {
                    fit(&message.text, max)
                };
                let body = json!({
                    "msgtype": "markdown",
                    "markdown": { "title": fit(&message.subject, 200), "text": text },
                    "at": {
                        "atMobiles": if mention { mentions.clone() } else { Vec::new() },
                        "isAtAll": false,
                    },
                });
                let mut url = robot.url();
                if let Some(secret) = &robot.secret {
                    let ts = crate::time::wall_clock();
                    let sign = dingtalk_sign(secret.expose(), ts);
                    url.push_str(&format!("&timestamp={ts}&sign={sign}"));
                }
                self.post(robot, &url, &body).await
            }
            RobotKind::WeCom => {
                let body = json!({
                    "msgtype": "markdown",
                    "markdown": { "content": fit(&message.text, max) },
                });
                let url = robot.url();
                self.post(robot, &url, &body).await?;
                if mention {
                    // WeCom markdown cannot @ by phone number; a text message
                    // with `mentioned_mobile_list` can. The markdown is out:
                    // a failed mention is logged, not retried (that would
                    // repeat the message).
                    let body = json!({
                        "msgtype": "text",
                        "text": {
                            "content": fit(&format!("{}，请及时处理。", one_line(&message.subject)), 2_000),
                            "mentioned_mobile_list": mentions,
                        },
                    });
                    if let Err(e) = self.post(robot, &url, &body).await {
                        tracing::warn!(message_id = %message.message_id, error = %e.message,
                            "wecom mention (@) not sent; the message itself was");
                    }
                }
                Ok(())
            }
            RobotKind::Feishu => {
                let at_line = mentions
                    .iter()
                    .map(|id| format!("<at id={id}></at>"))
                    .collect::<Vec<_>>()
                    .join(" ");
                let content = if mention {
                    format!(
                        "{}\n\n{at_line}",
                        fit(&message.text, max - at_line.len() - 2)
                    )
                } else {
                    fit(&message.text, max)
                };
                let mut body = json!({
                    "msg_type": "interactive",
                    "card": {
                        "config": { "wide_screen_mode": true },
                        "header": {
                            "title": { "tag": "plain_text", "content": fit(&message.subject, 200) },
                            "template": if message.items.iter().any(|i| i.critical) { "red" } else { "blue" },
                        },
                        "elements": [ { "tag": "markdown", "content": content } ],
                    },
                });
                if let Some(secret) = &robot.secret {
                    let ts = crate::time::wall_clock() / SECOND;
                    body["timestamp"] = json!(ts.to_string());
                    body["sign"] = json!(feishu_sign(secret.expose(), ts));
                }
                let url = robot.url();
                self.post(robot, &url, &body).await
            }
        }
    }
}

impl Notifier for ChatNotifier {
    fn channel(&self) -> ChannelKind {
        match self.kind {
            RobotKind::DingTalk => ChannelKind::DingTalk,
            RobotKind::WeCom => ChannelKind::WeCom,
            RobotKind::Feishu => ChannelKind::Feishu,
        }
    }

    fn describe(&self) -> String {
        self.robots
            .iter()
            .map(RobotClient::describe)
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn deliver<'a>(&'a self, message: &'a QueuedMail) -> Delivery<'a> {
        Box::pin(async move {
            match self
                .robots
                .iter()
                .find(|r| r.robot.target() == message.recipient)
            {
                Some(robot) => self.send(robot, message).await,
                // Queued for a robot since removed from the config: kept and
                // retried (admin is told), so putting it back delivers it.
                None => Err(SendError::temporary(format!(
                    "no robot `{}` in the config (removed since the message was queued?)",
                    message.recipient
                ))),
            }
        })
    }

    fn limits(&self) -> Option<ChatLimits> {
        Some(ChatLimits {
            per_minute: PER_MINUTE,
            max_bytes: max_bytes(self.kind),
        })
    }
}

/// What a platform's answer means. `Ok` only for HTTP 2xx with code 0.
pub fn classify(kind: RobotKind, status: u16, body: &str) -> Result<(), SendError> {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let code = parsed.as_ref().and_then(|v| {
        v.get("errcode")
            .or_else(|| v.get("code"))
            .or_else(|| v.get("StatusCode"))
            .and_then(Value::as_i64)
    });
    let msg = parsed
        .as_ref()
        .and_then(|v| {
            v.get("errmsg")
                .or_else(|| v.get("msg"))
                .and_then(Value::as_str)
        })
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    let Some(code) = code else {
        let snippet: String = body.chars().take(200).collect();
        let message = format!("HTTP {status}, answer without a code: {snippet}");
        // 400/413: this body will never be taken. Anything else (5xx, a
        // proxy's error page, a wrong address) may pass later.
        return Err(if matches!(status, 400 | 413) {
            SendError::permanent(message)
        } else {
            SendError::temporary(message)
        });
    };
    if code == 0 && (200..300).contains(&status) {
        return Ok(());
    }
    let message = format!("HTTP {status}, code {code}: {msg}");
    let rate_limited = match kind {
        // 130101: more than 20 a minute; the robot is blocked for 10 minutes.
        RobotKind::DingTalk => (code == 130101).then_some(10 * MINUTE),
        // 45009: api freq out of limit (20 a minute).
        RobotKind::WeCom => (code == 45009).then_some(MINUTE),
        // 11232: frequency limited (100 a minute, 5 a second).
        RobotKind::Feishu => (code == 11232).then_some(MINUTE),
    };
    if let Some(wait) = rate_limited {
        return Err(SendError {
            temporary: true,
            message: format!("rate limited, {message}"),
            retry_after: Some(wait),
        });
    }
    let permanent = match kind {
        // 40035 missing parameter, 43004/400105 bad message type, 460101 too long.
        RobotKind::DingTalk => matches!(code, 40035 | 43004 | 400105 | 460101),
        // 40058 content too long or invalid, 44004 empty content.
        RobotKind::WeCom => matches!(code, 40058 | 44004 | 40008),
        // 9499 bad request (body malformed or over 20 KB), 19036 too large.
        RobotKind::Feishu => matches!(code, 9499 | 19036),
    };
    // Everything else — signatures (DingTalk 310000, Feishu 19021), unknown
    // tokens or keys (DingTalk 300001, WeCom 93000), keywords, IP lists,
    // "system busy" (-1) — is fixed by the operator or passes by itself:
    // retried with backoff, admin told after a few tries, nothing lost.
    Err(if permanent {
        SendError::permanent(message)
    } else {
        SendError::temporary(message)
    })
}

/// Several queued chat messages to one robot as one message (what is due
/// together goes together: the rate limit is kept by grouping, never by
/// dropping). The first message's id stands for the group.
pub fn combine(messages: &[QueuedMail]) -> QueuedMail {
    let mut out = messages[0].clone();
    if messages.len() == 1 {
        return out;
    }
    out.subject = format!(
        "rulewatch 共 {} 条通知：{}",
        messages.len(),
        fit(&messages[0].subject, 400)
    );
    out.text = format!(
        "**{}**\n\n---\n\n{}",
        out.subject,
        messages
            .iter()
            .map(|m| m.text.as_str())
            .collect::<Vec<_>>()
            .join("\n\n---\n\n")
    );
    out.items = messages.iter().flat_map(|m| m.items.clone()).collect();
    out
}

/// Bytes [`combine`] adds between two messages.
pub const JOIN_BYTES: usize = "\n\n---\n\n".len();

/// Bytes [`combine`] may add in front (its bold heading names the first
/// subject, cut to fit): kept free when grouping.
pub const HEAD_BYTES: usize = 600;

/// When a robot that sent at `sent` (ms, oldest first) may send again at
/// `now`: `None` if at once.
pub fn next_slot(sent: &[Millis], now: Millis) -> Option<Millis> {
    let recent: Vec<Millis> = sent.iter().copied().filter(|t| now - t < MINUTE).collect();
    if recent.len() < PER_MINUTE {
        return None;
    }
    Some(recent[recent.len() - PER_MINUTE] + MINUTE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_documented_examples() {
        // Computed as the platforms' own Python samples do
        // (hmac.new(secret, f"{ts}\n{secret}", sha256), base64, quote_plus).
        let s = dingtalk_sign("this is secret", 1_600_000_000_000);
        assert!(
            !s.contains('+') && !s.contains('/') && !s.contains('='),
            "{s}"
        );
        let f = feishu_sign("this is secret", 1_599_360_473);
        assert!(f.ends_with('='), "{f}");
    }

    #[test]
    fn cuts_at_a_character_boundary_with_the_mark() {
        let text = "指标".repeat(3000);
        let cut = fit(&text, 4096);
        assert!(cut.len() <= 4096, "{}", cut.len());
        assert!(cut.ends_with(CUT_MARK));
        assert_eq!(fit("短", 4096), "短");
    }

    #[test]
    fn answers_are_read_from_the_body() {
        assert!(classify(RobotKind::WeCom, 200, r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        let e = classify(
            RobotKind::WeCom,
            200,
            r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#,
        )
        .unwrap_err();
        assert!(e.temporary && e.retry_after == Some(MINUTE), "{e:?}");
        let e = classify(
            RobotKind::DingTalk,
            200,
            r#"{"errcode":130101,"errmsg":"send too fast"}"#,
        )
        .unwrap_err();
        assert_eq!(e.retry_after, Some(10 * MINUTE));
        let e = classify(
            RobotKind::DingTalk,
            200,
            r#"{"errcode":310000,"errmsg":"sign not match"}"#,
        )
        .unwrap_err();
        assert!(e.temporary);
        let e = classify(
            RobotKind::Feishu,
            200,
            r#"{"code":9499,"msg":"Bad Request","data":{}}"#,
        )
        .unwrap_err();
        assert!(!e.temporary);
        assert!(classify(
            RobotKind::Feishu,
            200,
            r#"{"code":0,"msg":"success","data":{}}"#
        )
        .is_ok());
        assert!(
            classify(RobotKind::Feishu, 502, "<html>bad gateway</html>")
                .unwrap_err()
                .temporary
        );
    }

    #[test]
    fn rate_window() {
        let sent: Vec<Millis> = (0..20).map(|i| i * 1000).collect();
        assert_eq!(next_slot(&sent[..19], 20_000), None);
        assert_eq!(next_slot(&sent, 20_000), Some(MINUTE));
        assert_eq!(next_slot(&sent, MINUTE + 1), None);
    }
}
