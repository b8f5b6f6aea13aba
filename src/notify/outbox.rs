//! The durable outbox: messages waiting to be sent, in the store's SQLite
//! file (the tables are made with the alert tables, see `alerts::store`).
//! Each row is one message to one target on one channel (`channel`,
//! `recipient`); charts are queued as requests and drawn when sending.
//!
//! A mail is inserted in the same transaction as the state change that
//! causes it ([`enqueue`] takes the caller's connection or transaction), so
//! an alert never changes state without its mail, nor the reverse. A row
//! leaves `queued` only when the server has accepted it (`sent`) or refused
//! it for good (`failed`).
//!
//! Crash edge, by design: a row whose send the server accepted but whose
//! `sent` mark was not yet committed when the process died (SIGKILL between
//! the server's `250` and the commit, a window of milliseconds) is sent
//! again after restart, once, with the same Message-ID, so mail clients that
//! deduplicate by Message-ID show it once. The file transport names files by
//! Message-ID, so there the resend overwrites the same file.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::alerts::history::{self, HistoryEvent, NewEntry};
use crate::alerts::state::subject_key;
use crate::notify::chart::{ChartRequest, InlineImage, PendingChart};
use crate::notify::{compose_note, MailItem, MailKind, OutgoingMail};
use crate::time::Millis;

/// A mail in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueuedMail {
    pub id: i64,
    pub message_id: String,
    /// How it goes out, as stored (`mail`; see [`crate::notify::ChannelKind`]). A channel
    /// this version has no notifier for fails that message alone.
    pub channel: String,
    /// Who gets it on that channel (a mail address).
    pub recipient: String,
    pub kind: MailKind,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub items: Vec<MailItem>,
    pub created: Millis,
    /// `queued`, `sent` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub next_attempt: Millis,
    pub last_error: Option<String>,
    pub sent_at: Option<Millis>,
    /// Inline images (loaded by [`due`] and [`get`]; empty from [`list`]).
    #[serde(skip)]
    pub inline: Vec<InlineImage>,
    /// Charts still to draw (loaded by [`due`] and [`get`]; empty from [`list`]).
    #[serde(skip)]
    pub charts: Vec<PendingChart>,
}

/// How many mails are in each state, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    pub queued: u64,
    pub sent: u64,
    pub failed: u64,
}

fn queued_mail(row: &Row<'_>) -> rusqlite::Result<QueuedMail> {
    let items: String = row.get("items")?;
    let kind: String = row.get("kind")?;
    Ok(QueuedMail {
        id: row.get("id")?,
        message_id: row.get("message_id")?,
        channel: row.get("channel")?,
        recipient: row.get("recipient")?,
        kind: if kind == "admin" {
            MailKind::Admin
        } else {
            MailKind::Alert
        },
        subject: row.get("subject")?,
        text: row.get("text_body")?,
        html: row.get("html_body")?,
        items: serde_json::from_str(&items).unwrap_or_default(),
        created: row.get("created")?,
        status: row.get("status")?,
        attempts: row.get("attempts")?,
        next_attempt: row.get("next_attempt")?,
        last_error: row.get("last_error")?,
        sent_at: row.get("sent_at")?,
        inline: Vec::new(),
        charts: Vec::new(),
    })
}

