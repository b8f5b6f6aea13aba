//! Chat robots as notification channels: DingTalk custom robots (钉钉自定义
//! 机器人), WeCom group robots (企业微信群机器人) and Feishu custom bots (飞书
//! 自定义机器人). Each is a [`Notifier`] over HTTPS webhooks (reqwest,
//! rustls), with the platform's request shape, signature and error codes.
//!
//! - The message is markdown in Chinese with the content of the mail
//!   ([`render`], from the same rows as the mail text), made to fit the
//!   robot's size ([`text_budget`]): as many items as fit are listed, the
//!   rest counted per rule as the mail counts what it does not list, so
//!   the count, the status page and the closing line always arrive. Only
//!   an item too large on its own is cut, at a UTF-8 boundary with
//!   `…（详见邮件/页面）` ([`fit`]).
//! - Errors are read from the body: the platforms answer most failures with
//!   HTTP 200 and a non-zero `errcode` / `code` ([`classify`]). Rate limits
//!   (DingTalk 130101, WeCom 45009, Feishu 11232) are temporary with the
//!   platform's block as the least delay; so are signature, key and address
//!   problems (the operator fixes the config, the message must not be lost).
//!   Malformed or oversized bodies are permanent. What the administrator
//!   reads names the robot, the code and its meaning, and the fix
//!   ([`super::failure`]).
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
use crate::notify::failure;
use crate::notify::mail::{Secret, SendError};
use crate::notify::outbox::QueuedMail;
use crate::notify::templates::{self, Rendered, Unlisted};
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

/// Markdown bytes per message, as the platforms document them. DingTalk:
/// the request body at most 20,000 bytes (errcode 460101 "body 大小不合法，
/// 请保持大小在 20000bytes 以内"); the title, the JSON around the text and
/// its escapes get the 2,000 left. WeCom: markdown `content` at most 4,096
/// bytes, UTF-8 (errcode 40058). Feishu: the request body at most 20 KB
/// (20,480 bytes), with the card around the text.
fn max_bytes(kind: RobotKind) -> usize {
    match kind {
        RobotKind::DingTalk => 18_000,
        RobotKind::WeCom => 4_096,
        RobotKind::Feishu => 18_000,
    }
}

