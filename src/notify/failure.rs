//! Why a message was not delivered, in words for the administrator who
//! reads it: in the note to `admin`, in a rule's history on the status page
//! and in the outbox (`last_error`). As words.md asks: Chinese first, which
//! mail server or robot, what happened, whether and when it is tried again,
//! what to do; then, after ` / `, the server's or library's own text for
//! whoever digs further (`permanent error (550): 5.1.1 no such mailbox`).
//!
//! The transports (`mail.rs`, `chat.rs`) say what happened; the meanings of
//! SMTP reply codes and of the chat platforms' error codes are here, in one
//! place. Secrets are scrubbed by the transports before text reaches here.

use std::fmt;

use crate::config::RobotKind;
use crate::time::Millis;

/// Why a message was not sent, and whether it is worth retrying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Worth retrying later (connection refused, timeout, 4xx, TLS trouble);
    /// `false` when the same message can never succeed (5xx, a bad address).
    pub temporary: bool,
    /// Where and what happened, in Chinese: `邮件服务器 mail.example.cn:25
    /// 永久拒收发往 x@example.cn 的邮件（550：收件邮箱不存在或不收信）`.
    pub what: String,
    /// What to do about it, in Chinese: `请核对这个收件地址…`.
    pub fix: String,
    /// The server's or library's own text ("" when there is none).
    pub original: String,
    /// The server said when to try again (a chat robot's rate limit): the
    /// retry waits at least this long.
    pub retry_after: Option<Millis>,
}

impl SendError {
    pub fn temporary(
        what: impl Into<String>,
        fix: impl Into<String>,
        original: impl Into<String>,
    ) -> SendError {
        SendError {
            temporary: true,
            what: what.into(),
            fix: fix.into(),
            original: original.into(),
            retry_after: None,
        }
    }

    pub fn permanent(
        what: impl Into<String>,
        fix: impl Into<String>,
        original: impl Into<String>,
    ) -> SendError {
        SendError {
            temporary: false,
            ..SendError::temporary(what, fix, original)
        }
    }

    /// The same error with `f` applied to each of its texts (to scrub a
    /// secret, or to name the robot).
    pub fn map_text(self, f: impl Fn(&str) -> String) -> SendError {
        SendError {
            what: f(&self.what),
            fix: f(&self.fix),
            original: f(&self.original),
            ..self
        }
    }

    /// The whole text as stored and shown: `{what}，将于 {retry_at} 重试。
    /// {fix} / {original}` (`不再重试` for a permanent failure, `稍后重试`
    /// when the time is not known).
    pub fn words(&self, retry_at: Option<&str>) -> String {
        let outcome = match (self.temporary, retry_at) {
            (false, _) => "不再重试".to_string(),
            (true, Some(at)) => format!("将于 {at} 重试"),
            (true, None) => "稍后重试".to_string(),
        };
        let mut text = format!("{}，{outcome}。{}", self.what, self.fix);
        if !self.original.is_empty() {
            text.push_str(" / ");
            text.push_str(&self.original);
        }
        text
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words(None))
    }
}

impl std::error::Error for SendError {}

/// The fix for what only a change to rulewatch itself can mend.
pub const REPORT_BUG: &str = "这是 rulewatch 自身的问题，请把这条信息转给 rulewatch 的维护者";

/// What an SMTP reply code means (RFC 5321 §4.2, RFC 4954 for 53x).
pub fn smtp_meaning(code: u16) -> &'static str {
    match code {
        421 => "服务暂不可用，正在关闭连接",
        450 => "收件邮箱暂不可用",
        451 => "服务器暂时无法处理，常见于灰名单",
        452 => "服务器存储空间不足",
        454 => "暂时无法登录或加密",
        500..=504 => "服务器不认这条命令",
        530 => "服务器要求先登录",
        534 => "服务器不接受这种登录方式",
        535 => "用户名或密码不对",
        538 => "服务器要求加密后才能登录",
        550 => "收件邮箱不存在或不收信",
        551 => "收件人不在这台服务器上",
        552 => "邮箱已满或邮件过大",
        553 => "邮箱地址不被接受",
        554 => "邮件被拒收（策略或内容原因）",
        555 => "参数不被接受",
        400..=499 => "暂时无法处理",
        _ => "拒绝",
    }
}

