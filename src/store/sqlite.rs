//! The SQLite backend: one file, WAL journal, `synchronous=FULL` so a commit
//! that returned has reached the disk before the relay answers 201.

use std::collections::HashSet;
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
    CommandOutcome, Credential, CredentialInfo, IngestOutcome, StoreError, StoredEvent, hash_token,
    hex, new_token, parse_ts, ts,
};
use crate::audit::{AuditKind, Checkpoint, Entry, GENESIS, NewEntry};
use crate::logging::json_error;
use crate::playbook::{Library, Playbook, Progress, StepAction};
use crate::protocol::{
    Actor, Alert, AlertStatus, CaseSnapshot, CaseStatus, Category, CloseOutcome, Command,
    CommandOp, ErrorDetail, Event, EventBody, Level, Origin, Role,
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

    /// Opens a database that must already exist (tools that only read:
    /// a mistyped path must be an error, not an empty new database).
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        if let Some(path) = super::sqlite_path(url)
            && !path.exists()
        {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        Store::open(url).await
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates a credential and returns its token. Only the hash is stored,
    /// so the token cannot be shown again.
    pub async fn create_credential(&self, name: &str, role: Role) -> Result<String, StoreError> {
        self.create_credential_by(name, role, "local").await
    }

    /// Creates a credential on behalf of `operator` (who ran the command),
    /// recorded in the audit trail.
    pub async fn create_credential_by(
        &self,
        name: &str,
        role: Role,
        operator: &str,
    ) -> Result<String, StoreError> {
        let token = new_token().map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
        let now = Utc::now();
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO credentials (name, role, token_hash, created_at) VALUES (?, ?, ?, ?) \
             RETURNING id",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(hash_token(&token))
        .bind(ts(now))
        .fetch_one(&mut *tx)
        .await?;
        append_audit(
            &mut tx,
            now,
            &NewEntry::new(
                AuditKind::CredentialCreated,
                serde_json::json!({"credential_id": id, "name": name, "role": role.as_str()}),
            )
            .by(operator, "operator"),
        )
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// Every credential, oldest first (never the token: only its hash is
    /// kept, and that is not shown either).
    pub async fn list_credentials(&self) -> Result<Vec<CredentialInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, role, created_at, revoked_at FROM credentials ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let role: String = r.try_get("role")?;
                Ok(CredentialInfo {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    role: Role::parse(&role)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown role `{role}`")))?,
                    created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
                    revoked_at: r
                        .try_get::<Option<String>, _>("revoked_at")?
                        .as_deref()
                        .map(parse_ts)
                        .transpose()?,
                })
            })
            .collect()
    }

    /// Revokes credential `id`; returns false if there is no live one.
    /// The relay ends its connections within a second (it polls
    /// [`Store::revoked_ids`]).
    pub async fn revoke_credential(&self, id: i64, operator: &str) -> Result<bool, StoreError> {
        let now = Utc::now();
        let mut tx = self.write_tx().await?;
        let revoked = sqlx::query(
            "UPDATE credentials SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING name, role",
        )
        .bind(ts(now))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = revoked else {
            return Ok(false);
        };
        let (name, role): (String, String) = (row.try_get("name")?, row.try_get("role")?);
        append_audit(
            &mut tx,
            now,
            &NewEntry::new(
                AuditKind::CredentialRevoked,
                serde_json::json!({"credential_id": id, "name": name, "role": role}),
            )
            .by(operator, "operator"),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Ids of every revoked credential.
    pub async fn revoked_ids(&self) -> Result<HashSet<i64>, StoreError> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM credentials WHERE revoked_at IS NOT NULL")
                .fetch_all(&self.pool)
                .await?;
        Ok(ids.into_iter().collect())
    }

    /// A write transaction that takes SQLite's write lock at once, so two
    /// processes (the relay and `token create`) never interleave appends to
    /// the audit chain.
    async fn write_tx(&self) -> Result<Tx<'static>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Appends one audit entry in its own transaction (connections opened
    /// and closed, cases viewed outside a command).
    pub async fn audit(&self, entry: &NewEntry, now: DateTime<Utc>) -> Result<Entry, StoreError> {
        let mut tx = self.write_tx().await?;
        let stored = append_audit(&mut tx, now, entry).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Audit entries with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_after(&self, after: i64, limit: i64) -> Result<Vec<Entry>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Audit entries about one case, oldest first.
    pub async fn audit_for_case(&self, case_id: &str) -> Result<Vec<Entry>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit WHERE case_id = ? ORDER BY seq")
            .bind(case_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// The chain's current head, for checkpoints kept elsewhere.
    pub async fn audit_head(&self) -> Result<Option<Checkpoint>, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Checkpoint {
                seq: r.try_get("seq")?,
                hash: r.try_get("hash")?,
            })
        })
        .transpose()
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
        library: &Library,
    ) -> Result<IngestOutcome, StoreError> {
        let body = serde_json::to_string(alert)
            .map_err(|e| StoreError::Corrupt(format!("alert does not encode: {e}")))?;
        let body_hash = hex(&Sha256::digest(body.as_bytes()));
        let mut tx = self.write_tx().await?;

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
        let opened_case = opened;
        let wanted = library
            .select(case.category, case.level, case.imminent)
            .map(|pb| pb.id.clone());
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
        let mut events = vec![event.clone()];
        // The case gets the playbook its category, level and imminence call
        // for; a later alert that raises it may call for another one.
        if let Some(playbook) = wanted.as_deref().and_then(|id| library.get(id))
            && !has_checklist(&mut tx, &case_id, &playbook.id).await?
        {
            events.push(attach_checklist(&mut tx, &case_id, playbook, now, None).await?);
        }
        let drill = alert.status != AlertStatus::Actual;
        append_audit(
            &mut tx,
            now,
            &NewEntry::new(
                AuditKind::AlertIngested,
                serde_json::json!({
                    "alert_id": alert.id,
                    "seq": event.seq,
                    "opened": opened_case,
                    "level": alert.level.as_str(),
                    "imminent": alert.imminent,
                    "category": alert.category.as_str(),
                    "source": alert.source.as_str(),
                    "status": alert.status.as_str(),
                    "exercise_id": alert.exercise_id,
                    "events": events.iter().map(|e| e.seq).collect::<Vec<_>>(),
                }),
            )
            .by(&credential.name, credential.role.as_str())
            .on_case(&case_id, drill),
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
            events,
        })
    }

    /// Applies a console command once. A command id seen before from the
    /// same credential returns the answer given then and changes nothing.
    /// A refused command changes nothing but is remembered, so a re-send
    /// gets the same answer.
    pub async fn apply_command(
        &self,
        credential: &Credential,
        command: &Command,
        now: DateTime<Utc>,
        library: &Library,
    ) -> Result<CommandOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        if let Some(row) =
            sqlx::query("SELECT result FROM commands WHERE credential_id = ? AND id = ?")
                .bind(credential.id)
                .bind(&command.id)
                .fetch_optional(&mut *tx)
                .await?
        {
            let stored: String = row.try_get("result")?;
            let error: Option<ErrorDetail> = serde_json::from_str(&stored).map_err(|e| {
                StoreError::Corrupt(format!("stored command result: {}", json_error(&e)))
            })?;
            return Ok(CommandOutcome::Repeated {
                ok: error.is_none(),
                error,
            });
        }

        let origin = Origin {
            by: Actor {
                name: credential.name.clone(),
                role: credential.role,
            },
            command_id: command.id.clone(),
            terminal: command.terminal.clone(),
            client_at: command.client_at,
        };
        let mut work = CommandTx {
            tx: &mut tx,
            now,
            library,
            origin,
        };
        let (applied, drill) = work.apply(&command.op).await?;
        // A reveal's answer (the identity) goes back to the sender only; it
        // is never written to the command record or the audit.
        let (applied, data) = match applied {
            Ok((events, data)) => (Ok(events), data),
            Err(refusal) => (Err(refusal), None),
        };
        let mut detail = command.op.audit_detail();
        detail["command_id"] = command.id.clone().into();
        detail["op"] = command.op.name().into();
        if let Some(at) = command.client_at {
            detail["client_at"] = at.to_rfc3339().into();
        }
        let kind = match &applied {
            Ok(events) => {
                detail["events"] = events.iter().map(|e| e.seq).collect::<Vec<_>>().into();
                AuditKind::CommandAccepted
            }
            Err(refusal) => {
                detail["refused"] = refusal.code.clone().into();
                AuditKind::CommandRefused
            }
        };
        if matches!(command.op, CommandOp::View { .. }) && applied.is_ok() {
            detail.as_object_mut().map(|d| d.remove("events"));
        }
        let kind = match (&command.op, kind) {
            (CommandOp::View { .. }, AuditKind::CommandAccepted) => AuditKind::CaseViewed,
            (CommandOp::Reveal { .. }, AuditKind::CommandAccepted) => AuditKind::IdentityRevealed,
            (_, kind) => kind,
        };
        append_audit(
            &mut tx,
            now,
            &NewEntry::new(kind, detail)
                .by(&credential.name, credential.role.as_str())
                .on_case(command.op.case_id(), drill)
                .from_terminal(command.terminal.as_deref()),
        )
        .await?;
        let outcome = match applied {
            Ok(events) => CommandOutcome::Applied { events, data },
            Err(refusal) => CommandOutcome::Refused(refusal),
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
        .bind(command.op.name())
        .bind(command.op.case_id())
        .bind(result)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Appends an escalation event for each step of an open case that is
    /// overdue at `now` and has not escalated before.
    pub async fn escalate_overdue(
        &self,
        now: DateTime<Utc>,
        library: &Library,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(
            "SELECT k.case_id, k.playbook, k.progress, c.alert_status FROM checklists k \
             JOIN cases c ON c.id = k.case_id WHERE c.status != 'closed'",
        )
        .fetch_all(&mut *tx)
        .await?;
        let raised: HashSet<(String, String, String)> =
            sqlx::query("SELECT case_id, playbook, step FROM escalations")
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<_, sqlx::Error>>()?;
        let mut events = Vec::new();
        for row in rows {
            let case_id: String = row.try_get("case_id")?;
            let playbook_id: String = row.try_get("playbook")?;
            let drill = row.try_get::<String, _>("alert_status")? != "actual";
            let Some(playbook) = library.get(&playbook_id) else {
                continue;
            };
            let progress = progress_from(&row.try_get::<String, _>("progress")?)?;
            for overdue in progress.overdue(playbook, now) {
                let key = (
                    case_id.clone(),
                    playbook_id.clone(),
                    overdue.step.id.clone(),
                );
                if raised.contains(&key) {
                    continue;
                }
                let event = append_event(
                    &mut tx,
                    now,
                    EventBody::Escalation {
                        case_id: case_id.clone(),
                        playbook: playbook_id.clone(),
                        step: overdue.step.id.clone(),
                        to: overdue.escalate_to.unwrap_or(overdue.step.role),
                        owner: overdue.step.role,
                        due: overdue.due,
                        reason: overdue.reason,
                    },
                )
                .await?;
                append_audit(
                    &mut tx,
                    now,
                    &NewEntry::new(
                        AuditKind::EscalationRaised,
                        serde_json::json!({
                            "playbook": key.1, "step": key.2, "seq": event.seq,
                            "to": overdue.escalate_to.unwrap_or(overdue.step.role).as_str(),
                            "owner": overdue.step.role.as_str(),
                        }),
                    )
                    .on_case(&key.0, drill),
                )
                .await?;
                sqlx::query(
                    "INSERT INTO escalations (case_id, playbook, step, at, seq) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(&key.0)
                .bind(&key.1)
                .bind(&key.2)
                .bind(ts(now))
                .bind(event.seq)
                .execute(&mut *tx)
                .await?;
                events.push(event);
            }
        }
        tx.commit().await?;
        Ok(events)
    }

    /// The checklists on a case, as (playbook id, progress).
    pub async fn checklists(&self, case_id: &str) -> Result<Vec<(String, Progress)>, StoreError> {
        let rows = sqlx::query(
            "SELECT playbook, progress FROM checklists WHERE case_id = ? ORDER BY added_at, playbook",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("playbook")?,
                    progress_from(&r.try_get::<String, _>("progress")?)?,
                ))
            })
            .collect()
    }

    /// One case's current state, if it exists.
    pub async fn case(&self, case_id: &str) -> Result<Option<CaseSnapshot>, StoreError> {
        let row = sqlx::query("SELECT * FROM cases WHERE id = ?")
            .bind(case_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(case_from_row).transpose()
    }

    /// Every event about one case, oldest first.
    pub async fn events_for_case(&self, case_id: &str) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query("SELECT body FROM events WHERE case_id = ? ORDER BY seq")
            .bind(case_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                serde_json::from_str(&body)
                    .map_err(|e| StoreError::Corrupt(format!("stored event: {}", json_error(&e))))
            })
            .collect()
    }

    /// Ids of cases opened in `[from, to)`, oldest first; drills and tests
    /// only when asked for.
    pub async fn case_ids_opened(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        include_drills: bool,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM cases WHERE opened_at >= ? AND opened_at < ? \
             AND (? OR alert_status = 'actual') ORDER BY opened_at, num",
        )
        .bind(ts(from))
        .bind(ts(to))
        .bind(include_drills)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("id")?))
            .collect()
    }

    /// Ids of the cases of one drill.
    pub async fn case_ids_of_exercise(&self, exercise_id: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT id FROM cases WHERE exercise_id = ? ORDER BY opened_at, num")
                .bind(exercise_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("id")?))
            .collect()
    }

    /// How many alerts are stored (for checks and tests).
    pub async fn alert_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM alerts")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// One command being applied inside its transaction. Each operation
