//! All of screening's SQL: plans, graded results, and the read-only look
//! at alerts and cases the multi-source rule needs. Uses the store's pool
//! (`Store::pool`), so it shares the relay's database file and migrations.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Row, SqlitePool};

use super::risk::History;
use super::rules::Flag;

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub scale: String,
    pub schools: Vec<String>,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub threshold: Flag,
    pub created_at: DateTime<Utc>,
}

/// One graded result as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResult {
    pub plan_id: String,
    pub student_id: String,
    pub school: String,
    pub grade: Option<String>,
    pub class: Option<String>,
    pub answered_at: String,
    pub row_hash: String,
    pub revision: i64,
    pub valid: bool,
    pub invalid_reason: Option<String>,
    pub scale_level: Option<String>,
    pub level: Option<String>,
    pub imminent: bool,
    pub route: Option<String>,
    pub category: Option<String>,
    pub class_zh: Option<String>,
    pub class_en: Option<String>,
    pub scale_rule: String,
    pub scale_rule_version: i64,
    pub risk_rule: Option<String>,
    pub risk_rule_version: Option<i64>,
    pub points: Option<i64>,
    pub scores: String,
    pub contributions: Option<String>,
    pub alert_id: Option<String>,
    pub case_id: Option<String>,
    pub graded_at: String,
}

pub async fn create_plan(pool: &SqlitePool, plan: &Plan) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO screening_plans (id, name, scale, schools, starts_on, ends_on, threshold, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
    )
    .bind(&plan.id)
    .bind(&plan.name)
    .bind(&plan.scale)
    .bind(serde_json::to_string(&plan.schools).expect("strings encode"))
    .bind(plan.starts_on.to_string())
    .bind(plan.ends_on.to_string())
    .bind(plan.threshold.as_str())
    .bind(crate::store::ts(plan.created_at))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

fn plan_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Plan, sqlx::Error> {
    let bad = |what: &str| sqlx::Error::Decode(format!("screening_plans: bad {what}").into());
    let schools: String = row.try_get("schools")?;
    let created: String = row.try_get("created_at")?;
    Ok(Plan {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scale: row.try_get("scale")?,
        schools: serde_json::from_str(&schools).map_err(|_| bad("schools"))?,
        starts_on: row
            .try_get::<String, _>("starts_on")?
            .parse()
            .map_err(|_| bad("starts_on"))?,
        ends_on: row
            .try_get::<String, _>("ends_on")?
            .parse()
            .map_err(|_| bad("ends_on"))?,
        threshold: Flag::parse(&row.try_get::<String, _>("threshold")?)
            .ok_or_else(|| bad("threshold"))?,
        created_at: crate::store::parse_ts(&created).map_err(|_| bad("created_at"))?,
    })
}

pub async fn plan(pool: &SqlitePool, id: &str) -> Result<Option<Plan>, sqlx::Error> {
    sqlx::query("SELECT * FROM screening_plans WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .map(|r| plan_from_row(&r))
        .transpose()
}

pub async fn plans(pool: &SqlitePool) -> Result<Vec<Plan>, sqlx::Error> {
    sqlx::query("SELECT * FROM screening_plans ORDER BY starts_on, id")
        .fetch_all(pool)
        .await?
        .iter()
        .map(plan_from_row)
        .collect()
}

/// Per school (and the plan total under ""): screened, valid, invalid,
/// flagged per level, alerts confirmed by the relay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub screened: i64,
    pub valid: i64,
    pub invalid: i64,
    pub general: i64,
    pub key: i64,
    pub high: i64,
    pub imminent: i64,
    pub alerts_sent: i64,
}

pub async fn counts(
    pool: &SqlitePool,
    plan_id: &str,
) -> Result<Vec<(String, Counts)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT school,
                COUNT(*) AS screened,
                SUM(valid) AS valid,
                SUM(1 - valid) AS invalid,
                SUM(level = 'general') AS general,
                SUM(level = 'key') AS key,
                SUM(level = 'high') AS high,
                SUM(imminent) AS imminent,
                SUM(case_id IS NOT NULL) AS sent
         FROM screening_results WHERE plan_id = ? GROUP BY school ORDER BY school",
    )
    .bind(plan_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("school")?,
                Counts {
                    screened: r.try_get("screened")?,
                    valid: r.try_get("valid")?,
                    invalid: r.try_get("invalid")?,
                    general: r.try_get("general")?,
                    key: r.try_get("key")?,
                    high: r.try_get("high")?,
                    imminent: r.try_get("imminent")?,
                    alerts_sent: r.try_get("sent")?,
                },
            ))
        })
        .collect()
}

