//! Helpers the integration tests share: the repository's own files, copied
//! into a temp folder, and a free loopback port.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The repository (where `rulewatch.ron`, `rules/` and `fixtures/` are).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Copies a folder recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The shipped rule files: those git tracks under `rules/` (paths relative
/// to `root`). An official's own unfinished rule dropped into the working
/// tree's `rules/` is not shipped, and no test reads it. Without git (a
/// tarball), every file under `rules/`.
pub fn shipped_rule_files(root: &Path) -> Vec<PathBuf> {
    let listed = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z", "--", "rules"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    let mut files: Vec<PathBuf> = match listed {
        Some(o) => o
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
            // A file deleted in the working tree is not there to copy.
            .filter(|p| root.join(p).is_file())
            .collect(),
        None => {
            let mut all = Vec::new();
            let mut stack = vec![root.join("rules")];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else {
                        all.push(p.strip_prefix(root).unwrap().to_path_buf());
                    }
                }
            }
            all
        }
    };
    files.sort();
    files
}

/// Copies the shipped rule files of `root` into `to` (as `to/rules/…`).
pub fn copy_shipped_rules_from(root: &Path, to: &Path) {
    for f in shipped_rule_files(root) {
        let target = to.join(&f);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(root.join(&f), &target).unwrap();
    }
}

/// Copies this repository's shipped rules into `to/rules/`.
pub fn copy_shipped_rules(to: &Path) {
    copy_shipped_rules_from(repo(), to)
}

/// A temp folder with the shipped config and rules (no store).
pub fn shipped_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("rulewatch.ron"),
        dir.path().join("rulewatch.ron"),
    )
    .unwrap();
    copy_shipped_rules(dir.path());
    dir
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temp copy of the shipped config and rules with `fixtures/2021/*.csv`
/// ingested by the real binary, made once per test binary. Commands on its
/// store take `lock`: one process at a time.
pub struct FixturesWorkspace {
    _dir: tempfile::TempDir,
    pub config: PathBuf,
    pub lock: Mutex<()>,
}

pub fn fixtures_workspace() -> &'static FixturesWorkspace {
    static WS: OnceLock<FixturesWorkspace> = OnceLock::new();
    WS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("rulewatch.ron");
        std::fs::copy(repo().join("rulewatch.ron"), &config).unwrap();
        copy_shipped_rules(dir.path());
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("fixtures/2021"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 5, "fixtures/2021/*.csv: {files:?}");
        let out = Command::new(env!("CARGO_BIN_EXE_rulewatch"))
            .arg("ingest")
            .arg("--config")
            .arg(&config)
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ingest failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        FixturesWorkspace {
            _dir: dir,
            config,
            lock: Mutex::new(()),
        }
    })
}

/// A small xorshift generator for the kill tests' random moments.
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from the clock; the seed is printed, so a failing run can be
    /// repeated with `Rng(seed)`.
    pub fn from_clock(what: &str) -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        println!("{what} seed {seed}");
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `rulewatch run` on `dir/rulewatch.ron`, its log to `dir/LOG` (the kill
/// tests start and SIGKILL it many times on one store).
pub fn start_daemon(dir: &Path, log: &str) -> std::process::Child {
    use std::process::Stdio;
    let log = std::fs::File::create(dir.join(log)).unwrap();
    Command::new(env!("CARGO_BIN_EXE_rulewatch"))
        .current_dir(dir)
        .args(["run", "--config", "rulewatch.ron"])
        .env("RUST_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("rulewatch run")
}

/// Waits up to 30 s for something to listen on 127.0.0.1:`port`.
pub fn wait_port(port: u16) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < until {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}
