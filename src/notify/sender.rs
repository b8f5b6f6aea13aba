//! The sender worker: takes due messages from the outbox, draws their
//! charts, hands each to the [`Notifier`] of its channel, marks them sent;
//! retries temporary failures with exponential backoff; tells `admin` about
//! messages that cannot be delivered.
//!
//! Crash safety: a mail is marked sent right after the server accepted it,
//! in its own transaction. SIGKILL before acceptance leaves it queued (sent
//! after restart); SIGKILL after the commit leaves it sent (never repeated);
//! SIGKILL in the few milliseconds between acceptance and commit sends it
//! once more after restart, with the same Message-ID (see [`super::outbox`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::Connection;
use tokio::sync::Notify;

use crate::alerts::store::StoreError;
use crate::db;
use crate::notify::channel::{ChatLimits, MailNotifier, Notifier};
use crate::notify::chart::{finish_html, ChartSource, InlineImage};
use crate::notify::chat;
use crate::notify::mail::{Mailer, SendError};
use crate::notify::outbox::{self, FailureOutcome, OutboxCounts, QueuedMail};
use crate::notify::templates;
use crate::notify::MailSettings;
use crate::time::{Millis, HOUR, MINUTE, SECOND};

/// When to retry, and when to tell `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure, doubled after each further one.
    pub first: Millis,
    /// The longest delay.
    pub max: Millis,
    /// After this many failed attempts `admin` is told (once); retries go on.
    pub report_after: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            // 30 s: a restarting mail server or a greylisting delay (typically
            // 1–5 min) is over within the first few tries.
            first: 30 * SECOND,
            // 1 h: during a long outage at most 24 tries a day per mail, and
            // mail leaves at most an hour after the server is back.
            max: HOUR,
            // 5 failures ≈ 7.5 min of trying (30 s + 1 + 2 + 4 min): long
            // enough to ride out a blip, short enough that admin hears of a
            // real outage while it still matters.
            report_after: 5,
        }
    }
}

impl RetryPolicy {
    /// The delay after `failures` failed attempts (1 = the first failure).
    pub fn delay(&self, failures: u32) -> Millis {
        let doublings = failures.saturating_sub(1).min(30);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }
}

/// Counters for `/metrics` (monotonic since start). Queued mails are a gauge
/// read from the outbox: [`Sender::counts`].
#[derive(Debug, Default)]
pub struct MailStats {
    /// Mails the server accepted.
    pub sent: AtomicU64,
    /// Failed send attempts (each retry counts).
    pub failed_attempts: AtomicU64,
    /// Mails given up for good.
    pub failed: AtomicU64,
}

/// What one pass over the outbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Chat messages left for later because their robot's rate window is full.
    pub postponed: usize,
}

/// Mails taken per pass; more wait for the next pass, which follows at once.
const BATCH: usize = 50;
/// The longest the worker sleeps without looking at the outbox, in case a
/// mail was queued by another process (e.g. a second daemon on the same store).
const IDLE_POLL: Millis = MINUTE;

/// The worker. Its own SQLite connection; the daemon wakes it through
/// [`Sender::waker`] after queuing mail.
pub struct Sender {
    db: Arc<Mutex<Connection>>,
    /// The channels and settings; a config reload swaps them whole
    /// ([`Sender::channels`]), a delivery keeps those it started with.
    channels: ChannelsHandle,
    /// Draws the charts of the mails (none: mails go without charts).
    charts: Option<Arc<dyn ChartSource>>,
    policy: RetryPolicy,
    stats: Arc<MailStats>,
    wake: Arc<Notify>,
    /// Message-IDs delivered whose `sent` mark found no room (a full disk):
    /// never delivered again; marked as soon as there is room.
    unmarked: Mutex<HashSet<String>>,
    delivered: DeliveredLog,
    /// When each chat robot (channel, target) was last sent to, within the
    /// last minute: its rate limit is kept here.
    chat_sent: Mutex<HashMap<(String, String), Vec<Millis>>>,
}

/// Where the sender's messages go, and the settings they are sent with:
/// replaced whole when the daemon reloads its config.
pub struct Channels {
    /// One per channel; mail first.
    pub notifiers: Vec<Arc<dyn Notifier>>,
    pub settings: MailSettings,
}

impl Channels {
    /// Mail through `mailer`, plus `others` (chat robots), with `settings`.
    pub fn new(mailer: Mailer, others: Vec<Box<dyn Notifier>>, settings: MailSettings) -> Channels {
        let mut channels = Channels {
            notifiers: vec![Arc::new(MailNotifier::new(settings.from.clone(), mailer))],
            settings,
        };
        for n in others {
            channels.put(Arc::from(n));
        }
        channels
    }

    /// `notifier` replaces the one its channel had.
    fn put(&mut self, notifier: Arc<dyn Notifier>) {
        self.notifiers.retain(|n| n.channel() != notifier.channel());
        self.notifiers.push(notifier);
    }

