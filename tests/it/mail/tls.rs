//! Mail over TLS against a real server: aiosmtpd with a TLS context on
//! loopback, STARTTLS and implicit TLS, certificates made here (Python's
//! `cryptography`): a private CA, a certificate for 127.0.0.1, one for
//! another name, one expired. Verification is on unless nothing: without
//! `ca_file` the private CA is not trusted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rulewatch::config::{Mail, Security, Transport};
use rulewatch::notify::Mailer;

use super::secrets::global_logs;
use super::support::*;

const PASSWORD: &str = "Tls-s3cret-Pw-9x";
const PASSWORD_ENV: &str = "RULEWATCH_TEST_TLS_PASSWORD";

const MAKE_CERTS: &str = r#"
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
out = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
def key():
    return ec.generate_private_key(ec.SECP256R1())
def save(name, cert, k):
    open(f"{out}/{name}.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
    if k is not None:
        open(f"{out}/{name}.key", "wb").write(k.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
ca_key = key()
ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rulewatch test CA")])
ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
      .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
      .not_valid_before(now - datetime.timedelta(days=30))
      .not_valid_after(now + datetime.timedelta(days=3650))
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
          content_commitment=False, key_encipherment=False, data_encipherment=False,
          key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
      .sign(ca_key, hashes.SHA256()))
save("ca", ca, None)
def leaf(name, san, before, after):
    k = key()
    c = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
         .issuer_name(ca_name).public_key(k.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(before).not_valid_after(after)
         .add_extension(x509.SubjectAlternativeName(san), critical=False)
         .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
         .sign(ca_key, hashes.SHA256()))
    save(name, c, k)
ip = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
leaf("good", ip, now - datetime.timedelta(days=1), now + datetime.timedelta(days=365))
leaf("wrongname", [x509.DNSName("mail.example.cn")], now - datetime.timedelta(days=1), now + datetime.timedelta(days=365))
leaf("expired", ip, now - datetime.timedelta(days=60), now - datetime.timedelta(days=1))
"#;

/// aiosmtpd with AUTH (user `alerts`, [`PASSWORD`], only over TLS) and a
/// Maildir; `starttls` or `tls` (implicit).
const TLS_SERVER: &str = r#"
import signal, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult
mode, port, cert, key, maildir, password = sys.argv[1:7]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
def auth(server, session, envelope, mechanism, data):
    return AuthResult(success=data.login == b"alerts" and data.password == password.encode())
# aiosmtpd counts only STARTTLS as TLS for `auth_require_tls`: implicit TLS
# is TLS from the first byte, so AUTH is offered there without it.
kw = dict(hostname="127.0.0.1", port=int(port), authenticator=auth,
          auth_require_tls=(mode == "starttls"), ready_timeout=10)
if mode == "starttls":
    c = Controller(Mailbox(maildir), tls_context=ctx, require_starttls=True, **kw)
else:
    c = Controller(Mailbox(maildir), ssl_context=ctx, **kw)
c.start()
signal.sigwait({signal.SIGTERM, signal.SIGINT})
"#;

struct TlsServer {
    child: Child,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn make_certs(dir: &Path) {
    let out = Command::new("python3")
        .args(["-c", MAKE_CERTS])
        .arg(dir)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "making certificates failed (python3 cryptography): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start(mode: &str, port: u16, certs: &Path, cert: &str, maildir: &Path) -> TlsServer {
    require_aiosmtpd();
    let child = Command::new("python3")
        .args(["-c", TLS_SERVER, mode, &port.to_string()])
        .arg(certs.join(format!("{cert}.pem")))
        .arg(certs.join(format!("{cert}.key")))
        .arg(maildir)
        .arg(PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    wait_listening(port, true);
    TlsServer { child }
}

fn mail_config(port: u16, security: Security, ca_file: Option<PathBuf>) -> Mail {
    std::env::set_var(PASSWORD_ENV, PASSWORD);
    Mail {
        from: "南宫市目标考核 <alerts@example.cn>".into(),
        transport: Transport::Smtp {
            host: "127.0.0.1".into(),
            port,
            security,
            username: Some("alerts".into()),
            password_env: Some(PASSWORD_ENV.into()),
            allow_plaintext_auth: false,
            timeout: "10s".into(),
            ca_file,
        },
    }
}

/// Queues one alert and runs one send round; the error stored, if any.
async fn send_one(dir: &Path, mail: &Mail) -> Option<String> {
    let mailer = Mailer::from_config(mail).unwrap();
    let (mut store, sender) = open(dir, mailer);
    let r = rule("unemployment-rate", 0, 0, &["renshe@example.cn"]);
    store
        .record(t0(), &[(&r, &[breach(&r.id, "南宫", 5.1)])], &settings())
        .unwrap();
    sender.run_once(t0()).await.unwrap();
    let rows = rulewatch::notify::outbox::list(store.connection(), None, 10).unwrap();
    rows.iter()
        .find(|m| m.recipient == "renshe@example.cn")
        .and_then(|m| m.last_error.clone())
}

fn assert_no_password(logs: &super::secrets::Captured, error: &str) {
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.contains(PASSWORD), "password in the logs: {logs}");
    assert!(!error.contains(PASSWORD), "password in the error: {error}");
}

#[tokio::test]
async fn starttls_and_implicit_tls_deliver_with_a_private_ca() {
    let logs = global_logs();
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let ca = dir.path().join("ca.pem");
    for (mode, security) in [("starttls", Security::StartTls), ("tls", Security::Tls)] {
        let work = dir.path().join(mode);
        std::fs::create_dir_all(&work).unwrap();
        let maildir = work.join("maildir");
        let port = free_port();
        let _server = start(mode, port, dir.path(), "good", &maildir);
        let error = send_one(&work, &mail_config(port, security, Some(ca.clone()))).await;
        assert_eq!(error, None, "{mode}: sent without error");
        let server = SmtpServer {
            child: None,
            port,
            maildir: maildir.clone(),
        };
        let got = server.messages();
        assert_eq!(got.len(), 1, "{mode}: one mail arrived: {got:#?}");
        assert_eq!(got[0].x_rule, "unemployment-rate");
        assert_no_password(&logs, "");
    }
}

#[tokio::test]
async fn certificates_are_verified_by_default() {
    let logs = global_logs();
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let ca = dir.path().join("ca.pem");
    let cases = [
        // The private CA is not trusted unless `ca_file` names it.
        ("good", None, "不受信任"),
        ("wrongname", Some(ca.clone()), "不是签给 `127.0.0.1` 的"),
        ("expired", Some(ca.clone()), "已过期"),
    ];
    for (cert, ca_file, expected) in cases {
        for (mode, security) in [("starttls", Security::StartTls), ("tls", Security::Tls)] {
            let work = dir.path().join(format!("{cert}-{mode}"));
            std::fs::create_dir_all(&work).unwrap();
            let port = free_port();
            let _server = start(mode, port, dir.path(), cert, &work.join("maildir"));
            let error = send_one(&work, &mail_config(port, security, ca_file.clone()))
                .await
                .unwrap_or_else(|| panic!("{cert} over {mode}: must not be sent"));
            assert!(
                error.contains(expected),
                "{cert} over {mode}: the error says `{expected}`: {error}"
            );
            assert_no_password(&logs, &error);
        }
    }
}

#[test]
fn a_missing_ca_file_is_named() {
    let mail = mail_config(25, Security::StartTls, Some("/nonexistent/ca.pem".into()));
    let err = Mailer::from_config(&mail).unwrap_err().to_string();
    assert!(
        err.contains("ca_file") && err.contains("/nonexistent/ca.pem"),
        "{err}"
    );
}