fn load_inline(conn: &Connection, mail: &mut QueuedMail) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT cid, content_type, data FROM outbox_inline WHERE message_id = ?1 ORDER BY cid",
    )?;
    let rows = stmt.query_map(params![mail.message_id], |r| {
        Ok(InlineImage {
            cid: r.get(0)?,
            content_type: r.get(1)?,
            data: r.get(2)?,
        })
    })?;
    mail.inline = rows.collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT cid, request FROM outbox_charts WHERE message_id = ?1 ORDER BY cid",
    )?;
    let rows = stmt.query_map(params![mail.message_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    mail.charts = Vec::new();
    for row in rows {
        let (cid, request) = row?;
        // A request this version cannot read is left out (the chart is not
        // drawn; the mail still goes).
        if let Ok(request) = serde_json::from_str::<ChartRequest>(&request) {
            mail.charts.push(PendingChart { cid, request });
        }
    }
    Ok(())
}

fn item_history(
    conn: &Connection,
    time: Millis,
    event: HistoryEvent,
    mail_id: &str,
    recipient: &str,
    items: &[MailItem],
    error: Option<&str>,
) -> rusqlite::Result<()> {
    for item in items {
        history::insert(
            conn,
            &NewEntry {
                time,
                rule: &item.rule,
                subject: subject_key(&item.subject),
                event: Some(event),
                notice: Some(&item.notice),
                value: item.value,
                message: &item.message,
                content_hash: &item.content_hash,
                recipient: Some(recipient),
                message_id: Some(mail_id),
                error,
                ..Default::default()
            },
        )?;
    }
    Ok(())
}

/// Queues `mail` (due at once). Returns `false` when a mail with the same
/// Message-ID is already in the outbox: the same notice is never queued twice.
/// Call it inside the transaction that makes the state change.
pub fn enqueue(conn: &Connection, mail: &OutgoingMail, now: Millis) -> rusqlite::Result<bool> {
    let items = serde_json::to_string(&mail.items).expect("mail items serialize");
    let added = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO outbox (message_id, channel, recipient, kind, subject, text_body,
                                           html_body, items, created, status, next_attempt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'queued', ?9)",
        )?
        .execute(params![
            mail.message_id,
            mail.channel.as_str(),
            mail.recipient,
            mail.kind.as_str(),
            mail.subject,
            mail.text,
            mail.html,
            items,
            now,
        ])?;
    if added == 0 {
        return Ok(false);
    }
    for image in &mail.inline {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO outbox_inline (message_id, cid, content_type, data)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            mail.message_id,
            image.cid,
            image.content_type,
            image.data
        ])?;
    }
    for chart in &mail.charts {
        let request = serde_json::to_string(&chart.request).expect("chart requests serialize");
        conn.prepare_cached(
            "INSERT OR REPLACE INTO outbox_charts (message_id, cid, request) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![mail.message_id, chart.cid, request])?;
    }
    item_history(
        conn,
        now,
        HistoryEvent::Queued,
        &mail.message_id,
        &mail.recipient,
        &mail.items,
        None,
    )?;
    Ok(true)
}

/// Queued mails whose time has come, oldest first, at most `limit`.
pub fn due(conn: &Connection, now: Millis, limit: usize) -> rusqlite::Result<Vec<QueuedMail>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM outbox WHERE status = 'queued' AND next_attempt <= ?1
          ORDER BY next_attempt, id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, limit], queued_mail)?;
    let mut mails: Vec<QueuedMail> = rows.collect::<rusqlite::Result<_>>()?;
    for mail in &mut mails {
        load_inline(conn, mail)?;
    }
    Ok(mails)
}

/// When the next queued mail is due, if any.
pub fn next_due(conn: &Connection) -> rusqlite::Result<Option<Millis>> {
    conn.query_row(
        "SELECT MIN(next_attempt) FROM outbox WHERE status = 'queued'",
        [],
        |r| r.get(0),
    )
}

/// Every mail with `status` (all when `None`), newest first, at most `limit`.
pub fn list(
    conn: &Connection,
    status: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<QueuedMail>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM outbox WHERE (?1 IS NULL OR status = ?1) ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![status, limit], queued_mail)?;
    rows.collect()
}

pub fn get(conn: &Connection, message_id: &str) -> rusqlite::Result<Option<QueuedMail>> {
    conn.query_row(
        "SELECT * FROM outbox WHERE message_id = ?1",
        params![message_id],
        queued_mail,
    )
    .optional()?
    .map(|mut mail| load_inline(conn, &mut mail).map(|()| mail))
    .transpose()
}

