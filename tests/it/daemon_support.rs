//! Starts the real `rulewatch run` on a free loopback port with a temp
//! config, and talks to it over real HTTP. Network only to 127.0.0.1.
#![allow(dead_code)]

use crate::common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const TOKEN: &str = "tok-3f9a1c-not-in-any-log";

/// A rule reporting the latest `pm25` of 南宫: breach over 75 (message
/// carries `tag` and the value), no data when there is none.
pub fn pm25_rule(id: &str, tag: &str, schedule: &str) -> String {
    format!(
        r#"// test rule
const RULE = #{{
    id: "{id}",
    title: "PM2.5 ≤ 75 ({tag})",
    owner: "生态环境局",
    severity: "warning",
    schedule: "{schedule}",
    notify: ["env"],
}};
let r = latest("pm25", #{{ county: "南宫" }});
if r == () {{
    no_data(#{{ county: "南宫" }}, "{tag}: no pm25");
}} else if r.value > 75.0 {{
    breach(#{{ county: "南宫" }}, `{tag}: pm25 ${{r.value}}`, #{{ value: r.value, threshold: 75.0 }});
}}
"#
    )
}

/// A rule that loops until its wall-clock limit stops it.
pub fn slow_rule(id: &str, schedule: &str) -> String {
    format!(
        r#"const RULE = #{{ id: "{id}", title: "slow", severity: "info", schedule: "{schedule}", notify: ["env"] }};
let i = 0;
loop {{ i += 1; }}
"#
    )
}

pub struct Builder {
    rules: Vec<(String, String)>,
    token: Option<String>,
    max_body: Option<usize>,
    rule_timeout: Option<String>,
    log_filter: String,
    digest_schedule: Option<String>,
    /// Config lines added as they are (`bureaus: {…},`).
    extra_config: Vec<String>,
    env: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>)>,
    /// A store file copied into place before the daemon starts.
    store_from: Option<PathBuf>,
    /// An environment variable set to the daemon's own pid (as systemd sets
    /// `WATCHDOG_PID`): started through `sh -c 'NAME=$$ exec …'`.
    pid_env: Option<String>,
}

pub fn daemon() -> Builder {
    Builder {
        rules: Vec::new(),
        token: Some(TOKEN.to_string()),
        max_body: None,
        rule_timeout: None,
        log_filter: "info".into(),
        digest_schedule: None,
        extra_config: Vec::new(),
        env: Vec::new(),
        files: Vec::new(),
        store_from: None,
        pid_env: None,
    }
}

impl Builder {
    pub fn rule(mut self, file: &str, text: String) -> Self {
        self.rules.push((file.to_string(), text));
        self
    }

    pub fn no_token(mut self) -> Self {
        self.token = None;
        self
    }

    pub fn max_body(mut self, n: usize) -> Self {
        self.max_body = Some(n);
        self
    }

    pub fn rule_timeout(mut self, t: &str) -> Self {
        self.rule_timeout = Some(t.to_string());
        self
    }

    pub fn digest_schedule(mut self, cron: &str) -> Self {
        self.digest_schedule = Some(cron.to_string());
        self
    }

    /// A line of config (a whole top-level entry, with its trailing comma).
    pub fn config(mut self, line: &str) -> Self {
        self.extra_config.push(line.to_string());
        self
    }

    /// An environment variable of the daemon.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// A file in the daemon's folder (beside the config).
    pub fn file(mut self, rel: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.push((rel.to_string(), bytes.into()));
        self
    }

    pub fn log(mut self, filter: &str) -> Self {
        self.log_filter = filter.to_string();
        self
    }

    /// Sets the variable `name` to the daemon's own pid, as systemd sets
    /// `WATCHDOG_PID` (the daemon is exec'd by a shell that knows its pid).
    pub fn pid_env(mut self, name: &str) -> Self {
        self.pid_env = Some(name.to_string());
        self
    }

    /// Starts on a copy of the store file at `path` (`data/rulewatch.db`).
    pub fn store_from(mut self, path: &Path) -> Self {
        self.store_from = Some(path.to_path_buf());
        self
    }

    pub fn start(self) -> Daemon {
        // A port another test takes between our probe and the daemon's bind
        // makes the daemon exit: try again with another.
        for _ in 0..5 {
            match self.try_start() {
                Ok(d) => return d,
                Err(log) if log.contains("cannot listen") => continue,
                Err(log) => panic!("daemon did not start:\n{log}"),
            }
        }
        panic!("no free port");
    }

