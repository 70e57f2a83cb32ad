//! Screening's SQL (plans, graded results, and the read-only look at
//! alerts and cases the multi-source rule needs), on either engine. The
//! types and what is done with them live in [`crate::screening`].

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::engine;
use super::{Db, DbRow, EngineStore};
use crate::screening::risk::History;
use crate::screening::rules::Flag;
use crate::screening::store::{
    Counts, Plan, RESULT_COLUMNS, Standing, StoredResult, Tally, earlier_than,
};

/// `col = excluded.col` for every result column but the key: a re-import
/// replaces a stored result in place.
static RESULT_UPDATES: LazyLock<String> = LazyLock::new(|| {
    RESULT_COLUMNS
        .split(',')
        .map(str::trim)
        .filter(|c| !matches!(*c, "plan_id" | "student_id"))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
});

impl EngineStore {
    pub async fn screening_create_plan(&self, plan: &Plan) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO screening_plans (id, name, scale, schools, starts_on, ends_on, threshold, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT(id) DO NOTHING",
        )
        .bind(&plan.id)
        .bind(&plan.name)
        .bind(&plan.scale)
        .bind(serde_json::to_string(&plan.schools).expect("strings encode"))
        .bind(plan.starts_on.to_string())
        .bind(plan.ends_on.to_string())
        .bind(plan.threshold.as_str())
        .bind(crate::store::ts(plan.created_at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn screening_plan(&self, id: &str) -> Result<Option<Plan>, sqlx::Error> {
        sqlx::query("SELECT * FROM screening_plans WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| plan_from_row(&r))
            .transpose()
    }

    pub async fn screening_plans(&self) -> Result<Vec<Plan>, sqlx::Error> {
        sqlx::query("SELECT * FROM screening_plans ORDER BY starts_on, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(plan_from_row)
            .collect()
    }

    pub async fn screening_counts(
        &self,
        plan_id: &str,
    ) -> Result<Vec<(String, Counts)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT school,
                    COUNT(*) AS screened,
                    SUM(CASE WHEN valid THEN 1 ELSE 0 END) AS valid,
                    SUM(CASE WHEN valid THEN 0 ELSE 1 END) AS invalid,
                    SUM(CASE WHEN level = 'general' THEN 1 ELSE 0 END) AS general,
                    SUM(CASE WHEN level = 'key' THEN 1 ELSE 0 END) AS key,
                    SUM(CASE WHEN level = 'high' THEN 1 ELSE 0 END) AS high,
                    SUM(CASE WHEN imminent THEN 1 ELSE 0 END) AS imminent,
                    SUM(CASE WHEN case_id IS NOT NULL THEN 1 ELSE 0 END) AS sent
             FROM screening_results WHERE plan_id = $1 GROUP BY school ORDER BY school",
        )
        .bind(plan_id)
        .fetch_all(&self.pool)
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

    /// Every stored result of a plan, by student id.
    pub async fn screening_results_of_plan(
        &self,
        plan_id: &str,
    ) -> Result<HashMap<String, StoredResult>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {RESULT_COLUMNS} FROM screening_results WHERE plan_id = $1"
        ))
        .bind(plan_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in &rows {
            let res = result_from_row(r)?;
            out.insert(res.student_id.clone(), res);
        }
        Ok(out)
    }

    /// Every stored result of a plan as a [`Standing`], by student id, read as
    /// a stream so only the compact form is ever held.
    pub async fn screening_standings_of_plan(
        &self,
        plan_id: &str,
    ) -> Result<HashMap<String, Standing>, sqlx::Error> {
        use futures_util::TryStreamExt;
        let mut out = HashMap::new();
        let mut rows = sqlx::query(
            "SELECT student_id, row_hash, revision, valid, level, imminent, route,
                    alert_id IS NOT NULL AS alerting, case_id IS NOT NULL AS confirmed
             FROM screening_results WHERE plan_id = $1",
        )
        .bind(plan_id)
        .fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            let level: Option<String> = r.try_get("level")?;
            let route: Option<String> = r.try_get("route")?;
            out.insert(
                r.try_get("student_id")?,
                Standing {
                    row_hash: r.try_get("row_hash")?,
                    revision: r.try_get("revision")?,
                    tally: Tally {
                        valid: r.try_get::<bool, _>("valid")?,
                        level: level.as_deref().and_then(Flag::parse),
                        imminent: r.try_get::<bool, _>("imminent")?,
                        crisis: route.as_deref() == Some("crisis"),
                        alerting: r.try_get::<bool, _>("alerting")?,
                        confirmed: r.try_get::<bool, _>("confirmed")?,
                    },
                },
            );
        }
        Ok(out)
    }

