//! The SQLite backend: one file, WAL journal, `synchronous=FULL` so a commit
//! that returned has reached the disk before the relay answers 201.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::StoreError;
use crate::audit::GENESIS;

// The queries and the command logic, shared with the PostgreSQL engine.
#[path = "sql/mod.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: once per engine, see sql/mod.rs
mod sql;

/// The names the shared SQL (`sql/`) compiles against.
type Db = Sqlite;
type DbRow = sqlx::sqlite::SqliteRow;
type EngineStore = SqliteStore;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Handle to the database. Cheap to clone (the pool is shared).
///
/// Writers are expected to be serialised by the caller (the relay holds one
/// write lock so that events are published in `seq` order); SQLite's busy
/// timeout covers other processes such as `crisisdesk token create`.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The incident reporting rules commands and steps are judged by.
    reporting: Arc<crate::reporting::Rules>,
}

type Tx<'a> = WriteTx<'a>;

/// The page cache a write transaction works in. At SQLite's default 2 MB a
/// group of alerts or a screening import's slice overflows it, and every
/// spilled page is written and read again (strace: 112,530 pwrites and
/// 56,023 preads for one 200,000-row import). Pages are taken only as they
/// are touched.
const WRITE_CACHE: &str = "PRAGMA cache_size = -16384";

// A commit sets the cache back to SQLite's default 2 MB
// (`WriteTx::commit`): the cache is per connection, and at 16 MB on each of
// 8 pooled connections the relay held up to 128 MB of duplicated pages for
// readers (the idle-console benchmark counted 85 KiB of every console's
// 124 KiB in it). Shrinking frees the pages beyond the new size.

/// A write transaction on a connection of its own (`BEGIN IMMEDIATE`).
///
/// Not sqlx's `Transaction`: when SQLite fails a `COMMIT` (disk full, I/O
/// error) the transaction stays open on the connection, and sqlx's pool
/// took such a connection back with its depth still counted, so every
/// later write on it failed ("begin_with at non-zero transaction depth")
/// while it held SQLite's write lock. Here a transaction that does not
/// commit takes its connection out of the pool and closes it, which rolls
/// it back for certain; the pool opens a fresh one. The relay then serves
/// again by itself once the disk has room.
pub(crate) struct WriteTx<'a> {
    conn: Option<sqlx::pool::PoolConnection<Sqlite>>,
    _scope: std::marker::PhantomData<&'a ()>,
}

