//! The config file (RON): strict, every problem with `file:line:col`, paths
//! relative to the config's folder, secrets only through environment variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;

use crate::diag::Diagnostic;
use crate::time::{parse_duration, Millis};

/// The config as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    timezone: String,
    rules: PathBuf,
    store: PathBuf,
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default)]
    api_token_env: Option<String>,
    mail: MailFile,
    #[serde(default)]
    recipients: BTreeMap<String, GroupFile>,
    #[serde(default)]
    admin: Vec<String>,
    /// Display names of label keys, detail keys and metric ids (`county` →
    /// 县（市、区）), on top of the built-in ones (`status::words`).
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// Which recipient group owns a metric (`new_urban_jobs` → `hr`): a
    /// finding about that metric goes to its owner (see `notify::route`).
    #[serde(default)]
    owners: BTreeMap<String, String>,
    /// How a recipient group is greeted (`hr` → 人社局): `致：人社局`.
    #[serde(default)]
    group_names: BTreeMap<String, String>,
    /// The address officials reach the status page at (e.g.
    /// `https://kaohe.example.cn`): chat messages link to the rule's page there.
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    defaults: DefaultsFile,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    http: HttpFile,
    #[serde(default)]
    digest: DigestFile,
    #[serde(default)]
    retention: RetentionFile,
    /// `bureaus: { "人社局": (token_env: "RW_TOKEN_HR", metrics: [...]) }`:
    /// per-bureau tokens for the upload page and the API.
    #[serde(default)]
    bureaus: BTreeMap<String, Bureau>,
}

/// A bureau that writes its own figures: its token (read from the
/// environment variable `token_env`, never written in the config) may write
/// only `metrics`; an empty list makes it a read-only token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bureau {
    pub token_env: String,
    #[serde(default)]
    pub metrics: Vec<String>,
}

/// Who may read the status page and the read API.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub enum ReadAccess {
    /// Anyone who reaches the port (the default; warned about beyond loopback).
    #[default]
    Open,
    /// A signed-in session (page) or a bearer token (API): the API token or a bureau's.
    Tokens,
    /// A reverse proxy that signs users in sets this header; requests without it are refused.
    ProxyHeader { name: String },
}

/// One recipient group: either a list of mail addresses (`["a@b.cn"]`) or
/// `(mail: [...], robots: [...])`, mail addresses and chat robots.
#[derive(Debug, Default)]
struct GroupFile {
    mail: Vec<String>,
    robots: Vec<RobotFile>,
}

/// The richer form of a group, strict like the rest of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupTable {
    #[serde(default)]
    mail: Vec<String>,
    #[serde(default)]
    robots: Vec<RobotFile>,
}

impl<'de> Deserialize<'de> for GroupFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = GroupFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    r#"a list of mail addresses `["a@b.cn"]` or `(mail: [...], robots: [...])`"#,
                )
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<GroupFile, A::Error> {
                let mail =
                    Vec::<String>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(GroupFile {
                    mail,
                    robots: Vec::new(),
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<GroupFile, A::Error> {
                let t = GroupTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(GroupFile {
                    mail: t.mail,
                    robots: t.robots,
                })
            }
        }
        d.deserialize_any(Visit)
    }
}

/// A chat robot as written in a group: `DingTalk(token_env: "DT_ENV", …)`.
/// Tokens, keys and signing secrets are named by environment variable only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
enum RobotFile {
    DingTalk {
        token_env: String,
        #[serde(default)]
        secret_env: Option<String>,
        #[serde(default)]
        at_mobiles: Vec<String>,
        #[serde(default)]
        base_url: Option<String>,
        #[serde(default = "default_robot_timeout")]
        timeout: String,
    },
    WeCom {
        key_env: String,
        #[serde(default)]
        at_mobiles: Vec<String>,
        #[serde(default)]
        base_url: Option<String>,
        #[serde(default = "default_robot_timeout")]
        timeout: String,
    },
    Feishu {
        token_env: String,
        #[serde(default)]
        secret_env: Option<String>,
        /// Feishu custom bots mention members by open_id (`ou_…`), not by
        /// phone number.
        #[serde(default)]
        at_user_ids: Vec<String>,
        #[serde(default)]
        base_url: Option<String>,
        #[serde(default = "default_robot_timeout")]
        timeout: String,
    },
}

// 10 s per request: the platforms answer in well under a second; a robot
// that stalls longer is retried later instead of holding up the other messages.
fn default_robot_timeout() -> String {
    "10s".into()
}

/// Which chat platform a robot is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RobotKind {
    DingTalk,
    WeCom,
    Feishu,
}

impl RobotKind {
    /// As in the outbox's `channel` column and in robot targets.
    pub fn as_str(self) -> &'static str {
        match self {
            RobotKind::DingTalk => "dingtalk",
            RobotKind::WeCom => "wecom",
            RobotKind::Feishu => "feishu",
        }
    }

    /// The public webhook address; private deployments set `base_url`.
    pub fn default_base_url(self) -> &'static str {
        match self {
            RobotKind::DingTalk => "https://oapi.dingtalk.com/robot/send",
            RobotKind::WeCom => "https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
            RobotKind::Feishu => "https://open.feishu.cn/open-apis/bot/v2/hook",
        }
    }
}

/// `retention: (readings: "2y", metrics: { "pm25_hourly": "400d" }, history: "5y",
/// sent_mail: "365d", max_store_bytes: 10737418240)`: how long the store keeps
/// what, and how large it may grow. Every key is optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionFile {
    #[serde(default = "keep_forever")]
    readings: String,
    #[serde(default)]
    metrics: BTreeMap<String, String>,
    #[serde(default = "keep_forever")]
    history: String,
    #[serde(default = "default_sent_mail")]
    sent_mail: String,
    #[serde(default)]
    max_store_bytes: Option<u64>,
    #[serde(default = "default_prune_every")]
    every: String,
}

impl Default for RetentionFile {
    fn default() -> Self {
        RetentionFile {
            readings: keep_forever(),
            metrics: BTreeMap::new(),
            history: keep_forever(),
            sent_mail: default_sent_mail(),
            max_store_bytes: None,
            every: default_prune_every(),
        }
    }
}