/// The @ line a DingTalk or Feishu message about a critical finding ends
/// with (WeCom sends its @ as a text message of its own); empty without
/// mentions.
fn at_line(kind: RobotKind, mentions: &[String]) -> String {
    let each = |m: &String| match kind {
        RobotKind::DingTalk => format!("@{m}"),
        RobotKind::WeCom => String::new(),
        RobotKind::Feishu => format!("<at id={m}></at>"),
    };
    mentions
        .iter()
        .map(each)
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Markdown bytes a message to a `kind` robot that @s `mentions` may hold
/// before its @ line: what [`render`] fills and the sender never cuts.
pub fn text_budget(kind: RobotKind, mentions: &[String]) -> usize {
    let at = at_line(kind, mentions);
    match at.len() {
        0 => max_bytes(kind),
        n => max_bytes(kind).saturating_sub(n + 2),
    }
}

/// The platform of a robot target (`wecom:env:VAR`), `None` for mail.
pub fn robot_kind(channel: ChannelKind) -> Option<RobotKind> {
    match channel {
        ChannelKind::Mail => None,
        ChannelKind::DingTalk => Some(RobotKind::DingTalk),
        ChannelKind::WeCom => Some(RobotKind::WeCom),
        ChannelKind::Feishu => Some(RobotKind::Feishu),
    }
}

/// How the status page names a robot target (`wecom:env:VAR`), with its
/// group's display name from `words`: `生态环境局的企业微信群机器人` (no
/// variable: officials read the page); `None` for a mail address.
pub fn target_zh(target: &str, words: &crate::status::Words) -> Option<String> {
    let kind = robot_kind(ChannelKind::of_target(target))?;
    let group = target.split(':').nth(1).unwrap_or_default();
    Some(format!(
        "{}的{}群机器人",
        words.group(group),
        failure::platform_zh(kind)
    ))
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

/// The most one row's value (or an item's title) takes in a chat message:
/// a long explanation is cut there (the mail has it whole), so the rows
/// under it, and the items after it, still show.
const ROW_BYTES: usize = 600;

/// Ends every chat message to a group that is also mailed the same items.
const FOOTER: &str = "本消息由 rulewatch 自动发送，详见同时发出的邮件。";
/// Ends a chat message to a group with no mail addresses (no mail to point to).
const FOOTER_NO_MAIL: &str = "本消息由 rulewatch 自动发送。";

/// The markdown message for `sorted` notices, at most `budget` bytes
/// ([`text_budget`] of its robot): the mail's subject as a bold first line,
/// then each item with the mail's rows (value against target, gap, since
/// when, who is responsible) and a link to the rule's page when the status
/// page has a public address; as many items as fit, the rest counted per
/// rule as the mail counts what it does not list (heading, one line per
/// rule and kind, the status page), then the closing line. Only an item
/// too large for the message on its own is cut ([`fit`]); the count and
/// the closing line stay.
pub fn render(
    sorted: &[&Notice],
    tz: Tz,
    words: &crate::status::Words,
    public_url: Option<&str>,
    budget: usize,
    with_mail: bool,
) -> Rendered {
    let footer = if with_mail { FOOTER } else { FOOTER_NO_MAIL };
    let subject = templates::subject_line(sorted);
    let head = format!(
        "**{}**\n\nrulewatch 有 {} 项新通知：\n\n",
        fit(&subject, ROW_BYTES),
        sorted.len()
    );
    let blocks: Vec<String> = sorted
        .iter()
        .take(templates::MAX_LISTED)
        .enumerate()
        .map(|(i, n)| item_markdown(i + 1, n, tz, words, public_url))
        .collect();
    let fixed = head.len() + footer.len();
    // prefix[k]: bytes of the first k items.
    let prefix: Vec<usize> = std::iter::once(0)
        .chain(blocks.iter().scan(0, |sum, b| {
            *sum += b.len();
            Some(*sum)
        }))
        .collect();
    let listed_all = sorted.len() == blocks.len();
    let (listed, counted) = if listed_all && fixed + prefix[blocks.len()] <= budget {
        (blocks.concat(), String::new())
    } else {
        // The most items that leave room for the count of the rest: first
        // with a line for every rule and kind (the group reads the whole
        // picture from them), else with the last lines folded into one.
        let room = |k: usize| budget.checked_sub(fixed + prefix[k]);
        let mut fitting = None;
        for k in (1..=blocks.len()).rev() {
            let Some(room_k) = room(k) else { continue };
            let md = templates::unlisted_after(sorted, k, words, public_url)
                .map(|u| counted_text(&u))
                .unwrap_or_default();
            if md.len() <= room_k {
                fitting = Some((k, md));
                break;
            }
            // Listing fewer only lengthens the count.
            if md.len() > room(1).unwrap_or(0) {
                break;
            }
        }
        let fitting = fitting.or_else(|| {
            (1..=blocks.len()).rev().find_map(|k| {
                let room = room(k)?;
                match templates::unlisted_after(sorted, k, words, public_url) {
                    None => Some((k, String::new())),
                    Some(u) => counted_markdown(&u, room).map(|md| (k, md)),
                }
            })
        });
        match fitting {
            Some((k, md)) => (blocks[..k].concat(), md),
            None => {
                // The first item alone is too large: cut, the rest counted.
                let counted = templates::unlisted_after(sorted, 1, words, public_url)
                    .and_then(|u| counted_markdown(&u, budget.saturating_sub(fixed) / 2))
                    .unwrap_or_default();
                let room = budget.saturating_sub(fixed + counted.len() + 2);
                (format!("{}\n\n", fit(&blocks[0], room)), counted)
            }
        }
    };
    Rendered {
        subject,
        text: format!("{head}{listed}{counted}{footer}"),
        html: String::new(),
    }
}

/// One listed item: `**3. 【严重·告警】title**`, its rows, its page.
fn item_markdown(
    number: usize,
    n: &Notice,
    tz: Tz,
    words: &crate::status::Words,
    public_url: Option<&str>,
) -> String {
    let mut text = format!(
        "**{number}. 【{}】{}**\n\n",
        templates::item_tag(n),
        fit(&one_line(&n.title), ROW_BYTES)
    );
    for (name, value) in templates::rows_in(n, tz, words) {
        // The rule file and version are for the operator; the mail has them.
        if name == "依据" {
            continue;
        }
        text.push_str(&format!(
            "- {name}：{}\n",
            fit(&one_line(&value), ROW_BYTES)
        ));
    }
    if let (Some(base), Audience::Rule) = (public_url, n.kind.audience()) {
        text.push_str(&format!(
            "- [查看详情]({base}/rules/{})\n",
            utf8_percent_encode(&n.rule, URL_PART)
        ));
    }
    text.push('\n');
    text
}

/// The count of what a chat message does not list, as markdown: the
/// heading, a line per rule and kind, the status page.
fn counted_text(u: &Unlisted) -> String {
    let mut text = format!("**{}**\n\n", u.heading);
    for line in &u.lines {
        text.push_str(&format!("- {line}\n"));
    }
    text.push_str(&format!("\n{}\n\n", u.where_markdown()));
    text
}

/// [`counted_text`] within `room` bytes, the last lines folded into one
/// when they do not all fit. `None` when not even the heading, one line and
/// the page fit.
fn counted_markdown(u: &Unlisted, room: usize) -> Option<String> {
    let whole = counted_text(u);
    if whole.len() <= room {
        return Some(whole);
    }
    // Lines kept before the folded one: the most whose bytes leave room.
    let line_bytes: Vec<usize> = u.lines.iter().map(|l| l.len() + 3).collect();
    let base = whole.len() - line_bytes.iter().sum::<usize>();
    let mut keep = 0;
    let mut used = base + FOLD_BYTES;
    while keep < line_bytes.len() && used + line_bytes[keep] <= room {
        used += line_bytes[keep];
        keep += 1;
    }
    (0..=keep)
        .rev()
        .map(|k| counted_text(&u.folded(k)))
        .find(|text| text.len() <= room)
}

/// Bytes the folded line (`- 其余 12 条规则：4500 项`) takes at most, near enough.
const FOLD_BYTES: usize = 64;

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
    #[error(
        "环境变量 `{var}` 没有设置或是空的：它应存放接收组 `{group}` 的{platform}群机器人的{what_zh}。\
         请写进 /etc/rulewatch/secrets.env（服务的 EnvironmentFile）后重启，或从配置里删去这个机器人 \
         / environment variable `{var}` ({what} of the {kind} robot of recipient group `{group}`) is not set or empty"
    )]
    MissingVar {
        var: String,
        what: &'static str,
        what_zh: &'static str,
        kind: &'static str,
        platform: &'static str,
        group: String,
    },
    #[error("群机器人的 HTTP 客户端建不起来（本机的 TLS 证书库？）/ cannot set up the HTTP client for chat robots: {0}")]
    Client(String),
}

