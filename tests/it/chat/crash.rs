//! SIGKILL between queuing a robot message and delivering it: after a
//! restart it goes once, not twice, not never (modelled on tests/mail/crash.rs).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rulewatch::config::RobotKind;
use rulewatch::time::MINUTE;

use super::*;

const ROBOT: &str =
    r#"WeCom(key_env: "RW_CRASH_KEY", base_url: "http://127.0.0.1:PORT/cgi-bin/webhook/send")"#;

#[tokio::test]
#[ignore = "helper: run as a child process by the crash test"]
async fn child_process() {
    let (Ok(dir), Ok(port)) = (
        std::env::var("RULEWATCH_CRASH_DIR"),
        std::env::var("RULEWATCH_CRASH_PORT"),
    ) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let c = config(&dir, &ROBOT.replace("PORT", &port));
    let (mut store, _sender) = open_chat(&dir, &c, RobotKind::WeCom);
    let to = c.resolve_recipients(&["env".into()]).unwrap();
    let r = rule(
        "unemployment-rate",
        0,
        0,
        &to.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    store
        .record(
            t0(),
            &[(&r, &[breach(&r.id, "南宫", 5.1)])],
            &chat_settings(&c),
        )
        .unwrap();
    std::fs::write(dir.join("queued"), b"").unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test]
async fn sigkill_with_a_robot_message_queued_then_restart_delivers_once() {
    let server = RobotServer::start("crash-key", "unused");
    set_env("RW_CRASH_KEY", "crash-key");
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "chat::crash::child_process",
            "--ignored",
            "--test-threads=1",
        ])
        .env("RULEWATCH_CRASH_DIR", dir.path())
        .env("RULEWATCH_CRASH_PORT", server.port.to_string())
        .env("RW_CRASH_KEY", "crash-key")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.path().join("queued").exists() {
        assert!(child.try_wait().unwrap().is_none(), "child ended early");
        assert!(Instant::now() < deadline, "child never queued");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(server.log().await.is_empty());

    let c = config(dir.path(), &ROBOT.replace("PORT", &server.port.to_string()));
    let (mut store, sender) = open_chat(dir.path(), &c, RobotKind::WeCom);
    let to = c.resolve_recipients(&["env".into()]).unwrap();
    let r = rule(
        "unemployment-rate",
        0,
        0,
        &to.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // The same evaluation again queues nothing new.
    let rec = store
        .record(
            t0() + MINUTE,
            &[(&r, &[breach(&r.id, "南宫", 5.1)])],
            &chat_settings(&c),
        )
        .unwrap();
    assert!(rec.queued.is_empty());
    assert_eq!(
        sender.run_once(t0() + MINUTE).await.unwrap().sent,
        2,
        "mail and robot"
    );
    assert_eq!(sender.run_once(t0() + 2 * MINUTE).await.unwrap().sent, 0);
    assert_eq!(server.log().await.len(), 1);
}