const RESULT_COLUMNS: &str = "plan_id, student_id, school, grade, class, answered_at, row_hash, revision, valid, \
     invalid_reason, scale_level, level, imminent, route, category, class_zh, class_en, scale_rule, \
     scale_rule_version, risk_rule, risk_rule_version, points, scores, contributions, alert_id, case_id, graded_at";

fn result_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<StoredResult, sqlx::Error> {
    Ok(StoredResult {
        plan_id: r.try_get("plan_id")?,
        student_id: r.try_get("student_id")?,
        school: r.try_get("school")?,
        grade: r.try_get("grade")?,
        class: r.try_get("class")?,
        answered_at: r.try_get("answered_at")?,
        row_hash: r.try_get("row_hash")?,
        revision: r.try_get("revision")?,
        valid: r.try_get::<i64, _>("valid")? != 0,
        invalid_reason: r.try_get("invalid_reason")?,
        scale_level: r.try_get("scale_level")?,
        level: r.try_get("level")?,
        imminent: r.try_get::<i64, _>("imminent")? != 0,
        route: r.try_get("route")?,
        category: r.try_get("category")?,
        class_zh: r.try_get("class_zh")?,
        class_en: r.try_get("class_en")?,
        scale_rule: r.try_get("scale_rule")?,
        scale_rule_version: r.try_get("scale_rule_version")?,
        risk_rule: r.try_get("risk_rule")?,
        risk_rule_version: r.try_get("risk_rule_version")?,
        points: r.try_get("points")?,
        scores: r.try_get("scores")?,
        contributions: r.try_get("contributions")?,
        alert_id: r.try_get("alert_id")?,
        case_id: r.try_get("case_id")?,
        graded_at: r.try_get("graded_at")?,
    })
}

/// Every stored result of a plan, by student id.
pub async fn results_of_plan(
    pool: &SqlitePool,
    plan_id: &str,
) -> Result<HashMap<String, StoredResult>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {RESULT_COLUMNS} FROM screening_results WHERE plan_id = ?"
    ))
    .bind(plan_id)
    .fetch_all(pool)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        let res = result_from_row(r)?;
        out.insert(res.student_id.clone(), res);
    }
    Ok(out)
}

/// What a re-import needs of a stored result: enough to tell an unchanged
/// row and to count it, without its scores, texts and contributions. A
/// district plan holds 200,000 results; loading them whole cost a gigabyte.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub row_hash: String,
    pub revision: i64,
    pub tally: Tally,
}

/// What a result adds to an import's summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tally {
    pub valid: bool,
    pub level: Option<Flag>,
    pub imminent: bool,
    pub crisis: bool,
    /// At or above the plan's threshold: it has an alert id.
    pub alerting: bool,
    /// The relay confirmed that alert (the case it joined is recorded).
    pub confirmed: bool,
}

/// Every stored result of a plan as a [`Standing`], by student id, read as
/// a stream so only the compact form is ever held.
pub async fn standings_of_plan(
    pool: &SqlitePool,
    plan_id: &str,
) -> Result<HashMap<String, Standing>, sqlx::Error> {
    use futures_util::TryStreamExt;
    let mut out = HashMap::new();
    let mut rows = sqlx::query(
        "SELECT student_id, row_hash, revision, valid, level, imminent, route,
                alert_id IS NOT NULL AS alerting, case_id IS NOT NULL AS confirmed
         FROM screening_results WHERE plan_id = ?",
    )
    .bind(plan_id)
    .fetch(pool);
    while let Some(r) = rows.try_next().await? {
        let level: Option<String> = r.try_get("level")?;
        let route: Option<String> = r.try_get("route")?;
        out.insert(
            r.try_get("student_id")?,
            Standing {
                row_hash: r.try_get("row_hash")?,
                revision: r.try_get("revision")?,
                tally: Tally {
                    valid: r.try_get::<i64, _>("valid")? != 0,
                    level: level.as_deref().and_then(Flag::parse),
                    imminent: r.try_get::<i64, _>("imminent")? != 0,
                    crisis: route.as_deref() == Some("crisis"),
                    alerting: r.try_get::<i64, _>("alerting")? != 0,
                    confirmed: r.try_get::<i64, _>("confirmed")? != 0,
                },
            },
        );
    }
    Ok(out)
}

