//! The notification seam, seen from the sending side: a [`Notifier`] delivers
//! the queued messages of one channel. Mail ([`MailNotifier`]) and the chat
//! robots (DingTalk, WeCom, Feishu: `ChatNotifier` in `chat.rs`) are each a
//! `Notifier`, their messages queued in the same outbox with their
//! [`ChannelKind`] and target, and sent by the same worker with the same
//! retries, backoff and reports to `admin`.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use super::mail::{build_message, Mailer, SendError};
use super::outbox::QueuedMail;

/// How a queued message goes out (the outbox's `channel` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Mail,
    #[serde(rename = "dingtalk")]
    DingTalk,
    #[serde(rename = "wecom")]
    WeCom,
    Feishu,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Mail => "mail",
            ChannelKind::DingTalk => "dingtalk",
            ChannelKind::WeCom => "wecom",
            ChannelKind::Feishu => "feishu",
        }
    }

    pub fn parse(text: &str) -> Option<ChannelKind> {
        match text {
            "mail" => Some(ChannelKind::Mail),
            "dingtalk" => Some(ChannelKind::DingTalk),
            "wecom" => Some(ChannelKind::WeCom),
            "feishu" => Some(ChannelKind::Feishu),
            _ => None,
        }
    }

    /// The channel of a resolved recipient: a mail address, or a robot
    /// target `dingtalk:GROUP:VAR` (see [`crate::config::Robot::target`]).
    pub fn of_target(target: &str) -> ChannelKind {
        if target.contains('@') {
            return ChannelKind::Mail;
        }
        target
            .split_once(':')
            .and_then(|(kind, _)| ChannelKind::parse(kind))
            .unwrap_or(ChannelKind::Mail)
    }
}

/// How much a chat robot takes: messages a minute and bytes a message. The
/// sender groups the due messages of one robot into one message within
/// `max_bytes` and sends at most `per_minute` a minute; what does not fit
/// waits for the next minute, nothing is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatLimits {
    pub per_minute: usize,
    pub max_bytes: usize,
}

/// What [`Notifier::deliver`] returns: boxed, so notifiers of different
/// channels sit in one list.
pub type Delivery<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// Delivers the queued messages of one channel. A failure says whether it is
/// worth retrying ([`SendError::temporary`]); the sender decides from that.
pub trait Notifier: Send + Sync {
    fn channel(&self) -> ChannelKind;
    /// Where messages go, for logs (never a secret).
    fn describe(&self) -> String;
    /// Delivers one message to its target (charts already drawn).
    fn deliver<'a>(&'a self, message: &'a QueuedMail) -> Delivery<'a>;
    /// A chat robot's limits (none for mail: each mail goes on its own).
    fn limits(&self) -> Option<ChatLimits> {
        None
    }
}

/// Mail: a MIME message (text, HTML, inline charts) through a [`Mailer`].
pub struct MailNotifier {
    /// `From:` of every mail.
    from: String,
    mailer: Mailer,
}

impl MailNotifier {
    pub fn new(from: String, mailer: Mailer) -> MailNotifier {
        MailNotifier { from, mailer }
    }

    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }
}

impl Notifier for MailNotifier {
    fn channel(&self) -> ChannelKind {
        ChannelKind::Mail
    }

    fn describe(&self) -> String {
        self.mailer.describe()
    }

    fn deliver<'a>(&'a self, message: &'a QueuedMail) -> Delivery<'a> {
        Box::pin(async move {
            let mime = build_message(&self.from, message)?;
            self.mailer.send(&mime, &message.message_id).await
        })
    }
}