/// returns `Ok(Ok(events))` when applied, `Ok(Err(refusal))` when refused
/// (nothing written), and `Err` only for storage failures.
struct CommandTx<'t, 'c> {
    tx: &'t mut Tx<'c>,
    now: DateTime<Utc>,
    library: &'t Library,
    origin: Origin,
}

/// Events to broadcast, and data for the sender alone.
type Applied = Result<(Vec<StoredEvent>, Option<serde_json::Value>), ErrorDetail>;

fn refuse(code: &str, message: impl Into<String>) -> Applied {
    Err(ErrorDetail::new(code, message))
}

/// Longest close note or override reason.
const MAX_CLOSE_TEXT: usize = crate::protocol::MAX_SUMMARY_CHARS;

impl CommandTx<'_, '_> {
    /// Applies `op`; also says whether the case is a drill (for the audit).
    async fn apply(&mut self, op: &CommandOp) -> Result<(Applied, bool), StoreError> {
        let case_id = op.case_id();
        let Some(row) = sqlx::query("SELECT * FROM cases WHERE id = ?")
            .bind(case_id)
            .fetch_optional(&mut **self.tx)
            .await?
        else {
            return Ok((
                Err(
                    ErrorDetail::new("unknown_case", format!("there is no case `{case_id}`"))
                        .with_field("case_id"),
                ),
                false,
            ));
        };
        let case = case_from_row(&row)?;
        let drill = case.alert_status != AlertStatus::Actual;
        // Looking at a closed case is allowed (and audited); changing it not.
        if case.status == CaseStatus::Closed && !matches!(op, CommandOp::View { .. }) {
            return Ok((
                refuse(
                    "case_closed",
                    format!("case {case_id} is closed; nothing more can be recorded on it"),
                ),
                drill,
            ));
        }
        let applied = match op {
            CommandOp::View { .. } => Ok((Vec::new(), None)),
            CommandOp::Reveal { reason, .. } => self.reveal(&case, reason).await?,
            CommandOp::Acknowledge { .. } => self.acknowledge(case).await?,
            CommandOp::Step {
                playbook,
                step,
                action,
                ..
            } => self.step(&case, playbook, step, action).await?,
            CommandOp::AddPlaybook { playbook, .. } => self.add_playbook(&case, playbook).await?,
            CommandOp::Close {
                outcome,
                note,
                override_reason,
                ..
            } => {
                self.close(case, *outcome, note.as_deref(), override_reason.as_deref())
                    .await?
            }
        };
        Ok((applied, drill))
    }