/// A plan's results whose alert the relay has not confirmed yet (an
/// interrupted import): these are sent again, so they are read whole.
pub async fn unconfirmed_results(
    pool: &SqlitePool,
    plan_id: &str,
) -> Result<Vec<StoredResult>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {RESULT_COLUMNS} FROM screening_results
         WHERE plan_id = ? AND alert_id IS NOT NULL AND case_id IS NULL"
    ))
    .bind(plan_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(result_from_row)
    .collect()
}

/// A student's results across every plan, oldest first.
pub async fn results_of_student(
    pool: &SqlitePool,
    student_id: &str,
) -> Result<Vec<StoredResult>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {RESULT_COLUMNS} FROM screening_results WHERE student_id = ? ORDER BY answered_at, plan_id"
    ))
    .bind(student_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(result_from_row)
    .collect()
}

/// Writes results (insert or replace) in one transaction, in statements of
/// many rows: 200,000 single-row inserts would cost seconds in binds alone.
/// The results are moved into the statement: a bound `String` is handed to
/// SQLite as it is, where a borrowed one would be copied first.
/// `confirmed` (student, case) pairs of earlier results are recorded in the
/// same transaction: the relay writes the same file, so every transaction
/// of the importer's waits its turn for the write lock.
pub async fn save_results(
    pool: &SqlitePool,
    results: Vec<StoredResult>,
    confirmed: (&str, &[(String, String)]),
) -> Result<(), sqlx::Error> {
    const PER_STATEMENT: usize = 400; // 27 columns: under SQLite's 32,766 variables
    let insert = |rows: usize| {
        let row = format!("({})", vec!["?"; 27].join(","));
        format!(
            "INSERT OR REPLACE INTO screening_results ({RESULT_COLUMNS}) VALUES {}",
            vec![row.as_str(); rows].join(",")
        )
    };
    let full = insert(PER_STATEMENT);
    let mut tx = pool.begin().await?;
    // A slice of 10,000 rows and its indexes overflow the default cache.
    // The importer is a short-lived process: its connections keep the
    // larger cache until it exits.
    sqlx::query(crate::store::WRITE_CACHE)
        .execute(&mut *tx)
        .await?;
    let mut rest = results.into_iter().peekable();
    while rest.peek().is_some() {
        let chunk: Vec<StoredResult> = rest.by_ref().take(PER_STATEMENT).collect();
        let partial;
        let sql = if chunk.len() == PER_STATEMENT {
            &full
        } else {
            partial = insert(chunk.len());
            &partial
        };
        let mut q = sqlx::query(sql);
        for r in chunk {
            q = q
                .bind(r.plan_id)
                .bind(r.student_id)
                .bind(r.school)
                .bind(r.grade)
                .bind(r.class)
                .bind(r.answered_at)
                .bind(r.row_hash)
                .bind(r.revision)
                .bind(i64::from(r.valid))
                .bind(r.invalid_reason)
                .bind(r.scale_level)
                .bind(r.level)
                .bind(i64::from(r.imminent))
                .bind(r.route)
                .bind(r.category)
                .bind(r.class_zh)
                .bind(r.class_en)
                .bind(r.scale_rule)
                .bind(r.scale_rule_version)
                .bind(r.risk_rule)
                .bind(r.risk_rule_version)
                .bind(r.points)
                .bind(r.scores)
                .bind(r.contributions)
                .bind(r.alert_id)
                .bind(r.case_id)
                .bind(r.graded_at);
        }
        q.execute(&mut *tx).await?;
    }
    confirm_in(&mut tx, confirmed.0, confirmed.1).await?;
    tx.commit().await
}

/// Records the relay's confirmation (the case an alert joined).
pub async fn confirm_alerts(
    pool: &SqlitePool,
    plan_id: &str,
    confirmed: &[(String, String)],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    confirm_in(&mut tx, plan_id, confirmed).await?;
    tx.commit().await
}

