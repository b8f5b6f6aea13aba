//! Schema migrations: the ordered steps that bring a store written by an
//! older rulewatch to this binary's [`SCHEMA_VERSION`].
//!
//! Why steps and not "CREATE IF NOT EXISTS" alone: a new column, a changed
//! index or a moved table must happen to stores that already hold years of
//! readings and open alerts, exactly once, and never half. Each step says
//! the version it makes; [`migrate`] runs every step above the version the
//! file records, in order, **all in one transaction** with the new version
//! recorded last: a crash, a full disk or a failing step leaves the store as
//! it was (the old binary still opens it), never at a version in between.
//!
//! Adding a step: append it to [`STEPS`] with `to` = the next version, raise
//! [`SCHEMA_VERSION`], and test it on the committed store of the version
//! before (`tests/fixtures/store/`). Never edit a step that has shipped.

use rusqlite::Connection;

use super::{ALERT_HISTORY, ALERT_STATE, OUTBOX, READINGS, SCHEMA_VERSION};

/// One migration step: from version `to - 1` to `to`.
pub(super) struct Step {
    pub to: i64,
    /// What it changes, for the log.
    pub what: &'static str,
    pub run: fn(&Connection) -> rusqlite::Result<()>,
}

/// Every step, oldest first; the last one's `to` is [`SCHEMA_VERSION`].
pub(super) const STEPS: &[Step] = &[
    Step {
        to: 1,
        what: "the tables (readings, alerts, history, outbox); the outbox's channel column",
        run: to_v1,
    },
    Step {
        to: 2,
        what: "an index of sent mail by time, for retention",
        run: to_v2,
    },
    Step {
        to: 3,
        what: "the staging table of HTTP ingest (readings acknowledged, not yet in day blocks)",
        run: to_v3,
    },
];

/// Version 1: every table. A store from before versions were recorded reads
/// 0 and holds these tables (or none), but its outbox may lack the `channel`
/// column (every row was mail then).
fn to_v1(conn: &Connection) -> rusqlite::Result<()> {
    for schema in [READINGS, ALERT_STATE, ALERT_HISTORY, OUTBOX] {
        conn.execute_batch(schema)?;
    }
    let has_channel: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('outbox') WHERE name = 'channel'",
        [],
        |r| r.get(0),
    )?;
    if !has_channel {
        conn.execute_batch("ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'mail'")?;
    }
    Ok(())
}

/// Version 2: retention deletes sent mail older than N days; without this
/// index that is a scan of the whole outbox at every pass.
fn to_v2(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (status, sent_at);")
}

/// Version 3: HTTP ingest appends each request's readings to `staged`
/// (one synced commit of a few pages) and folds them into day blocks later
/// (`readings::store::staging`). An older binary must not open such a store:
/// it would not see the staged readings.
fn to_v3(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(super::STAGED)
}

/// What [`migrate`] did: the version found and the one recorded now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    pub from: i64,
    pub to: i64,
}

/// Runs the steps above the recorded version in one `BEGIN IMMEDIATE`
/// transaction (several connections may open an old or new file at once:
/// the first to take the write lock migrates, the others find it done).
/// The caller has checked that the version is not newer than ours.
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<Migrated> {
    debug_assert_eq!(STEPS.last().map(|s| s.to), Some(SCHEMA_VERSION));
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let from = super::schema_version(conn)?;
        for step in STEPS.iter().filter(|s| s.to > from) {
            (step.run)(conn)?;
            tracing::debug!(to = step.to, what = step.what, "store schema step");
        }
        if from < SCHEMA_VERSION {
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        conn.execute_batch("COMMIT")?;
        Ok(Migrated {
            from,
            to: SCHEMA_VERSION.max(from),
        })
    })();
    if result.is_err() {
        // SQLite may have rolled back already (a full disk does that).
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steps_are_in_order_and_end_at_this_version() {
        for (i, step) in STEPS.iter().enumerate() {
            assert_eq!(step.to, i as i64 + 1, "{}", step.what);
        }
        assert_eq!(STEPS.last().unwrap().to, SCHEMA_VERSION);
    }

    #[test]
    fn a_failing_step_leaves_the_store_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let conn = Connection::open(&path).unwrap();
            to_v1(&conn).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            // Something in the way of step 2: an index of that name on
            // another table makes its CREATE INDEX IF NOT EXISTS a no-op, so
            // block it by a table named like the index instead.
            conn.execute_batch("CREATE TABLE outbox_sent (x);").unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        assert!(migrate(&conn).is_err());
        assert_eq!(super::super::schema_version(&conn).unwrap(), 1);
        // Not left inside a transaction.
        assert!(conn.is_autocommit());
    }
}