/// A robot with its token and secret read from the environment.
struct RobotClient {
    robot: Robot,
    token: Secret,
    secret: Option<Secret>,
    /// Its recipient group's display name (config `group_names`), if any.
    group_name: Option<String>,
}

impl RobotClient {
    fn scrub(&self, text: &str) -> String {
        let text = self.token.scrub(text);
        match &self.secret {
            Some(s) => s.scrub(&text),
            None => text,
        }
    }

    /// For the administrator's words: `企业微信群机器人（生态环境局，接收组
    /// env，环境变量 RW_WC_KEY）`; no token.
    fn name_zh(&self) -> String {
        format!(
            "{}群机器人（{}接收组 {}，环境变量 {}）",
            failure::platform_zh(self.robot.kind),
            self.group_name
                .as_ref()
                .map_or(String::new(), |n| format!("{n}，")),
            self.robot.group,
            self.robot.token_env
        )
    }

    /// For logs: platform, group, variable and host; no token.
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
            what_zh: match what {
                "key" => " webhook key",
                "access token" => " access_token",
                _ => "加签密钥",
            },
            kind: robot.kind.as_str(),
            platform: failure::platform_zh(robot.kind),
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
                group_name: config.group_names.get(&robot.group).cloned(),
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
        let who = robot.name_zh();
        let timeout = Duration::from_millis(robot.robot.timeout.max(1) as u64);
        let request = self.http.post(url).timeout(timeout).json(body).send();
        // The whole exchange, body included, within the timeout.
        let exchange = async {
            let response = request.await?;
            let status = response.status();
            let text = response.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        };
        // Host and port only: the token is in the path or the query.
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| {
                let host = u.host_str()?.to_string();
                Some(match u.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host,
                })
            })
            .unwrap_or_default();
        let no_answer = || {
            SendError::temporary(
                format!("{who}在 {} 秒内没有应答", timeout.as_secs_f64()),
                format!(
                    "请确认本机能访问 {host}（代理、防火墙）；平台慢时可调大该机器人的 timeout"
                ),
                format!("no answer within {} s", timeout.as_secs_f64()),
            )
        };
        let (status, text) = match tokio::time::timeout(timeout, exchange).await {
            Err(_) => return Err(no_answer()),
            Ok(Err(e)) if e.is_timeout() => return Err(no_answer()),
            Ok(Err(e)) => {
                let e = e.without_url();
                let fix =
                    "请确认本机能访问该地址（代理、防火墙、域名解析）；私有部署请核对 base_url";
                let io = std::error::Error::source(&e).and_then(|mut cause| loop {
                    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                        break Some(io);
                    }
                    cause = cause.source()?;
                });
                let error = match io {
                    Some(io) if e.is_connect() => {
                        let mut error =
                            failure::connect_failed(&host, io, &format!("{who}的平台地址"), fix);
                        error.original = error_chain(&e);
                        error
                    }
                    _ if e.is_connect() => SendError::temporary(
                        format!("连不上{who}的平台地址 {host}"),
                        fix,
                        error_chain(&e),
                    ),
                    _ => SendError::temporary(
                        format!("与{who}的平台通信出错"),
                        "一般会自行恢复；若一直如此，请检查本机到平台的网络（代理、防火墙）",
                        error_chain(&e),
                    ),
                };
                return Err(error.map_text(|t| robot.scrub(t)));
            }
            Ok(Ok(answer)) => answer,
        };
        classify(self.kind, status.as_u16(), &text).map_err(|e| {
            SendError {
                what: format!("{who}：{}", e.what),
                ..e
            }
            .map_text(|t| robot.scrub(t))
        })
    }

    async fn send(&self, robot: &RobotClient, message: &QueuedMail) -> Result<(), SendError> {
        let mention = message.items.iter().any(|i| i.critical) && !robot.robot.mentions.is_empty();
        let max = max_bytes(self.kind);
        let mentions = &robot.robot.mentions;
        match self.kind {
            RobotKind::DingTalk => {
                let text = if mention {
                    format!(
                        "{}\n\n{}",
                        fit(&message.text, text_budget(self.kind, mentions)),
                        at_line(self.kind, mentions)
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
                        tracing::warn!(message_id = %message.message_id, error = %e,
                            "wecom mention (@) not sent; the message itself was");
                    }
                }
                Ok(())
            }
            RobotKind::Feishu => {
                let content = if mention {
                    format!(
                        "{}\n\n{}",
                        fit(&message.text, text_budget(self.kind, mentions)),
                        at_line(self.kind, mentions)
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
                None => Err(SendError::temporary(
                    format!(
                        "配置里没有群机器人 `{}`（消息排队后，机器人从配置中删除或改了名）",
                        message.recipient
                    ),
                    "把这个机器人加回配置即可送出；不再需要的可不理会，同样的内容已随邮件发出",
                    "",
                )),
            }
        })
    }

    fn limits(&self) -> Option<ChatLimits> {
        // Messages are grouped to what the robot with the longest @ line
        // takes: a group never needs cutting.
        let max_bytes = self
            .robots
            .iter()
            .map(|r| text_budget(self.kind, &r.robot.mentions))
            .min()
            .unwrap_or(max_bytes(self.kind));
        Some(ChatLimits {
            per_minute: PER_MINUTE,
            max_bytes,
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
        let original = format!("HTTP {status}, answer without a code: {snippet}");
        // 400/413: this body will never be taken. Anything else (5xx, a
        // proxy's error page, a wrong address) may pass later.
        return Err(match status {
            400 | 413 => SendError::permanent(
                format!("平台不收这个请求（HTTP {status}）"),
                failure::REPORT_BUG,
                original,
            ),
            404 => SendError::temporary(
                "平台上没有这个地址（HTTP 404）",
                "请核对该机器人的 base_url，或环境变量里的 webhook 地址",
                original,
            ),
            500..=599 => SendError::temporary(
                format!("平台或中间的代理暂时故障（HTTP {status}）"),
                "一般会自行恢复；若一直如此，请检查本机到平台的网络和代理",
                original,
            ),
            _ => SendError::temporary(
                format!("平台的应答没有错误码（HTTP {status}）"),
                "请确认本机到平台的网络没有被代理改写；私有部署请核对 base_url",
                original,
            ),
        });
    };
    if code == 0 && (200..300).contains(&status) {
        return Ok(());
    }
    let original = format!("HTTP {status}, code {code}: {msg}");
    let (what, fix) = match failure::robot_code(kind, code) {
        _ if code == 0 => (
            format!("平台应答 HTTP {status}"),
            "一般会自行恢复；若一直如此，请检查本机到平台的网络和代理",
        ),
        Some((meaning, fix)) => (format!("平台拒收消息，错误码 {code}（{meaning}）"), fix),
        None => (
            format!("平台拒收消息，错误码 {code}"),
            "请按错误码查阅平台文档；是配置问题的，改好后会自动补发",
        ),
    };
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
            retry_after: Some(wait),
            ..SendError::temporary(what, fix, original)
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
        SendError::permanent(what, fix, original)
    } else {
        SendError::temporary(what, fix, original)
    })
}

