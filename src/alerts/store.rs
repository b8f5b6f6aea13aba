//! Persistence: current alert state and the history, in the store's SQLite
//! file (which also holds the outbox the notices are queued in).
//!
//! [`AlertStore::record`] is the one place where alerts change: it loads the
//! rules' alerts, steps the pure machine, and writes the new states, their
//! transitions and (through a [`NoticeSink`]) the messages they cause in
//! **one transaction**. Either all
//! of it is there after a crash or none of it is (and the next evaluation
//! does it again), so no notice is lost or queued twice.
//!
//! An evaluation changes few alerts: most continue as they were, seen once
//! more. So the writer keeps the alerts it last wrote in memory ([`Known`],
//! checked against a counter every recording bumps, so that a write by
//! another connection is noticed) and writes only the rows that changed;
//! alerts whose only change is the time of the evaluation that saw them
//! get that time in one statement per rule ([`write_changes`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use rusqlite::{params, Connection, Row, TransactionBehavior};

use crate::alerts::history::{self, HistoryEntry, HistoryQuery};
use crate::alerts::sink::{AdminNote, NoticeSink};
use crate::alerts::state::{self, subject_key, Alert, AlertRule, State};
use crate::rules::finding::Finding;
use crate::time::Millis;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("alert store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("alert store: {0}")]
    Db(#[from] crate::db::DbError),
    #[error("alert store: background task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// No room to write (a full disk, or the store's size cap): the
    /// transaction stored nothing.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite(e)
            | StoreError::Db(crate::db::DbError::Sqlite { source: e, .. }) => {
                crate::db::is_disk_full(e)
            }
            StoreError::Db(crate::db::DbError::NoRoomToMigrate { .. }) => true,
            _ => false,
        }
    }
}

/// Opens (creating if needed) the store file for alerts, their history and
/// the outbox ([`crate::db`] owns the tables). `synchronous=FULL` on this
/// connection: a queued mail or a state change, once committed, survives
/// power loss as well as a crash (a few commits per evaluation, so the cost
/// does not matter).
pub fn open_db(path: &Path) -> Result<Connection, StoreError> {
    Ok(crate::db::open(path, crate::db::Durability::Full)?)
}

/// What [`AlertStore::record`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    pub transitions: Vec<state::Transition>,
    pub notices: Vec<state::Notice>,
    /// Ids (Message-IDs) of the messages newly queued (wake the sender when not empty).
    pub queued: Vec<String>,
}

/// Current alerts and history, through one connection.
pub struct AlertStore {
    conn: Connection,
    /// What this connection last wrote; `None` until the first recording
    /// and after a failed one.
    known: Option<Known>,
}

fn alert(row: &Row<'_>) -> rusqlite::Result<Alert> {
    let subject: String = row.get("subject")?;
    let state: String = row.get("state")?;
    let details: String = row.get("details")?;
    Ok(Alert {
        rule: row.get("rule")?,
        subject: serde_json::from_str(&subject).unwrap_or_default(),
        state: State::parse(&state).unwrap_or(State::Pending),
        active_since: row.get("active_since")?,
        fired_at: row.get("fired_at")?,
        last_sent: row.get("last_sent")?,
        last_eval: row.get("last_eval")?,
        message: row.get("message")?,
        details: serde_json::from_str(&details).unwrap_or_default(),
    })
}

fn load(conn: &Connection, rule: Option<&str>) -> rusqlite::Result<Vec<Alert>> {
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM alert_state WHERE (?1 IS NULL OR rule = ?1) ORDER BY rule, slot, subject",
    )?;
    let rows = stmt.query_map(params![rule], alert)?;
    rows.collect()
}

/// The alerts of one rule as stored, in memory.
type RuleAlerts = Vec<Alert>;

/// The alerts this connection last wrote or read, per rule, and the value
/// of the `alert_generation` counter (in `store_meta`) they reflect. Every
/// recording bumps the counter in its transaction: a value other than ours
/// means another connection recorded since, and the alerts are read again.
struct Known {
    generation: i64,
    by_rule: HashMap<String, RuleAlerts>,
}

