//! Notifications: alerts produce notices, this module turns them into
//! outgoing messages, as a pipeline of separate stages (Alertmanager style):
//!
//! 1. **route** ([`route`]): each notice to its readers (the rule's
//!    recipients, or the owner of the metric it is about (config `owners:`),
//!    or `admin` for rule errors and for rules without any);
//! 2. **group** ([`compose_all`]): one mail per recipient per evaluation,
//!    listing everything new for them, with a stable Message-ID;
//! 3. **queue** ([`outbox`]): in the same SQLite transaction as the state
//!    change that caused it: [`MailSettings`] is the alerts'
//!    [`NoticeSink`], called by `AlertStore::record` inside its transaction;
//!    a row names its channel and target;
//! 4. **send** ([`sender`]): a worker takes due messages, draws their charts
//!    ([`chart`]), hands each to the [`Notifier`] of its channel
//!    ([`channel`]; mail through a [`mail::Mailer`]) and retries temporary
//!    failures with backoff.
//!
//! Dedup is the outbox's unique Message-ID: the same notice for the same
//! reader is queued once, however often it is offered.

pub mod channel;
pub mod chart;
pub mod chat;
pub mod digest;
pub mod failure;
pub mod mail;
pub mod outbox;
pub mod route;
pub mod sender;
pub mod templates;

use std::collections::{BTreeMap, BTreeSet};

use chrono_tz::Tz;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::alerts::state::{Audience, Notice};
use crate::alerts::{AdminNote, NoticeSink};
use crate::config::Config;
use crate::readings::Labels;
use crate::status::Words;
use crate::time::Millis;

pub use channel::{ChannelKind, MailNotifier, Notifier};
pub use mail::{Mailer, SendError};
pub use outbox::{OutboxCounts, QueuedMail};
pub use route::{route, Routing};
pub use sender::{Channels, ChannelsHandle, MailStats, RetryPolicy, Round, Sender};

/// What the notification stages need from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// `From:` of every mail, e.g. `南宫市目标考核 <alerts@example.cn>`.
    pub from: String,
    /// Told about rule errors, broken rule files and delivery failures.
    pub admin: Vec<String>,
    /// Times in mails are shown in this zone.
    pub timezone: Tz,
    /// Display names of label and detail keys (config `labels:`).
    pub words: Words,
    /// Who owns which metric (config `owners:`).
    pub routing: Routing,
    /// Address → how its reader is greeted (`致：人社局`), from the groups
    /// (config `group_names:`) the address belongs to.
    pub greetings: BTreeMap<String, String>,
    /// Where officials reach the status page: chat messages link to the
    /// rule's page there.
    pub public_url: Option<String>,
    /// Robot target → markdown bytes its messages may hold (the platform's
    /// limit less the robot's @ line, [`chat::text_budget`]).
    pub chat_budgets: BTreeMap<String, usize>,
    /// Robot targets whose group has mail addresses too: their messages
    /// point to the mail; a group reached only by robots is not told of one.
    pub chat_with_mail: BTreeSet<String>,
}

impl MailSettings {
    pub fn from_config(config: &Config) -> MailSettings {
        MailSettings {
            from: config.mail.from.clone(),
            admin: config.admin.clone(),
            timezone: config.timezone,
            words: Words::with(&config.labels),
            routing: Routing::from_config(config),
            greetings: greetings(config),
            public_url: config.public_url.clone(),
            chat_budgets: config
                .robots
                .iter()
                .map(|r| (r.target(), chat::text_budget(r.kind, &r.mentions)))
                .collect(),
            chat_with_mail: config
                .robots
                .iter()
                .filter(|r| {
                    config
                        .recipients
                        .get(&r.group)
                        .is_some_and(|a| !a.is_empty())
                })
                .map(|r| r.target())
                .collect(),
        }
    }

    /// Settings with built-in display names, no owners and no greetings.
    pub fn new(from: &str, admin: Vec<String>, timezone: Tz) -> MailSettings {
        MailSettings {
            from: from.to_string(),
            admin,
            timezone,
            words: Words::default(),
            routing: Routing::default(),
            greetings: BTreeMap::new(),
            public_url: None,
            chat_budgets: BTreeMap::new(),
            chat_with_mail: BTreeSet::new(),
        }
    }