/// Which step of the SMTP dialogue a reply answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmtpStep {
    /// The greeting and EHLO.
    Greeting,
    /// STARTTLS or the implicit-TLS handshake.
    Tls,
    Auth,
    /// MAIL FROM, with the sender.
    MailFrom(String),
    /// RCPT TO, with the recipient.
    Rcpt(String),
    /// DATA and the message itself.
    Data,
}

/// A negative SMTP reply `code` at `step` from the server `server`
/// (`mail.example.cn:25`), in words; `original` is lettre's text.
pub fn smtp_reply(
    server: &str,
    step: &SmtpStep,
    code: u16,
    temporary: bool,
    original: String,
) -> SendError {
    let meaning = smtp_meaning(code);
    let (what, fix) = match step {
        _ if matches!(code, 530 | 534 | 535 | 538) || *step == SmtpStep::Auth => (
            format!("邮件服务器 {server} 拒绝登录（{code}：{meaning}）"),
            "请核对配置 mail 的 username，以及 password_env 所指环境变量里的密码（服务器要求加密的，security 设为 StartTls 或 Tls）；改好后重启或重新加载配置，排队的邮件随即发出".to_string(),
        ),
        SmtpStep::Rcpt(to) if temporary => (
            format!("邮件服务器 {server} 暂时不收发往 {to} 的邮件（{code}：{meaning}）"),
            "一般会自行恢复；若一直如此，请联系邮件服务器管理员".to_string(),
        ),
        SmtpStep::Rcpt(to) => (
            format!("邮件服务器 {server} 永久拒收发往 {to} 的邮件（{code}：{meaning}）"),
            match code {
                552 => "请收件人清理邮箱，或在配置里改用其他地址".to_string(),
                554 => "请邮件服务器管理员查看拒收原因".to_string(),
                _ => "请核对这个收件地址是否写错或已停用，在配置里改正".to_string(),
            },
        ),
        SmtpStep::MailFrom(from) if !temporary => (
            format!("邮件服务器 {server} 不接受发件人 {from}（{code}：{meaning}）"),
            "请把配置 mail 的 from 改为该服务器允许的发件地址".to_string(),
        ),
        SmtpStep::Data if !temporary => (
            format!("邮件服务器 {server} 拒收这封邮件（{code}：{meaning}）"),
            "多因邮件过大或内容被判为垃圾邮件，请邮件服务器管理员查看拒收原因".to_string(),
        ),
        SmtpStep::Tls => (
            format!("邮件服务器 {server} 不肯建立加密连接（{code}：{meaning}）"),
            "请核对配置 mail 的 security 与端口（StartTls 常用 587，Tls 常用 465）".to_string(),
        ),
        SmtpStep::Greeting if !temporary => (
            format!("邮件服务器 {server} 拒绝会话（{code}：{meaning}）"),
            "请联系邮件服务器管理员，确认本机可以通过它发信".to_string(),
        ),
        _ => (
            format!("邮件服务器 {server} 暂时不收信（{code}：{meaning}）"),
            "一般会自行恢复；若一直如此，请联系邮件服务器管理员".to_string(),
        ),
    };
    SendError {
        temporary,
        what,
        fix,
        original,
        retry_after: None,
    }
}

/// Why a TCP connection to `server` failed, from the I/O error.
pub fn connect_failed(server: &str, e: &std::io::Error, service: &str, fix: &str) -> SendError {
    let why = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "对方拒绝连接，该端口上没有服务",
        std::io::ErrorKind::TimedOut => "连接超时",
        std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => "网络不通",
        _ if e.to_string().contains("lookup") || e.to_string().contains("resolve") => {
            "找不到这个主机名"
        }
        _ => "网络错误",
    };
    SendError::temporary(
        format!("连不上{service} {server}（{why}）"),
        fix,
        e.to_string(),
    )
}

/// The chat platforms' names, as officials know them.
pub fn platform_zh(kind: RobotKind) -> &'static str {
    match kind {
        RobotKind::DingTalk => "钉钉",
        RobotKind::WeCom => "企业微信",
        RobotKind::Feishu => "飞书",
    }
}