/// An error and its causes, `a: b: c` (reqwest's own text says only
/// "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
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
    use crate::alerts::state::{NoticeKind, Severity};
    use crate::status::Words;

    const SH: Tz = chrono_tz::Asia::Shanghai;

    /// `count` breaches of each `(rule, count)`, sorted as a message lists them.
    fn breaches(rules: &[(&str, usize)]) -> Vec<Notice> {
        let at = crate::time::parse_time("2021-03-01T09:00", SH).unwrap();
        let mut out = Vec::new();
        for (rule, count) in rules {
            for k in 0..*count {
                let mut details = serde_json::Map::new();
                details.insert("value".into(), 5.1.into());
                details.insert("threshold".into(), 4.5.into());
                details.insert("unit".into(), "%".into());
                out.push(Notice {
                    kind: NoticeKind::Firing,
                    rule: rule.to_string(),
                    title: format!("{rule} 城镇登记失业率 ≤ 4.5%"),
                    severity: Severity::Critical,
                    owner: Some("人社局".into()),
                    file: format!("rules/{rule}.rhai").into(),
                    content_hash: "0123456789abcdef".into(),
                    subject: [("county".to_string(), format!("县{k:03}"))].into(),
                    at,
                    since: at,
                    message: format!("县{k:03}城镇登记失业率 5.1% 超过 4.5%"),
                    details,
                    recipients: vec![],
                });
            }
        }
        out
    }

    fn chat(notices: &[Notice], budget: usize) -> String {
        let mut sorted: Vec<&Notice> = notices.iter().collect();
        templates::sort_notices(&mut sorted);
        render(
            &sorted,
            SH,
            &Words::default(),
            Some("https://kaohe.example.cn"),
            budget,
            true,
        )
        .text
    }

    /// A group with robots and no mail addresses is not pointed to a mail.
    #[test]
    fn a_group_without_mail_is_not_pointed_to_one() {
        let notices = breaches(&[("a-jobs", 3)]);
        let sorted: Vec<&Notice> = notices.iter().collect();
        let text = |with_mail| render(&sorted, SH, &Words::default(), None, 4_096, with_mail).text;
        assert!(text(true).ends_with("本消息由 rulewatch 自动发送，详见同时发出的邮件。"));
        let alone = text(false);
        assert!(alone.ends_with("本消息由 rulewatch 自动发送。"), "{alone}");
        assert!(!alone.contains("邮件"), "{alone}");
    }

    /// Items a message lists one by one, and items its count lines count.
    fn listed_and_counted(text: &str) -> (usize, usize) {
        let listed = text
            .lines()
            .filter(|l| {
                l.starts_with("**")
                    && l[2..]
                        .split_once(". 【")
                        .is_some_and(|(n, _)| n.parse::<usize>().is_ok())
            })
            .count();
        let counted = match text.split_once("**另有 ") {
            None => 0,
            Some((_, rest)) => rest
                .lines()
                .filter_map(|l| l.strip_prefix("- "))
                .map(|l| {
                    let before = &l[..l.find(" 项").expect("a count")];
                    let digits: String = before
                        .chars()
                        .rev()
                        .take_while(char::is_ascii_digit)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    digits.parse::<usize>().unwrap()
                })
                .sum(),
        };
        (listed, counted)
    }

    /// WeCom takes 4,096 bytes: a message of dozens or hundreds of items
    /// lists what fits and counts the rest, so the count, the status page
    /// and the closing line arrive; nothing is cut mid-item.
    #[test]
    fn a_chat_message_lists_what_fits_and_counts_the_rest() {
        for kind in [RobotKind::WeCom, RobotKind::DingTalk, RobotKind::Feishu] {
            let budget = text_budget(kind, &[]);
            for total in [1, 5, 30, 60, 600, 3000] {
                let notices = breaches(&[("a-jobs", total / 3), ("b-air", total - total / 3)]);
                let text = chat(&notices, budget);
                assert!(text.len() <= budget, "{kind:?} {total}: {}", text.len());
                assert!(text.ends_with(FOOTER), "{kind:?} {total}: {text}");
                assert!(!text.contains(CUT_MARK), "{kind:?} {total}: {text}");
                let (listed, counted) = listed_and_counted(&text);
                assert_eq!(listed + counted, total, "{kind:?} {total}: {text}");
                assert!(listed >= 1, "{kind:?} {total}");
                if counted > 0 {
                    let page =
                        "\n\n每一项的明细见状态页各规则的页面：[https://kaohe.example.cn/](https://kaohe.example.cn/)\n\n";
                    assert!(text.ends_with(&format!("{page}{FOOTER}")), "{text}");
                    assert!(
                        text.contains(&format!("另有 {counted} 项未逐条列出（共 {total} 项，")),
                        "{text}"
                    );
                }
                if kind == RobotKind::WeCom && total == 60 {
                    insta::assert_snapshot!(text);
                }
            }
        }
    }

    /// Hundreds of rules: their count lines do not all fit either; the last
    /// ones are folded into one line and the counts still add up.
    #[test]
    fn count_lines_that_do_not_fit_are_folded_into_one() {
        let rules: Vec<(String, usize)> = (0..200).map(|i| (format!("r{i:03}"), 3)).collect();
        let rules: Vec<(&str, usize)> = rules.iter().map(|(r, n)| (r.as_str(), *n)).collect();
        let notices = breaches(&rules);
        let text = chat(&notices, text_budget(RobotKind::WeCom, &[]));
        assert!(text.len() <= 4_096, "{}", text.len());
        let (listed, counted) = listed_and_counted(&text);
        assert_eq!(listed + counted, 600, "{text}");
        assert!(text.contains("- 其余 "), "{text}");
        assert!(text.ends_with(FOOTER), "{text}");
    }

    /// One item larger than the message: it alone is cut, the count of the
    /// others and the closing line stay.
    #[test]
    fn only_an_item_too_large_on_its_own_is_cut() {
        let mut notices = breaches(&[("a-jobs", 3)]);
        for n in &mut notices {
            n.title = "很长的标题".repeat(100);
            n.details.insert("note".into(), "说明".repeat(100).into());
        }
        let words = Words::with(&[("note".to_string(), "备注".to_string())].into());
        let mut sorted: Vec<&Notice> = notices.iter().collect();
        templates::sort_notices(&mut sorted);
        let text = render(&sorted, SH, &words, None, 1_500, true).text;
        assert!(text.len() <= 1_500, "{}", text.len());
        assert!(text.contains(CUT_MARK), "{text}");
        assert!(text.ends_with(FOOTER), "{text}");
        let (listed, counted) = listed_and_counted(&text);
        assert_eq!((listed, counted), (1, 2), "{text}");
        assert!(text.contains("地址请问系统管理员"), "{text}");
    }

    /// The @ line is room taken from the text: a message never needs cutting
    /// to add it.
    #[test]
    fn the_at_line_is_kept_free() {
        let mobiles = vec!["13800001111".to_string(), "13800002222".to_string()];
        assert_eq!(
            text_budget(RobotKind::DingTalk, &mobiles),
            18_000 - "@13800001111 @13800002222".len() - 2
        );
        assert_eq!(text_budget(RobotKind::WeCom, &mobiles), 4_096);
        assert_eq!(text_budget(RobotKind::Feishu, &[]), 18_000);
    }

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