/// A chat robot of a recipient group, checked. Holds only the names of the
/// environment variables with its token and secret, never their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Robot {
    pub group: String,
    pub kind: RobotKind,
    /// Holds the access token (DingTalk, Feishu) or key (WeCom), or the
    /// whole webhook address copied from the platform.
    pub token_env: String,
    /// Holds the signing secret (加签; DingTalk and Feishu).
    pub secret_env: Option<String>,
    /// Mentioned (@) in messages about `critical` findings: phone numbers
    /// (DingTalk, WeCom) or open_ids (Feishu).
    pub mentions: Vec<String>,
    pub base_url: String,
    pub timeout: Millis,
}

impl Robot {
    /// The robot's name in the outbox and in rules' resolved recipients:
    /// `dingtalk:env:DT_ENV_TOKEN` (platform, group, token variable).
    pub fn target(&self) -> String {
        format!("{}:{}:{}", self.kind.as_str(), self.group, self.token_env)
    }
}

// Readings and the alert history are the record officials are asked about
// years later ("when did we first know"): kept unless the config says otherwise.
fn keep_forever() -> String {
    "forever".into()
}
// Sent mail bodies: a year covers the annual review; the history keeps who
// got which mail (Message-ID, time) for as long as `history` says.
fn default_sent_mail() -> String {
    "365d".into()
}
// Hourly: a pass deletes what aged out since the last one, a few seconds of
// small transactions at most.
fn default_prune_every() -> String {
    "1h".into()
}

/// Sent mail is kept at least this long: the outbox row of a mail is what
/// keeps a digest sent late (up to 7 days after its instant) or a note to
/// admin from being queued twice.
const MIN_SENT_MAIL: Millis = 31 * crate::time::DAY;
/// A store smaller than this cannot hold its own tables and a day of data.
const MIN_STORE_BYTES: u64 = 1 << 20;

/// `digest: (schedule: "0 0 9 1 * *")`: the monthly summary mail.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DigestFile {
    #[serde(default = "default_digest_schedule")]
    schedule: String,
}

impl Default for DigestFile {
    fn default() -> Self {
        DigestFile {
            schedule: default_digest_schedule(),
        }
    }
}

// The 1st of each month at 09:00 local: the previous month's figures are
// mostly not in yet (due on the 15th), but leaders read the report at the
// start of the month; the digest says which figures are still outstanding.
/// Rule ids and recipient group names: `[a-z0-9-]+`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn default_digest_schedule() -> String {
    "0 0 9 1 * *".into()
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MailFile {
    from: String,
    transport: Transport,
}

/// How mail leaves the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Transport {
    /// One `.eml` file per message in `dir` (relative to the config's folder).
    File { dir: PathBuf },
    Smtp {
        host: String,
        port: u16,
        #[serde(default = "default_security")]
        security: Security,
        #[serde(default)]
        username: Option<String>,
        /// Environment variable holding the password; never the password itself.
        #[serde(default)]
        password_env: Option<String>,
        /// AUTH over an unencrypted connection sends the password in clear:
        /// refused unless this is set.
        #[serde(default)]
        allow_plaintext_auth: bool,
        /// Per-send limit (connect + dialogue), e.g. `"30s"`.
        #[serde(default = "default_smtp_timeout")]
        timeout: String,
        /// A private CA (PEM) trusted besides the system roots, for servers
        /// whose certificate an intranet CA signed. Verification stays on.
        #[serde(default)]
        ca_file: Option<std::path::PathBuf>,
    },
}

fn default_security() -> Security {
    Security::StartTls
}

fn default_smtp_timeout() -> String {
    "30s".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Security {
    None,
    StartTls,
    Tls,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsFile {
    #[serde(default = "default_repeat")]
    repeat: String,
    #[serde(default = "default_for", rename = "for")]
    for_: String,
    #[serde(default = "default_schedule")]
    schedule: String,
}

impl Default for DefaultsFile {
    fn default() -> Self {
        DefaultsFile {
            repeat: default_repeat(),
            for_: default_for(),
            schedule: default_schedule(),
        }
    }
}

fn default_repeat() -> String {
    "1d".into()
}
fn default_for() -> String {
    "0s".into()
}
fn default_schedule() -> String {
    "0 0 9 * * *".into()
}

/// Sandbox bounds for rule scripts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    #[serde(default = "default_max_operations")]
    max_operations: u64,
    #[serde(default = "default_rule_timeout")]
    rule_timeout: String,
}

impl Default for LimitsFile {
    fn default() -> Self {
        LimitsFile {
            max_operations: default_max_operations(),
            rule_timeout: default_rule_timeout(),
        }
    }
}

// A rule that loops over a few thousand groups needs ~10^5 operations; ten
// million is far past any honest rule and still stops a runaway in ~1 s.
fn default_max_operations() -> u64 {
    10_000_000
}
// Wall-clock bound per rule evaluation; generous for native scans of years of data.
fn default_rule_timeout() -> String {
    "5s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    #[serde(default = "default_max_body")]
    max_body_bytes: usize,
    #[serde(default)]
    read_access: ReadAccess,
    /// Wide-form mapping files the upload page offers, by the name shown.
    #[serde(default)]
    mappings: BTreeMap<String, PathBuf>,
}

impl Default for HttpFile {
    fn default() -> Self {
        HttpFile {
            max_body_bytes: default_max_body(),
            read_access: ReadAccess::default(),
            mappings: BTreeMap::new(),
        }
    }
}

// 64 MiB: about 600k NDJSON readings in one request; larger loads go by file.
fn default_max_body() -> usize {
    64 * 1024 * 1024
}

/// Defaults for rules that leave a field out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    pub repeat: Millis,
    pub for_: Millis,
    pub schedule: String,
}

/// Bounds on each rule evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_operations: u64,
    pub rule_timeout: Millis,
}

/// The monthly digest.
#[derive(Debug, Clone)]
pub struct Digest {
    /// When digests are sent (six-field cron, local time).
    pub schedule: crate::time::schedule::Schedule,
}

/// Mail settings with paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub from: String,
    pub transport: Transport,
}

