//! Mail transports (lettre 0.11, async): `.eml` files or SMTP.
//!
//! A sender reports whether a failure is worth retrying ([`SendError::temporary`]);
//! the retry loop in [`super::sender`] decides from that.
//!
//! Secrets: the SMTP password is read from the environment variable the
//! config names, kept in a [`Secret`] (whose `Debug`/`Display` print `***`),
//! and scrubbed from every error message this module makes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::{header::ContentType, Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::response::Category;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Mail, Security, Transport};
use crate::notify::outbox::QueuedMail;
use crate::time::parse_duration;

/// A value that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a mail was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Worth retrying later (connection refused, timeout, 4xx, TLS trouble);
    /// `false` when the same mail can never succeed (5xx, a bad address).
    pub temporary: bool,
    pub message: String,
    /// The server said when to try again (a chat robot's rate limit): the
    /// retry waits at least this long.
    pub retry_after: Option<crate::time::Millis>,
}

impl SendError {
    pub fn temporary(message: String) -> SendError {
        SendError {
            temporary: true,
            message,
            retry_after: None,
        }
    }

    pub fn permanent(message: String) -> SendError {
        SendError {
            temporary: false,
            message,
            retry_after: None,
        }
    }
}

/// A transport could not be set up from the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailerError {
    #[error("environment variable `{0}` (mail `password_env`) is not set or empty")]
    MissingPassword(String),
    #[error("mail `timeout`: {0}")]
    BadTimeout(String),
    #[error("cannot set up SMTP to `{host}`: {message}")]
    Smtp { host: String, message: String },
    #[error("cannot create the outbox folder `{dir}`: {message}")]
    Dir { dir: String, message: String },
}

/// Builds the MIME message for a queued mail: `From`, `To`, the stable
/// Message-ID, the subject (RFC 2047-encoded by lettre) and text + HTML parts;
/// with inline images, the HTML part and its images form a `multipart/related`.
pub fn build_message(from: &str, mail: &QueuedMail) -> Result<Message, SendError> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| SendError::permanent(format!("bad From address `{from}`: {e}")))?;
    let to: Mailbox = mail.recipient.parse().map_err(|e| {
        SendError::permanent(format!("bad recipient address `{}`: {e}", mail.recipient))
    })?;
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(mail.text.clone());
    let html = SinglePart::builder()
        .header(ContentType::TEXT_HTML)
        .body(mail.html.clone());
    let body = if mail.inline.is_empty() {
        MultiPart::alternative().singlepart(text).singlepart(html)
    } else {
        let mut related = MultiPart::related().singlepart(html);
        for image in &mail.inline {
            let content_type = ContentType::parse(&image.content_type).map_err(|e| {
                SendError::permanent(format!(
                    "bad inline image type `{}`: {e}",
                    image.content_type
                ))
            })?;
            related = related.singlepart(
                Attachment::new_inline(image.cid.clone()).body(image.data.clone(), content_type),
            );
        }
        MultiPart::alternative().singlepart(text).multipart(related)
    };
    Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(mail.message_id.clone()))
        .multipart(body)
        .map_err(|e| SendError::permanent(format!("cannot build the message: {e}")))
}

/// Where mail goes.
pub enum Mailer {
    File(FileMailer),
    Smtp(SmtpMailer),
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Mailer {
    /// The transport the config names. For SMTP the password is read here,
    /// from the environment variable `password_env` names.
    pub fn from_config(mail: &Mail) -> Result<Mailer, MailerError> {
        match &mail.transport {
            Transport::File { dir } => Ok(Mailer::File(FileMailer::new(dir)?)),
            Transport::Smtp {
                host,
                port,
                security,
                username,
                password_env,
                timeout,
                ..
            } => {
                let timeout = parse_duration(timeout).map_err(MailerError::BadTimeout)?;
                let password = match (username, password_env) {
                    (Some(_), Some(var)) => Some(
                        std::env::var(var)
                            .ok()
                            .filter(|p| !p.is_empty())
                            .map(Secret::new)
                            .ok_or_else(|| MailerError::MissingPassword(var.clone()))?,
                    ),
                    _ => None,
                };
                let credentials = username.clone().zip(password);
                Ok(Mailer::Smtp(SmtpMailer::new(
                    host,
                    *port,
                    *security,
                    credentials,
                    Duration::from_millis(timeout.max(1) as u64),
                )?))
            }
        }
    }

    /// Where mail goes, for logs: `file outbox/` or `smtp host:port (StartTls)`.
    pub fn describe(&self) -> String {
        match self {
            Mailer::File(f) => format!("file {}", f.dir.display()),
            Mailer::Smtp(s) => format!("smtp {}:{} ({:?})", s.host, s.port, s.security),
        }
    }

    /// Sends one message. Never returns or logs a secret.
    pub async fn send(&self, message: &Message, message_id: &str) -> Result<(), SendError> {
        match self {
            Mailer::File(f) => f.send(message, message_id).await,
            Mailer::Smtp(s) => s.send(message).await,
        }
    }
}

/// One `.eml` file per message in a folder.
///
/// Not lettre's `AsyncFileTransport`: that one names each file by a fresh
/// UUID, so a mail re-sent after a crash would appear twice. This one names
/// the file by the (stable) Message-ID and writes it atomically (temporary
/// file, fsync, rename): a resend replaces the same file, so the file
/// transport delivers exactly once, crashes included.
pub struct FileMailer {
    dir: PathBuf,
}

impl FileMailer {
    pub fn new(dir: &Path) -> Result<FileMailer, MailerError> {
        std::fs::create_dir_all(dir).map_err(|e| MailerError::Dir {
            dir: dir.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(FileMailer {
            dir: dir.to_path_buf(),
        })
    }

    /// The file a message with this Message-ID is written to.
    pub fn path_for(&self, message_id: &str) -> PathBuf {
        let name: String = message_id
            .trim_start_matches('<')
            .split('@')
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let name = if name.is_empty() {
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                message_id.as_bytes(),
            ))
        } else {
            name
        };
        self.dir.join(format!("{name}.eml"))
    }