impl Known {
    fn load(conn: &Connection, generation: i64) -> rusqlite::Result<Known> {
        let mut by_rule: HashMap<String, RuleAlerts> = HashMap::new();
        for a in load(conn, None)? {
            by_rule.entry(a.rule.clone()).or_default().push(a);
        }
        Ok(Known {
            generation,
            by_rule,
        })
    }
}

const GENERATION_KEY: &str = "alert_generation";

fn generation(conn: &Connection) -> rusqlite::Result<i64> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached("SELECT value FROM store_meta WHERE key = ?1")?
        .query_row([GENERATION_KEY], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

fn bump_generation(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO store_meta (key, value) VALUES (?1, 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value",
    )?
    .query_row([GENERATION_KEY], |r| r.get(0))
}

fn slot(a: &Alert) -> &'static str {
    if a.state == State::Error {
        "error"
    } else {
        "alert"
    }
}

/// Whether `a` and `b` differ at most in `last_eval`.
fn same_but_last_eval(a: &Alert, b: &Alert) -> bool {
    a.rule == b.rule
        && a.subject == b.subject
        && a.state == b.state
        && a.active_since == b.active_since
        && a.fired_at == b.fired_at
        && a.last_sent == b.last_sent
        && a.message == b.message
        && a.details == b.details
}

/// Brings the stored alerts of `rule` from `prev` (what the table holds) to
/// `next`, writing only what changed. Alerts that differ only in
/// `last_eval` (seen again, nothing else new) are moved from one time to
/// the next in one statement when no row that stays as it is shares the
/// old time, else row by row.
fn write_changes(
    conn: &Connection,
    rule: &str,
    prev: &[Alert],
    next: &[Alert],
) -> rusqlite::Result<()> {
    // Paired by key in one pass over both, sorted: `next` is (the machine
    // sorts its alerts), `prev` is when this connection wrote it and may
    // not be when read back (the table orders subjects by their text).
    let mut prev: Vec<&Alert> = prev.iter().collect();
    if !prev.is_sorted_by(|a, b| a.key() < b.key()) {
        prev.sort_by(|a, b| a.key().cmp(&b.key()));
        prev.dedup_by(|later, earlier| later.key() == earlier.key());
    }
    let mut gone: Vec<&Alert> = Vec::new();
    let mut seen_again: BTreeMap<(Millis, Millis), Vec<&Alert>> = BTreeMap::new();
    let mut staying_times: HashSet<Millis> = HashSet::new();
    let mut rewrite: Vec<&Alert> = Vec::new();
    let mut j = 0;
    for a in next {
        let mut before = None;
        while let Some(p) = prev.get(j) {
            match p.key().cmp(&a.key()) {
                std::cmp::Ordering::Less => gone.push(p),
                std::cmp::Ordering::Equal => before = Some(*p),
                std::cmp::Ordering::Greater => break,
            }
            j += 1;
            if before.is_some() {
                break;
            }
        }
        match before {
            Some(p) if same_but_last_eval(p, a) => {
                if p.last_eval == a.last_eval {
                    staying_times.insert(p.last_eval);
                } else {
                    seen_again
                        .entry((p.last_eval, a.last_eval))
                        .or_default()
                        .push(a);
                }
            }
            _ => rewrite.push(a),
        }
    }
    gone.extend(&prev[j..]);
    // First the times (a bulk move may touch rows rewritten or deleted below).
    for ((from, to), alerts) in &seen_again {
        if staying_times.contains(from) {
            let mut one = conn.prepare_cached(
                "UPDATE alert_state SET last_eval = ?1 WHERE rule = ?2 AND slot = ?3 AND subject = ?4",
            )?;
            for a in alerts {
                one.execute(params![to, rule, slot(a), subject_key(&a.subject)])?;
            }
        } else {
            conn.prepare_cached(
                "UPDATE alert_state SET last_eval = ?1 WHERE rule = ?2 AND last_eval = ?3",
            )?
            .execute(params![to, rule, from])?;
        }
    }
    let mut upsert = conn.prepare_cached(
        "INSERT INTO alert_state (rule, slot, subject, state, active_since, fired_at, last_sent,
                                  last_eval, message, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (rule, slot, subject) DO UPDATE SET
             state = excluded.state, active_since = excluded.active_since,
             fired_at = excluded.fired_at, last_sent = excluded.last_sent,
             last_eval = excluded.last_eval, message = excluded.message,
             details = excluded.details",
    )?;
    for a in rewrite {
        upsert.execute(params![
            rule,
            slot(a),
            subject_key(&a.subject),
            a.state.as_str(),
            a.active_since,
            a.fired_at,
            a.last_sent,
            a.last_eval,
            a.message,
            serde_json::Value::Object(a.details.clone()).to_string(),
        ])?;
    }
    let mut delete = conn
        .prepare_cached("DELETE FROM alert_state WHERE rule = ?1 AND slot = ?2 AND subject = ?3")?;
    for a in gone {
        delete.execute(params![rule, slot(a), subject_key(&a.subject)])?;
    }
    Ok(())
}