/// A loaded, checked config. Paths are absolute or relative to the working
/// directory, already resolved against the config's folder.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub timezone: Tz,
    pub rules_dir: PathBuf,
    pub store_path: PathBuf,
    pub listen: String,
    pub api_token_env: Option<String>,
    pub mail: Mail,
    /// Mail addresses of each recipient group.
    pub recipients: BTreeMap<String, Vec<String>>,
    /// Chat robots of the recipient groups.
    pub robots: Vec<Robot>,
    /// Where officials reach the status page, without a final `/`.
    pub public_url: Option<String>,
    pub admin: Vec<String>,
    /// Display names (config `labels:`), see `status::words::Words`.
    pub labels: BTreeMap<String, String>,
    /// Metric → the recipient group that owns it (config `owners:`).
    pub owners: BTreeMap<String, String>,
    /// Recipient group → the name it is greeted by (config `group_names:`).
    pub group_names: BTreeMap<String, String>,
    pub defaults: Defaults,
    pub limits: Limits,
    pub max_body_bytes: usize,
    pub digest: Digest,
    pub bureaus: BTreeMap<String, Bureau>,
    pub read_access: ReadAccess,
    /// Mapping files the upload page offers (resolved paths), by name.
    pub upload_mappings: BTreeMap<String, PathBuf>,
    pub retention: Retention,
}

/// How long the store keeps what (`None`: for good), and its size cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Readings of metrics not named in `metrics`.
    pub readings: Option<Millis>,
    /// Per metric, overriding `readings`.
    pub metrics: BTreeMap<String, Option<Millis>>,
    /// Alert history rows (rows of alerts still open are kept).
    pub history: Option<Millis>,
    /// Sent messages in the outbox (unsent ones are never deleted).
    pub sent_mail: Option<Millis>,
    /// The store file's size cap: at it, writes fail as on a full disk.
    pub max_store_bytes: Option<u64>,
    /// How often the daemon prunes.
    pub every: Millis,
}

impl Retention {
    /// How long readings of `metric` are kept (`None`: for good).
    pub fn readings_for(&self, metric: &str) -> Option<Millis> {
        self.metrics.get(metric).copied().unwrap_or(self.readings)
    }

    /// Whether anything is ever deleted.
    pub fn prunes(&self) -> bool {
        self.readings.is_some()
            || self.metrics.values().any(Option::is_some)
            || self.history.is_some()
            || self.sent_mail.is_some()
    }
}

/// A retention period: `forever`, a duration (`90d`, `2w`) or years (`2y`:
/// 366 days each, so two calendar years are always covered).
fn parse_keep(text: &str) -> Result<Option<Millis>, String> {
    let t = text.trim();
    if t == "forever" {
        return Ok(None);
    }
    if let Some(years) = t.strip_suffix('y') {
        if let Ok(n) = years.parse::<i64>() {
            return Ok(Some(n.saturating_mul(366 * crate::time::DAY)));
        }
    }
    parse_duration(t).map(Some).map_err(|e| {
        format!("保留期限 `{t}` 无法识别：请写 `forever`、天数如 `400d` 或年数如 `2y` / {e}; or write `forever` or years like `2y`")
    })
}

/// The config file used when `--config` is not given: `./rulewatch.ron`, then `$RULEWATCH_CONFIG`.
pub fn default_path() -> PathBuf {
    let local = PathBuf::from("rulewatch.ron");
    if local.exists() {
        return local;
    }
    match std::env::var_os("RULEWATCH_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => local,
    }
}

/// A config syntax or shape problem: Chinese first (what, and what to
/// write), then ron's own words.
fn ron_message(e: &ron::Error) -> String {
    use ron::Error as E;
    let list = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join("、")
    };
    let zh = match e {
        E::NoSuchStructField {
            expected, found, ..
        } => {
            let guess = crate::diag::nearest(found, expected.iter().copied())
                .map(|n| format!("是否想写 `{n}`？"))
                .unwrap_or_default();
            format!(
                "没有配置项 `{found}`：{guess}这里可用的配置项有 {}；拼错的请改正，多余的请删去",
                list(expected)
            )
        }
        E::MissingStructField { field, .. } => {
            format!("缺少必填的配置项 `{field}`：请补上 `{field}: …`（写法见 docs/operations.md）")
        }
        E::DuplicateStructField { field, .. } => {
            format!("配置项 `{field}` 写了两次：请删去其中一处")
        }
        E::NoSuchEnumVariant {
            expected, found, ..
        } => format!("`{found}` 不是可选的写法：可选 {}", list(expected)),
        E::ExpectedComma => "这里缺少逗号“,”：每一项后面都要写半角逗号".into(),
        E::UnexpectedChar(c) if !c.is_ascii() => format!(
            "这里有字符“{c}”：配置文件的标点要用半角（, : ( ) {{ }} \"），中文只能写在引号里"
        ),
        E::ExpectedString | E::ExpectedStringEnd => {
            "这里应是一个用半角双引号括起的字符串，如 \"Asia/Shanghai\"".into()
        }
        E::Eof => "文件在中途结束：请检查括号 ( ) 和 { } 是否成对".into(),
        _ => "配置文件格式有误：请对照 docs/operations.md 的示例检查这一处".into(),
    };
    format!("{zh} / {e}")
}

/// A schedule the config could not read, with what to write instead (a
/// five-field cron gets its six-field form).
fn bad_schedule(key: &str, text: &str, e: &str) -> String {
    let six = format!("0 {}", text.trim());
    let hint = if text.split_whitespace().count() == 5
        && crate::time::schedule::Schedule::parse(&six).is_ok()
    {
        format!("只有 5 段，这里要 6 段（第一段是秒）：写成 \"{six}\"，意思不变")
    } else {
        "请写 6 段：秒 分 时 日 月 星期，如 \"0 0 9 16 * *\" 是每月16日 09:00；或 @daily、@monthly"
            .into()
    };
    format!("`{key}` 的执行时间 `{text}` 无法识别：{hint} / {e}")
}

/// A duration the config could not read, with what to write instead.
fn bad_duration(key: &str, text: &str, e: &str) -> String {
    format!(
        "`{key}` 的时长 `{text}` 无法识别：请写数字加单位，如 `90m`、`12h`、`7d`、`1w`（s 秒、m 分、h 时、d 天、w 周）/ {e}"
    )
}