    fn find(&self, channel: &str) -> Option<&Arc<dyn Notifier>> {
        self.notifiers
            .iter()
            .find(|n| n.channel().as_str() == channel)
    }
}

/// Swaps a running sender's [`Channels`] (`*handle.write() = Arc::new(…)`);
/// rounds read the current ones when they start.
pub type ChannelsHandle = Arc<parking_lot::RwLock<Arc<Channels>>>;

/// `STORE.delivered`: the Message-IDs a server has accepted, appended the
/// moment its `250` arrives, before the outbox row is marked sent.
///
/// Marking needs the store's write lock, which ingest and evaluation hold
/// in turns: under load that wait, not the network, was the window in which
/// a kill made the mail go out twice after the restart. One `write` of a
/// line to this file survives SIGKILL (the kernel has it), so the next round
/// marks such a row sent instead of sending it again. The file is emptied
/// once every id in it is marked.
#[derive(Debug, Clone)]
struct DeliveredLog {
    path: std::path::PathBuf,
}

impl DeliveredLog {
    fn beside(store_path: &Path) -> DeliveredLog {
        let mut p = store_path.as_os_str().to_owned();
        p.push(".delivered");
        DeliveredLog { path: p.into() }
    }

    fn ids(&self) -> std::collections::HashSet<String> {
        std::fs::read_to_string(&self.path)
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    fn append(&self, message_id: &str) {
        use std::io::Write;
        let line = format!("{message_id}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            tracing::warn!(file = %self.path.display(), error = %e, "cannot note a delivered mail (a crash now would send it again)");
        }
    }

    fn clear(&self) {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0) {
            let _ = std::fs::write(&self.path, b"");
        }
    }
}

impl Sender {
    /// Opens its own connection to the store at `store_path`; mail goes
    /// through `mailer`.
    pub fn open(
        store_path: &Path,
        mailer: Mailer,
        settings: MailSettings,
    ) -> Result<Sender, StoreError> {
        Ok(Sender {
            db: Arc::new(Mutex::new(db::open(store_path, db::Durability::Full)?)),
            channels: Arc::new(parking_lot::RwLock::new(Arc::new(Channels::new(
                mailer,
                Vec::new(),
                settings,
            )))),
            charts: None,
            policy: RetryPolicy::default(),
            stats: Arc::default(),
            wake: Arc::new(Notify::new()),
            unmarked: Mutex::default(),
            delivered: DeliveredLog::beside(store_path),
            chat_sent: Mutex::default(),
        })
    }

    pub fn with_policy(mut self, policy: RetryPolicy) -> Sender {
        self.policy = policy;
        self
    }

    /// Messages of `notifier`'s channel go through it (replacing the one
    /// that channel had).
    pub fn with_notifier(self, notifier: Box<dyn Notifier>) -> Sender {
        {
            let mut current = self.channels.write();
            let mut channels = Channels {
                notifiers: current.notifiers.clone(),
                settings: current.settings.clone(),
            };
            channels.put(Arc::from(notifier));
            *current = Arc::new(channels);
        }
        self
    }

    /// The handle through which a config reload swaps the channels and
    /// settings of this sender while it runs.
    pub fn channels(&self) -> ChannelsHandle {
        self.channels.clone()
    }

    fn current(&self) -> Arc<Channels> {
        self.channels.read().clone()
    }

    /// Mails carry the charts `charts` draws (at sending time).
    pub fn with_charts(mut self, charts: Arc<dyn ChartSource>) -> Sender {
        self.charts = Some(charts);
        self
    }

    pub fn stats(&self) -> Arc<MailStats> {
        self.stats.clone()
    }