async fn confirm_in(
    tx: &mut sqlx::SqliteConnection,
    plan_id: &str,
    confirmed: &[(String, String)],
) -> Result<(), sqlx::Error> {
    // One statement per chunk of (student, case) pairs, not one per
    // student: each statement is a round trip to sqlx's worker thread.
    const PER_STATEMENT: usize = 4000; // 2 variables each, plus the plan
    for chunk in confirmed.chunks(PER_STATEMENT) {
        let sql = format!(
            "UPDATE screening_results SET case_id = v.column2 FROM (VALUES {}) AS v \
             WHERE screening_results.plan_id = ? AND screening_results.student_id = v.column1",
            vec!["(?, ?)"; chunk.len()].join(",")
        );
        let mut q = sqlx::query(&sql);
        for (student_id, case_id) in chunk {
            q = q.bind(student_id).bind(case_id);
        }
        q.bind(plan_id).execute(&mut *tx).await?;
    }
    Ok(())
}

/// What the multi-source rule needs about each student, read in three
/// whole-table passes (one per source) rather than three queries per
/// student: the previous screening level (latest earlier result in another
/// plan), their non-screening alerts, and their real cases.
pub async fn histories(
    pool: &SqlitePool,
    plan_id: &str,
    before: &HashMap<String, String>,
) -> Result<HashMap<String, History>, sqlx::Error> {
    let mut out: HashMap<String, History> = HashMap::new();
    let earlier = sqlx::query(
        "SELECT student_id, answered_at, level FROM screening_results
         WHERE plan_id != ? AND valid = 1 ORDER BY answered_at",
    )
    .bind(plan_id)
    .fetch_all(pool)
    .await?;
    for r in &earlier {
        let student: String = r.try_get("student_id")?;
        let Some(this_time) = before.get(&student) else {
            continue;
        };
        let at: String = r.try_get("answered_at")?;
        if !earlier_than(&at, this_time) {
            continue;
        }
        let level: Option<String> = r.try_get("level")?;
        out.entry(student).or_default().previous = level.as_deref().and_then(Flag::parse);
    }
    let alerts = sqlx::query(
        "SELECT c.student_id AS student_id,
                json_extract(a.body, '$.source') AS source,
                json_extract(a.body, '$.observed_at') AS observed_at
         FROM alerts a JOIN cases c ON c.id = a.case_id
         WHERE c.mode = 'actual' AND json_extract(a.body, '$.source') != 'screening'",
    )
    .fetch_all(pool)
    .await?;
    for r in &alerts {
        let student: String = r.try_get("student_id")?;
        if !before.contains_key(&student) {
            continue;
        }
        let source: String = r.try_get("source")?;
        let at: String = r.try_get("observed_at")?;
        if let Ok(at) = DateTime::parse_from_rfc3339(&at) {
            out.entry(student)
                .or_default()
                .alerts
                .push((source, at.with_timezone(&Utc)));
        }
    }
    let cases =
        sqlx::query("SELECT student_id, status, closed_at FROM cases WHERE mode = 'actual'")
            .fetch_all(pool)
            .await?;
    for r in &cases {
        let student: String = r.try_get("student_id")?;
        if !before.contains_key(&student) {
            continue;
        }
        let status: String = r.try_get("status")?;
        let h = out.entry(student).or_default();
        if status == "closed" {
            let closed: Option<String> = r.try_get("closed_at")?;
            if let Some(t) = closed
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            {
                h.closed_cases.push(t.with_timezone(&Utc));
            }
        } else {
            h.open_cases += 1;
        }
    }
    Ok(out)
}

fn earlier_than(a: &str, b: &str) -> bool {
    match (
        DateTime::parse_from_rfc3339(a),
        DateTime::parse_from_rfc3339(b),
    ) {
        (Ok(a), Ok(b)) => a < b,
        _ => false,
    }
}

/// The importer's own producer credential for `--db` imports without a
/// relay, created once.
pub async fn import_credential(pool: &SqlitePool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM credentials WHERE name = 'screening-import' AND role = 'producer' AND revoked_at IS NULL ORDER BY id LIMIT 1",
    )
    .fetch_optional(pool)
    .await
}