    /// Markdown bytes a message to robot `target` may hold: as configured,
    /// or the platform's limit for a robot the config does not name.
    pub fn chat_budget(&self, target: &str) -> usize {
        self.chat_budgets.get(target).copied().unwrap_or_else(|| {
            chat::robot_kind(ChannelKind::of_target(target))
                .map_or(usize::MAX, |kind| chat::text_budget(kind, &[]))
        })
    }
}

/// Address → the names of the groups it belongs to, joined: `人社局`.
fn greetings(config: &Config) -> BTreeMap<String, String> {
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (group, addresses) in &config.recipients {
        for a in addresses {
            names
                .entry(a.clone())
                .or_default()
                .push(config.group_name(group));
        }
    }
    names.into_iter().map(|(a, n)| (a, n.join("、"))).collect()
}

/// Whether a mail is about alerts (its failure is reported to `admin`) or is
/// itself a note to `admin` (its failure is only logged: no report loops).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    Alert,
    Admin,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Alert => "alert",
            MailKind::Admin => "admin",
        }
    }
}

/// One item of a mail, kept with the queued mail so that sending it can be
/// written to the history of each rule it concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailItem {
    pub rule: String,
    pub subject: Labels,
    /// `firing`, `reminder`, `resolved`, … (see [`crate::alerts::NoticeKind`]).
    pub notice: String,
    pub at: Millis,
    pub value: Option<f64>,
    pub message: String,
    pub content_hash: String,
    /// A `critical` finding that is still bad news: chat messages @ the
    /// group's responsible people for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub critical: bool,
}

/// A message ready for the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMail {
    /// `<…@rulewatch>`, stable for the same notices to the same recipient.
    pub message_id: String,
    /// How it goes out.
    pub channel: ChannelKind,
    /// Who gets it on that channel (a mail address, or a robot target).
    pub recipient: String,
    pub kind: MailKind,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub items: Vec<MailItem>,
    /// Images the HTML part shows by `cid:`, queued as they are.
    pub inline: Vec<chart::InlineImage>,
    /// Charts of firing and reminder items, drawn when the mail is sent.
    pub charts: Vec<chart::PendingChart>,
}

/// A Message-ID from parts that identify a mail: `<sha256(parts)@rulewatch>`,
/// the hash cut to 128 bits (32 hex digits: collisions are out of reach, and
/// the header stays on one line instead of being folded).
pub fn message_id<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    format!("<{}@rulewatch>", hex::encode(&h.finalize()[..16]))
}

/// Stage 2 for one reader: the mail listing `notices`.
pub fn compose(recipient: &str, notices: &[&Notice], tz: Tz) -> OutgoingMail {
    compose_with_charts(recipient, notices, tz, false)
}

/// The items of a message, as kept in the outbox.
fn mail_items(sorted: &[&Notice]) -> Vec<MailItem> {
    sorted
        .iter()
        .map(|n| MailItem {
            rule: n.rule.clone(),
            subject: n.subject.clone(),
            notice: n.kind.as_str().to_string(),
            at: n.at,
            value: n.value(),
            message: n.message.clone(),
            content_hash: n.content_hash.clone(),
            critical: n.severity == crate::alerts::state::Severity::Critical
                && !n.kind.is_recovery()
                && n.kind.audience() == Audience::Rule,
        })
        .collect()
}

/// The Message-ID of the message listing `sorted` to `target` (the same
/// notices to the same reader on any channel give the same id), and its kind.
fn identity(target: &str, sorted: &[&Notice]) -> (String, MailKind) {
    let ids: Vec<String> = sorted.iter().map(|n| n.id()).collect();
    let mut parts: Vec<&str> = vec!["notices", target];
    parts.extend(ids.iter().map(String::as_str));
    let kind = if sorted.iter().all(|n| n.kind.audience() == Audience::Admin) {
        MailKind::Admin
    } else {
        MailKind::Alert
    };
    (message_id(parts), kind)
}

