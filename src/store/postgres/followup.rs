//! The follow-up phase on PostgreSQL, as far as phase 1 goes: school
//! calendars and the 三个一 cadence a console is greeted with. Level
//! changes, monitoring and check-ins are not ported yet (their commands are
//! refused in `CommandTx::apply`), so no check-in is ever recorded here and
//! the cadence counts every student on the roster as due for review - which
//! is what it is, on this store.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{PgStore, StoreError, Tx, ts};
use crate::followup::calendar::Calendar;
use crate::playbook::{Playbook, Progress};

impl PgStore {
    /// Stores (or replaces) a school's calendar after checking it.
    pub async fn load_calendar(
        &self,
        text: &str,
    ) -> Result<Result<String, Vec<String>>, StoreError> {
        let calendar = match Calendar::parse(text) {
            Ok(c) => c,
            Err(problems) => return Ok(Err(problems)),
        };
        let school = calendar.school.unwrap_or_default();
        sqlx::query(
            "INSERT INTO school_calendars (school, body, loaded_at) VALUES ($1, $2, $3) \
             ON CONFLICT (school) DO UPDATE SET body = excluded.body, loaded_at = excluded.loaded_at",
        )
        .bind(&school)
        .bind(text)
        .bind(ts(Utc::now()))
        .execute(self.pool())
        .await?;
        Ok(Ok(school))
    }

    /// The 三个一 cadence as of `now` ([`crate::followup::cadence`]), as
    /// the SQLite engine counts it.
    pub async fn followup_cadence(
        &self,
        now: DateTime<Utc>,
    ) -> Result<crate::followup::cadence::Cadence, StoreError> {
        use crate::followup::cadence;
        let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM school_calendars")
            .fetch_all(self.pool())
            .await?;
        // A calendar that no longer parses is left out here: a date shown
        // a little late is better than no console.
        let calendars: Vec<Calendar> = bodies
            .iter()
            .filter_map(|b| Calendar::parse(b).ok())
            .collect();
        let fallback = Calendar::fallback();
        let (month_start, month) = cadence::month_start(now, &fallback);
        let today = now.with_timezone(&fallback.offset).date_naive();
        let (next_term_screening, next_census) = cadence::next_dates(&calendars, today);
        let row = sqlx::query(
            "WITH roster AS ( \
                 SELECT DISTINCT student_id FROM cases \
                  WHERE status <> 'closed' AND alert_status = 'actual' \
                    AND (level IN ('key', 'high') OR imminent)), \
             reviewed AS ( \
                 SELECT DISTINCT o.student_id FROM checkins k JOIN cases o ON o.id = k.case_id \
                  WHERE k.done_at >= $1) \
             SELECT (SELECT COUNT(*) FROM roster) AS students, \
                    (SELECT COUNT(*) FROM roster WHERE student_id NOT IN \
                        (SELECT student_id FROM reviewed)) AS due",
        )
        .bind(ts(month_start))
        .fetch_one(self.pool())
        .await?;
        let count = |name: &str| -> Result<u32, StoreError> {
            let n: i64 = row.try_get(name)?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        };
        Ok(cadence::Cadence {
            as_of: now,
            month,
            review_students: count("students")?,
            review_due: count("due")?,
            next_term_screening,
            next_census,
            calendars: u32::try_from(calendars.len()).unwrap_or(u32::MAX),
        })
    }
}

/// The school a case's student belongs to, as the SQLite engine finds it:
/// the latest alert that names one, else the latest screening export.
async fn school_of(
    tx: &mut Tx<'_>,
    case_id: &str,
    student_id: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let school: Option<String> = sqlx::query_scalar(
        "SELECT (body::jsonb)->'student'->>'school' FROM alerts \
         WHERE case_id = $1 AND (body::jsonb)->'student'->>'school' IS NOT NULL \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(case_id)
    .fetch_optional(&mut **tx)
    .await?;
    match school {
        Some(s) => Ok(Some(s)),
        None => Ok(sqlx::query_scalar(
            "SELECT school FROM screening_results \
             WHERE student_id = COALESCE($1, (SELECT student_id FROM cases WHERE id = $2)) \
             ORDER BY answered_at DESC LIMIT 1",
        )
        .bind(student_id)
        .bind(case_id)
        .fetch_optional(&mut **tx)
        .await?),
    }
}

/// A school's calendar as loaded with `calendar load`; the Mon–Fri
/// fallback when there is none (or no school is known).
async fn school_calendar(tx: &mut Tx<'_>, school: Option<&str>) -> Result<Calendar, StoreError> {
    let Some(school) = school else {
        return Ok(Calendar::fallback());
    };
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM school_calendars WHERE school = $1")
            .bind(school)
            .fetch_optional(&mut **tx)
            .await?;
    match body {
        Some(body) => Calendar::parse(&body).map_err(|p| {
            StoreError::Corrupt(format!("stored calendar of {school}: {}", p.join("; ")))
        }),
        None => Ok(Calendar::fallback()),
    }
}

/// School calendars read during one write, by school: the school-day
/// limits of a checklist are counted as on SQLite (`sqlite/followup.rs`).
#[derive(Default)]
pub(super) struct Calendars(HashMap<Option<String>, Calendar>);

impl Calendars {
    /// Counts the checklist's school-day limits whose clock has started on
    /// the calendar of the case's school (`named` when the alert at hand
    /// names it). Reads nothing when there is nothing to count.
    pub(super) async fn count(
        &mut self,
        tx: &mut Tx<'_>,
        case: (&str, Option<&str>),
        named: Option<&str>,
        playbook: &Playbook,
        progress: &mut Progress,
    ) -> Result<(), StoreError> {
        if !progress.needs_school_count(playbook) {
            return Ok(());
        }
        let school = match named {
            Some(s) => Some(s.to_string()),
            None => school_of(tx, case.0, case.1).await?,
        };
        if !self.0.contains_key(&school) {
            let calendar = school_calendar(tx, school.as_deref()).await?;
            self.0.insert(school.clone(), calendar);
        }
        if let Some(calendar) = self.0.get(&school) {
            progress.count_school_days(playbook, calendar);
        }
        Ok(())
    }
}