    /// The student's identity as the latest alerts gave it.
    async fn reveal(&mut self, case: &CaseSnapshot, reason: &str) -> Result<Applied, StoreError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Ok(Err(ErrorDetail::new(
                "reason_required",
                "say briefly why you need the student's identity (1 to 200 characters)",
            )
            .with_field("reason")));
        }
        let rows = sqlx::query("SELECT body FROM alerts WHERE case_id = ? ORDER BY seq")
            .bind(&case.id)
            .fetch_all(&mut **self.tx)
            .await?;
        let mut identity = serde_json::Map::new();
        for row in rows {
            let body: String = row.try_get("body")?;
            let alert: Alert = serde_json::from_str(&body)
                .map_err(|e| StoreError::Corrupt(format!("stored alert: {}", json_error(&e))))?;
            if let serde_json::Value::Object(student) = serde_json::to_value(&alert.student)
                .map_err(|e| StoreError::Corrupt(format!("student: {}", json_error(&e))))?
            {
                identity.extend(student);
            }
        }
        Ok(Ok((
            Vec::new(),
            Some(serde_json::json!({ "student": identity })),
        )))
    }

    async fn acknowledge(&mut self, mut case: CaseSnapshot) -> Result<Applied, StoreError> {
        if case.status == CaseStatus::Acknowledged {
            let by = case
                .acknowledged_by
                .as_ref()
                .map(|a| format!("{} ({})", a.name, a.role))
                .unwrap_or_default();
            return Ok(refuse(
                "already_acknowledged",
                format!("case {} was already acknowledged by {by}", case.id),
            ));
        }
        let actor = self.origin.by.clone();
        case.status = CaseStatus::Acknowledged;
        case.acknowledged_by = Some(actor.clone());
        case.acknowledged_at = Some(self.now);
        case.updated_at = self.now;
        sqlx::query(
            "UPDATE cases SET status = 'acknowledged', acknowledged_by_name = ?, \
             acknowledged_by_role = ?, acknowledged_at = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&actor.name)
        .bind(actor.role.as_str())
        .bind(ts(self.now))
        .bind(ts(self.now))
        .bind(&case.id)
        .execute(&mut **self.tx)
        .await?;
        let event = append_event(
            self.tx,
            self.now,
            EventBody::CaseAcknowledged {
                case_id: case.id.clone(),
                by: actor,
                case,
                origin: Some(self.origin.clone()),
            },
        )
        .await?;
        Ok(Ok((vec![event], None)))
    }

    async fn step(
        &mut self,
        case: &CaseSnapshot,
        playbook_id: &str,
        step: &str,
        action: &StepAction,
    ) -> Result<Applied, StoreError> {
        let Some(row) =
            sqlx::query("SELECT progress FROM checklists WHERE case_id = ? AND playbook = ?")
                .bind(&case.id)
                .bind(playbook_id)
                .fetch_optional(&mut **self.tx)
                .await?
        else {
            return Ok(Err(ErrorDetail::new(
                "no_such_checklist",
                format!("case {} has no `{playbook_id}` checklist", case.id),
            )
            .with_field("playbook")));
        };
        let Some(playbook) = self.library.get(playbook_id) else {
            return Ok(refuse(
                "unknown_playbook",
                format!("this relay no longer runs playbook `{playbook_id}`"),
            ));
        };
        let mut progress = progress_from(&row.try_get::<String, _>("progress")?)?;
        let change = match progress.apply(playbook, step, self.origin.by.role, self.now, action) {
            Ok(change) => change,
            Err(refusal) => {
                return Ok(Err(
                    ErrorDetail::new(refusal.code(), refusal.to_string()).with_field("step")
                ));
            }
        };
        sqlx::query("UPDATE checklists SET progress = ? WHERE case_id = ? AND playbook = ?")
            .bind(progress_json(&progress)?)
            .bind(&case.id)
            .bind(playbook_id)
            .execute(&mut **self.tx)
            .await?;
        touch_case(self.tx, &case.id, self.now).await?;
        let event = append_event(
            self.tx,
            self.now,
            EventBody::StepUpdated {
                case_id: case.id.clone(),
                change,
                progress,
                origin: self.origin.clone(),
            },
        )
        .await?;
        Ok(Ok((vec![event], None)))
    }

    async fn add_playbook(
        &mut self,
        case: &CaseSnapshot,
        playbook_id: &str,
    ) -> Result<Applied, StoreError> {
        if !self.origin.by.role.can_act() {
            return Ok(refuse("forbidden", "only responders may add playbooks"));
        }
        let Some(playbook) = self.library.get(playbook_id) else {
            let known: Vec<&str> = self
                .library
                .playbooks()
                .iter()
                .map(|p| p.id.as_str())
                .collect();
            return Ok(Err(ErrorDetail::new(
                "unknown_playbook",
                format!(
                    "no playbook `{playbook_id}`; this relay runs {}",
                    known.join(", ")
                ),
            )
            .with_field("playbook")));
        };
        if has_checklist(self.tx, &case.id, playbook_id).await? {
            return Ok(refuse(
                "already_attached",
                format!("case {} already has the `{playbook_id}` checklist", case.id),
            ));
        }
        let event = attach_checklist(
            self.tx,
            &case.id,
            playbook,
            self.now,
            Some(self.origin.clone()),
        )
        .await?;
        touch_case(self.tx, &case.id, self.now).await?;
        Ok(Ok((vec![event], None)))
    }

    async fn close(
        &mut self,
        mut case: CaseSnapshot,
        outcome: CloseOutcome,
        note: Option<&str>,
        override_reason: Option<&str>,
    ) -> Result<Applied, StoreError> {
        let role = self.origin.by.role;
        if !matches!(role, Role::Counselor | Role::Leader) {
            return Ok(refuse(
                "forbidden",
                format!("a case is closed by a counselor or a leader, not by {role}"),
            ));
        }
        for (field, text) in [("note", note), ("override_reason", override_reason)] {
            if text.is_some_and(|t| t.chars().count() > MAX_CLOSE_TEXT) {
                return Ok(Err(ErrorDetail::new(
                    "text_too_long",
                    format!("`{field}` is longer than {MAX_CLOSE_TEXT} characters"),
                )
                .with_field(field)));
            }
        }
        let override_reason = override_reason.map(str::trim).filter(|r| !r.is_empty());
        let rows = sqlx::query("SELECT playbook, progress FROM checklists WHERE case_id = ?")
            .bind(&case.id)
            .fetch_all(&mut **self.tx)
            .await?;
        let mut open_required = Vec::new();
        for row in rows {
            let playbook_id: String = row.try_get("playbook")?;
            let progress = progress_from(&row.try_get::<String, _>("progress")?)?;
            if let Some(playbook) = self.library.get(&playbook_id) {
                open_required.extend(
                    progress
                        .open_required(playbook)
                        .into_iter()
                        .map(|s| format!("{playbook_id}/{}", s.id)),
                );
            }
        }
        let overridden = match (open_required.is_empty(), role, override_reason) {
            (true, _, _) => Vec::new(),
            (false, Role::Leader, Some(_)) => open_required,
            (false, Role::Leader, None) => {
                return Ok(refuse(
                    "required_steps_open",
                    format!(
                        "required steps are still open: {}; give an override reason to close anyway",
                        open_required.join(", ")
                    ),
                ));
            }
            (false, _, _) => {
                return Ok(refuse(
                    "required_steps_open",
                    format!(
                        "required steps are still open: {}; finish them, or ask a leader to close with an override",
                        open_required.join(", ")
                    ),
                ));
            }
        };
        case.status = CaseStatus::Closed;
        case.updated_at = self.now;
        sqlx::query(
            "UPDATE cases SET status = 'closed', outcome = ?, closed_at = ?, updated_at = ? WHERE id = ?",
        )
        .bind(outcome.as_str())
        .bind(ts(self.now))
        .bind(ts(self.now))
        .bind(&case.id)
        .execute(&mut **self.tx)
        .await?;
        let event = append_event(
            self.tx,
            self.now,
            EventBody::CaseClosed {
                case_id: case.id.clone(),
                outcome,
                note: note.map(str::to_string),
                overridden,
                override_reason: override_reason.map(str::to_string),
                case,
                origin: self.origin.clone(),
            },
        )
        .await?;
        Ok(Ok((vec![event], None)))
    }
}

