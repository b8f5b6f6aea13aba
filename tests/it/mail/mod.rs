//! Alerts and mail, end to end through a real SMTP server (aiosmtpd on
//! loopback; `scripts/test-deps.sh` installs it) and the file transport.
//! Time is a parameter everywhere: these tests step a fake clock.

mod crash;
mod lifecycle;
mod retry;
mod secrets;
mod smtp;
pub(crate) mod support;
mod tls;
mod words;
mod worker;