pub fn counts(conn: &Connection) -> rusqlite::Result<OutboxCounts> {
    let mut c = OutboxCounts::default();
    let mut stmt = conn.prepare_cached("SELECT status, COUNT(*) FROM outbox GROUP BY status")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    for row in rows {
        let (status, n) = row?;
        match status.as_str() {
            "queued" => c.queued = n,
            "sent" => c.sent = n,
            "failed" => c.failed = n,
            _ => {}
        }
    }
    Ok(c)
}

/// The server accepted `mail`: mark it sent and write it to the history.
/// See [`mark_sent_all`] for a full store.
pub fn mark_sent(conn: &mut Connection, mail: &QueuedMail, now: Millis) -> rusqlite::Result<()> {
    mark_sent_all(conn, std::slice::from_ref(mail), now)
}

/// The server accepted `mails` (one mail, or a chat robot's grouped
/// message): mark them sent and write them to the history, in one
/// transaction.
///
/// On a full disk (or at the store's size cap) the history rows may find no
/// room: then the marks are made without them (a change of one row each,
/// which often still fits), because a mail not marked would go out again;
/// the log says the history lacks them. If even that finds no room, the
/// error is returned and the sender keeps the mails as delivered (they are
/// not sent again) until the marks can be made.
pub fn mark_sent_all(
    conn: &mut Connection,
    mails: &[QueuedMail],
    now: Millis,
) -> rusqlite::Result<()> {
    match mark_sent_with_history(conn, mails, now) {
        Err(e) if crate::db::is_disk_full(&e) => {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for mail in mails {
                set_sent(&tx, mail, now)?;
            }
            tx.commit()?;
            for mail in mails {
                tracing::warn!(
                    message_id = %mail.message_id,
                    "存储空间已满：邮件已发出并标记为已发送，但未写入历史记录；请清理磁盘或缩短 retention 保留期限 / \
                     store full: the mail was sent and marked sent, its history rows were not written; \
                     free disk space or shorten `retention`"
                );
            }
            Ok(())
        }
        other => other,
    }
}

fn mark_sent_with_history(
    conn: &mut Connection,
    mails: &[QueuedMail],
    now: Millis,
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for mail in mails {
        set_sent(&tx, mail, now)?;
        item_history(
            &tx,
            now,
            HistoryEvent::Sent,
            &mail.message_id,
            &mail.recipient,
            &mail.items,
            None,
        )?;
    }
    tx.commit()
}

/// The outbox row of `mail` marked sent at `now`.
fn set_sent(conn: &Connection, mail: &QueuedMail, now: Millis) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE outbox SET status = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL
          WHERE id = ?1",
        params![mail.id, now],
    )?;
    Ok(())
}

/// Not tried now (a chat robot's rate window is full): due again at `at`,
/// without counting as a failed attempt.
pub fn postpone(conn: &Connection, mails: &[QueuedMail], at: Millis) -> rusqlite::Result<()> {
    for mail in mails {
        conn.execute(
            "UPDATE outbox SET next_attempt = ?2 WHERE id = ?1 AND status = 'queued'",
            params![mail.id, at],
        )?;
    }
    Ok(())
}

/// Deletes at most `max_rows` messages sent before `before` (with their
/// images and chart requests), oldest first, in one short transaction
/// (retention; call again until it deletes nothing). Queued and failed
/// messages are never deleted. The history keeps who got which message.
pub fn prune_sent(conn: &Connection, before: Millis, max_rows: usize) -> rusqlite::Result<usize> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let ids: Vec<String> = tx
        .prepare_cached(
            "DELETE FROM outbox WHERE id IN (
               SELECT id FROM outbox WHERE status = 'sent' AND sent_at < ?1 ORDER BY sent_at LIMIT ?2)
             RETURNING message_id",
        )?
        .query_map(
            params![before, i64::try_from(max_rows).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    for id in &ids {
        tx.prepare_cached("DELETE FROM outbox_inline WHERE message_id = ?1")?
            .execute([id])?;
        tx.prepare_cached("DELETE FROM outbox_charts WHERE message_id = ?1")?
            .execute([id])?;
    }
    tx.commit()?;
    Ok(ids.len())
}

/// What [`mark_failed`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Will be retried at this time.
    Retry { at: Millis, admin_told: bool },
    /// Given up for good.
    GaveUp { admin_told: bool },
}