/// What a chat platform's error code means and what to do, for the codes
/// their documentation names; `None` for others.
pub fn robot_code(kind: RobotKind, code: i64) -> Option<(&'static str, &'static str)> {
    const RATE: &str = "无需处理，限流过后自动补发";
    Some(match (kind, code) {
        (RobotKind::DingTalk, 130101) => ("发送太快，超过每分钟 20 条，机器人被限流 10 分钟", RATE),
        (RobotKind::DingTalk, 310000) => (
            "安全设置校验未通过：加签不符、消息不含自定义关键词，或本机 IP 不在允许的地址段内",
            "请对照该机器人的安全设置：加签密钥须与 secret_env 所指环境变量一致、本机时钟须准确；设了关键词的，消息须含该词（如 rulewatch）；设了 IP 地址段的，须含本机出口 IP",
        ),
        (RobotKind::DingTalk, 300001) => (
            "access_token 不存在，机器人可能已被删除",
            "请核对 token_env 所指环境变量里的 access_token，或在群里重新添加机器人",
        ),
        (RobotKind::DingTalk, 40035) => ("请求缺少参数", REPORT_BUG),
        (RobotKind::DingTalk, 43004 | 400105) => ("不支持这种消息类型", REPORT_BUG),
        (RobotKind::DingTalk, 460101) => ("消息超过 20000 字节", REPORT_BUG),
        (RobotKind::WeCom, 45009) => ("发送太快，超过每分钟 20 条", RATE),
        (RobotKind::WeCom, 93000) => (
            "webhook 地址无效：key 不对，或机器人已被移出群",
            "请核对 key_env 所指环境变量里的 key，并确认机器人仍在群里",
        ),
        (RobotKind::WeCom, 40058) => ("内容超过 4096 字节或格式不对", REPORT_BUG),
        (RobotKind::WeCom, 44004) => ("内容为空", REPORT_BUG),
        (RobotKind::WeCom, 40008) => ("消息类型无效", REPORT_BUG),
        (RobotKind::WeCom, -1) => ("平台繁忙", "无需处理，稍后自动重试"),
        (RobotKind::Feishu, 11232) => ("发送太快，超过每分钟 100 条或每秒 5 条", RATE),
        (RobotKind::Feishu, 19021) => (
            "签名校验失败：加签密钥不符，或本机时钟与标准时间相差超过 1 小时",
            "请核对 secret_env 所指环境变量里的签名校验密钥，并校准本机时钟",
        ),
        (RobotKind::Feishu, 19022) => (
            "本机 IP 不在机器人允许的地址段内",
            "请在机器人安全设置的 IP 白名单里加入本机出口 IP",
        ),
        (RobotKind::Feishu, 19024) => (
            "消息不含机器人设置的自定义关键词",
            "请在机器人安全设置里删去关键词，或改为消息必含的词（如 rulewatch）",
        ),
        (RobotKind::Feishu, 9499) => ("请求格式不对或超过 20 KB", REPORT_BUG),
        (RobotKind::Feishu, 19036) => ("消息过大", REPORT_BUG),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_say_what_when_and_the_fix_then_the_original() {
        let e = smtp_reply(
            "mail.example.cn:25",
            &SmtpStep::Rcpt("nobody@example.cn".into()),
            550,
            false,
            "permanent error (550): 5.1.1 no such mailbox".into(),
        );
        assert_eq!(
            e.to_string(),
            "邮件服务器 mail.example.cn:25 永久拒收发往 nobody@example.cn 的邮件（550：收件邮箱不存在或不收信），不再重试。\
             请核对这个收件地址是否写错或已停用，在配置里改正 / permanent error (550): 5.1.1 no such mailbox"
        );
        let e = smtp_reply(
            "mail.example.cn:25",
            &SmtpStep::Rcpt("x@example.cn".into()),
            451,
            true,
            "transient error (451): greylisted".into(),
        );
        assert!(e
            .words(Some("2021年3月1日 09:01"))
            .contains("（451：服务器暂时无法处理，常见于灰名单），将于 2021年3月1日 09:01 重试。"));
        let e = smtp_reply(
            "m:25",
            &SmtpStep::MailFrom("a@b".into()),
            535,
            true,
            String::new(),
        );
        assert!(e.what.contains("拒绝登录（535：用户名或密码不对）"), "{e}");
        assert!(!e.to_string().contains(" / "), "no original, no slash: {e}");
    }
}