impl Config {
    /// Reads and checks the config; every problem found, with its position.
    pub fn load(path: &Path) -> Result<Config, Vec<Diagnostic>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Diagnostic::error(
                path,
                0,
                0,
                format!("无法读取配置文件：{e}。请检查路径（--config 或 $RULEWATCH_CONFIG）/ cannot read config: {e}"),
            )]
        })?;
        Self::parse(path, &text)
    }

    /// Checks config text as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, Vec<Diagnostic>> {
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let file: ConfigFile = options.from_str(text).map_err(|e| {
            vec![Diagnostic::error(
                path,
                e.span.start.line,
                e.span.start.col,
                ron_message(&e.code),
            )]
        })?;
        let mut problems = Vec::new();
        let at = |key: &str| key_position(text, key);
        let mut error = |key: &str, message: String| {
            let (line, col) = at(key);
            problems.push(Diagnostic::error(path, line, col, message));
        };

        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };

        let timezone = file.timezone.parse::<Tz>().unwrap_or_else(|_| {
            error(
                "timezone",
                format!(
                    "时区 `{}` 无法识别：请写 IANA 时区名，如 `Asia/Shanghai` / unknown timezone `{}`: use an IANA name such as `Asia/Shanghai`",
                    file.timezone,
                    file.timezone
                ),
            );
            chrono_tz::UTC
        });

        let rules_dir = resolve(&file.rules);
        if !rules_dir.is_dir() {
            error(
                "rules",
                format!(
                    "规则文件夹 `{}` 不存在（找的是 `{}`）：请改正 rules 的路径，或新建该文件夹 / rules folder `{}` does not exist (looked in `{}`)",
                    file.rules.display(),
                    rules_dir.display(),
                    file.rules.display(),
                    rules_dir.display()
                ),
            );
        }

        let mut duration = |key: &str, text: &str| {
            parse_duration(text).unwrap_or_else(|e| {
                error(key, bad_duration(key, text, &e));
                0
            })
        };
        let defaults = Defaults {
            repeat: duration("repeat", &file.defaults.repeat),
            for_: duration("for", &file.defaults.for_),
            schedule: file.defaults.schedule.clone(),
        };
        let limits = Limits {
            max_operations: file.limits.max_operations,
            rule_timeout: duration("rule_timeout", &file.limits.rule_timeout),
        };
        if let Transport::Smtp { timeout, .. } = &file.mail.transport {
            duration("timeout", timeout);
        }
        if let Err(e) = crate::time::schedule::Schedule::parse(&defaults.schedule) {
            error(
                "schedule",
                bad_schedule("defaults.schedule", &defaults.schedule, &e),
            );
        }
        let digest_schedule = crate::time::schedule::Schedule::parse(&file.digest.schedule)
            .unwrap_or_else(|e| {
                error(
                    "digest",
                    bad_schedule(
                        "digest.schedule",
                        &file.digest.schedule,
                        &format!("digest: {e}"),
                    ),
                );
                crate::time::schedule::Schedule::parse(&default_digest_schedule())
                    .expect("the default digest schedule parses")
            });
        if file.listen.parse::<std::net::SocketAddr>().is_err() {
            error(
                "listen",
                format!(
                    "listen 的地址 `{}` 无法识别：请写成 `127.0.0.1:8080` 这样的 IP:端口 / `{}` is not an address like `127.0.0.1:8080`",
                    file.listen, file.listen
                ),
            );
        }
        if let Err(e) = lettre_mailbox(&file.mail.from) {
            error("from", e);
        }
        let mut robots = Vec::new();
        for (group, entry) in &file.recipients {
            for robot in &entry.robots {
                match check_robot(group, robot) {
                    Ok(r) => {
                        if robots.iter().any(|o: &Robot| o.target() == r.target()) {
                            error(
                                group,
                                format!(
                                    "收件组 `{group}` 把同一个机器人 `{}` 写了两次：请删去其中一个 / recipient group `{group}` lists the robot `{}` twice",
                                    r.token_env, r.token_env
                                ),
                            );
                        }
                        robots.push(r)
                    }
                    Err(e) => error(group, format!("收件组 `{group}` 的机器人：{e}")),
                }
            }
        }
        let public_url = file
            .public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_string());
        if let Some(u) = &public_url {
            if !is_http_url(u) {
                error(
                    "public_url",
                    format!("public_url `{u}` 不是网址：请写成 `https://kaohe.example.cn` 这样以 http:// 或 https:// 开头的地址 / public_url `{u}` is not an address like `https://kaohe.example.cn`"),
                );
            }
        }
        for (group, entry) in &file.recipients {
            let addresses = &entry.mail;
            if !is_valid_id(group)
                && !group
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
            {
                error(
                    group,
                    format!(
                        "收件组名 `{group}` 只能用字母、数字、汉字、`_` 和 `-`（不能有空格和标点），显示名请写在 group_names 里 / recipient group name `{group}` may hold only letters, digits, `_` and `-`"
                    ),
                );
            }
            for address in addresses {
                if let Err(e) = lettre_mailbox(address) {
                    error(group, format!("收件组 `{group}`：{e}"));
                }
            }
        }
        for (metric, group) in &file.owners {
            if !file.recipients.contains_key(group) {
                error(
                    metric,
                    format!("owners 把指标 `{metric}` 交给收件组 `{group}`，但 recipients 里没有这个组：请在 recipients 里加上 \"{group}\"，或改成已有的组 / owners: `{metric}` is owned by recipient group `{group}`, which `recipients` does not define"),
                );
            }
        }
        for group in file.group_names.keys() {
            if !file.recipients.contains_key(group) {
                error(
                    group,
                    format!("group_names 里的 `{group}` 不是 recipients 里的收件组：请改成已有的组名，或删去这一项 / group_names: `{group}` is not a recipient group of `recipients`"),
                );
            }
        }
        for address in &file.admin {
            if let Err(e) = lettre_mailbox(address) {
                error("admin", format!("admin（管理员）：{e}"));
            }
        }
        if let Transport::Smtp {
            username,
            password_env,
            security,
            allow_plaintext_auth,
            ..
        } = &file.mail.transport
        {
            if username.is_some() && *security == Security::None && !allow_plaintext_auth {
                error(
                    "username",
                    "`security: None` 时登录会明文发送邮箱密码：请改为 `security: StartTls` 或 `Tls`；确需明文请写 `allow_plaintext_auth: true` / AUTH over `security: None` sends the password in clear; use StartTls or Tls, or set `allow_plaintext_auth: true`".into(),
                );
            }
            if username.is_some() && password_env.is_none() {
                error(
                    "username",
                    "写了 `username` 就要写 `password_env`：存放邮箱密码的环境变量名（如 \"RW_SMTP_PASSWORD\"），密码不要写在配置文件里 / `username` needs `password_env`, the environment variable holding the password".into(),
                );
            }
        }

        for (name, bureau) in &file.bureaus {
            if bureau.token_env.is_empty()
                || !bureau
                    .token_env
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                error(
                    "token_env",
                    format!(
                        "部门“{name}”的 token_env 应是环境变量名（如 RW_TOKEN_HR），不是口令本身 / bureau `{name}`: `token_env` names an environment variable"
                    ),
                );
            }
        }
        if let ReadAccess::ProxyHeader { name } = &file.http.read_access {
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                error(
                    "read_access",
                    format!("read_access 的 `{name}` 不是 HTTP 请求头的名字：只能用英文字母、数字和 `-`，如 `X-Remote-User` / read_access: `{name}` is not an HTTP header name"),
                );
            }
        }
        let upload_mappings = file
            .http
            .mappings
            .iter()
            .map(|(name, p)| (name.clone(), resolve(p)))
            .collect();

        let transport = match file.mail.transport {
            Transport::File { dir } => Transport::File { dir: resolve(&dir) },
            smtp => smtp,
        };
        let retention = {
            let r = &file.retention;
            let mut keep = |key: &str, text: &str, min: Millis| match parse_keep(text) {
                Ok(Some(d)) if d < min => {
                    error(
                        key,
                        format!(
                            "保留期限 `{text}` 太短：至少 {} 天 / retention `{text}` is too short: at least {} days",
                            min / crate::time::DAY,
                            min / crate::time::DAY
                        ),
                    );
                    None
                }
                Ok(d) => d,
                Err(e) => {
                    error(key, e);
                    None
                }
            };
            let day = crate::time::DAY;
            let readings = keep("readings", &r.readings, day);
            let metrics = r
                .metrics
                .iter()
                .map(|(m, t)| (m.clone(), keep(m, t, day)))
                .collect();
            let history = keep("history", &r.history, day);
            let sent_mail = keep("sent_mail", &r.sent_mail, MIN_SENT_MAIL);
            let every = parse_duration(&r.every).unwrap_or_else(|e| {
                error("every", e);
                crate::time::HOUR
            });
            if every < crate::time::SECOND {
                error(
                    "every",
                    format!(
                        "retention.every `{}` 太短：至少 1s / too short: at least 1s",
                        r.every
                    ),
                );
            }
            if let Some(n) = r.max_store_bytes.filter(|&n| n < MIN_STORE_BYTES) {
                error(
                    "max_store_bytes",
                    format!(
                        "存储库上限 {n} 字节太小：至少 {MIN_STORE_BYTES} 字节（1 MiB）/ max_store_bytes {n} is too small: at least {MIN_STORE_BYTES} (1 MiB)"
                    ),
                );
            }
            Retention {
                readings,
                metrics,
                history,
                sent_mail,
                max_store_bytes: r.max_store_bytes,
                every: every.max(crate::time::SECOND),
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            path: path.to_path_buf(),
            timezone,
            rules_dir,
            store_path: resolve(&file.store),
            listen: file.listen,
            api_token_env: file.api_token_env,
            mail: Mail {
                from: file.mail.from,
                transport,
            },
            recipients: file
                .recipients
                .into_iter()
                .map(|(group, entry)| (group, entry.mail))
                .collect(),
            robots,
            public_url,
            admin: file.admin,
            labels: file.labels,
            owners: file.owners,
            group_names: file.group_names,
            defaults,
            limits,
            max_body_bytes: file.http.max_body_bytes,
            digest: Digest {
                schedule: digest_schedule,
            },
            bureaus: file.bureaus,
            read_access: file.http.read_access,
            upload_mappings,
            retention,
        })
    }

    /// The robot a target made by [`Robot::target`] names.
    pub fn robot(&self, target: &str) -> Option<&Robot> {
        self.robots.iter().find(|r| r.target() == target)
    }

    /// The addresses (and robot targets) a rule's `notify` list names: group names are expanded,
    /// entries with an `@` are addresses. Err names the unknown group.
    pub fn resolve_recipients(&self, notify: &[String]) -> Result<Vec<String>, String> {
        let mut out: Vec<String> = Vec::new();
        for entry in notify {
            if entry.contains('@') {
                lettre_mailbox(entry)?;
                out.push(entry.clone());
            } else if let Some(addresses) = self.recipients.get(entry) {
                out.extend(addresses.iter().cloned());
                out.extend(
                    self.robots
                        .iter()
                        .filter(|r| &r.group == entry)
                        .map(Robot::target),
                );
            } else {
                let known: Vec<&str> = self.recipients.keys().map(String::as_str).collect();
                let path = self.path.display();
                return Err(if known.is_empty() {
                    format!(
                        "收件组 `{entry}` 在 {path} 里没有定义（还没有定义任何收件组）：请在 recipients 里加上 \"{entry}\": [\"地址@example.cn\"] / \
                         notify names recipient group `{entry}`, which `{path}` does not define (defined: none)"
                    )
                } else {
                    format!(
                        "收件组 `{entry}` 在 {path} 里没有定义（已定义：{}）：请改成已定义的组，或在 recipients 里加上它 / \
                         notify names recipient group `{entry}`, which `{path}` does not define (defined: {})",
                        known.join("、"),
                        known.join(", ")
                    )
                });
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Everyone group `group` reaches: its mail addresses and its robots'
    /// targets (`dingtalk:hr:DT_HR`); empty for an unknown group.
    pub fn group_targets(&self, group: &str) -> Vec<String> {
        let mut out = self.recipients.get(group).cloned().unwrap_or_default();
        out.extend(
            self.robots
                .iter()
                .filter(|r| r.group == group)
                .map(Robot::target),
        );
        out
    }

    /// How group `group` is named to officials (greetings, the page, the
    /// digest): its `group_names` entry; else the name of its first address
    /// that has one (`人社局 <hr@example.cn>`); else the key when it is
    /// Chinese; else the key with its addresses, `hr（hr@example.cn）`, so
    /// a reader can tell who it is (and `check` asks for a `group_names`
    /// entry). A `notify` entry that is an address is shown as it is.
    pub fn group_name(&self, group: &str) -> String {
        if let Some(name) = self.group_names.get(group) {
            return name.clone();
        }
        let addresses = self.recipients.get(group).map_or(&[][..], Vec::as_slice);
        let named = addresses.iter().find_map(|a| {
            a.parse::<lettre::message::Mailbox>()
                .ok()
                .and_then(|m| m.name.filter(|n| !n.trim().is_empty()))
        });
        if let Some(name) = named {
            return name;
        }
        if !group.is_ascii() || addresses.is_empty() {
            return group.to_string();
        }
        format!("{group}（{}）", addresses.join("、"))
    }

    /// Recipient groups named in `notify` that have only an ASCII key to
    /// show (no `group_names` entry, no address with a name).
    pub fn unnamed_group(&self, group: &str) -> bool {
        self.recipients.contains_key(group) && group.is_ascii() && {
            let shown = self.group_name(group);
            shown.starts_with(&format!("{group}（")) || shown == group
        }
    }

    /// The API token, read from the environment variable the config names.
    pub fn api_token(&self) -> Option<String> {
        let var = self.api_token_env.as_ref()?;
        std::env::var(var).ok().filter(|t| !t.is_empty())
    }
}

impl Config {
    /// Each bureau's token, from its environment variable; bureaus whose
    /// variable is unset or empty are left out (the daemon warns).
    pub fn bureau_tokens(&self) -> Vec<(String, Option<String>)> {
        self.bureaus
            .iter()
            .map(|(name, b)| {
                let token = std::env::var(&b.token_env).ok().filter(|t| !t.is_empty());
                (name.clone(), token)
            })
            .collect()
    }
}

fn is_http_url(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.chars().any(char::is_whitespace))
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// A robot as written, checked: variable names, phone numbers, address.
fn check_robot(group: &str, robot: &RobotFile) -> Result<Robot, String> {
    let (kind, token_env, secret_env, at_mobiles, base_url, timeout) = match robot {
        RobotFile::DingTalk {
            token_env,
            secret_env,
            at_mobiles,
            base_url,
            timeout,
        } => (
            RobotKind::DingTalk,
            token_env,
            secret_env.clone(),
            at_mobiles,
            base_url,
            timeout,
        ),
        RobotFile::WeCom {
            key_env,
            at_mobiles,
            base_url,
            timeout,
        } => (
            RobotKind::WeCom,
            key_env,
            None,
            at_mobiles,
            base_url,
            timeout,
        ),
        RobotFile::Feishu {
            token_env,
            secret_env,
            at_user_ids,
            base_url,
            timeout,
        } => {
            for id in at_user_ids {
                if !id.starts_with("ou_")
                    || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err(format!(
                        "at_user_ids 里的 `{id}` 不是飞书 open_id：应以 ou_ 开头，如 `ou_84aad35d084aa403a838cf73ee18467`（在飞书管理后台查） / at_user_ids: `{id}` is not a Feishu open_id like `ou_84aad35d084aa403a838cf73ee18467`"
                    ));
                }
            }
            (
                RobotKind::Feishu,
                token_env,
                secret_env.clone(),
                at_user_ids,
                base_url,
                timeout,
            )
        }
    };
    for var in std::iter::once(token_env).chain(secret_env.as_ref()) {
        if !is_env_name(var) {
            return Err(format!(
                "`{var}` 不是环境变量名（只能用英文字母、数字和 `_`）：机器人的 token 或密钥请放进这个环境变量，不要写在配置文件里 / `{var}` is not an environment variable name (letters, digits and `_`); put the token or secret in that variable, not in the file"
            ));
        }
    }
    for m in at_mobiles.iter().filter(|_| kind != RobotKind::Feishu) {
        let digits = m.strip_prefix("+86").unwrap_or(m);
        if digits.len() != 11 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "at_mobiles 里的 `{m}` 不是 11 位手机号，请改正（可带 +86） / at_mobiles: `{m}` is not an 11-digit mobile number"
            ));
        }
    }
    let base_url = match base_url {
        Some(u) if !is_http_url(u) => {
            return Err(format!(
                "base_url `{u}` 不是网址：请写以 http:// 或 https:// 开头的地址，或删去这一项用默认地址 / base_url `{u}` is not an http(s) address"
            ));
        }
        Some(u) => u.trim_end_matches('/').to_string(),
        None => kind.default_base_url().to_string(),
    };
    let timeout = parse_duration(timeout).map_err(|e| bad_duration("timeout", timeout, &e))?;
    Ok(Robot {
        group: group.to_string(),
        kind,
        token_env: token_env.clone(),
        secret_env,
        mentions: at_mobiles.clone(),
        base_url,
        timeout: timeout.max(1),
    })
}

