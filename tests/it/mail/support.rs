//! Test helpers: a real SMTP server (aiosmtpd) on loopback, a scripted fake
//! SMTP server for replies aiosmtpd does not give (4xx, 5xx, stalls, AUTH),
//! and builders for rules, findings and stores.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rulewatch::alerts::{AlertRule, AlertStore, Severity};
use rulewatch::config::Security;
use rulewatch::notify::mail::SmtpMailer;
use rulewatch::notify::{MailSettings, Mailer, Sender};
use rulewatch::readings::Labels;
use rulewatch::rules::finding::{Finding, FindingKind};
use rulewatch::time::Millis;

pub const SH: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// Fails (never skips) when aiosmtpd is not installed.
pub fn require_aiosmtpd() {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd.handlers"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 with aiosmtpd is needed for the mail tests: run scripts/test-deps.sh"
    );
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_listening(port: u16, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let listening = TcpStream::connect(("127.0.0.1", port)).is_ok();
        if listening == up {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "port {port} did not become {}",
        if up { "open" } else { "closed" }
    );
}

/// One delivered message, parsed by Python's `email` package (an
/// independent MIME parser: RFC 2047 subjects decoded, parts split).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Delivered {
    pub subject: String,
    pub raw_subject: String,
    pub message_id: String,
    pub to: String,
    pub from: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub content_type: String,
    /// `X-Rulewatch-Rule`, `-Subject`, `-Transition` as on the wire ("" when absent).
    pub x_rule: String,
    pub x_subject: String,
    pub x_transition: String,
}

const READ_MAILDIR: &str = r#"
import email, email.policy, json, mailbox, sys
out = []
for key, m in sorted(mailbox.Maildir(sys.argv[1], factory=None).items()):
    raw = m.as_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    raw_msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    def part(kind):
        p = msg.get_body(preferencelist=(kind,))
        return p.get_content() if p is not None and p.get_content_subtype() == kind else None
    out.append({
        "subject": str(msg["subject"]),
        "raw_subject": str(raw_msg["subject"]),
        "message_id": str(msg["message-id"]).strip(),
        "to": str(msg["to"]),
        "from": str(msg["from"]),
        "text": part("plain"),
        "html": part("html"),
        "content_type": msg.get_content_type(),
        "x_rule": str(raw_msg["x-rulewatch-rule"] or ""),
        "x_subject": str(raw_msg["x-rulewatch-subject"] or ""),
        "x_transition": str(raw_msg["x-rulewatch-transition"] or ""),
    })
print(json.dumps(out))
"#;

/// aiosmtpd with its `Mailbox` handler (`Mailbox(mail_dir)`: every message
/// lands in a Maildir) on 127.0.0.1:`port`.
pub struct SmtpServer {
    pub child: Option<Child>,
    pub port: u16,
    pub maildir: PathBuf,
}

impl SmtpServer {
    pub fn start(port: u16, maildir: &Path) -> SmtpServer {
        require_aiosmtpd();
        let mut server = SmtpServer {
            child: None,
            port,
            maildir: maildir.to_path_buf(),
        };
        server.up();
        server
    }