impl AlertStore {
    /// Opens the store file (the readings store's file; these tables live beside its own).
    pub fn open(path: &Path) -> Result<AlertStore, StoreError> {
        Ok(AlertStore {
            conn: open_db(path)?,
            known: None,
        })
    }

    /// A private store in memory (rule tests: thrown away after the case).
    pub fn in_memory() -> Result<AlertStore, StoreError> {
        Ok(AlertStore {
            conn: crate::db::open_in_memory()?,
            known: None,
        })
    }

    /// Records one evaluation: for each rule its findings at `now`. Steps the
    /// state machine, and in one transaction writes the new states, every
    /// transition to the history, and what `sink` queues for the notices
    /// (from all the rules of the batch together; `notify` queues one mail
    /// per recipient listing every notice for them).
    ///
    /// Pass all rules evaluated at the same tick in one batch so each
    /// recipient gets one mail for that tick.
    pub fn record<S: NoticeSink + ?Sized>(
        &mut self,
        now: Millis,
        batch: &[(&AlertRule, &[Finding])],
        sink: &S,
    ) -> Result<Recorded, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored = generation(&tx)?;
        // Taken out: if anything below fails, it is gone and read again next time.
        let mut known = match self.known.take() {
            Some(k) if k.generation == stored => k,
            _ => Known::load(&tx, stored)?,
        };
        let mut out = Recorded::default();
        for (rule, findings) in batch {
            let prev = known.by_rule.remove(&rule.id).unwrap_or_default();
            let step = state::evaluate(&prev, rule, now, findings);
            write_changes(&tx, &rule.id, &prev, &step.alerts)?;
            for t in &step.transitions {
                history::insert_transition(&tx, t)?;
            }
            out.transitions.extend(step.transitions);
            out.notices.extend(step.notices);
            if !step.alerts.is_empty() {
                known.by_rule.insert(rule.id.clone(), step.alerts);
            }
        }
        known.generation = bump_generation(&tx)?;
        out.queued = sink.queue(&tx, &out.notices, now)?;
        tx.commit()?;
        self.known = Some(known);
        Ok(out)
    }

    /// A rule was deleted: its alerts end quietly (history only, no mail).
    /// Returns how many alerts ended.
    pub fn forget_rule(
        &mut self,
        rule: &str,
        content_hash: &str,
        now: Millis,
    ) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.known = None; // read again at the next recording
        let prev = load(&tx, Some(rule))?;
        let transitions = state::forget(&prev, rule, content_hash, now);
        for t in &transitions {
            history::insert_transition(&tx, t)?;
        }
        write_changes(&tx, rule, &prev, &[])?;
        bump_generation(&tx)?;
        tx.commit()?;
        Ok(transitions.len())
    }

    /// Queues a free-form note to `admin`, once per `key` (e.g. a rule file
    /// that does not load: key `load:<file>:<content hash>`, so each broken
    /// version is reported once). Returns whether anything new was queued.
    #[allow(clippy::too_many_arguments)]
    pub fn admin_note<S: NoticeSink + ?Sized>(
        &mut self,
        key: &str,
        rule: &str,
        title: &str,
        text: &str,
        now: Millis,
        sink: &S,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let note = AdminNote {
            key,
            rule,
            title,
            text,
        };
        let queued = sink.note(&tx, &note, now)?;
        tx.commit()?;
        Ok(queued)
    }

    /// The active alerts (all rules, or one), for `GET /api/v1/alerts`.
    pub fn alerts(&self, rule: Option<&str>) -> Result<Vec<Alert>, StoreError> {
        Ok(load(&self.conn, rule)?)
    }

    /// Active alerts per state, for `/metrics`.
    pub fn count_by_state(&self) -> Result<Vec<(State, u64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT state, COUNT(*) FROM alert_state GROUP BY state ORDER BY state",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (state, n) = row?;
            if let Some(s) = State::parse(&state) {
                out.push((s, n));
            }
        }
        Ok(out)
    }

    /// History rows, for `GET /api/v1/history?rule=&since=`.
    pub fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>, StoreError> {
        Ok(history::query(&self.conn, query)?)
    }

    /// The underlying connection, for tests and one-off queries.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::state::{NoticeKind, Severity};
    use crate::rules::finding::FindingKind;

    /// Queues nothing: these tests are about the alert rows.
    struct NoMail;

    impl NoticeSink for NoMail {
        fn queue(
            &self,
            _: &Connection,
            _: &[state::Notice],
            _: Millis,
        ) -> rusqlite::Result<Vec<String>> {
            Ok(Vec::new())
        }
        fn note(&self, _: &Connection, _: &AdminNote<'_>, _: Millis) -> rusqlite::Result<bool> {
            Ok(false)
        }
    }

    fn rule(id: &str) -> AlertRule {
        AlertRule {
            id: id.into(),
            title: "失业率".into(),
            severity: Severity::Warning,
            owner: None,
            file: format!("rules/{id}.rhai").into(),
            content_hash: "h".into(),
            recipients: vec!["a@example.cn".into()],
            for_: 0,
            repeat: 0,
            closes_at: None,
        }
    }

    fn breach(rule: &str, county: &str, value: f64) -> Finding {
        let mut details = serde_json::Map::new();
        details.insert("value".into(), value.into());
        Finding {
            rule: rule.into(),
            kind: FindingKind::Breach,
            subject: [("county".to_string(), county.to_string())].into(),
            message: format!("{county} {value}"),
            details,
        }
    }

    /// Counts the rows written to `alert_state` (inserted, updated, deleted).
    fn count_row_writes(conn: &Connection) {
        conn.execute_batch(
            "CREATE TABLE row_writes (n INTEGER);
             CREATE TRIGGER w1 AFTER INSERT ON alert_state BEGIN INSERT INTO row_writes VALUES (1); END;
             CREATE TRIGGER w2 AFTER UPDATE ON alert_state BEGIN INSERT INTO row_writes VALUES (1); END;
             CREATE TRIGGER w3 AFTER DELETE ON alert_state BEGIN INSERT INTO row_writes VALUES (1); END;",
        )
        .unwrap();
    }

    fn row_writes(conn: &Connection) -> i64 {
        let n = conn
            .query_row("SELECT count(*) FROM row_writes", [], |r| r.get(0))
            .unwrap();
        conn.execute("DELETE FROM row_writes", []).unwrap();
        n
    }

    #[test]
    fn writes_only_the_alerts_that_changed_and_reads_back_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut store = AlertStore::open(&path).unwrap();
        count_row_writes(store.connection());
        let (a, b) = (rule("a"), rule("b"));
        let step = |store: &mut AlertStore, now: Millis, fa: &[Finding], fb: &[Finding]| {
            store.record(now, &[(&a, fa), (&b, fb)], &NoMail).unwrap()
        };
        let fa = [
            breach("a", "c1", 5.0),
            breach("a", "c2", 6.0),
            breach("a", "c3", 7.0),
        ];
        let fb = [breach("b", "c1", 1.0)];
        step(&mut store, 10, &fa, &fb);
        assert_eq!(row_writes(store.connection()), 4, "four new alerts");
        // Seen again, nothing else new: the times move, every row once.
        step(&mut store, 20, &fa, &fb);
        assert_eq!(row_writes(store.connection()), 4);
        // One message changes, one alert resolves, one is new.
        let fa2 = [
            breach("a", "c1", 5.5),
            breach("a", "c2", 6.0),
            breach("a", "c4", 1.0),
        ];
        let r = step(&mut store, 30, &fa2, &fb);
        let kinds: Vec<NoticeKind> = r.notices.iter().map(|n| n.kind).collect();
        assert_eq!(kinds, [NoticeKind::Resolved, NoticeKind::Firing]);
        // a's times moved in one statement (c1, c2, c3), b's c1 moved, then
        // c1 rewritten, c3 deleted, c4 inserted.
        assert_eq!(row_writes(store.connection()), 7);
        // What is stored is what the machine said, read by a fresh connection.
        let fresh = AlertStore::open(&path).unwrap();
        let stored = fresh.alerts(None).unwrap();
        let mut expected: Vec<Alert> = ["a", "b"]
            .iter()
            .flat_map(|r| store.known.as_ref().unwrap().by_rule[*r].clone())
            .collect();
        expected.sort_by(|x, y| (&x.rule, x.key()).cmp(&(&y.rule, y.key())));
        assert_eq!(stored, expected);
        assert!(stored.iter().all(|a| a.last_eval == 30));
        let c1 = stored
            .iter()
            .find(|x| x.rule == "a" && x.subject["county"] == "c1")
            .unwrap();
        assert_eq!((c1.message.as_str(), c1.active_since), ("c1 5.5", 10));
    }

    #[test]
    fn alerts_read_back_in_the_tables_order_are_still_paired() {
        // The table orders subjects by their text, where `{"county":"c1"}`
        // comes after `{"county":"c1","town":"t"}`; in memory it is the
        // other way round. A fresh connection must still find each alert.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let a = rule("a");
        let mut town = breach("a", "c1", 7.0);
        town.subject.insert("town".into(), "t".into());
        let f = [breach("a", "c1", 5.0), town, breach("a", "c0", 6.0)];
        AlertStore::open(&path)
            .unwrap()
            .record(10, &[(&a, &f)], &NoMail)
            .unwrap();
        let mut fresh = AlertStore::open(&path).unwrap();
        count_row_writes(fresh.connection());
        let r = fresh.record(20, &[(&a, &f)], &NoMail).unwrap();
        assert!(r.transitions.is_empty() && r.notices.is_empty(), "{r:?}");
        assert_eq!(row_writes(fresh.connection()), 3, "the times only");
        let stored = fresh.alerts(None).unwrap();
        assert_eq!(stored.len(), 3);
        assert!(stored
            .iter()
            .all(|x| x.last_eval == 20 && x.active_since == 10));
    }

    #[test]
    fn a_recording_by_another_connection_is_not_overlooked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let (mut daemon, mut other) = (
            AlertStore::open(&path).unwrap(),
            AlertStore::open(&path).unwrap(),
        );
        let a = rule("a");
        let f = [breach("a", "c1", 5.0)];
        daemon.record(10, &[(&a, &f)], &NoMail).unwrap();
        // The other connection sees the breach gone: resolved, the row deleted.
        let r = other.record(20, &[(&a, &[])], &NoMail).unwrap();
        assert_eq!(r.notices.len(), 1);
        // The daemon must start from that, not from what it wrote itself:
        // the breach is a new episode that fires again.
        let r = daemon.record(30, &[(&a, &f)], &NoMail).unwrap();
        let t: Vec<(State, State)> = r.transitions.iter().map(|t| (t.from, t.to)).collect();
        assert_eq!(t, [(State::Inactive, State::Firing)]);
        assert_eq!(daemon.alerts(None).unwrap()[0].active_since, 30);
        // A rule forgotten ends its alerts for both.
        daemon.forget_rule("a", "h", 40).unwrap();
        assert!(other.alerts(None).unwrap().is_empty());
        let r = other.record(50, &[(&a, &f)], &NoMail).unwrap();
        assert_eq!(r.transitions.len(), 1);
    }
}
