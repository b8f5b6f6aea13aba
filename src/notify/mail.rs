//! Mail transports (lettre 0.11, async): `.eml` files or SMTP.
//!
//! A sender reports whether a failure is worth retrying ([`SendError::temporary`]);
//! the retry loop in the sender (`sender.rs`) decides from that.
//!
//! SMTP is driven one connection at a time over lettre's
//! `AsyncSmtpConnection` on a socket we open ourselves, for one reason: the
//! window between "the server accepted the mail" and "the outbox row is
//! marked sent" (a crash there repeats the mail). lettre's pooled transport
//! opens its sockets without TCP_NODELAY and writes the body and the closing
//! `.` separately, so the end marker waited ~40 ms for the server's delayed
//! ACK. Here the socket has TCP_NODELAY and the dot-stuffed body goes out with
//! its end marker in one write; the sender marks the row as soon as the 250
//! is read.
//!
//! Secrets: the SMTP password is read from the environment variable the
//! config names, kept in a [`Secret`] (whose `Debug`/`Display` print `***`),
//! and scrubbed from every error message this module makes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail as MailCommand, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Category;
use lettre::Message;

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

pub use crate::notify::failure::SendError;
use crate::notify::failure::{self, SmtpStep, REPORT_BUG};

/// A transport could not be set up from the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailerError {
    #[error(
        "环境变量 `{0}` 没有设置或是空的：它应存放发信邮箱的密码（配置 mail 的 password_env）。\
         请写进 /etc/rulewatch/secrets.env（服务的 EnvironmentFile）后重启 \
         / environment variable `{0}` (mail `password_env`) is not set or empty"
    )]
    MissingPassword(String),
    #[error("配置 mail 的 timeout 写得不对，应写成如 \"30s\"：{0} / mail `timeout`: {0}")]
    BadTimeout(String),
    #[error("连接邮件服务器 `{host}` 的设置不成立，请核对配置 mail 的 host、port 和 security：{message} / cannot set up SMTP to `{host}`: {message}")]
    Smtp { host: String, message: String },
    #[error("邮件 `ca_file`：读不了私有 CA 证书 `{path}`（mail `ca_file`: cannot read the private CA file）：{message}")]
    CaFile { path: String, message: String },
    #[error("建不了存放邮件的文件夹 `{dir}`（配置 mail 的 File(dir)），请检查路径和权限：{message} / cannot create the outbox folder `{dir}`: {message}")]
    Dir { dir: String, message: String },
}

/// Builds the MIME message for a queued mail: `From`, `To`, the stable
/// Message-ID, the subject (RFC 2047-encoded by lettre) and text + HTML parts;
/// with inline images, the HTML part and its images form a `multipart/related`.
pub fn build_message(from: &str, mail: &QueuedMail) -> Result<Message, SendError> {
    let from: Mailbox = from.parse().map_err(|e| {
        SendError::permanent(
            format!("发件地址 `{from}` 写得不对，邮件发不出"),
            "请改正配置 mail 的 from，如 `南宫市目标考核 <alerts@example.cn>`",
            format!("bad From address: {e}"),
        )
    })?;
    let to: Mailbox = mail.recipient.parse().map_err(|e| {
        SendError::permanent(
            format!("收件地址 `{}` 写得不对，邮件发不出", mail.recipient),
            "请在配置里改正这个收件地址",
            format!("bad recipient address: {e}"),
        )
    })?;
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(crlf_line_endings(&mail.text));
    let html = SinglePart::builder()
        .header(ContentType::TEXT_HTML)
        .body(crlf_line_endings(&mail.html));
    let body = if mail.inline.is_empty() {
        MultiPart::alternative().singlepart(text).singlepart(html)
    } else {
        let mut related = MultiPart::related().singlepart(html);
        for image in &mail.inline {
            let content_type = ContentType::parse(&image.content_type).map_err(|e| {
                SendError::permanent(
                    "邮件里的图表无法放入邮件",
                    REPORT_BUG,
                    format!("bad inline image type `{}`: {e}", image.content_type),
                )
            })?;
            related = related.singlepart(
                Attachment::new_inline(image.cid.clone()).body(image.data.clone(), content_type),
            );
        }
        MultiPart::alternative().singlepart(text).multipart(related)
    };
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(mail.message_id.clone()));
    for (name, value) in rulewatch_headers(mail) {
        let name = HeaderName::new_from_ascii_str(name);
        builder = builder.raw_header(HeaderValue::new(name, value));
    }
    builder.multipart(body).map_err(|e| {
        SendError::permanent(
            "邮件组装失败",
            REPORT_BUG,
            format!("cannot build the message: {e}"),
        )
    })
}