impl WriteTx<'_> {
    async fn begin(pool: &SqlitePool) -> Result<WriteTx<'static>, StoreError> {
        let mut conn = pool.acquire().await?;
        sqlx::query(WRITE_CACHE).execute(&mut *conn).await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        Ok(WriteTx {
            conn: Some(conn),
            _scope: std::marker::PhantomData,
        })
    }

    /// Commits; on failure the connection is discarded (see the type).
    async fn commit(mut self) -> Result<(), StoreError> {
        let Some(mut conn) = self.conn.take() else {
            return Err(StoreError::Unavailable(
                "transaction already finished".into(),
            ));
        };
        if let Err(err) = sqlx::query("COMMIT").execute(&mut *conn).await {
            drop(conn.detach());
            return Err(err.into());
        }
        // Committed. A connection that cannot shrink its cache is closed
        // rather than kept at 16 MB; the write itself has succeeded.
        if sqlx::query("PRAGMA cache_size = -2000")
            .execute(&mut *conn)
            .await
            .is_err()
        {
            drop(conn.detach());
        }
        Ok(())
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        // Not committed (an error on the way): closing the connection rolls
        // the transaction back; a pooled connection must never keep it.
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        // Present until commit or drop, which consume it.
        self.conn
            .as_deref()
            .unwrap_or_else(|| unreachable!("write transaction used after commit"))
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.conn
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("write transaction used after commit"))
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` and brings its
    /// schema up to date.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let path_part = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::UnsupportedUrl(url.to_string()))?;
        if path_part.is_empty() {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path_part}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // Each pooled connection keeps SQLite's default 2 MB page cache;
        // write transactions take a larger one while they run
        // (`WRITE_CACHE`), so 8 readers never hold 8 copies of it.
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let reporting = crate::reporting::Rules::embedded().map_err(|problems| {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            StoreError::Corrupt(format!("built-in reporting rules: {}", lines.join("; ")))
        })?;
        Ok(SqliteStore {
            pool,
            reporting: Arc::new(reporting),
        })
    }

    /// Opens a database that must already exist (tools that only read:
    /// a mistyped path must be an error, not an empty new database).
    pub async fn open_existing(url: &str) -> Result<SqliteStore, StoreError> {
        if let Some(path) = super::sqlite_path(url)
            && !path.exists()
        {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        SqliteStore::open(url).await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction that takes SQLite's write lock at once, so two
    /// processes (the relay and `token create`) never interleave appends to
    /// the audit chain.
    async fn write_tx(&self) -> Result<Tx<'static>, StoreError> {
        WriteTx::begin(&self.pool).await
    }
}

/// The heads of both logs: the last event `seq`, the last audit `seq` and
/// its hash. Under `BEGIN IMMEDIATE` no other writer can append meanwhile,
/// so the tables' own last rows are the heads.
async fn log_heads(tx: &mut Tx<'_>) -> Result<(i64, i64, String), StoreError> {
    use sqlx::Row;
    let last_seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
        .fetch_one(&mut **tx)
        .await?;
    let head = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    let (audit_seq, audit_hash) = match head {
        Some(r) => (r.try_get("seq")?, r.try_get("hash")?),
        None => (0, GENESIS.to_string()),
    };
    Ok((last_seq, audit_seq, audit_hash))
}

/// Nothing to keep: the heads are read from the logs themselves.
#[allow(clippy::unused_async)]
async fn event_head_moved(_tx: &mut Tx<'_>, _seq: i64) -> Result<(), StoreError> {
    Ok(())
}

#[allow(clippy::unused_async)]
async fn audit_head_moved(_tx: &mut Tx<'_>, _seq: i64) -> Result<(), StoreError> {
    Ok(())
}

/// SQL for the school an alert's JSON `body` (a column) names.
fn alert_school(body: &str) -> String {
    format!("json_extract({body}, '$.student.school')")
}

/// SQL for the outcome recorded for step `step` (a column) in the
/// checklist JSON `progress` (a column); NULL while the step is open.
fn step_outcome(progress: &str, step: &str) -> String {
    format!("json_extract({progress}, '$.steps.\"' || {step} || '\".outcome')")
}

/// SQL that turns a timestamp text column into an instant that compares
/// across offsets (screening answer times keep the file's offset).
fn instant(col: &str) -> String {
    format!("julianday({col})")
}

/// SQL for a top-level text field of an alert's JSON `body` (a column).
fn alert_field(body: &str, field: &str) -> String {
    format!("json_extract({body}, '$.{field}')")
}

/// Before a bulk write (a screening import's slice): a page cache large
/// enough for it. A slice of 10,000 rows and its indexes overflow SQLite's
/// default 2 MB; the importer is a short-lived process, so its connections
/// keep the larger cache until it exits.
async fn bulk_write_begin(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query(WRITE_CACHE).execute(conn).await?;
    Ok(())
}

/// Placeholder `n` for statements with thousands of them: a plain `?`,
/// so callers write them in the order they bind. SQLite keeps every
/// *named or numbered* parameter (`$1`, `?1`) in a list it searches
/// linearly, once per parameter while preparing and again when sqlx asks
/// each parameter's name to bind it: quadratic in the parameters of one
/// statement (12% of a screening import's CPU with `?N`, in
/// `sqlite3_bind_parameter_name`). Plain `?` are not in that list. Small
/// statements use `$N` on both engines.
fn placeholder(_n: usize) -> String {
    "?".to_string()
}

/// `INSERT OR REPLACE` of `rows` rows of `width` columns. Not SQLite's
/// `ON CONFLICT ... DO UPDATE`: on a screening slice (400 rows, 10,800
/// parameters) that upsert made the import's store phase 96 s instead of
/// 2.8 s (`benches/screening_import.rs`). `_key` and `_updates` are for
/// engines without `OR REPLACE`.
fn replace_rows(
    table: &str,
    columns: &str,
    (width, rows): (usize, usize),
    _key: &str,
    _updates: &str,
) -> String {
    let row = format!("({})", vec!["?"; width].join(","));
    format!(
        "INSERT OR REPLACE INTO {table} ({columns}) VALUES {}",
        vec![row.as_str(); rows].join(",")
    )
}