    fn try_start(&self) -> Result<Daemon, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("rules")).unwrap();
        for (file, text) in &self.rules {
            std::fs::write(dir.path().join("rules").join(file), text).unwrap();
        }
        let port = free_port();
        let mut config = format!(
            r#"(
    timezone: "Asia/Shanghai",
    rules: "rules",
    store: "data/rulewatch.db",
    listen: "127.0.0.1:{port}",
    api_token_env: Some("RW_TEST_TOKEN"),
    mail: (from: "南宫市目标考核 <alerts@example.cn>", transport: File(dir: "outbox")),
    recipients: {{ "env": ["huanbao@example.cn"] }},
    admin: ["ops@example.cn"],
"#
        );
        if let Some(n) = self.max_body {
            config.push_str(&format!("    http: (max_body_bytes: {n}),\n"));
        }
        if let Some(t) = &self.rule_timeout {
            config.push_str(&format!(
                "    limits: (max_operations: 1000000000000, rule_timeout: \"{t}\"),\n"
            ));
        }
        if let Some(cron) = &self.digest_schedule {
            config.push_str(&format!("    digest: (schedule: \"{cron}\"),\n"));
        }
        for line in &self.extra_config {
            config.push_str(&format!("    {line}\n"));
        }
        for (rel, bytes) in &self.files {
            std::fs::write(dir.path().join(rel), bytes).unwrap();
        }
        config.push_str(")\n");
        std::fs::write(dir.path().join("rulewatch.ron"), config).unwrap();
        if let Some(from) = &self.store_from {
            std::fs::create_dir_all(dir.path().join("data")).unwrap();
            std::fs::copy(from, dir.path().join("data/rulewatch.db")).unwrap();
        }
        let log_path = dir.path().join("daemon.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let bin = env!("CARGO_BIN_EXE_rulewatch");
        let mut cmd = match &self.pid_env {
            None => Command::new(bin),
            Some(name) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("{name}=$$ exec \"$0\" \"$@\""), bin]);
                sh
            }
        };
        cmd.current_dir(dir.path())
            .args(["run", "--config", "rulewatch.ron"])
            .env("RUST_LOG", &self.log_filter)
            .env_remove("RULEWATCH_LOG_FORMAT")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        match &self.token {
            Some(t) => cmd.env("RW_TEST_TOKEN", t),
            None => cmd.env_remove("RW_TEST_TOKEN"),
        };
        let child = cmd.spawn().expect("start rulewatch run");
        let mut d = Daemon {
            child: Some(child),
            port,
            dir,
            log_path,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .no_proxy()
                .build()
                .unwrap(),
        };
        if d.wait_ready() {
            Ok(d)
        } else {
            Err(d.logs())
        }
    }
}

pub use common::free_port;

pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    log_path: PathBuf,
    pub http: reqwest::blocking::Client,
}

pub struct Resp {
    pub status: u16,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

impl Daemon {
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if c.try_wait().unwrap().is_some() {
                    return false;
                }
            }
            if let Ok(r) = self.http.get(self.url("/healthz")).send() {
                if r.status().is_success() {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("daemon not ready after 30 s:\n{}", self.logs());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn rules_dir(&self) -> PathBuf {
        self.path("rules")
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn resp(r: reqwest::blocking::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().unwrap_or_default();
        Resp {
            status,
            text,
            headers,
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        Self::resp(self.http.get(self.url(path)).send().unwrap())
    }

    /// POST with the test token.
    pub fn post(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Resp {
        self.post_as(
            path,
            Some(&format!("Bearer {TOKEN}")),
            Some(content_type),
            body,
        )
    }

    pub fn post_as(
        &self,
        path: &str,
        auth: Option<&str>,
        content_type: Option<&str>,
        body: impl Into<Vec<u8>>,
    ) -> Resp {
        let mut req = self.http.post(self.url(path)).body(body.into());
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        Self::resp(req.send().unwrap())
    }

    pub fn evaluate(&self, rule: Option<&str>) -> Value {
        let path = match rule {
            Some(r) => format!("/api/v1/evaluate?rule={r}"),
            None => "/api/v1/evaluate".to_string(),
        };
        let r = self.post(&path, "application/json", Vec::new());
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }

    /// The messages of the findings of one evaluation of `rule`.
    pub fn messages(&self, rule: &str) -> Vec<String> {
        self.evaluate(Some(rule))["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["message"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn rule_status(&self, id: &str) -> Option<Value> {
        let rules = self.get("/api/v1/rules").json();
        rules["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
    }

    pub fn metric(&self, line_prefix: &str) -> Option<f64> {
        let text = self.get("/metrics").text;
        text.lines()
            .find(|l| l.starts_with(line_prefix) && l[line_prefix.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Polls `f` until it returns Some, or panics after `secs`.
    pub fn wait_for<T>(&self, secs: u64, what: &str, mut f: impl FnMut(&Daemon) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; log:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, secs: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                panic!("daemon still running after {secs} s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `.eml` files in the outbox, as text.
    pub fn outbox(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.path("outbox")) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "eml") {
                    let mut s = String::new();
                    std::fs::File::open(e.path())
                        .unwrap()
                        .read_to_string(&mut s)
                        .unwrap();
                    out.push(s);
                }
            }
        }
        out
    }

    pub fn write_rule(&self, file: &str, text: &str) {
        write_atomically(&self.rules_dir().join(file), text);
    }
}

/// As editors save: a temporary file renamed over the old one.
pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("rhai.tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