async fn has_checklist(tx: &mut Tx<'_>, case_id: &str, playbook: &str) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT 1 FROM checklists WHERE case_id = ? AND playbook = ?")
            .bind(case_id)
            .bind(playbook)
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
    )
}

/// Attaches a fresh checklist whose due times count from `now`.
async fn attach_checklist(
    tx: &mut Tx<'_>,
    case_id: &str,
    playbook: &Playbook,
    now: DateTime<Utc>,
    origin: Option<Origin>,
) -> Result<StoredEvent, StoreError> {
    let progress = Progress::new(playbook, now);
    sqlx::query(
        "INSERT INTO checklists (case_id, playbook, progress, added_at) VALUES (?, ?, ?, ?)",
    )
    .bind(case_id)
    .bind(&playbook.id)
    .bind(progress_json(&progress)?)
    .bind(ts(now))
    .execute(&mut **tx)
    .await?;
    append_event(
        tx,
        now,
        EventBody::ChecklistAdded {
            case_id: case_id.to_string(),
            playbook: playbook.id.clone(),
            progress,
            origin,
        },
    )
    .await
}

async fn touch_case(tx: &mut Tx<'_>, case_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    sqlx::query("UPDATE cases SET updated_at = ? WHERE id = ?")
        .bind(ts(now))
        .bind(case_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Chains `entry` after the current head, inside the caller's write
/// transaction (so the entry commits or rolls back with what it records).
async fn append_audit(
    tx: &mut Tx<'_>,
    now: DateTime<Utc>,
    entry: &NewEntry,
) -> Result<Entry, StoreError> {
    let head = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    let (seq, prev) = match head {
        Some(r) => (
            r.try_get::<i64, _>("seq")? + 1,
            r.try_get::<String, _>("hash")?,
        ),
        None => (1, GENESIS.to_string()),
    };
    let stored = Entry::chain(seq, now, entry, &prev);
    sqlx::query(
        "INSERT INTO audit (seq, at, kind, actor_name, actor_role, terminal, case_id, drill, \
         detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(stored.seq)
    .bind(ts(stored.at))
    .bind(&stored.kind)
    .bind(&stored.actor_name)
    .bind(&stored.actor_role)
    .bind(&stored.terminal)
    .bind(&stored.case_id)
    .bind(stored.drill)
    .bind(&stored.detail)
    .bind(&stored.prev_hash)
    .bind(&stored.hash)
    .execute(&mut **tx)
    .await?;
    Ok(stored)
}

fn entry_from_row(row: &SqliteRow) -> Result<Entry, StoreError> {
    Ok(Entry {
        seq: row.try_get("seq")?,
        at: parse_ts(&row.try_get::<String, _>("at")?)?,
        kind: row.try_get("kind")?,
        actor_name: row.try_get("actor_name")?,
        actor_role: row.try_get("actor_role")?,
        terminal: row.try_get("terminal")?,
        case_id: row.try_get("case_id")?,
        drill: row.try_get("drill")?,
        detail: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

fn progress_from(json: &str) -> Result<Progress, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("checklist progress: {}", json_error(&e))))
}

fn progress_json(progress: &Progress) -> Result<String, StoreError> {
    serde_json::to_string(progress)
        .map_err(|e| StoreError::Corrupt(format!("checklist does not encode: {e}")))
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
    let kind = body.kind();
    let case_id = body.case_id().to_string();
    let event = Event {
        seq,
        at,
        body,
        withheld: None,
    };
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