    /// Call `notify_one()` on it after queuing mail, to send at once.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Where each channel's messages go, for logs: `mail: file outbox/`.
    pub fn describe(&self) -> String {
        self.current()
            .notifiers
            .iter()
            .map(|n| format!("{}: {}", n.channel().as_str(), n.describe()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Draws the charts `mail` asks for (off the async threads, outside any
    /// write transaction) and settles its HTML: drawn charts are shown, the
    /// others left out.
    async fn draw_charts(&self, mut mail: QueuedMail) -> QueuedMail {
        if mail.charts.is_empty() {
            return mail;
        }
        let pending = std::mem::take(&mut mail.charts);
        let drawn: Vec<(String, crate::notify::chart::DrawnChart)> = match self.charts.clone() {
            None => Vec::new(),
            Some(charts) => tokio::task::spawn_blocking(move || {
                pending
                    .into_iter()
                    .filter_map(|p| charts.chart(&p.request).map(|png| (p.cid, png)))
                    .collect()
            })
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "mail charts not drawn");
                Vec::new()
            }),
        };
        let cids: std::collections::HashMap<String, String> = drawn
            .iter()
            .map(|(cid, c)| (cid.clone(), c.series_html.clone()))
            .collect();
        mail.html = finish_html(&mail.html, &cids);
        mail.inline
            .extend(drawn.into_iter().map(|(cid, c)| InlineImage {
                cid,
                content_type: "image/png".into(),
                data: c.png,
            }));
        mail
    }

    /// Delivers `mail` through the notifier of its channel.
    async fn deliver(&self, mail: &QueuedMail) -> Result<(), SendError> {
        let notifier = self.current().find(&mail.channel).cloned();
        match notifier {
            Some(n) => n.deliver(mail).await,
            None => Err(SendError::permanent(
                format!(
                    "没有发送通道 `{}`（这个版本的 rulewatch 不认识它，多因换回了旧版本）",
                    mail.channel
                ),
                "换用排队时的 rulewatch 版本即可发出；同样的内容已随邮件发出",
                "",
            )),
        }
    }

    /// Runs a blocking database step off the async threads.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&mut db.lock()))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
            .map_err(StoreError::from)
    }

    pub async fn counts(&self) -> Result<OutboxCounts, StoreError> {
        self.db(|c| outbox::counts(c)).await
    }

    /// When the next queued mail is due.
    pub async fn next_due(&self) -> Result<Option<Millis>, StoreError> {
        self.db(|c| outbox::next_due(c)).await
    }

    /// The limits of `channel`'s notifier, if it is a chat robot.
    fn limits_of(&self, channel: &str) -> Option<ChatLimits> {
        self.current().find(channel).and_then(|n| n.limits())
    }

    /// The due messages as deliveries: a mail alone; a chat robot's due
    /// messages together, as many as fit its size (the rest form the next
    /// delivery), oldest first.
    fn group(&self, due: Vec<QueuedMail>) -> Vec<Vec<QueuedMail>> {
        let mut out: Vec<(Option<usize>, Vec<QueuedMail>)> = Vec::new();
        for mail in due {
            let Some(limits) = self.limits_of(&mail.channel) else {
                out.push((None, vec![mail]));
                continue;
            };
            let open = out.iter_mut().find(|(bytes, group)| {
                bytes.is_some_and(|b| b + chat::JOIN_BYTES + mail.text.len() <= limits.max_bytes)
                    && group[0].channel == mail.channel
                    && group[0].recipient == mail.recipient
            });
            match open {
                Some((bytes, group)) => {
                    *bytes = bytes.map(|b| b + chat::JOIN_BYTES + mail.text.len());
                    group.push(mail);
                }
                None => out.push((Some(chat::HEAD_BYTES + mail.text.len()), vec![mail])),
            }
        }
        out.into_iter().map(|(_, group)| group).collect()
    }

    /// For a chat robot: `None` if it may send at `now` (the send is then
    /// counted), else when it may.
    fn take_slot(&self, mail: &QueuedMail, now: Millis) -> Option<Millis> {
        self.limits_of(&mail.channel)?;
        let mut log = self.chat_sent.lock();
        let sent = log
            .entry((mail.channel.clone(), mail.recipient.clone()))
            .or_default();
        sent.retain(|t| now - t < MINUTE && *t <= now);
        let wait = chat::next_slot(sent, now);
        if wait.is_none() {
            sent.push(now);
        }
        wait
    }