    pub fn up(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{}", self.port),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&self.maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd: run scripts/test-deps.sh");
        self.child = Some(child);
        wait_listening(self.port, true);
    }

    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            wait_listening(self.port, false);
        }
    }

    /// Every message delivered so far, oldest first.
    pub fn messages(&self) -> Vec<Delivered> {
        if !self.maildir.join("new").exists() {
            return Vec::new();
        }
        let out = Command::new("python3")
            .args(["-c", READ_MAILDIR])
            .arg(&self.maildir)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "reading the maildir failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("maildir JSON")
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// aiosmtpd answering every `RCPT TO` with `reply` (its handler hook
/// `handle_RCPT`), on 127.0.0.1:`port`; killed when dropped.
pub struct RefusingSmtp(Child);

const REFUSING: &str = r#"
import sys, time
from aiosmtpd.controller import Controller
class Refuse:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return sys.argv[2]
c = Controller(Refuse(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
while True:
    time.sleep(3600)
"#;

impl RefusingSmtp {
    pub fn start(port: u16, reply: &str) -> RefusingSmtp {
        require_aiosmtpd();
        let child = Command::new("python3")
            .args(["-c", REFUSING, &port.to_string(), reply])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        wait_listening(port, true);
        RefusingSmtp(child)
    }
}

impl Drop for RefusingSmtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the scripted fake server does.
#[derive(Debug, Clone)]
pub enum FakeReply {
    /// Answers `RCPT TO` with this line, e.g. `550 5.1.1 no such user`.
    Rcpt(&'static str),
    /// Greets, then never answers again.
    Stall,
    /// Advertises AUTH PLAIN and answers it with 535, echoing the decoded
    /// credentials (a careless server: the secret must still not leak).
    EchoAuth,
}

/// A tiny SMTP responder on loopback for replies aiosmtpd does not give.
pub struct FakeSmtp {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl FakeSmtp {
    pub async fn start(reply: FakeReply) -> FakeSmtp {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let reply = Arc::new(reply);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let reply = reply.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 fake ESMTP\r\n").await;
                    if matches!(*reply, FakeReply::Stall) {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let answer: String = if upper.starts_with("EHLO") {
                            match *reply {
                                FakeReply::EchoAuth => "250-fake\r\n250 AUTH PLAIN LOGIN".into(),
                                _ => "250 fake".into(),
                            }
                        } else if upper.starts_with("AUTH PLAIN") {
                            let payload = line.split_whitespace().nth(2).unwrap_or("");
                            let decoded = base64_decode(payload).replace('\0', " ");
                            format!("535 5.7.8 authentication failed for{decoded}")
                        } else if upper.starts_with("MAIL") {
                            "250 ok".into()
                        } else if upper.starts_with("RCPT") {
                            match &*reply {
                                FakeReply::Rcpt(r) => r.to_string(),
                                _ => "250 ok".into(),
                            }
                        } else if upper.starts_with("QUIT") {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
                            "250 ok".into()
                        } else {
                            "502 not implemented".into()
                        };
                        if write
                            .write_all(format!("{answer}\r\n").as_bytes())
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        FakeSmtp { port, task }
    }
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Minimal base64 decoder for the fake server's AUTH PLAIN.
fn base64_decode(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u32 = 0;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        let Some(v) = ALPHABET.iter().position(|a| *a == c) else {
            continue;
        };
        bits = (bits << 6) | v as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn labels(county: &str) -> Labels {
    [("county".to_string(), county.to_string())].into()
}

pub fn rule(id: &str, for_: Millis, repeat: Millis, recipients: &[&str]) -> AlertRule {
    AlertRule {
        id: id.into(),
        title: "城镇登记失业率 ≤ 4.5%".into(),
        severity: Severity::Critical,
        owner: Some("人社局".into()),
        file: format!("rules/{id}.rhai").into(),
        content_hash: "5f2b9c0d1e7a".into(),
        recipients: recipients.iter().map(|s| s.to_string()).collect(),
        for_,
        closes_at: None,
        repeat,
    }
}

pub fn breach(rule: &str, county: &str, value: f64) -> Finding {
    let mut details = serde_json::Map::new();
    details.insert("value".into(), value.into());
    details.insert("threshold".into(), 4.5.into());
    details.insert("unit".into(), "%".into());
    Finding {
        rule: rule.into(),
        kind: FindingKind::Breach,
        subject: labels(county),
        message: format!("{county}城镇登记失业率 {value}% 超过 4.5%"),
        details,
    }
}

pub fn settings() -> MailSettings {
    MailSettings::new(
        "南宫市目标考核 <alerts@example.cn>",
        vec!["ops@example.cn".into()],
        SH,
    )
}

pub fn smtp(port: u16, timeout: Duration) -> Mailer {
    Mailer::Smtp(SmtpMailer::new("127.0.0.1", port, Security::None, None, timeout, None).unwrap())
}

/// A store and a sender on the same fresh file.
pub fn open(dir: &Path, mailer: Mailer) -> (AlertStore, Sender) {
    let db = dir.join("rulewatch.db");
    let store = AlertStore::open(&db).unwrap();
    let sender = Sender::open(&db, mailer, settings()).unwrap();
    (store, sender)
}

/// 2021-03-01T09:00:00+08:00.
pub fn t0() -> Millis {
    rulewatch::time::parse_time("2021-03-01T09:00:00+08:00", SH).unwrap()
}