/// The text with every bare `\n` made `\r\n`, as MIME wants. lettre would
/// do it itself, but by one `String::insert` per line: quadratic, minutes
/// for a digest of a few MB. Given CRLF already, it has nothing to insert.
fn crlf_line_endings(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut after_cr = false;
    for c in text.chars() {
        if c == '\n' && !after_cr {
            out.push('\r');
        }
        out.push(c);
        after_cr = c == '\r';
    }
    out
}

/// Headers that name what a mail is about, so receivers (filters, tests)
/// can match mails without reading the Chinese text: `X-Rulewatch-Rule`,
/// `X-Rulewatch-Subject` and `X-Rulewatch-Transition`, one comma-separated
/// entry per item, in the same order. Subjects are `key=value&key=value` with
/// every byte outside `A-Za-z0-9-._~` percent-encoded (plain ASCII, whatever
/// the labels hold; `-` for no labels). A mail with no items (an admin
/// report) has none.
pub fn rulewatch_headers(mail: &QueuedMail) -> Vec<(&'static str, String)> {
    if mail.items.is_empty() {
        return Vec::new();
    }
    let join = |f: &dyn Fn(&crate::notify::MailItem) -> String| {
        mail.items.iter().map(f).collect::<Vec<_>>().join(", ")
    };
    vec![
        ("X-Rulewatch-Rule", join(&|i| percent_encode(&i.rule))),
        (
            "X-Rulewatch-Subject",
            join(&|i| {
                let pairs: Vec<String> = i
                    .subject
                    .iter()
                    .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
                    .collect();
                if pairs.is_empty() {
                    "-".to_string()
                } else {
                    pairs.join("&")
                }
            }),
        ),
        (
            "X-Rulewatch-Transition",
            join(&|i| percent_encode(&i.notice)),
        ),
    ]
}

