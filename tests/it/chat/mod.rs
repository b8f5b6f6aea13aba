//! Chat robots end to end: alerts queue markdown messages for DingTalk,
//! WeCom and Feishu robots in the state change's transaction; the sender
//! delivers them to a local webhook server (`robot_server.py`, Python
//! stdlib, 127.0.0.1 only) that checks each platform's signature as its
//! documentation defines it and answers the documented error codes.

use crate::mail::support;

mod crash;
mod robots;
mod sizes;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use rulewatch::alerts::AlertStore;
use rulewatch::config::{Config, RobotKind};
use rulewatch::notify::chat::ChatNotifier;
use rulewatch::notify::mail::FileMailer;
use rulewatch::notify::{MailSettings, Mailer, Sender};

pub use support::*;

/// The webhook server, killed when dropped.
pub struct RobotServer {
    child: Child,
    pub port: u16,
}

impl RobotServer {
    pub fn start(token: &str, secret: &str) -> RobotServer {
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/chat/robot_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args([&port.to_string(), token, secret])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        RobotServer { child, port }
    }

    /// Answers for the next requests, one each: `{"code": 45009}`, `{"sleep": 3}`.
    pub async fn plan(&self, steps: serde_json::Value) {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/_plan", self.port))
            .body(steps.to_string())
            .send()
            .await
            .unwrap();
    }

    /// The messages it accepted: `{"kind": "wecom", "body": {...}}`.
    pub async fn log(&self) -> Vec<serde_json::Value> {
        reqwest::get(format!("http://127.0.0.1:{}/_log", self.port))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for RobotServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config whose group `env` has the robot `robot` (RON), checked.
pub fn config(dir: &Path, robot: &str) -> Config {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    let text = format!(
        r#"(
    timezone: "Asia/Shanghai",
    rules: "rules",
    store: "rulewatch.db",
    mail: (from: "南宫市目标考核 <alerts@example.cn>", transport: File(dir: "outbox")),
    recipients: {{ "env": (mail: ["huanbao@example.cn"], robots: [{robot}]) }},
    group_names: {{ "env": "生态环境局" }},
    admin: ["ops@example.cn"],
    public_url: "https://kaohe.example.cn",
)"#
    );
    Config::parse(&dir.join("rulewatch.ron"), &text).unwrap()
}

pub fn chat_settings(config: &Config) -> MailSettings {
    MailSettings::from_config(config)
}

/// A store and a sender (mail to files, the config's robots) on a fresh file in `dir`.
pub fn open_chat(dir: &Path, config: &Config, kind: RobotKind) -> (AlertStore, Sender) {
    let db = dir.join("rulewatch.db");
    let store = AlertStore::open(&db).unwrap();
    let mailer = Mailer::File(FileMailer::new(&dir.join("outbox")).unwrap());
    let notifier = ChatNotifier::from_config(config, kind).unwrap().unwrap();
    let sender = Sender::open(&db, mailer, chat_settings(config))
        .unwrap()
        .with_notifier(Box::new(notifier));
    (store, sender)
}

/// The env var names are unique per test: tests run on threads of one process.
pub fn set_env(name: &str, value: &str) {
    std::env::set_var(name, value);
}