    /// Sends every message due at `now` (at most one batch). `now` is a
    /// parameter so tests can step a fake clock through the backoff.
    pub async fn run_once(&self, now: Millis) -> Result<Round, StoreError> {
        let mut round = Round::default();
        let due = self.db(move |c| outbox::due(c, now, BATCH)).await?;
        let whole_queue = due.len() < BATCH;
        let already = self.delivered.ids();
        for group in self.group(due) {
            // Accepted by the server before a crash, not yet marked: marked
            // sent now, not sent again.
            // Or delivered before the store filled up (held in memory).
            let (done, group): (Vec<QueuedMail>, Vec<QueuedMail>) = {
                let held = self.unmarked.lock();
                group
                    .into_iter()
                    .partition(|m| already.contains(&m.message_id) || held.contains(&m.message_id))
            };
            if !done.is_empty() {
                for m in &done {
                    tracing::info!(message_id = %m.message_id, "mail was delivered before a restart: marked sent, not sent again");
                }
                let ids: Vec<String> = done.iter().map(|m| m.message_id.clone()).collect();
                self.db(move |c| outbox::mark_sent_all(c, &done, now))
                    .await?;
                // Those held in memory were counted sent when delivered.
                let mut held = self.unmarked.lock();
                for id in &ids {
                    if !held.remove(id) {
                        self.stats.sent.fetch_add(1, Ordering::Relaxed);
                        round.sent += 1;
                    }
                }
            }
            if group.is_empty() {
                continue;
            }
            if let Some(at) = self.take_slot(&group[0], now) {
                round.postponed += group.len();
                tracing::info!(channel = %group[0].channel, recipient = %group[0].recipient,
                    messages = group.len(), wait_s = (at - now) / SECOND,
                    "chat robot at its rate limit, messages wait");
                self.db(move |c| outbox::postpone(c, &group, at)).await?;
                continue;
            }
            let message = if group.len() == 1 {
                self.draw_charts(group[0].clone()).await
            } else {
                chat::combine(&group)
            };
            let result = self.deliver(&message).await;
            if result.is_ok() {
                // Every row the message carried, before marking them.
                for m in &group {
                    self.delivered.append(&m.message_id);
                }
            }
            let id = message.message_id.clone();
            let recipient = message.recipient.clone();
            match result {
                Ok(()) => {
                    let n = group.len();
                    let ids: Vec<String> = group.iter().map(|m| m.message_id.clone()).collect();
                    // On a full store the rows are marked without their
                    // history; if even that fails they are held below.
                    let marked = self
                        .db(move |c| outbox::mark_sent_all(c, &group, now))
                        .await;
                    if let Err(e) = marked {
                        if e.is_disk_full() {
                            let mut held = self.unmarked.lock();
                            for id in ids {
                                if held.insert(id) {
                                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            tracing::error!(
                                message_id = %id, %recipient,
                                "存储空间已满：邮件已发出，但无法标记为已发送，空间恢复后补记，不会重发；请清理磁盘或缩短 retention / \
                                 store full: mail sent but not yet marked sent (marked once there is room, never sent again); \
                                 free disk space or shorten `retention`"
                            );
                        }
                        return Err(e);
                    }
                    self.stats.sent.fetch_add(n as u64, Ordering::Relaxed);
                    round.sent += n;
                    tracing::info!(message_id = %id, %recipient, grouped = n, "mail sent");
                }
                Err(e) => {
                    let tz = self.current().settings.timezone;
                    for mail in group {
                        self.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                        let delay = self
                            .policy
                            .delay(mail.attempts + 1)
                            .max(e.retry_after.unwrap_or(0));
                        let report_after = self.policy.report_after;
                        let admin = self.current().settings.admin.clone();
                        let id = mail.message_id.clone();
                        // In words, with when it is tried again (the time
                        // `mark_failed` sets).
                        let error = e.words(Some(&templates::when(now.saturating_add(delay), tz)));
                        let temporary = e.temporary;
                        let outcome = self
                            .db(move |c| {
                                outbox::mark_failed(
                                    c,
                                    &mail,
                                    now,
                                    &error,
                                    temporary,
                                    delay,
                                    report_after,
                                    &admin,
                                )
                            })
                            .await?;
                        match outcome {
                            FailureOutcome::Retry { at, admin_told } => {
                                round.retried += 1;
                                tracing::warn!(
                                    message_id = %id, %recipient, error = %e,
                                    retry_in_s = (at - now) / SECOND, admin_told,
                                    "mail not sent, will retry"
                                );
                            }
                            FailureOutcome::GaveUp { admin_told } => {
                                round.failed += 1;
                                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                                tracing::error!(
                                    message_id = %id, %recipient, error = %e, admin_told,
                                    "mail refused for good, not retried"
                                );
                            }
                        }
                    }
                }
            }
        }
        // Every id noted is now marked (a failed mark returned above); a
        // partial batch means no due row was left out of this round.
        if whole_queue {
            self.delivered.clear();
        }
        Ok(round)
    }

    /// The worker loop on the real clock: sends what is due, sleeps until the
    /// next mail is due (or it is woken, or [`IDLE_POLL`] passes), until
    /// `shutdown` completes. A send in progress at shutdown is finished first.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        tracing::info!(transport = %self.describe(), "mail sender started");
        loop {
            let now = crate::time::wall_clock();
            let next = match self.run_once(now).await {
                Ok(round)
                    if round.sent + round.retried + round.failed + round.postponed >= BATCH =>
                {
                    now
                }
                Ok(_) => match self.next_due().await {
                    Ok(Some(t)) => t,
                    Ok(None) => now + IDLE_POLL,
                    Err(e) => {
                        tracing::error!(error = %e, "outbox unreadable");
                        now + IDLE_POLL
                    }
                },
                Err(e) => {
                    tracing::error!(error = %e, "outbox unreadable");
                    now + IDLE_POLL
                }
            };
            let wait = (next - crate::time::wall_clock()).clamp(0, IDLE_POLL);
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_millis(wait as u64)) => {}
            }
        }
        tracing::info!("mail sender stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_an_hour() {
        let p = RetryPolicy::default();
        let delays: Vec<Millis> = (1..=9).map(|n| p.delay(n) / SECOND).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(p.delay(1000), HOUR);
    }
}