    /// A plan's results whose alert the relay has not confirmed yet (an
    /// interrupted import): these are sent again, so they are read whole.
    pub async fn screening_unconfirmed_results(
        &self,
        plan_id: &str,
    ) -> Result<Vec<StoredResult>, sqlx::Error> {
        sqlx::query(&format!(
            "SELECT {RESULT_COLUMNS} FROM screening_results
             WHERE plan_id = $1 AND alert_id IS NOT NULL AND case_id IS NULL"
        ))
        .bind(plan_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(result_from_row)
        .collect()
    }

    /// A student's results across every plan, oldest first.
    pub async fn screening_results_of_student(
        &self,
        student_id: &str,
    ) -> Result<Vec<StoredResult>, sqlx::Error> {
        sqlx::query(&format!(
            "SELECT {RESULT_COLUMNS} FROM screening_results WHERE student_id = $1 ORDER BY answered_at, plan_id"
        ))
        .bind(student_id)
        .fetch_all(&self.pool)
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
    pub async fn screening_save_results(
        &self,
        results: Vec<StoredResult>,
        confirmed: (&str, &[(String, String)]),
    ) -> Result<(), sqlx::Error> {
        const PER_STATEMENT: usize = 400; // 27 columns: under SQLite's 32,766 variables
        // A result stored before (a re-import) is replaced in place; the
        // statement's text is the engine's own (`engine::replace_rows`).
        let insert = |rows: usize| {
            engine::replace_rows(
                "screening_results",
                RESULT_COLUMNS,
                (27, rows),
                "plan_id, student_id",
                &RESULT_UPDATES,
            )
        };
        let full = insert(PER_STATEMENT);
        let mut tx = self.pool.begin().await?;
        // A slice of 10,000 rows and its indexes overflow the default cache.
        // The importer is a short-lived process: its connections keep the
        // larger cache until it exits.
        engine::bulk_write_begin(&mut tx).await?;
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
                    .bind(r.valid)
                    .bind(r.invalid_reason)
                    .bind(r.scale_level)
                    .bind(r.level)
                    .bind(r.imminent)
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
    pub async fn screening_confirm_alerts(
        &self,
        plan_id: &str,
        confirmed: &[(String, String)],
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        confirm_in(&mut tx, plan_id, confirmed).await?;
        tx.commit().await
    }

    /// What the multi-source rule needs about each student, read in three
    /// whole-table passes (one per source) rather than three queries per
    /// student: the previous screening level (latest earlier result in another
    /// plan), their non-screening alerts, and their real cases.
    pub async fn screening_histories(
        &self,
        plan_id: &str,
        before: &HashMap<String, String>,
    ) -> Result<HashMap<String, History>, sqlx::Error> {
        let mut out: HashMap<String, History> = HashMap::new();
        let earlier = sqlx::query(
            "SELECT student_id, answered_at, level FROM screening_results
             WHERE plan_id != $1 AND valid ORDER BY answered_at",
        )
        .bind(plan_id)
        .fetch_all(&self.pool)
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
        let source = engine::alert_field("a.body", "source");
        let observed = engine::alert_field("a.body", "observed_at");
        let sql = format!(
            "SELECT c.student_id AS student_id, {source} AS source, {observed} AS observed_at
             FROM alerts a JOIN cases c ON c.id = a.case_id
             WHERE c.mode = 'actual' AND {source} <> 'screening'"
        );
        let alerts = sqlx::query(&sql).fetch_all(&self.pool).await?;
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
                .fetch_all(&self.pool)
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

    /// The importer's own producer credential for `--db` imports without a
    /// relay, created once.
    pub async fn screening_import_credential(&self) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT id FROM credentials WHERE name = 'screening-import' AND role = 'producer' AND revoked_at IS NULL ORDER BY id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
    }
}

fn plan_from_row(row: &DbRow) -> Result<Plan, sqlx::Error> {
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

fn result_from_row(r: &DbRow) -> Result<StoredResult, sqlx::Error> {
    Ok(StoredResult {
        plan_id: r.try_get("plan_id")?,
        student_id: r.try_get("student_id")?,
        school: r.try_get("school")?,
        grade: r.try_get("grade")?,
        class: r.try_get("class")?,
        answered_at: r.try_get("answered_at")?,
        row_hash: r.try_get("row_hash")?,
        revision: r.try_get("revision")?,
        valid: r.try_get::<bool, _>("valid")?,
        invalid_reason: r.try_get("invalid_reason")?,
        scale_level: r.try_get("scale_level")?,
        level: r.try_get("level")?,
        imminent: r.try_get::<bool, _>("imminent")?,
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

async fn confirm_in(
    tx: &mut <Db as sqlx::Database>::Connection,
    plan_id: &str,
    confirmed: &[(String, String)],
) -> Result<(), sqlx::Error> {
    // One statement per chunk of (student, case) pairs, not one per
    // student: each statement is a round trip to sqlx's worker thread.
    // The placeholders appear in the text in the order they are bound
    // (SQLite's are plain `?`; see `engine::placeholder`).
    const PER_STATEMENT: usize = 4000; // 2 variables each, plus the plan
    for chunk in confirmed.chunks(PER_STATEMENT) {
        let sql = format!(
            "UPDATE screening_results SET case_id = v.column2 FROM (VALUES {}) AS v \
             WHERE screening_results.plan_id = {} AND screening_results.student_id = v.column1",
            (0..chunk.len())
                .map(|i| format!(
                    "({}, {})",
                    engine::placeholder(2 * i + 1),
                    engine::placeholder(2 * i + 2)
                ))
                .collect::<Vec<_>>()
                .join(","),
            engine::placeholder(2 * chunk.len() + 1)
        );
        let mut q = sqlx::query(&sql);
        for (student_id, case_id) in chunk {
            q = q.bind(student_id).bind(case_id);
        }
        q.bind(plan_id).execute(&mut *tx).await?;
    }
    Ok(())
}
