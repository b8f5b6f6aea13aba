//! No secret (the SMTP password) ever appears in an error, a log line, a
//! stored error or a mail, even when the server echoes it back.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rulewatch::config::{Mail, Security, Transport};
use rulewatch::notify::mail::{Secret, SmtpMailer};
use rulewatch::notify::{outbox, Mailer, RetryPolicy};

use super::support::*;

const PASSWORD: &str = "Zq7-s3cr3t-pa55w0rd";

#[derive(Clone, Default)]
pub(crate) struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test binary, from every thread. A thread-local
/// subscriber misses lines when another test thread registers a callsite
/// first (tracing caches callsite interest globally), so capture globally.
pub(crate) fn global_logs() -> Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        logs
    })
    .clone()
}

#[tokio::test]
async fn the_smtp_password_never_appears_in_errors_logs_or_mail() {
    let logs = global_logs();

    // A careless server that answers AUTH with the decoded credentials.
    let fake = FakeSmtp::start(FakeReply::EchoAuth).await;
    let mailer = Mailer::Smtp(
        SmtpMailer::new(
            "127.0.0.1",
            fake.port,
            Security::None,
            Some(("alerts".into(), Secret::new(PASSWORD.into()))),
            Duration::from_secs(5),
            None,
        )
        .unwrap(),
    );
    let debug = format!("{mailer:?} {}", mailer.describe());
    let dir = tempfile::tempdir().unwrap();
    let (mut store, sender) = open(dir.path(), mailer);
    let sender = sender.with_policy(RetryPolicy {
        report_after: 1,
        ..Default::default()
    });
    let r = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    store
        .record(t0(), &[(&r, &[breach(&r.id, "南宫", 5.1)])], &settings())
        .unwrap();
    let round = sender.run_once(t0()).await.unwrap();
    assert_eq!(
        round.retried, 1,
        "535 is an authentication problem: retried, not dropped"
    );

    let rows = outbox::list(store.connection(), None, 100).unwrap();
    let alert = rows
        .iter()
        .find(|m| m.recipient == "renshe@example.cn")
        .unwrap();
    let error = alert.last_error.clone().unwrap();
    assert!(
        error.contains("535"),
        "the server's answer is kept: {error}"
    );
    assert!(
        error.contains("***"),
        "and the password in it scrubbed: {error}"
    );
    let note = rows
        .iter()
        .find(|m| m.recipient == "ops@example.cn")
        .expect("admin told");

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("mail not sent"), "logs were captured: {logs}");
    let history = serde_json::to_string(&store.history(&Default::default()).unwrap()).unwrap();
    for (what, text) in [
        ("error", error.as_str()),
        ("log", logs.as_str()),
        ("debug", debug.as_str()),
        (
            "admin note",
            &format!("{} {} {}", note.subject, note.text, note.html),
        ),
        ("history", &history),
    ] {
        assert!(
            !text.contains(PASSWORD),
            "password leaked into the {what}: {text}"
        );
    }
}

/// (lettre's pooled SMTP transport must be built and dropped inside a Tokio runtime.)
#[tokio::test]
async fn a_missing_password_variable_is_named_not_shown() {
    let var = "RULEWATCH_TEST_SMTP_PASSWORD_MISSING";
    let mail = |var: &str| Mail {
        from: "a <a@example.cn>".into(),
        transport: Transport::Smtp {
            host: "127.0.0.1".into(),
            port: 2525,
            security: Security::None,
            username: Some("alerts".into()),
            password_env: Some(var.into()),
            allow_plaintext_auth: true,
            timeout: "5s".into(),
            ca_file: None,
        },
    };
    let err = Mailer::from_config(&mail(var)).unwrap_err().to_string();
    assert!(err.contains(var), "{err}");
    // Chinese first, what the variable is for and where to set it.
    assert!(
        err.starts_with(&format!(
            "环境变量 `{var}` 没有设置或是空的：它应存放发信邮箱的密码"
        )) && err.contains("/etc/rulewatch/secrets.env"),
        "{err}"
    );

    let set = "RULEWATCH_TEST_SMTP_PASSWORD_SET";
    std::env::set_var(set, PASSWORD);
    let mailer = Mailer::from_config(&mail(set)).unwrap();
    let shown = format!("{mailer:?} {}", mailer.describe());
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(
        format!(
            "{:?} {}",
            Secret::new(PASSWORD.into()),
            Secret::new(PASSWORD.into())
        ) == "Secret(***) ***"
    );
}