/// Stage 2 for a reader on any channel: a mail for an address, a markdown
/// message (same content, see [`chat`]) for a robot target.
pub fn compose_for(
    target: &str,
    notices: &[&Notice],
    settings: &MailSettings,
    charts: bool,
) -> OutgoingMail {
    let channel = ChannelKind::of_target(target);
    if channel == ChannelKind::Mail {
        return compose_mail(target, notices, settings, charts);
    }
    let mut sorted = notices.to_vec();
    templates::sort_notices(&mut sorted);
    let rendered = chat::render(
        &sorted,
        settings.timezone,
        &settings.words,
        settings.public_url.as_deref(),
        settings.chat_budget(target),
        settings.chat_with_mail.contains(target),
    );
    let (message_id, kind) = identity(target, &sorted);
    OutgoingMail {
        message_id,
        channel,
        recipient: target.to_string(),
        kind,
        subject: rendered.subject,
        text: rendered.text,
        html: String::new(),
        items: mail_items(&sorted),
        inline: Vec::new(),
        charts: Vec::new(),
    }
}

/// [`compose_mail`] with built-in display names and no greeting.
pub fn compose_with_charts(
    recipient: &str,
    notices: &[&Notice],
    tz: Tz,
    charts: bool,
) -> OutgoingMail {
    compose_mail(
        recipient,
        notices,
        &MailSettings::new("", Vec::new(), tz),
        charts,
    )
}

/// [`compose`], with `charts`: a chart (PNG, inline `cid:`) under each
/// firing and reminder item, drawn when the mail is sent (an item whose rule
/// has no chart, or no data for it, shows none). The text part is the same
/// either way. Display names and the greeting come from `settings`.
pub fn compose_mail(
    recipient: &str,
    notices: &[&Notice],
    settings: &MailSettings,
    charts: bool,
) -> OutgoingMail {
    let tz = settings.timezone;
    let mut sorted = notices.to_vec();
    templates::sort_notices(&mut sorted);
    let mut pending = Vec::new();
    let mut cids = std::collections::HashMap::new();
    if charts {
        // Only listed items get a chart (the rest are counted, not shown).
        for (i, n) in sorted.iter().enumerate().take(templates::MAX_LISTED) {
            if !chart::wants_chart(n.kind) {
                continue;
            }
            let id = n.id();
            let cid = format!("chart-{}.{}@rulewatch", i + 1, &id[..16]);
            cids.insert(id, cid.clone());
            pending.push(chart::PendingChart {
                cid,
                request: chart::ChartRequest::of_notice(n),
            });
        }
    }
    let rendered = templates::render_with_charts(
        &sorted,
        tz,
        &cids,
        &settings.words,
        settings.public_url.as_deref(),
    )
    .greeting(settings.greetings.get(recipient).map(String::as_str));
    let (message_id, kind) = identity(recipient, &sorted);
    OutgoingMail {
        message_id,
        channel: ChannelKind::Mail,
        recipient: recipient.to_string(),
        kind,
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        items: mail_items(&sorted),
        inline: Vec::new(),
        charts: pending,
    }
}

/// Stages 1 and 2: one mail per reader for everything one evaluation noticed.
pub fn compose_all(notices: &[Notice], settings: &MailSettings) -> Vec<OutgoingMail> {
    compose_all_with_charts(notices, settings, false)
}

/// [`compose_all`] with charts in the mails (see [`compose_with_charts`]).
pub fn compose_all_with_charts(
    notices: &[Notice],
    settings: &MailSettings,
    charts: bool,
) -> Vec<OutgoingMail> {
    route(notices, &settings.admin, &settings.routing)
        .into_iter()
        .map(|(to, list)| compose_for(&to, &list, settings, charts))
        .collect()
}

/// A free-form note to each `admin` address, identified by `key`: the same
/// key yields the same Message-ID, so queuing it again is a no-op ("tell
/// admin once per broken version": use the file and its content hash as key).
pub fn compose_note(
    key: &str,
    rule: &str,
    title: &str,
    text: &str,
    at: Millis,
    admin: &[String],
) -> Vec<OutgoingMail> {
    let rendered = templates::render_note(title, text);
    admin
        .iter()
        .map(|to| OutgoingMail {
            message_id: message_id(["note", to.as_str(), key]),
            channel: ChannelKind::Mail,
            recipient: to.clone(),
            kind: MailKind::Admin,
            subject: rendered.subject.clone(),
            text: rendered.text.clone(),
            html: rendered.html.clone(),
            items: vec![MailItem {
                rule: rule.to_string(),
                subject: Labels::new(),
                notice: "note".into(),
                at,
                value: None,
                message: title.to_string(),
                content_hash: String::new(),
                critical: false,
            }],
            inline: Vec::new(),
            charts: Vec::new(),
        })
        .collect()
}