fn lettre_mailbox(text: &str) -> Result<(), String> {
    text.parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|e| {
            format!("`{text}` 不是邮箱地址：请写成 `name@example.cn`（可写成 `张三 <name@example.cn>`） / `{text}` is not a mail address: {e}")
        })
}

/// Best-effort position of `key:` in RON text (first occurrence outside a
/// comment), for errors found after parsing. (1, 1) when not found.
fn key_position(text: &str, key: &str) -> (usize, usize) {
    let quoted = format!("\"{key}\"");
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for needle in [key, quoted.as_str()] {
            let mut start = 0;
            while let Some(found) = code[start..].find(needle) {
                let at = start + found;
                let before_ok = at == 0
                    || !code[..at]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_');
                let rest = code[at + needle.len()..].trim_start();
                if before_ok && rest.starts_with(':') {
                    return (i + 1, code[..at].chars().count() + 1);
                }
                start = at + needle.len();
            }
        }
    }
    (1, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Vec<Diagnostic>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        let path = dir.path().join("rulewatch.ron");
        Config::parse(&path, text)
    }

    const GOOD: &str = r#"(
    timezone: "Asia/Shanghai",
    rules: "rules",
    store: "data/rulewatch.db",
    mail: (from: "南宫市目标考核 <alerts@example.cn>", transport: File(dir: "outbox")),
    recipients: { "env": ["huanbao@example.cn"] },
    admin: ["ops@example.cn"],
)"#;

    #[test]
    fn loads_a_good_config() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.timezone, chrono_tz::Asia::Shanghai);
        assert_eq!(c.defaults.repeat, crate::time::DAY);
        assert!(c.store_path.ends_with("data/rulewatch.db"));
        assert_eq!(
            c.resolve_recipients(&["env".into(), "x@y.cn".into()])
                .unwrap(),
            vec!["huanbao@example.cn".to_string(), "x@y.cn".to_string()]
        );
        let err = c.resolve_recipients(&["hr".into()]).unwrap_err();
        assert!(err.contains("`hr`"), "{err}");
    }

    #[test]
    fn unknown_key_is_an_error_with_position() {
        let text = GOOD.replace("    admin:", "    admins:");
        let e = &parse(&text).unwrap_err()[0];
        assert_eq!(e.line, 7);
        assert!(e.message.contains("admins"), "{}", e.message);
    }

    #[test]
    fn bad_timezone_points_at_the_key() {
        let text = GOOD.replace("Asia/Shanghai", "Asia/Nangong");
        let e = &parse(&text).unwrap_err()[0];
        assert_eq!((e.line, e.col), (2, 5));
        assert!(e.message.contains("Asia/Nangong"));
    }

    #[test]
    fn retention_defaults_keep_readings_and_history_for_good() {
        let c = parse(GOOD).unwrap();
        let r = &c.retention;
        assert_eq!(r.readings_for("pm25"), None);
        assert_eq!(r.history, None);
        assert_eq!(r.sent_mail, Some(365 * crate::time::DAY));
        assert_eq!(r.max_store_bytes, None);
        assert_eq!(r.every, crate::time::HOUR);
    }

    #[test]
    fn retention_per_metric_and_in_years() {
        let text = GOOD.replace(
            "    admin:",
            "    retention: (readings: \"2y\", metrics: { \"gdp\": \"forever\", \"pm25\": \"400d\" },\n        history: \"5y\", sent_mail: \"90d\", max_store_bytes: 10737418240, every: \"10m\"),\n    admin:",
        );
        let r = parse(&text).unwrap().retention;
        let day = crate::time::DAY;
        assert_eq!(r.readings_for("pm25"), Some(400 * day));
        assert_eq!(r.readings_for("gdp"), None);
        assert_eq!(r.readings_for("co"), Some(2 * 366 * day));
        assert_eq!(r.history, Some(5 * 366 * day));
        assert_eq!(r.sent_mail, Some(90 * day));
        assert_eq!(r.max_store_bytes, Some(10 << 30));
        assert_eq!(r.every, 10 * crate::time::MINUTE);
        assert!(r.prunes());
    }

    #[test]
    fn bad_retention_points_at_the_key() {
        let text = GOOD.replace(
            "    admin:",
            "    retention: (\n        readings: \"2 years\",\n        sent_mail: \"7d\",\n        max_store_bytes: 1000),\n    admin:",
        );
        let problems = parse(&text).unwrap_err();
        let at: Vec<(usize, bool)> = problems
            .iter()
            .map(|p| {
                (
                    p.line,
                    p.message.starts_with("保留期限") || p.message.starts_with("存储库上限"),
                )
            })
            .collect();
        assert_eq!(at, [(8, true), (9, true), (10, true)], "{problems:?}");
        assert!(
            problems[1].message.contains("31"),
            "{}",
            problems[1].message
        );
    }

    #[test]
    fn missing_rules_folder_is_an_error() {
        let text = GOOD.replace("rules: \"rules\"", "rules: \"nowhere\"");
        let e = &parse(&text).unwrap_err()[0];
        assert_eq!(e.line, 3);
        assert!(e.message.contains("nowhere"));
    }

    #[test]
    fn bureaus_and_read_access_are_read_strictly() {
        let text = GOOD.replace(
            "    admin:",
            "    bureaus: { \"人社局\": (token_env: \"RW_TOKEN_HR\", metrics: [\"unemployment_rate\"]) },\n    http: (read_access: ProxyHeader(name: \"X-Remote-User\"), mappings: { \"人社月报\": \"人社.ron\" }),\n    admin:",
        );
        let c = parse(&text).unwrap();
        assert_eq!(
            c.bureaus["人社局"].metrics,
            vec!["unemployment_rate".to_string()]
        );
        assert_eq!(
            c.read_access,
            ReadAccess::ProxyHeader {
                name: "X-Remote-User".into()
            }
        );
        assert!(c.upload_mappings["人社月报"].ends_with("人社.ron"));
        assert_eq!(parse(GOOD).unwrap().read_access, ReadAccess::Open);

        let secret = GOOD.replace(
            "    admin:",
            "    bureaus: { \"人社局\": (token_env: \"s3cret token!\") },\n    admin:",
        );
        let e = &parse(&secret).unwrap_err()[0];
        assert!(e.message.contains("环境变量名"), "{}", e.message);
        let unknown = GOOD.replace(
            "    admin:",
            "    bureaus: { \"人社局\": (token: \"x\") },\n    admin:",
        );
        assert!(parse(&unknown).is_err());
    }

    #[test]
    fn a_group_lists_mail_and_robots() {
        let text = GOOD.replace(
            r#"recipients: { "env": ["huanbao@example.cn"] },"#,
            r#"recipients: {
        "env": ["huanbao@example.cn"],
        "hr": (
            mail: ["renshe@example.cn"],
            robots: [
                DingTalk(token_env: "DT_HR", secret_env: "DT_HR_SECRET", at_mobiles: ["13800000000"]),
                WeCom(key_env: "WECOM_HR", base_url: "http://127.0.0.1:9/cgi-bin/webhook/send/"),
                Feishu(token_env: "FS_HR"),
            ],
        ),
        "yb": (robots: [WeCom(key_env: "WECOM_YB")]),
    },
    public_url: "https://kaohe.example.cn/","#,
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.public_url.as_deref(), Some("https://kaohe.example.cn"));
        assert_eq!(c.recipients["env"], vec!["huanbao@example.cn".to_string()]);
        assert!(c.recipients["yb"].is_empty());
        assert_eq!(
            c.resolve_recipients(&["hr".into()]).unwrap(),
            vec![
                "dingtalk:hr:DT_HR".to_string(),
                "feishu:hr:FS_HR".to_string(),
                "renshe@example.cn".to_string(),
                "wecom:hr:WECOM_HR".to_string(),
            ]
        );
        // An owner group (`owners:`) reaches its robots as well as its mail.
        assert_eq!(
            c.group_targets("hr"),
            vec![
                "renshe@example.cn".to_string(),
                "dingtalk:hr:DT_HR".to_string(),
                "wecom:hr:WECOM_HR".to_string(),
                "feishu:hr:FS_HR".to_string(),
            ]
        );
        let dt = c.robot("dingtalk:hr:DT_HR").unwrap();
        assert_eq!(dt.secret_env.as_deref(), Some("DT_HR_SECRET"));
        assert_eq!(dt.base_url, "https://oapi.dingtalk.com/robot/send");
        assert_eq!(dt.timeout, 10 * crate::time::SECOND);
        assert_eq!(
            c.robot("wecom:hr:WECOM_HR").unwrap().base_url,
            "http://127.0.0.1:9/cgi-bin/webhook/send"
        );
    }

    #[test]
    fn bad_robots_are_errors_with_position() {
        let with = |group: &str| {
            GOOD.replace(
                r#"recipients: { "env": ["huanbao@example.cn"] },"#,
                &format!("recipients: {{\n        \"env\": {group},\n    }},"),
            )
        };
        // A token in the file instead of a variable name.
        let e = &parse(&with(r#"(robots: [WeCom(key_env: "693a91f6-7xxx")])"#)).unwrap_err()[0];
        assert_eq!(e.line, 7, "{}", e.message);
        assert!(e.message.contains("environment variable"), "{}", e.message);
        let e = &parse(&with(
            r#"(robots: [DingTalk(token_env: "T", at_mobiles: ["138"])])"#,
        ))
        .unwrap_err()[0];
        assert!(e.message.contains("`138`"), "{}", e.message);
        // Unknown fields and platforms name themselves.
        let e =
            &parse(&with(r#"(robots: [WeCom(key_env: "K", secret_env: "S")])"#)).unwrap_err()[0];
        assert!(e.message.contains("secret_env"), "{}", e.message);
        let e = &parse(&with(r#"(robots: [Slack(token_env: "K")])"#)).unwrap_err()[0];
        assert!(e.message.contains("Slack"), "{}", e.message);
        let e = &parse(&with(r#"(mails: [])"#)).unwrap_err()[0];
        assert!(e.message.contains("mails"), "{}", e.message);
    }

    /// The words of the config checks an official's administrator meets:
    /// Chinese first, the key named, the fix said. One snapshot for all.
    #[test]
    fn words_of_config_checks() {
        let group = |g: &str| {
            GOOD.replace(
                r#"recipients: { "env": ["huanbao@example.cn"] },"#,
                &format!("recipients: {{ \"env\": {g} }},"),
            )
        };
        let cases = [
            ("robot token in the file", group(r#"(robots: [WeCom(key_env: "693a91f6-7xxx")])"#)),
            ("mobile number", group(r#"(robots: [DingTalk(token_env: "T", at_mobiles: ["138"])])"#)),
            ("feishu open_id", group(r#"(robots: [Feishu(token_env: "T", at_user_ids: ["zhang"])])"#)),
            ("robot base_url", group(r#"(robots: [WeCom(key_env: "K", base_url: "qyapi")])"#)),
            ("robot timeout", group(r#"(robots: [WeCom(key_env: "K", timeout: "30 秒")])"#)),
            ("robot twice", group(r#"(robots: [WeCom(key_env: "K"), WeCom(key_env: "K")])"#)),
            ("mail address", group(r#"["huanbao.example.cn"]"#)),
            ("public_url", GOOD.replace("    admin:", "    public_url: \"kaohe.example.cn\",\n    admin:")),
            ("read_access", GOOD.replace("    admin:", "    http: (read_access: ProxyHeader(name: \"X Remote\")),\n    admin:")),
            ("admin address", GOOD.replace("ops@example.cn", "ops")),
            ("plaintext password", GOOD.replace("transport: File(dir: \"outbox\")", "transport: Smtp(host: \"smtp.example.cn\", port: 25, security: None, username: \"a\", password_env: \"P\")")),
            ("username without password_env", GOOD.replace("transport: File(dir: \"outbox\")", "transport: Smtp(host: \"smtp.example.cn\", port: 465, security: Tls, username: \"a\")")),
            ("five-field digest schedule", GOOD.replace("    admin:", "    digest: (schedule: \"0 9 1 * *\"),\n    admin:")),
        ];
        let mut out = String::new();
        for (name, text) in cases {
            let errors = parse(&text).expect_err(name);
            out.push_str(&format!("## {name}\n"));
            for e in errors {
                out.push_str(&format!("{}:{}: {}\n", e.line, e.col, e.message));
            }
            out.push('\n');
        }
        insta::assert_snapshot!(out);
    }

    #[test]
    fn groups_are_named_for_officials() {
        let text = GOOD.replace(
            r#"recipients: { "env": ["huanbao@example.cn"] },"#,
            r#"recipients: { "env": ["huanbao@example.cn"], "hr": ["a@example.cn", "b@example.cn"], "medins": ["医保局 <yb@example.cn>"], "人社局": ["c@example.cn"] }, group_names: { "env": "生态环境局" },"#,
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.group_name("env"), "生态环境局");
        assert_eq!(c.group_name("medins"), "医保局", "the address's name");
        assert_eq!(c.group_name("人社局"), "人社局", "a Chinese key as it is");
        assert_eq!(c.group_name("hr"), "hr（a@example.cn、b@example.cn）");
        assert!(c.unnamed_group("hr"));
        assert!(!c.unnamed_group("env") && !c.unnamed_group("medins"));
        assert!(!c.unnamed_group("x@example.cn"), "an address is no group");
    }
}