    async fn send(&self, message: &Message, message_id: &str) -> Result<(), SendError> {
        let path = self.path_for(message_id);
        let tmp = path.with_extension("eml.tmp");
        let bytes = message.formatted();
        let write = async {
            tokio::fs::create_dir_all(&self.dir).await?;
            let mut file = tokio::fs::File::create(&tmp).await?;
            tokio::io::AsyncWriteExt::write_all(&mut file, &bytes).await?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&tmp, &path).await
        };
        // A full disk or a read-only folder can be fixed by the operator: retry.
        write
            .await
            .map_err(|e| SendError::temporary(format!("cannot write `{}`: {e}", path.display())))
    }
}

/// SMTP through lettre's pooled async transport.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    host: String,
    port: u16,
    security: Security,
    timeout: Duration,
    password: Option<Secret>,
}

impl SmtpMailer {
    /// `Security::None` is plain SMTP (`builder_dangerous`), `StartTls`
    /// upgrades (`starttls_relay`, refusing servers that cannot), `Tls` is
    /// implicit TLS (`relay`); the port is always the configured one.
    pub fn new(
        host: &str,
        port: u16,
        security: Security,
        credentials: Option<(String, Secret)>,
        timeout: Duration,
    ) -> Result<SmtpMailer, MailerError> {
        let password = credentials.as_ref().map(|(_, p)| p.clone());
        let scrub = |text: String| match &password {
            Some(p) => p.scrub(&text),
            None => text,
        };
        let builder = match security {
            Security::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            Security::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| MailerError::Smtp {
                    host: host.to_string(),
                    message: scrub(e.to_string()),
                })?,
            Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|e| {
                MailerError::Smtp {
                    host: host.to_string(),
                    message: scrub(e.to_string()),
                }
            })?,
        };
        // lettre's timeout covers connect and each command; the whole send is
        // bounded again in `send` (a server may accept and then stall).
        let mut builder = builder.port(port).timeout(Some(timeout));
        if let Some((user, pass)) = credentials {
            builder = builder.credentials(Credentials::new(user, pass.expose().to_string()));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            host: host.to_string(),
            port,
            security,
            timeout,
            password,
        })
    }

    fn scrub(&self, text: String) -> String {
        match &self.password {
            Some(p) => p.scrub(&text),
            None => text,
        }
    }

    async fn send(&self, message: &Message) -> Result<(), SendError> {
        let at = format!("smtp {}:{}", self.host, self.port);
        match tokio::time::timeout(self.timeout, self.transport.send(message.clone())).await {
            Err(_) => Err(SendError::temporary(format!(
                "{at}: no answer within {} s",
                self.timeout.as_secs_f64()
            ))),
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(e)) => {
                let message = self.scrub(format!("{at}: {e}"));
                Err(SendError {
                    temporary: is_temporary(&e),
                    message,
                    retry_after: None,
                })
            }
        }
    }
}

/// Whether an SMTP failure is worth retrying.
///
/// - 5xx replies are permanent (the server will refuse the same mail again:
///   unknown mailbox, policy) — except 53x, authentication problems (530
///   auth required, 535 bad credentials), which the operator fixes in the
///   config: retrying those loses nothing, giving up would lose the mail.
/// - 4xx replies, refused or dropped connections, timeouts, TLS and
///   protocol trouble are temporary.
pub fn is_temporary(e: &lettre::transport::smtp::Error) -> bool {
    if e.is_permanent() {
        return matches!(e.status(), Some(code) if code.category == Category::Unspecified3);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_print_as_stars() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.scrub("auth hunter2 failed"), "auth *** failed");
    }

    #[test]
    fn file_names_come_from_the_message_id() {
        let f = FileMailer {
            dir: "outbox".into(),
        };
        assert_eq!(
            f.path_for("<abc123@rulewatch>"),
            PathBuf::from("outbox/abc123.eml")
        );
        assert!(f.path_for("<../../x@y>").ends_with("x.eml"));
        let odd = f.path_for("<@>");
        assert_eq!(odd.extension().unwrap(), "eml");
        assert!(odd.file_stem().unwrap().len() == 64);
    }
}