/// The mail pipeline as the alerts' notification seam: stages 1 to 3 inside
/// the transaction of the state change (mails with their charts still to
/// draw; rendering text is all that happens there).
impl NoticeSink for MailSettings {
    fn queue(
        &self,
        tx: &Connection,
        notices: &[Notice],
        now: Millis,
    ) -> rusqlite::Result<Vec<String>> {
        let mut queued = Vec::new();
        for mail in compose_all_with_charts(notices, self, true) {
            if outbox::enqueue(tx, &mail, now)? {
                queued.push(mail.message_id);
            }
        }
        Ok(queued)
    }

    fn note(&self, tx: &Connection, note: &AdminNote<'_>, now: Millis) -> rusqlite::Result<bool> {
        let mut queued = false;
        for mail in compose_note(note.key, note.rule, note.title, note.text, now, &self.admin) {
            queued |= outbox::enqueue(tx, &mail, now)?;
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::state::{NoticeKind, Severity};
    use crate::config::RobotKind;

    fn notice(kind: NoticeKind, rule: &str, recipients: &[&str]) -> Notice {
        Notice {
            kind,
            rule: rule.into(),
            title: format!("title of {rule}"),
            severity: Severity::Warning,
            owner: None,
            file: format!("rules/{rule}.rhai").into(),
            content_hash: "h".into(),
            subject: Labels::new(),
            at: 1000,
            since: 1000,
            message: "m".into(),
            details: Default::default(),
            recipients: recipients.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Only a robot whose group also has mail addresses points to "the
    /// mail sent at the same time".
    #[test]
    fn robots_of_a_group_with_mail_point_to_it_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        let config = crate::config::Config::parse(
            &dir.path().join("rulewatch.ron"),
            r#"(timezone: "Asia/Shanghai", rules: "rules", store: "s.db",
                mail: (from: "a <a@example.cn>", transport: File(dir: "outbox")),
                recipients: {
                    "env": (mail: ["huanbao@example.cn"], robots: [WeCom(key_env: "RW_K1")]),
                    "jobs": (mail: [], robots: [WeCom(key_env: "RW_K2")]),
                })"#,
        )
        .unwrap();
        let settings = MailSettings::from_config(&config);
        let with_mail: Vec<&str> = settings.chat_with_mail.iter().map(String::as_str).collect();
        assert_eq!(with_mail, ["wecom:env:RW_K1"]);
        let n = notice(NoticeKind::Firing, "a", &[]);
        let text = |target: &str| compose_for(target, &[&n], &settings, false).text;
        assert!(text("wecom:env:RW_K1").ends_with("详见同时发出的邮件。"));
        assert!(text("wecom:jobs:RW_K2").ends_with("本消息由 rulewatch 自动发送。"));
    }

    #[test]
    fn one_mail_per_recipient_listing_everything_for_them() {
        let notices = vec![
            notice(NoticeKind::Firing, "a", &["x@cn.cn", "y@cn.cn"]),
            notice(NoticeKind::Firing, "b", &["y@cn.cn"]),
            notice(NoticeKind::RuleError, "c", &["x@cn.cn"]),
            notice(NoticeKind::Firing, "d", &[]),
        ];
        let settings = MailSettings::new(
            "r <r@cn.cn>",
            vec!["ops@cn.cn".into()],
            chrono_tz::Asia::Shanghai,
        );
        let mails = compose_all(&notices, &settings);
        let summary: Vec<(&str, Vec<&str>, MailKind)> = mails
            .iter()
            .map(|m| {
                (
                    m.recipient.as_str(),
                    m.items.iter().map(|i| i.rule.as_str()).collect(),
                    m.kind,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("ops@cn.cn", vec!["d", "c"], MailKind::Alert),
                ("x@cn.cn", vec!["a"], MailKind::Alert),
                ("y@cn.cn", vec!["a", "b"], MailKind::Alert),
            ]
        );
        assert!(
            mails[2].subject.ends_with("等 2 项"),
            "{}",
            mails[2].subject
        );
        // Stable ids: composing again gives the same Message-IDs.
        let again = compose_all(&notices, &settings);
        assert_eq!(
            mails.iter().map(|m| &m.message_id).collect::<Vec<_>>(),
            again.iter().map(|m| &m.message_id).collect::<Vec<_>>()
        );
        assert!(
            mails[0].message_id.starts_with('<') && mails[0].message_id.ends_with("@rulewatch>")
        );
        assert_ne!(mails[1].message_id, mails[2].message_id);
    }

    #[test]
    fn notes_are_keyed() {
        let admin = vec!["ops@cn.cn".to_string()];
        let a = compose_note("load:rules/a.rhai:h1", "a", "t", "x", 0, &admin);
        let b = compose_note("load:rules/a.rhai:h1", "a", "t", "y", 5, &admin);
        let c = compose_note("load:rules/a.rhai:h2", "a", "t", "x", 0, &admin);
        assert_eq!(a[0].message_id, b[0].message_id);
        assert_ne!(a[0].message_id, c[0].message_id);
        assert_eq!(a[0].kind, MailKind::Admin);
    }

    /// A first evaluation of many rules notices thousands of things at
    /// once: the mail lists the first `MAX_LISTED` (with their charts),
    /// counts the rest per rule, and still carries every item (each one's
    /// delivery goes into its rule's history).
    #[test]
    fn a_mail_of_thousands_lists_the_first_and_counts_the_rest() {
        let mut notices = Vec::new();
        for (rule, count) in [("a-water", 30), ("b-air", 200), ("c-jobs", 20)] {
            for k in 0..count {
                let mut n = notice(NoticeKind::Firing, rule, &["x@cn.cn"]);
                n.title = format!("{rule} 达标");
                n.subject = [("county".to_string(), format!("县{k:03}"))].into();
                notices.push(n);
            }
        }
        let mut settings = MailSettings::new("r <r@cn.cn>", vec![], chrono_tz::Asia::Shanghai);
        settings.public_url = Some("https://mubiao.example.cn".into());
        let refs: Vec<&Notice> = notices.iter().collect();
        let mail = compose_mail("x@cn.cn", &refs, &settings, true);
        assert_eq!(mail.items.len(), 250, "every item kept for the history");
        assert_eq!(
            mail.charts.len(),
            templates::MAX_LISTED,
            "charts only for listed items"
        );
        assert!(mail.text.contains("100. 【"), "{}", mail.text);
        assert!(!mail.text.contains("101. 【"), "{}", mail.text);
        let counted = &mail.text[mail.text.find("另有").expect("the rest counted")..];
        insta::assert_snapshot!(counted);
        assert!(mail.html.contains("另有 150 项未逐条列出"), "{}", mail.html);
        assert!(
            mail.html
                .contains("<a href=\"https://mubiao.example.cn/\">https://mubiao.example.cn/</a>"),
            "{}",
            mail.html
        );
        assert!(mail.subject.ends_with("等 250 项"), "{}", mail.subject);

        // The chat message counts the same way what its robot's size
        // leaves out (chat.rs tests the sizes).
        let chat = compose_for("dingtalk:ops", &refs, &settings, false);
        assert!(chat.text.len() <= chat::text_budget(RobotKind::DingTalk, &[]));
        let listed = chat.text.matches("**").count() / 2 - 2;
        assert!(
            chat.text.contains(&format!(
                "另有 {} 项未逐条列出（共 250 项，群消息篇幅有限，逐条列出前 {listed} 项），按规则计：",
                250 - listed
            )),
            "{}",
            chat.text
        );
        assert!(chat
            .text
            .contains("每一项的明细见状态页各规则的页面：[https://mubiao.example.cn/](https://mubiao.example.cn/)"));
        assert_eq!(chat.items.len(), 250);
    }

    /// An address named twice (in `admin`, or as owner and recipient) still
    /// gets each notice once.
    #[test]
    fn an_address_named_twice_gets_each_notice_once() {
        let notices = vec![
            notice(NoticeKind::RuleError, "a", &["x@cn.cn"]),
            notice(NoticeKind::RuleError, "b", &["x@cn.cn"]),
        ];
        let admin = vec!["ops@cn.cn".to_string(), "ops@cn.cn".to_string()];
        let routed = route(&notices, &admin, &Routing::default());
        let rules: Vec<&str> = routed["ops@cn.cn"]
            .iter()
            .map(|n| n.rule.as_str())
            .collect();
        assert_eq!(rules, vec!["a", "b"]);
    }
}