/// A send attempt failed. A temporary failure is retried at `now + delay`
/// (`delay` from the caller's policy, given the attempts so far); a
/// permanent one ends the mail. After `report_after` attempts `admin` is
/// told once that it is delayed, and once more if it fails for good (unless
/// the mail is itself a note to admin: no report loops).
#[allow(clippy::too_many_arguments)]
pub fn mark_failed(
    conn: &mut Connection,
    mail: &QueuedMail,
    now: Millis,
    error: &str,
    temporary: bool,
    delay: Millis,
    report_after: u32,
    admin: &[String],
) -> rusqlite::Result<FailureOutcome> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (attempts, admin_notified): (u32, u8) = tx.query_row(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1
         RETURNING attempts, admin_notified",
        params![mail.id, error],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // admin_notified: 0 nothing told, 1 told it is delayed, 2 told it failed.
    let level = if temporary { 1 } else { 2 };
    let report = mail.kind == MailKind::Alert
        && admin_notified < level
        && (!temporary || attempts >= report_after);
    let outcome = if temporary {
        let at = now.saturating_add(delay);
        tx.execute(
            "UPDATE outbox SET next_attempt = ?2 WHERE id = ?1",
            params![mail.id, at],
        )?;
        FailureOutcome::Retry {
            at,
            admin_told: report,
        }
    } else {
        tx.execute(
            "UPDATE outbox SET status = 'failed' WHERE id = ?1",
            params![mail.id],
        )?;
        item_history(
            &tx,
            now,
            HistoryEvent::Failed,
            &mail.message_id,
            &mail.recipient,
            &mail.items,
            Some(error),
        )?;
        FailureOutcome::GaveUp { admin_told: report }
    };
    if report {
        tx.execute(
            "UPDATE outbox SET admin_notified = ?2 WHERE id = ?1",
            params![mail.id, level],
        )?;
        if temporary {
            item_history(
                &tx,
                now,
                HistoryEvent::Delayed,
                &mail.message_id,
                &mail.recipient,
                &mail.items,
                Some(error),
            )?;
        }
        let chat = mail.channel != "mail";
        let (title, what) = match (temporary, chat) {
            (true, _) => (
                format!(
                    "{} {attempts} 次投递未成功，仍在重试：{}",
                    if chat { "群机器人消息" } else { "告警邮件" },
                    mail.recipient
                ),
                "rulewatch 会继续按退避间隔重试，送达后不再另行通知。原因、下次重试时间和处理办法见下。",
            ),
            (false, false) => (
                format!("告警邮件被拒收，已放弃投递：{}", mail.recipient),
                "邮件服务器永久拒收，或收件地址无效，rulewatch 不再重试。原因和处理办法见下。",
            ),
            (false, true) => (
                format!("群机器人消息被拒收，已放弃投递：{}", mail.recipient),
                "群机器人平台拒收此消息，rulewatch 不再重试；同一内容已随邮件发出。原因和处理办法见下。",
            ),
        };
        let text = format!(
            "{what}\n\n原因：{error}\n\n收件人：{}\n主题：{}\nMessage-ID：{}\n尝试次数：{attempts}",
            mail.recipient, mail.subject, mail.message_id
        );
        let key = format!(
            "delivery:{}:{}",
            mail.message_id,
            if temporary { "delayed" } else { "failed" }
        );
        let rule = mail.items.first().map_or("", |i| i.rule.as_str());
        for note in compose_note(&key, rule, &title, &text, now, admin) {
            enqueue(&tx, &note, now)?;
        }
    }
    tx.commit()?;
    Ok(outcome)
}
