//! The notification seam, seen from the sending side: a [`Notifier`] delivers
//! the queued messages of one channel. Mail ([`MailNotifier`]) is the one
//! channel today; the chat robots (DingTalk, WeCom, Feishu) will each be
//! another `Notifier`, their messages queued in the same outbox with their
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
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Mail => "mail",
        }
    }

    pub fn parse(text: &str) -> Option<ChannelKind> {
        match text {
            "mail" => Some(ChannelKind::Mail),
            _ => None,
        }
    }
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
