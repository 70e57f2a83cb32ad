//! The SQLite backend: one file, WAL journal, `synchronous=FULL` so a commit
//! that returned has reached the disk before the relay answers 201.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use super::{
    CommandOutcome, Credential, IngestOutcome, StoreError, StoredEvent, hash_token, hex, new_token,
    parse_ts, ts,
};
use crate::protocol::{
    Actor, Alert, AlertStatus, CaseSnapshot, CaseStatus, Category, Command, CommandOp, ErrorDetail,
    Event, EventBody, Level, Role,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Handle to the database. Cheap to clone (the pool is shared).
///
/// Writers are expected to be serialised by the caller (the relay holds one
/// write lock so that events are published in `seq` order); SQLite's busy
/// timeout covers other processes such as `crisisdesk token create`.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Sqlite>;

impl Store {
    /// Opens (creating if missing) the database at `url` and brings its
    /// schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
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
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates a credential and returns its token. Only the hash is stored,
    /// so the token cannot be shown again.
    pub async fn create_credential(&self, name: &str, role: Role) -> Result<String, StoreError> {
        let token = new_token().map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
        sqlx::query(
            "INSERT INTO credentials (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(hash_token(&token))
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(token)
    }

    /// Finds the live credential a token belongs to. The lookup is by hash,
    /// so the secret itself is never compared byte by byte.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Credential>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, role FROM credentials WHERE token_hash = ? AND revoked_at IS NULL",
        )
        .bind(hash_token(token))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let role: String = r.try_get("role")?;
            Ok(Credential {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown role `{role}`")))?,
            })
        })
        .transpose()
    }

    /// The highest `seq` stored (0 when empty).
    pub async fn latest_seq(&self) -> Result<i64, StoreError> {
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(seq)
    }

    /// Events with `seq > since`, oldest first, at most `limit`.
    pub async fn events_after(
        &self,
        since: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query("SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(since)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                Ok(StoredEvent {
                    seq: r.try_get("seq")?,
                    json: Arc::from(body),
                })
            })
            .collect()
    }

    /// Stores an alert: dedup by id, open a case or join the student's open
    /// case, append the event. All in one transaction: when this returns
    /// `Created`, the alert, the case change and the event are on disk.
    pub async fn ingest_alert(
        &self,
        alert: &Alert,
        credential: &Credential,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome, StoreError> {
        let body = serde_json::to_string(alert)
            .map_err(|e| StoreError::Corrupt(format!("alert does not encode: {e}")))?;
        let body_hash = hex(&Sha256::digest(body.as_bytes()));
        let mut tx = self.pool.begin().await?;

        if let Some(row) = sqlx::query("SELECT body_hash, seq, case_id FROM alerts WHERE id = ?")
            .bind(&alert.id)
            .fetch_optional(&mut *tx)
            .await?
        {
            let stored_hash: String = row.try_get("body_hash")?;
            return Ok(if stored_hash == body_hash {
                IngestOutcome::Duplicate {
                    seq: row.try_get("seq")?,
                    case_id: row.try_get("case_id")?,
                }
            } else {
                IngestOutcome::Conflict
            });
        }

        let mode = case_mode(alert);
        let existing = sqlx::query(
            "SELECT * FROM cases WHERE student_id = ? AND mode = ? AND status != 'closed'",
        )
        .bind(&alert.student.id)
        .bind(&mode)
        .fetch_optional(&mut *tx)
        .await?;

        let (case, opened) = match existing {
            Some(row) => {
                let mut case = case_from_row(&row)?;
                // The case takes the worst level seen; its category follows
                // the alert that raised it.
                if alert.level > case.level {
                    case.level = alert.level;
                    case.category = alert.category;
                }
                case.imminent |= alert.imminent;
                case.alert_count += 1;
                case.updated_at = now;
                sqlx::query(
                    "UPDATE cases SET level = ?, category = ?, imminent = ?, alert_count = ?, \
                     updated_at = ? WHERE id = ?",
                )
                .bind(case.level.as_str())
                .bind(case.category.as_str())
                .bind(case.imminent)
                .bind(case.alert_count)
                .bind(ts(now))
                .bind(&case.id)
                .execute(&mut *tx)
                .await?;
                (case, false)
            }
            None => {
                let num: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(num), 0) + 1 FROM cases")
                    .fetch_one(&mut *tx)
                    .await?;
                let case = CaseSnapshot {
                    id: format!("C{num:06}"),
                    status: CaseStatus::Open,
                    level: alert.level,
                    imminent: alert.imminent,
                    category: alert.category,
                    alert_status: alert.status,
                    exercise_id: alert.exercise_id.clone(),
                    student_id: alert.student.id.clone(),
                    opened_at: now,
                    updated_at: now,
                    alert_count: 1,
                    acknowledged_by: None,
                    acknowledged_at: None,
                };
                sqlx::query(
                    "INSERT INTO cases (num, id, student_id, mode, status, level, imminent, \
                     category, alert_status, exercise_id, opened_at, updated_at, alert_count) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(num)
                .bind(&case.id)
                .bind(&case.student_id)
                .bind(&mode)
                .bind(case.status.as_str())
                .bind(case.level.as_str())
                .bind(case.imminent)
                .bind(case.category.as_str())
                .bind(case.alert_status.as_str())
                .bind(&case.exercise_id)
                .bind(ts(now))
                .bind(ts(now))
                .bind(case.alert_count)
                .execute(&mut *tx)
                .await?;
                (case, true)
            }
        };

        let case_id = case.id.clone();
        let event = append_event(
            &mut tx,
            now,
            EventBody::Alert {
                case_id: case_id.clone(),
                opened,
                alert: Box::new(alert.clone()),
                case,
            },
        )
        .await?;
        sqlx::query(
            "INSERT INTO alerts (id, body_hash, case_id, seq, received_at, credential_id, body) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&alert.id)
        .bind(&body_hash)
        .bind(&case_id)
        .bind(event.seq)
        .bind(ts(now))
        .bind(credential.id)
        .bind(&body)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(IngestOutcome::Created {
            seq: event.seq,
            case_id,
            event,
        })
    }

    /// Applies a console command once. A command id seen before from the
    /// same credential returns the answer given then and changes nothing.
    pub async fn apply_command(
        &self,
        credential: &Credential,
        command: &Command,
        now: DateTime<Utc>,
    ) -> Result<CommandOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(row) =
            sqlx::query("SELECT result FROM commands WHERE credential_id = ? AND id = ?")
                .bind(credential.id)
                .bind(&command.id)
                .fetch_optional(&mut *tx)
                .await?
        {
            let stored: String = row.try_get("result")?;
            let error: Option<ErrorDetail> = serde_json::from_str(&stored)
                .map_err(|e| StoreError::Corrupt(format!("stored command result: {e}")))?;
            return Ok(CommandOutcome::Repeated {
                ok: error.is_none(),
                error,
            });
        }

        let actor = Actor {
            name: credential.name.clone(),
            role: credential.role,
        };
        let (op_name, case_id, outcome) = match &command.op {
            CommandOp::Acknowledge { case_id } => (
                "acknowledge",
                case_id.clone(),
                acknowledge(&mut tx, case_id, actor, now).await?,
            ),
        };
        let error = match &outcome {
            CommandOutcome::Refused(e) => Some(e.clone()),
            _ => None,
        };
        let result = serde_json::to_string(&error)
            .map_err(|e| StoreError::Corrupt(format!("command result does not encode: {e}")))?;
        sqlx::query(
            "INSERT INTO commands (credential_id, id, received_at, client_at, terminal, op, \
             case_id, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(credential.id)
        .bind(&command.id)
        .bind(ts(now))
        .bind(command.client_at.map(|t| t.to_rfc3339()))
        .bind(&command.terminal)
        .bind(op_name)
        .bind(&case_id)
        .bind(result)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// One case's current state, if it exists.
    pub async fn case(&self, case_id: &str) -> Result<Option<CaseSnapshot>, StoreError> {
        let row = sqlx::query("SELECT * FROM cases WHERE id = ?")
            .bind(case_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(case_from_row).transpose()
    }

    /// How many alerts are stored (for checks and tests).
    pub async fn alert_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM alerts")
            .fetch_one(&self.pool)
            .await?)
    }
}

async fn acknowledge(
    tx: &mut Tx<'_>,
    case_id: &str,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<CommandOutcome, StoreError> {
    let Some(row) = sqlx::query("SELECT * FROM cases WHERE id = ?")
        .bind(case_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(CommandOutcome::Refused(
            ErrorDetail::new("unknown_case", format!("there is no case `{case_id}`"))
                .with_field("case_id"),
        ));
    };
    let mut case = case_from_row(&row)?;
    match case.status {
        CaseStatus::Closed => {
            return Ok(CommandOutcome::Refused(ErrorDetail::new(
                "case_closed",
                format!("case {case_id} is closed"),
            )));
        }
        CaseStatus::Acknowledged => {
            let by = case
                .acknowledged_by
                .as_ref()
                .map(|a| format!("{} ({})", a.name, a.role))
                .unwrap_or_default();
            return Ok(CommandOutcome::Refused(ErrorDetail::new(
                "already_acknowledged",
                format!("case {case_id} was already acknowledged by {by}"),
            )));
        }
        CaseStatus::Open => {}
    }
    case.status = CaseStatus::Acknowledged;
    case.acknowledged_by = Some(actor.clone());
    case.acknowledged_at = Some(now);
    case.updated_at = now;
    sqlx::query(
        "UPDATE cases SET status = 'acknowledged', acknowledged_by_name = ?, \
         acknowledged_by_role = ?, acknowledged_at = ?, updated_at = ? WHERE id = ?",
    )
    .bind(&actor.name)
    .bind(actor.role.as_str())
    .bind(ts(now))
    .bind(ts(now))
    .bind(case_id)
    .execute(&mut **tx)
    .await?;
    let event = append_event(
        tx,
        now,
        EventBody::CaseAcknowledged {
            case_id: case_id.to_string(),
            by: actor,
            case: case.clone(),
        },
    )
    .await?;
    Ok(CommandOutcome::Applied {
        events: vec![event],
        case: Box::new(case),
    })
}

/// Appends an event at the next `seq`. Inside the caller's write
/// transaction `MAX(seq) + 1` is race-free, and since events are never
/// deleted the sequence has no gaps: a client can see a missing number.
async fn append_event(
    tx: &mut Tx<'_>,
    at: DateTime<Utc>,
    body: EventBody,
) -> Result<StoredEvent, StoreError> {
    let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM events")
        .fetch_one(&mut **tx)
        .await?;
    let kind = event_type(&body);
    let case_id = body.case_id().to_string();
    let event = Event { seq, at, body };
    let json = serde_json::to_string(&event)
        .map_err(|e| StoreError::Corrupt(format!("event does not encode: {e}")))?;
    sqlx::query("INSERT INTO events (seq, at, type, case_id, body) VALUES (?, ?, ?, ?, ?)")
        .bind(seq)
        .bind(ts(at))
        .bind(kind)
        .bind(case_id)
        .bind(&json)
        .execute(&mut **tx)
        .await?;
    Ok(StoredEvent {
        seq,
        json: Arc::from(json),
    })
}

fn event_type(body: &EventBody) -> &'static str {
    match body {
        EventBody::Alert { .. } => "alert",
        EventBody::CaseAcknowledged { .. } => "case_acknowledged",
    }
}

fn case_mode(alert: &Alert) -> String {
    match alert.status {
        AlertStatus::Actual => "actual".to_string(),
        AlertStatus::Test => "test".to_string(),
        AlertStatus::Exercise => format!(
            "exercise:{}",
            alert.exercise_id.as_deref().unwrap_or_default()
        ),
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} `{value}` in cases"))
}

fn case_from_row(row: &SqliteRow) -> Result<CaseSnapshot, StoreError> {
    let status: String = row.try_get("status")?;
    let level: String = row.try_get("level")?;
    let category: String = row.try_get("category")?;
    let alert_status: String = row.try_get("alert_status")?;
    let ack_name: Option<String> = row.try_get("acknowledged_by_name")?;
    let ack_role: Option<String> = row.try_get("acknowledged_by_role")?;
    let ack_at: Option<String> = row.try_get("acknowledged_at")?;
    let acknowledged_by = match (ack_name, ack_role) {
        (Some(name), Some(role)) => Some(Actor {
            name,
            role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        }),
        _ => None,
    };
    Ok(CaseSnapshot {
        id: row.try_get("id")?,
        status: CaseStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        level: Level::parse(&level).ok_or_else(|| corrupt("level", &level))?,
        imminent: row.try_get("imminent")?,
        category: serde_json::from_value::<Category>(serde_json::Value::String(category.clone()))
            .map_err(|_| corrupt("category", &category))?,
        alert_status: AlertStatus::parse(&alert_status)
            .ok_or_else(|| corrupt("alert status", &alert_status))?,
        exercise_id: row.try_get("exercise_id")?,
        student_id: row.try_get("student_id")?,
        opened_at: parse_ts(&row.try_get::<String, _>("opened_at")?)?,
        updated_at: parse_ts(&row.try_get::<String, _>("updated_at")?)?,
        alert_count: row.try_get("alert_count")?,
        acknowledged_by,
        acknowledged_at: ack_at.as_deref().map(parse_ts).transpose()?,
    })
}