/// `text` with every byte outside `A-Za-z0-9-._~` written as `%XX`.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where mail goes. (One per daemon: the SMTP variant's size does not matter.)
#[allow(clippy::large_enum_variant)]
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
                ca_file,
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
                let ca = match ca_file {
                    Some(path) => Some(std::fs::read(path).map_err(|e| MailerError::CaFile {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?),
                    None => None,
                };
                Ok(Mailer::Smtp(SmtpMailer::new(
                    host,
                    *port,
                    *security,
                    credentials,
                    Duration::from_millis(timeout.max(1) as u64),
                    ca.as_deref(),
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
        write.await.map_err(|e| {
            SendError::temporary(
                format!("写不了邮件文件 `{}`", path.display()),
                format!("请检查磁盘空间和文件夹 `{}` 的写权限", self.dir.display()),
                e.to_string(),
            )
        })
    }
}

/// SMTP over one kept-open connection (see the module comment for why not
/// lettre's pooled transport). A connection is reused while it answers
/// `NOOP`; any failure or timeout drops it and the next mail reconnects.
pub struct SmtpMailer {
    host: String,
    port: u16,
    security: Security,
    timeout: Duration,
    credentials: Option<Credentials>,
    password: Option<Secret>,
    tls: Option<TlsParameters>,
    hello: ClientId,
    connection: tokio::sync::Mutex<Option<AsyncSmtpConnection>>,
}

impl SmtpMailer {
    /// `Security::None` is plain SMTP, `StartTls` upgrades (refusing servers
    /// that cannot), `Tls` is implicit TLS; the port is always the configured
    /// one. Certificates are verified against the system roots plus `ca_pem`
    /// (a private CA, PEM), and the name must match `host`.
    pub fn new(
        host: &str,
        port: u16,
        security: Security,
        credentials: Option<(String, Secret)>,
        timeout: Duration,
        ca_pem: Option<&[u8]>,
    ) -> Result<SmtpMailer, MailerError> {
        let password = credentials.as_ref().map(|(_, p)| p.clone());
        let scrub = |text: String| match &password {
            Some(p) => p.scrub(&text),
            None => text,
        };
        let smtp_error = |message: String| MailerError::Smtp {
            host: host.to_string(),
            message: scrub(message),
        };
        let tls = match security {
            Security::None => None,
            Security::StartTls | Security::Tls => {
                let mut builder = TlsParameters::builder(host.to_string());
                if let Some(pem) = ca_pem {
                    let cert = Certificate::from_pem(pem).map_err(|e| MailerError::CaFile {
                        path: "ca_file".into(),
                        message: format!("不是 PEM 证书（not a PEM certificate）: {e}"),
                    })?;
                    builder = builder.add_root_certificate(cert);
                }
                Some(builder.build().map_err(|e| smtp_error(e.to_string()))?)
            }
        };
        Ok(SmtpMailer {
            host: host.to_string(),
            port,
            security,
            timeout,
            credentials: credentials
                .map(|(user, pass)| Credentials::new(user, pass.expose().to_string())),
            password,
            tls,
            hello: ClientId::default(),
            connection: tokio::sync::Mutex::new(None),
        })
    }

    fn scrub(&self, text: String) -> String {
        match &self.password {
            Some(p) => p.scrub(&text),
            None => text,
        }
    }

    /// Opens a connection: TCP with TCP_NODELAY, TLS as configured, AUTH.
    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(Failure::Connect)?;
        tcp.set_nodelay(true).map_err(Failure::Connect)?;
        let mut connection = match (&self.security, &self.tls) {
            (Security::Tls, Some(tls)) => {
                #[allow(deprecated)]
                let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                stream
                    .upgrade_tls(tls.clone())
                    .await
                    .map_err(at(SmtpStep::Tls))?;
                AsyncSmtpConnection::connect_with_transport(
                    Box::new(TokioStream(stream)),
                    &self.hello,
                )
                .await
                .map_err(at(SmtpStep::Greeting))?
            }
            _ => AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                .await
                .map_err(at(SmtpStep::Greeting))?,
        };
        if let (Security::StartTls, Some(tls)) = (&self.security, &self.tls) {
            connection
                .starttls(tls.clone(), &self.hello)
                .await
                .map_err(at(SmtpStep::Tls))?;
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(at(SmtpStep::Auth))?;
        }
        Ok(connection)
    }

    /// MAIL, RCPT, DATA, then the body and its end marker in one write.
    async fn transact(
        connection: &mut AsyncSmtpConnection,
        message: &Message,
    ) -> Result<(), Failure> {
        let envelope = message.envelope();
        let bytes = message.formatted();
        let mut options = Vec::new();
        if !bytes.is_ascii() {
            if !connection
                .server_info()
                .supports_feature(Extension::EightBitMime)
            {
                return Err(Failure::No8BitMime);
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let from = envelope.from().map(|a| a.to_string()).unwrap_or_default();
        connection
            .command(MailCommand::new(envelope.from().cloned(), options))
            .await
            .map_err(at(SmtpStep::MailFrom(from)))?;
        for to in envelope.to() {
            connection
                .command(Rcpt::new(to.clone(), vec![]))
                .await
                .map_err(at(SmtpStep::Rcpt(to.to_string())))?;
        }
        connection.command(Data).await.map_err(at(SmtpStep::Data))?;
        match String::from_utf8(dot_stuffed(&bytes)) {
            // `command` writes its text in one `write_all` + flush and reads the reply.
            Ok(body) => connection.command(body).await,
            Err(_) => connection.message(&bytes).await,
        }
        .map_err(at(SmtpStep::Data))?;
        Ok(())
    }

    async fn send(&self, message: &Message) -> Result<(), SendError> {
        let server = format!("{}:{}", self.host, self.port);
        let attempt = async {
            let mut slot = self.connection.lock().await;
            // Taken out while in use: a timeout drops it with the future.
            let mut connection = match slot.take() {
                Some(mut c) if !c.has_broken() => {
                    if c.test_connected().await {
                        c
                    } else {
                        self.connect().await?
                    }
                }
                _ => self.connect().await?,
            };
            Self::transact(&mut connection, message).await?;
            *slot = Some(connection);
            Ok::<(), Failure>(())
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Err(_) => Err(no_answer(&server, self.timeout)),
            Ok(Ok(())) => Ok(()),
            Ok(Err(failure)) => Err(self
                .explain(&server, failure)
                .map_text(|t| self.scrub(t.to_string()))),
        }
    }

    /// A failed dialogue with `server` in words (see [`failure`]).
    fn explain(&self, server: &str, failure: Failure) -> SendError {
        let (step, e) = match failure {
            Failure::Connect(e) => {
                return failure::connect_failed(
                    server,
                    &e,
                    "邮件服务器",
                    "请确认邮件服务器在运行、配置 mail 的 host 和 port 正确、防火墙放行",
                )
            }
            Failure::No8BitMime => {
                return SendError::temporary(
                    format!("邮件服务器 {server} 不支持 8BITMIME，发不了中文正文"),
                    "请换用支持 8BITMIME 的邮件服务器（常见的都支持）",
                    "message has non-ASCII content but the server lacks 8BITMIME",
                )
            }
            Failure::Smtp(step, e) => (step, e),
        };
        let original = e.to_string();
        if let Some((what, fix)) = tls_trouble(&original, server, &self.host) {
            return SendError::temporary(what, fix, original);
        }
        match e.status() {
            Some(code) => failure::smtp_reply(
                server,
                &step,
                code.to_string().parse().unwrap_or(0),
                is_temporary(&e),
                original,
            ),
            None if e.is_tls() || step == SmtpStep::Tls => SendError::temporary(
                format!("与邮件服务器 {server} 建立加密连接（TLS）失败"),
                "请核对配置 mail 的 security 与端口是否匹配（StartTls 常用 587，Tls 常用 465）；内部 CA 请设 ca_file",
                original,
            ),
            None if e.is_timeout() => no_answer(server, self.timeout),
            None => SendError::temporary(
                format!("与邮件服务器 {server} 的会话中断"),
                "一般会自行恢复；若一直如此，请检查网络和邮件服务器",
                original,
            ),
        }
    }
}

/// `server` did not answer within `timeout`.
fn no_answer(server: &str, timeout: Duration) -> SendError {
    SendError::temporary(
        format!(
            "邮件服务器 {server} 在 {} 秒内没有应答",
            timeout.as_secs_f64()
        ),
        "请确认邮件服务器正常、网络通畅；服务器慢时可调大配置 mail 的 timeout",
        format!("no answer within {} s", timeout.as_secs_f64()),
    )
}

/// Why an SMTP dialogue failed: lettre's error at a step, or ours.
#[derive(Debug)]
enum Failure {
    Smtp(SmtpStep, lettre::transport::smtp::Error),
    /// Opening the TCP connection.
    Connect(std::io::Error),
    /// Chinese text, and the server cannot take 8-bit mail.
    No8BitMime,
}

/// Tags lettre's error with the step it happened at.
fn at(step: SmtpStep) -> impl FnOnce(lettre::transport::smtp::Error) -> Failure {
    move |e| Failure::Smtp(step, e)
}

/// The body with SMTP transparency (a line starting with `.` gets another),
/// followed by the end-of-data marker.
fn dot_stuffed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut line_start = true;
    for &b in body {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    out.extend_from_slice(b"\r\n.\r\n");
    out
}

/// A certificate problem of `server` in words (what, fix).
fn tls_trouble(error: &str, server: &str, host: &str) -> Option<(String, String)> {
    let e = error.to_ascii_lowercase();
    if e.contains("notvalidforname") || e.contains("not valid for name") {
        Some((
            format!("邮件服务器 {server} 的证书不是签给 `{host}` 的"),
            "请把配置 mail 的 host 改成证书上的名字".to_string(),
        ))
    } else if e.contains("expired") {
        Some((
            format!("邮件服务器 {server} 的证书已过期"),
            "请邮件服务器管理员更换证书".to_string(),
        ))
    } else if e.contains("unknownissuer") || e.contains("unknown issuer") {
        Some((
            format!("邮件服务器 {server} 的证书由不受信任的机构签发"),
            "内部 CA 签发的，请在配置 mail 里设 ca_file 指向该 CA 的证书".to_string(),
        ))
    } else {
        None
    }
}

/// lettre's TLS stream (futures-io) seen as a tokio stream, so an implicit-TLS
/// connection can be handed to `connect_with_transport` on our own socket.
#[allow(deprecated)]
#[derive(Debug)]
struct TokioStream(AsyncNetworkStream);

#[allow(deprecated)]
impl AsyncTokioStream for TokioStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.peer_addr()
    }
}

impl tokio::io::AsyncRead for TokioStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let unfilled = buf.initialize_unfilled();
        match futures_io::AsyncRead::poll_read(std::pin::Pin::new(&mut self.0), cx, unfilled) {
            std::task::Poll::Ready(Ok(n)) => {
                buf.advance(n);
                std::task::Poll::Ready(Ok(()))
            }
            std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl tokio::io::AsyncWrite for TokioStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        futures_io::AsyncWrite::poll_write(std::pin::Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        futures_io::AsyncWrite::poll_flush(std::pin::Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        futures_io::AsyncWrite::poll_close(std::pin::Pin::new(&mut self.0), cx)
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
    fn bodies_get_crlf_line_endings() {
        assert_eq!(crlf_line_endings("a\nb\r\nc\n\n"), "a\r\nb\r\nc\r\n\r\n");
        assert_eq!(crlf_line_endings("南宫\r\r\n"), "南宫\r\r\n");
        assert_eq!(crlf_line_endings(""), "");
    }

    #[test]
    fn a_large_digest_body_builds_with_crlf_lines() {
        // About 2 MB of short ASCII lines: lettre sends them as they are
        // (7bit), so the formatted message shows the line endings.
        let text: String = (0..140_000).map(|i| format!("item {i:06} ok\n")).collect();
        assert!(text.len() > 2_000_000);
        let mail = QueuedMail {
            id: 1,
            message_id: "<big@rulewatch>".into(),
            channel: "mail".into(),
            recipient: "ops@example.cn".into(),
            kind: crate::notify::MailKind::Admin,
            subject: "digest".into(),
            html: format!("<pre>{text}</pre>"),
            text,
            items: Vec::new(),
            created: 0,
            status: "queued".into(),
            attempts: 0,
            next_attempt: 0,
            last_error: None,
            sent_at: None,
            inline: Vec::new(),
            charts: Vec::new(),
        };
        let formatted = build_message("rulewatch <alerts@example.cn>", &mail)
            .unwrap()
            .formatted();
        let formatted = String::from_utf8(formatted).unwrap();
        assert!(formatted.contains("item 000000 ok\r\nitem 000001 ok\r\n"));
        assert!(formatted.contains("item 139999 ok\r\n"));
        let bare_lf = formatted
            .as_bytes()
            .windows(2)
            .filter(|w| w[1] == b'\n' && w[0] != b'\r')
            .count();
        assert_eq!(bare_lf, 0);
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
