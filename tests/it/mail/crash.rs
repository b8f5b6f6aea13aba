//! SIGKILL at any point neither loses nor repeats a notification (beyond a
//! send the server accepted in the instant before its `sent` mark).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rulewatch::notify::mail::FileMailer;
use rulewatch::notify::{outbox, Mailer};
use rulewatch::time::MINUTE;

use super::support::*;

/// Runs [`child_process`] in a new process of this test binary.
fn spawn_child(mode: &str, dir: &Path, port: u16) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "mail::crash::child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RULEWATCH_CRASH_MODE", mode)
        .env("RULEWATCH_CRASH_DIR", dir)
        .env("RULEWATCH_CRASH_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for the child to reach `marker`, then SIGKILLs it (`Child::kill` is SIGKILL on Unix).
fn kill_at(mut child: Child, marker: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child ended early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "child never reached {}",
            marker.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The child: does one step of the daemon's work, says so, then hangs until killed.
#[tokio::test]
#[ignore = "helper: run as a child process by the crash tests"]
async fn child_process() {
    let (Ok(mode), Ok(dir), Ok(port)) = (
        std::env::var("RULEWATCH_CRASH_MODE"),
        std::env::var("RULEWATCH_CRASH_DIR"),
        std::env::var("RULEWATCH_CRASH_PORT"),
    ) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let port: u16 = port.parse().unwrap();
    let (mut store, sender) = open(&dir, smtp(port, Duration::from_secs(10)));
    let r = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    store
        .record(t0(), &[(&r, &[breach(&r.id, "南宫", 5.1)])], &settings())
        .unwrap();
    if mode == "sent" {
        assert_eq!(sender.run_once(t0()).await.unwrap().sent, 1);
    }
    std::fs::write(dir.join(&mode), b"").unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test]
async fn sigkill_with_mail_queued_then_restart_delivers_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = SmtpServer::start(port, &dir.path().join("maildir"));
    kill_at(
        spawn_child("queued", dir.path(), port),
        &dir.path().join("queued"),
    );
    assert!(server.messages().is_empty());

    // Restart: the same evaluation again queues nothing new; the queued mail goes once.
    let (mut store, sender) = open(dir.path(), smtp(port, Duration::from_secs(10)));
    let r = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    let rec = store
        .record(
            t0() + MINUTE,
            &[(&r, &[breach(&r.id, "南宫", 5.1)])],
            &settings(),
        )
        .unwrap();
    assert!(rec.queued.is_empty());
    assert_eq!(sender.run_once(t0() + MINUTE).await.unwrap().sent, 1);
    assert_eq!(sender.run_once(t0() + 2 * MINUTE).await.unwrap().sent, 0);
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn sigkill_after_delivery_then_restart_does_not_reannounce() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = SmtpServer::start(port, &dir.path().join("maildir"));
    kill_at(
        spawn_child("sent", dir.path(), port),
        &dir.path().join("sent"),
    );
    assert_eq!(server.messages().len(), 1);

    let (mut store, sender) = open(dir.path(), smtp(port, Duration::from_secs(10)));
    let r = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    let rec = store
        .record(
            t0() + MINUTE,
            &[(&r, &[breach(&r.id, "南宫", 5.1)])],
            &settings(),
        )
        .unwrap();
    assert!(rec.queued.is_empty());
    assert_eq!(sender.run_once(t0() + MINUTE).await.unwrap().sent, 0);
    assert_eq!(server.messages().len(), 1);
}

/// The documented edge: accepted by the server, killed before the `sent`
/// mark. Simulated by undoing the mark. The resend carries the same
/// Message-ID over SMTP, and replaces the same file with the file transport.
#[tokio::test]
async fn accepted_but_unmarked_is_resent_once_with_the_same_message_id() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = SmtpServer::start(port, &dir.path().join("maildir"));
    let (mut store, sender) = open(dir.path(), smtp(port, Duration::from_secs(10)));
    let r = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    let id = store
        .record(t0(), &[(&r, &[breach(&r.id, "南宫", 5.1)])], &settings())
        .unwrap()
        .queued[0]
        .clone();
    sender.run_once(t0()).await.unwrap();
    store
        .connection()
        .execute(
            "UPDATE outbox SET status = 'queued' WHERE message_id = ?1",
            [&id],
        )
        .unwrap();
    sender.run_once(t0() + MINUTE).await.unwrap();
    sender.run_once(t0() + 2 * MINUTE).await.unwrap();
    let got = server.messages();
    assert_eq!(got.len(), 2, "resent once, not more");
    assert!(got.iter().all(|m| m.message_id == id), "{id} {got:#?}");

    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("outbox");
    let (mut store, sender) = open(dir.path(), Mailer::File(FileMailer::new(&eml).unwrap()));
    let id = store
        .record(t0(), &[(&r, &[breach(&r.id, "南宫", 5.1)])], &settings())
        .unwrap()
        .queued[0]
        .clone();
    sender.run_once(t0()).await.unwrap();
    store
        .connection()
        .execute(
            "UPDATE outbox SET status = 'queued' WHERE message_id = ?1",
            [&id],
        )
        .unwrap();
    sender.run_once(t0() + MINUTE).await.unwrap();
    let files: Vec<_> = std::fs::read_dir(&eml)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains(&format!("Message-ID: {id}")), "{text}");
    assert_eq!(outbox::counts(store.connection()).unwrap().sent, 1);
}
